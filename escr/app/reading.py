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

from sqlalchemy import func, select

from escr.app import access, accounts, page_images, retrieval, saved_views
from escr.app.access import AccessDenied, Principal
from escr.app.operations import Operations, child_dict, page_of
from escr.app.saved_views import ViewFilters
from escr.errors import NotFound, ValidationFailed
from escr.indexing import summary
from escr.record.database import SEARCH_RANK_CANDIDATES
from escr.record.models import Document, DocumentChild, Page, Tag
from escr.record.states import OUT_OF_RECORD, DocumentState
from escr.services import Services

CHRONOLOGY_TYPE = "chronology"  # the document kept at the front of the file (seed 003)
SUMMARY_CHARS = 1500  # of a first page's text, enough for its heading, sender and title
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
    """The chronology and the viewer for one signed-in person."""

    def __init__(self, services: Services, principal: Principal) -> None:
        self.services = services
        self.p = principal

    def chronology(self, child_id: str, filters: ViewFilters | None = None, *, view: str | None = None,
                   offset: int = 0, limit: int = 50) -> dict[str, Any]:
        """The child's record as a chronology reads: each document's date, type, whom it is from and
        a line saying what it is; verified documents unless the filters' state says otherwise (then
        the others are marked); the newest chronology document pinned first, whatever the filters.
        `view` opens one of this person's saved views (escr.app.saved_views) instead of `filters`:
        it holds filters only, so the read below is checked and logged exactly as any other.

        The line and the sender come from the document's own text, so they are shown only for the
        documents this person may open (the same rule as the PDF); for the others, only the facts.
        Words to find in the text, likewise, find only documents this person may open."""
        view_id = None
        if view is not None:
            view_id, filters = saved_views.SavedViews(self.services, self.p).filters(view)
        f = filters or ViewFilters()
        wanted = list(f.types)
        try:
            with self.services.db.session() as session:
                child, grant = access.child_grant(session, self.p, child_id)
                docs = retrieval.list_documents(session, child_id, actor=self.p.actor,
                                                doc_type=wanted[0] if len(wanted) == 1 else None,
                                                since=f.since, until=f.until, use=grant.use,
                                                view_id=view_id)
                if len(wanted) > 1:
                    docs = [d for d in docs if d["doc_type"] in wanted]
                if f.third_party != "any":
                    docs = [d for d in docs if bool(d["third_party"]) == (f.third_party == "only")]
                if f.text:
                    found = {h["id"] for h in retrieval.search(
                        session, self.services.db, f.text, actor=self.p.actor, child_id=child_id,
                        limit=SEARCH_RANK_CANDIDATES, document_ids=access.readable_document_ids(session, self.p),
                        use=grant.use)}
                    docs = [d for d in docs if d["id"] in found]
                if f.sort == "newest":
                    docs = [d for d in docs if d["doc_date"]][::-1] + [d for d in docs if not d["doc_date"]]
                waiting = sum(1 for d in docs if d["state"] != DocumentState.VERIFIED)
                kept = {"verified": [d for d in docs if d["state"] == DocumentState.VERIFIED], "all": docs,
                        "pending": [d for d in docs if d["state"] != DocumentState.VERIFIED]}[f.state]
                shown = page_of(kept, offset, limit)
                pinned = session.execute(
                    select(Document.id, Document.doc_date, Document.state, Document.page_count)
                    .join(DocumentChild, DocumentChild.document_id == Document.id)
                    .where(DocumentChild.child_id == child_id, Document.doc_type == CHRONOLOGY_TYPE,
                           Document.state.not_in(OUT_OF_RECORD))
                    .order_by(Document.state != DocumentState.VERIFIED, Document.doc_date.desc().nulls_last(), Document.created_at.desc())
                    .limit(1)).first()
                lines = self._lines(session, [d["id"] for d in shown.items] + ([pinned.id] if pinned else []))
                for d in shown.items:
                    d.update(lines.get(d["id"], {"title": None, "sender": None, "readable": False}))
                worker = accounts.allocated_worker(session, child_id)
                types_held = sorted({t for (t,) in session.execute(
                    select(Document.doc_type).join(DocumentChild).where(DocumentChild.child_id == child_id)) if t})
        except AccessDenied as exc:
            with self.services.db.session() as session:
                retrieval.log_refused(session, actor=self.p.actor, action="list", code=exc.code, child_id=child_id)
            raise
        return {"child": child_dict(child), "basis": grant.basis, "break_glass_id": grant.break_glass_id,
                "allocated_to": worker.username if worker else None, "doc_types": types_held,
                "documents": shown, "waiting": waiting, "pending_shown": f.shows_unverified,
                "filters": f, "view": view,
                "pinned": None if pinned is None else {
                    "id": pinned.id, "doc_date": pinned.doc_date.isoformat() if pinned.doc_date else None,
                    "state": pinned.state, "pages": pinned.page_count,
                    **lines.get(pinned.id, {"title": None, "sender": None, "readable": False})}}

    def _around(self, doc: dict[str, Any], child_id: str) -> dict[str, Any] | None:
        """Where the document stands in the child's chronology (date order, as the chronology
        lists it): its position and the ids before and after, to read the file on page by page.
        Only ids and a count: nothing of the neighbours is shown until they are opened (and logged).
        A verified document's neighbours are the verified ones, as the chronology shows by default."""
        if child_id not in doc["children"]:
            return None
        with self.services.db.session() as session:
            try:
                access.child_grant(session, self.p, child_id)
            except AccessDenied:
                return None
            states = ((DocumentState.VERIFIED,) if doc["state"] == DocumentState.VERIFIED
                      else tuple(s for s in DocumentState if s not in OUT_OF_RECORD))
            rows = session.execute(
                select(Document.id, Document.doc_date, Document.created_at)
                .join(DocumentChild, DocumentChild.document_id == Document.id)
                .where(DocumentChild.child_id == child_id, Document.state.in_(states))).all()
        ids = [r.id for r in sorted(rows, key=retrieval.chronology_order)]
        if doc["id"] not in ids:
            return None
        at = ids.index(doc["id"])
        return {"child_id": child_id, "position": at + 1, "count": len(ids),
                "previous": ids[at - 1] if at > 0 else None, "next": ids[at + 1] if at + 1 < len(ids) else None}

    def _lines(self, session: Any, doc_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Title and sender of the documents among `doc_ids` this person may open: a person's
        index entry (tags "title", "sender") first, else read from the first page's text."""
        if not doc_ids:
            return {}
        scope = access.readable_document_ids(session, self.p)
        readable = set(session.scalars(select(Document.id).where(Document.id.in_(doc_ids),
                                                                 scope.condition(Document.id.expression))))
        if not readable:
            return {}
        texts = dict(session.execute(select(Page.document_id, func.substr(Page.text, 1, SUMMARY_CHARS))
                                     .where(Page.document_id.in_(readable), Page.seq == 1)).all())
        indexed: dict[str, dict[str, str]] = {}
        for doc_id, name, value in session.execute(select(Tag.document_id, Tag.name, Tag.value)
                                                   .where(Tag.document_id.in_(readable),
                                                          Tag.name.in_(["title", "sender"]))):
            indexed.setdefault(doc_id, {})[name] = value
        return {doc_id: {"title": indexed.get(doc_id, {}).get("title") or summary.title(texts.get(doc_id) or ""),
                         "sender": indexed.get(doc_id, {}).get("sender") or summary.sender(texts.get(doc_id) or ""),
                         "readable": True} for doc_id in readable}

    def viewer(self, doc_id: str, page: int | None = None, *, query: str = "", zoom: int | None = None,
               child: str | None = None) -> dict[str, Any]:
        """The document (as `Operations.document` gives it, which checks and logs the view), the page
        shown, and with a query the pages that hold its words and their boxes on this page. Opened
        from a child's chronology (`child`), also the documents before and after it there."""
        query = " ".join((query or "").split())
        if len(query) > MAX_QUERY_CHARS:
            raise ValidationFailed(f"search for at most {MAX_QUERY_CHARS} characters")
        doc = Operations(self.services, self.p).document(doc_id)
        count = max(1, int(doc["pages"]))
        shown = min(max(1, page or 1), count)
        data: dict[str, Any] = {"doc": doc, "page": shown, "page_count": count, "query": query,
                                "zoom": zoom if zoom in ZOOMS else ZOOMS[0], "zooms": ZOOMS,
                                "hit_pages": [], "hits": [], "searched": bool(query),
                                "around": self._around(doc, child) if child else None}
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
