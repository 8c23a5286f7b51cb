"""Reading a record: a document's pages in the app, with search hits marked on the page image.

The viewer shows one page at a readable size, the document's other pages as thumbnails, and,
when the reader searches the document, which pages hold the words and where they are on the
page (boxes from the searchable PDF's text layer, which the intake drew from the OCR's hOCR).
Need-to-know and third-party rules are the ones every read goes through: the metadata through
`Operations.document`, the pages and their words through `access.document_grant(content=True)`
exactly as for the PDF; a reader who may not open the content gets the reason and no pages.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from escr.app import access, page_images, retrieval
from escr.app.access import Principal
from escr.app.operations import Operations
from escr.errors import NotFound, ValidationFailed
from escr.record.models import Document, Page
from escr.services import Services

ZOOMS = (100, 150, 200)  # per cent of the column's width
MAX_QUERY_CHARS = 200
_EDGE = re.compile(r"^\W+|\W+$")


def query_prefixes(query: str) -> tuple[str, ...]:
    """What a word of a hit starts with, per term: the term folded, less a plural or a final
    "e"/"i"/"y" of a longer word, so "families" finds "family" and "assess" finds "assessment",
    close to what the full-text search itself matches (it stems)."""
    out = []
    for raw in query.split()[:10]:
        term = _EDGE.sub("", raw.casefold())
        if len(term) > 4 and term.endswith("ies"):
            term = term[:-3]
        elif len(term) > 4 and term.endswith("s"):
            term = term[:-1]
        if len(term) > 3 and term[-1] in "eiy":
            term = term[:-1]
        if term:
            out.append(term)
    return tuple(dict.fromkeys(out))


def is_hit(word: str, prefixes: tuple[str, ...]) -> bool:
    """A word starting with a term's prefix, and at most an ending's worth of letters longer."""
    folded = _EDGE.sub("", word.casefold())
    return any(folded.startswith(p) and len(folded) - len(p) <= (4 if len(p) > 3 else 2) for p in prefixes)


class Reader:
    """The viewer for one signed-in person."""

    def __init__(self, services: Services, principal: Principal) -> None:
        self.services = services
        self.p = principal

    def viewer(self, doc_id: str, page: int | None = None, *, query: str = "", zoom: int | None = None
               ) -> dict[str, Any]:
        """The document (as `Operations.document` gives it, which checks and logs the view), the page
        shown, and with a query the pages that hold its words and their boxes on this page."""
        query = " ".join((query or "").split())
        if len(query) > MAX_QUERY_CHARS:
            raise ValidationFailed(f"search for at most {MAX_QUERY_CHARS} characters")
        doc = Operations(self.services, self.p).document(doc_id)
        count = max(1, int(doc["pages"]))
        shown = min(max(1, page or 1), count)
        data: dict[str, Any] = {"doc": doc, "page": shown, "page_count": count, "query": query,
                                "zoom": zoom if zoom in ZOOMS else ZOOMS[0], "zooms": ZOOMS,
                                "hit_pages": [], "hits": [], "searched": bool(query)}
        if not doc["content"]["allowed"]:
            return data
        prefixes = query_prefixes(query)
        with self.services.db.session() as session:
            row = session.get(Document, doc_id)
            if row is None:
                raise NotFound(f"no document {doc_id}")
            grant = access.document_grant(session, self.p, row, content=True)  # exactly as for the PDF
            if not prefixes:
                return data
            texts = session.execute(select(Page.seq, Page.text).where(Page.document_id == doc_id)
                                    .order_by(Page.seq)).all()
            hit_pages = [seq for seq, text in texts if any(is_hit(w, prefixes) for w in (text or "").split())]
            if page is None and hit_pages:
                shown = hit_pages[0]  # a search opens at its first hit
            retrieval.log_document_access(session, row, actor=self.p.actor, action="search", use=grant.use,
                                          parameters={"query": query, "hits": len(hit_pages), "in": "document"})
            key, sha = row.searchable_key, row.searchable_sha256
        boxes = page_images.word_boxes(self.services.store, self.services.settings.home, key=key, sha256=sha,
                                       page=shown, page_count=count) if shown in hit_pages else []
        data.update(page=shown, hit_pages=hit_pages,
                    hits=[{"x": round(b.left * 1000, 1), "y": round(b.top * 1000, 1),
                           "w": round((b.right - b.left) * 1000, 1), "h": round((b.bottom - b.top) * 1000, 1),
                           "word": b.text} for b in boxes if is_hit(b.text, prefixes)])
        return data
