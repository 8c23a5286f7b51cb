"""Subject access and disclosure (issue 18): requests, redaction, two-person review, bundles,
and the log of copies given (seed 001 section 21; seed 003 appendices 2-4).

One disclosure officer opens a request (who asked, their relationship, the legal basis, the
due date, the children, documents and period in scope), has escr propose redactions from the
pages' OCR word boxes (other children, adults named, NHS numbers, addresses, phone numbers,
email addresses, third-party documents, a searched name everywhere), accepts, rejects, draws,
moves and removes them, each with an exemption reason, and sends the bundle for review. A
second disclosure officer checks every document and approves or returns it; the preparer can
never approve their own. The approved bundle is exported with the redactions burnt into freshly
rendered page images (escr.pages.bundle), its hash recorded, and the copy given is logged on each
child's record. The originals and reading copies are never touched.

Least privilege: the disclosure officer role reads no record as casework; it opens only the
verified documents of requests it works on (as preparer or named reviewer), third-party ones only
with the third-party permission, and every page it opens is in the access log. Every step is a
protocol event carrying ids and counts, never the words redacted.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from escr.app import access, labels, page_images, retrieval
from escr.app.access import AccessDenied, Can, Principal, Role, require, require_change
from escr.app.retrieval import Use
from escr.app.spreadsheet import csv_text
from escr.app.verification import MIN_REASON_CHARS
from escr.errors import InvalidState, NotFound, ProtocolViolation, ValidationFailed
from escr.indexing.identifiers import compile_child_id_pattern, nhs_number_valid
from escr.pages import bundle as bundles
from escr.record import payloads
from escr.record.events import AccessEvent, Kind, ProtocolEvent, now, record, record_all
from escr.record.models import (
    Child,
    CopyGiven,
    CopyGivenChild,
    DisclosureRequest,
    DisclosureReview,
    Document,
    DocumentChild,
    Event,
    Redaction,
    User,
)
from escr.record.states import DocumentState
from escr.services import Services
from escr.storage.objectstore import content_key

BASES = {"subject_access": "Subject access request (UK GDPR article 15)", "court": "Court order or direction",
         "agency_sharing": "Another agency, under a sharing agreement",
         "care_leaver": "A care leaver's own file", "other": "Other lawful basis"}
METHODS = {"post": "By post", "secure_email": "Secure email", "collected": "Collected in person",
           "in_person": "Given at a meeting", "court": "Filed with the court"}
STATES = {"preparing": "Being prepared", "in_review": "Waiting for review", "approved": "Approved",
          "disclosed": "Disclosed", "closed": "Closed"}
SOURCES = {"person": "Drawn by a person", "other_child": "Another child in the index", "child_id": "Another child's id",
           "nhs_number": "An NHS number", "adult_name": "A person named in the text", "address": "An address",
           "postcode": "A postcode", "phone": "A phone number", "email": "An email address",
           "third_party_document": "A third-party document", "search": "Search and redact"}
SCOPES = {"area": "Area", "page": "Whole page", "document": "Whole document"}
DISCLOSURE_KINDS = (Kind.DISCLOSURE_OPENED, Kind.DISCLOSURE_CHANGED, Kind.REDACTIONS_PROPOSED, Kind.REDACTION_CHANGED,
                    Kind.DISCLOSURE_SUBMITTED, Kind.DISCLOSURE_PAGES_REVIEWED, Kind.DISCLOSURE_APPROVED,
                    Kind.DISCLOSURE_RETURNED, Kind.BUNDLE_EXPORTED, Kind.COPY_GIVEN)
PAD = 0.003  # a proposal's box is grown by this fraction of the page each way (glyph edges)


def ref(request_id: int) -> str:
    return f"DR-{request_id}"


def parse_ref(value: str | int) -> int:
    text = str(value).strip().upper().removeprefix("DR-")
    if not text.isdigit():
        raise NotFound(f"no disclosure request {value}")
    return int(text)


def add_month(day: date) -> date:
    """One calendar month on (UK GDPR's time limit); the last day of a shorter month if need be."""
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def _reason_text(text: str, what: str) -> str:
    text = (text or "").strip()
    if len(text) < MIN_REASON_CHARS:
        raise ValidationFailed(f"{what} must be stated in at least {MIN_REASON_CHARS} characters", code="reason_required")
    return text[:2000]


def _box(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
    try:
        values = [float(v) for v in (x0, y0, x1, y1)]
    except (TypeError, ValueError):
        raise ValidationFailed("a redaction's corners must be numbers between 0 and 1", code="validation_failed") from None
    a, b, c, d = (min(1.0, max(0.0, v)) for v in values)
    x0, x1, y0, y1 = min(a, c), max(a, c), min(b, d), max(b, d)
    if x1 - x0 < 0.002 or y1 - y0 < 0.002:
        raise ValidationFailed("a redaction must cover an area of the page", code="validation_failed")
    return round(x0, 5), round(y0, 5), round(x1, 5), round(y1, 5)


@dataclass(frozen=True)
class Found:
    """A proposal found on a page: what kind, why, how sure, and the words' boxes."""

    source: str
    why: str
    confidence: float
    boxes: tuple[tuple[float, float, float, float], ...]


def _norm(word: str) -> str:
    return re.sub(r"[^\w'-]", "", word).strip("'-").lower()


_TITLE = re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr)\.?\s+[A-Z][A-Za-z'-]+(?:\s+[A-Z][A-Za-z'-]+)?")
_PHONE = re.compile(r"(?<![\d])(?:\+44\s?\(?0?\)?\s?|0)\d{2,4}[\s-]?\d{3,4}[\s-]?\d{3,4}(?!\d)")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b")
_STREET = re.compile(r"\b\d+[A-Za-z]?,?\s+(?:[A-Z][a-z]+\s+){1,3}(?:Road|Street|Avenue|Lane|Close|Drive|Way|Crescent|"
                     r"Place|Court|Gardens|Terrace|Grove|Walk|Row|Hill|Park|Square|Mews|Rise)\b")


class _Index:
    """The child index as proposals need it: other children's names and ids, in memory once."""

    def __init__(self, session: Session, scope_children: Sequence[str], child_id_pattern: str) -> None:
        self.scope = set(scope_children)
        self.pattern = compile_child_id_pattern(child_id_pattern)
        own = session.execute(select(Child.given_names, Child.family_name, Child.nhs_number)
                              .where(Child.child_id.in_(self.scope))).all()
        self.own_family = {_norm(f) for _, f, _ in own}
        self.own_given = {_norm(g.split()[0]) for g, _, _ in own if g}
        self.own_nhs = {n for *_, n in own if n}
        self.family: dict[str, list[str]] = defaultdict(list)  # family name -> given first names of others
        for child_id, given, family in session.execute(select(Child.child_id, Child.given_names, Child.family_name)):
            if child_id not in self.scope and family:
                self.family[_norm(family)].append(_norm((given or "").split()[0]) if given else "")


def _spans(words: Sequence[bundles.Word]) -> tuple[str, list[int]]:
    starts, pos = [], 0
    for w in words:
        starts.append(pos)
        pos += len(w.text) + 1
    return " ".join(w.text for w in words), starts


def _boxes_of(words: Sequence[bundles.Word], indices: Sequence[int]) -> tuple[tuple[float, float, float, float], ...]:
    """The words' boxes, merged along a line, each grown by PAD."""
    runs: list[list[float]] = []
    for i in sorted(indices):
        x0, y0, x1, y1 = words[i].box
        last = runs[-1] if runs else None
        if last is not None and abs((y0 + y1) / 2 - (last[1] + last[3]) / 2) < (y1 - y0) / 2 and x0 >= last[0]:
            last[2], last[1], last[3] = max(last[2], x1), min(last[1], y0), max(last[3], y1)
        else:
            runs.append([x0, y0, x1, y1])
    return tuple((max(0.0, a - PAD), max(0.0, b - PAD), min(1.0, c + PAD), min(1.0, d + PAD)) for a, b, c, d in runs)


def _words_in(starts: list[int], words: Sequence[bundles.Word], s: int, e: int) -> list[int]:
    return [i for i, st in enumerate(starts) if st < e and st + len(words[i].text) > s]


def find_on_page(words: Sequence[bundles.Word], index: _Index) -> list[Found]:
    """What on one page is probably about someone other than the children the request is for."""
    text, starts = _spans(words)
    found: list[Found] = []

    def add(source: str, why: str, confidence: float, s: int, e: int) -> None:
        hit = _words_in(starts, words, s, e)
        if hit:
            found.append(Found(source, why, confidence, _boxes_of(words, hit)))

    for m in _EMAIL.finditer(text):
        add("email", "An email address", 0.95, m.start(), m.end())
    for m in _PHONE.finditer(text):
        add("phone", "A phone number", 0.85, m.start(), m.end())
    for m in re.finditer(r"(?<!\d)(\d{3})[ -]?(\d{3})[ -]?(\d{4})(?!\d)", text):
        digits = "".join(m.groups())
        if nhs_number_valid(digits) and digits not in index.own_nhs:
            add("nhs_number", "An NHS number that is not the requester's child's", 0.95, m.start(), m.end())
    for m in _POSTCODE.finditer(text):
        add("postcode", "A postcode (part of an address)", 0.8, m.start(), m.end())
    for m in _STREET.finditer(text):
        add("address", "A house number and street", 0.75, m.start(), m.end())
    for m in index.pattern.finditer(text):
        if m.group(0) not in index.scope:
            add("child_id", "Another child's id", 0.95, m.start(), m.end())
    for m in _TITLE.finditer(text):
        surname = _norm(m.group(0).split()[-1])
        if surname not in index.own_family:
            add("adult_name", "A person named in the text (title and name)", 0.7, m.start(), m.end())
    normed = [_norm(w.text) for w in words]
    for i, token in enumerate(normed):
        if token in index.family and token not in index.own_family and words[i].text[:1].isupper():
            given = normed[i - 1] if i else ""
            sure = given in index.family[token] and given not in index.own_given
            first = i - 1 if sure else i
            add("other_child", "The name of another child in the index" if sure
                else "The family name of another child in the index", 0.95 if sure else 0.6,
                starts[first], starts[i] + len(words[i].text))
    return found


def find_term(words: Sequence[bundles.Word], term: str) -> list[tuple[tuple[float, float, float, float], ...]]:
    """Every place on a page where the words of `term` appear in a row (case and punctuation ignored)."""
    wanted = [t for t in (_norm(w) for w in term.split()) if t]
    if not wanted:
        return []
    normed = [_norm(w.text) for w in words]
    return [_boxes_of(words, range(i, i + len(wanted))) for i in range(len(normed) - len(wanted) + 1)
            if normed[i:i + len(wanted)] == wanted]


class Disclosures:
    """The disclosure use cases of one signed-in person; every face calls these."""

    def __init__(self, services: Services, principal: Principal) -> None:
        self.services = services
        self.settings = services.settings
        self.db = services.db
        self.p = principal

    # --- rules ---------------------------------------------------------------------------------

    @property
    def exemptions(self) -> dict[str, str]:
        return dict(self.settings.disclosure.exemptions)

    def _reason(self, code: str) -> str:
        if code not in self.settings.disclosure.exemptions:
            raise ValidationFailed(f"unknown exemption reason {code!r}; choose one of "
                               f"{', '.join(self.settings.disclosure.exemptions)}", code="validation_failed")
        return code

    def _request(self, session: Session, request_id: int, *, change: bool = False) -> DisclosureRequest:
        """The request, if this person works on it (its preparer or named reviewer)."""
        require(self.p, Can.DISCLOSE)
        if change:
            require_change(self.p)
        row = session.get(DisclosureRequest, request_id)
        if row is None or self.p.username not in (row.prepared_by, row.reviewer):
            # The same answer for a request that exists and one that does not.
            raise AccessDenied(f"disclosure request {ref(request_id)} is not one you work on", code="not_your_request")
        return row

    def _editable(self, row: DisclosureRequest) -> None:
        if row.state != "preparing":
            raise InvalidState(f"{ref(row.id)} is {STATES[row.state].lower()}: redactions change only while it is "
                               "being prepared", code="invalid_state")
        if self.p.username != row.prepared_by:
            raise AccessDenied(f"only the preparer of {ref(row.id)} changes its redactions", code="not_the_preparer")

    def _documents(self, session: Session, row: DisclosureRequest) -> list[Document]:
        """The verified documents in the request's scope, oldest first."""
        # An IN subquery, not DISTINCT: PostgreSQL cannot compare the JSON columns DISTINCT would need.
        linked = select(DocumentChild.document_id).where(DocumentChild.child_id.in_(row.child_ids))
        stmt = select(Document).where(Document.id.in_(linked), Document.state == DocumentState.VERIFIED)
        if row.document_ids is not None:
            stmt = stmt.where(Document.id.in_(row.document_ids))
        if row.period_from is not None:
            stmt = stmt.where(or_(Document.doc_date.is_(None), Document.doc_date >= row.period_from))
        if row.period_to is not None:
            stmt = stmt.where(or_(Document.doc_date.is_(None), Document.doc_date <= row.period_to))
        docs = list(session.scalars(stmt))
        return sorted(docs, key=lambda d: (d.doc_date or date.min, d.created_at, d.id))

    def _document(self, session: Session, row: DisclosureRequest, doc_id: str) -> Document:
        doc = next((d for d in self._documents(session, row) if d.id == doc_id), None)
        if doc is None:
            raise NotFound(f"document {doc_id} is not in {ref(row.id)}")
        if doc.third_party and not self.p.third_party:
            raise AccessDenied(f"document {doc_id} holds third-party information; preparing or reviewing it needs "
                               "the third-party permission", code="third_party_permission_required")
        return doc

    def _use(self, row: DisclosureRequest) -> Use:
        return Use(purpose=f"disclosure request {ref(row.id)}", basis="disclosure")

    def _event(self, session: Session, kind: Kind, row: DisclosureRequest, parameters: payloads.Payload,
               outcome: str = "ok", document_id: str | None = None) -> None:
        """A step of the request; its payload names the request (`request_id`)."""
        record(session, ProtocolEvent(kind=kind, actor=self.p.actor, document_id=document_id,
                                      child_id=row.child_ids[0] if row.child_ids else None, outcome=outcome,
                                      parameters=parameters))

    def _touch(self, row: DisclosureRequest) -> None:
        row.version += 1
        row.updated_at = now()

    # --- requests ------------------------------------------------------------------------------

    def open_request(self, *, requester: str, relationship: str, basis: str, child_ids: Sequence[str],
                     received_on: date | None = None, due_on: date | None = None,
                     document_ids: Sequence[str] | None = None, period_from: date | None = None,
                     period_to: date | None = None) -> dict[str, Any]:
        require(self.p, Can.DISCLOSE)
        require_change(self.p)
        requester, relationship = (requester or "").strip()[:200], (relationship or "").strip()[:64]
        if not requester or not relationship:
            raise ValidationFailed("say who asked and their relationship to the child", code="validation_failed")
        if basis not in BASES:
            raise ValidationFailed(f"the legal basis must be one of {', '.join(BASES)}", code="validation_failed")
        ids = sorted({c.strip().upper() for c in child_ids if c.strip()})
        if not ids:
            raise ValidationFailed("name at least one child", code="validation_failed")
        if period_from and period_to and period_from > period_to:
            raise ValidationFailed("the period ends before it starts", code="validation_failed")
        received = received_on or now().date()
        with self.db.session() as session:
            known = set(session.scalars(select(Child.child_id).where(Child.child_id.in_(ids))))
            if missing := [c for c in ids if c not in known]:
                raise NotFound(f"no child {', '.join(missing)} in the child index")
            stamp = now()
            row = DisclosureRequest(requester=requester, requester_relationship=relationship, basis=basis,
                                    child_ids=ids, document_ids=sorted(set(document_ids)) if document_ids else None,
                                    period_from=period_from, period_to=period_to, received_on=received,
                                    due_on=due_on or add_month(received), state="preparing",
                                    prepared_by=self.p.username, version=0, created_at=stamp, updated_at=stamp)
            session.add(row)
            session.flush()
            docs = self._documents(session, row)
            self._event(session, Kind.DISCLOSURE_OPENED, row, payloads.DisclosureOpened(
                request_id=row.id, basis=basis, children=ids, documents=len(docs), due_on=row.due_on.isoformat()))
            return self._summary(session, row)

    def extend(self, request_id: int, due_on: date, reason: str) -> dict[str, Any]:
        with self.db.session() as session:
            row = self._request(session, request_id, change=True)
            reason = _reason_text(reason, "the reason for extending the time limit")
            if due_on <= row.due_on:
                raise ValidationFailed("an extension moves the due date later", code="validation_failed")
            before, row.due_on, row.extension_reason = row.due_on, due_on, reason
            row.updated_at = now()
            self._event(session, Kind.DISCLOSURE_CHANGED, row, payloads.DisclosureChanged(
                request_id=row.id, change="due_date_extended", before=before.isoformat(), after=due_on.isoformat()))
            return self._summary(session, row)

    def requests(self, *, everyone_mine: bool = True) -> list[dict[str, Any]]:
        """The requests this person works on, the nearest due first."""
        require(self.p, Can.DISCLOSE)
        with self.db.session() as session:
            rows = session.scalars(select(DisclosureRequest).where(
                or_(DisclosureRequest.prepared_by == self.p.username, DisclosureRequest.reviewer == self.p.username))
                .order_by(DisclosureRequest.due_on, DisclosureRequest.id)).all()
            return [self._summary(session, r, counts=False) for r in rows]

    def _summary(self, session: Session, row: DisclosureRequest, *, counts: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": row.id, "ref": ref(row.id), "requester": row.requester, "relationship": row.requester_relationship,
            "basis": row.basis, "basis_label": BASES.get(row.basis, row.basis), "children": list(row.child_ids),
            "document_ids": row.document_ids, "period_from": row.period_from, "period_to": row.period_to,
            "received_on": row.received_on, "due_on": row.due_on, "extension_reason": row.extension_reason,
            "overdue": row.state in ("preparing", "in_review", "approved") and row.due_on < now().date(),
            "state": row.state, "state_label": STATES.get(row.state, row.state), "prepared_by": row.prepared_by,
            "reviewer": row.reviewer, "review_note": row.review_note, "reviewed_at": row.reviewed_at,
            "bundle_sha256": row.bundle_sha256, "bundle_pages": row.bundle_pages, "exported_at": row.exported_at,
            "exported_by": row.exported_by, "version": row.version,
            "i_prepare": row.prepared_by == self.p.username, "i_review": row.reviewer == self.p.username,
        }
        if counts:
            reds = session.scalars(select(Redaction).where(Redaction.request_id == row.id)).all()
            out["proposed"] = sum(r.status == "proposed" for r in reds)
            out["applied"] = sum(r.status == "accepted" for r in reds)
        return out

    def request(self, request_id: int) -> dict[str, Any]:
        """The request with its documents, their redactions and what the reviewer has checked."""
        with self.db.session() as session:
            row = self._request(session, request_id)
            out = self._summary(session, row)
            children = session.scalars(select(Child).where(Child.child_id.in_(row.child_ids))).all()
            out["child_names"] = {c.child_id: f"{c.given_names} {c.family_name}" for c in children}
            reds = session.scalars(select(Redaction).where(Redaction.request_id == row.id)).all()
            by_doc: dict[str, list[Redaction]] = defaultdict(list)
            for r in reds:
                by_doc[r.document_id].append(r)
            reviewed = {r.document_id for r in session.scalars(select(DisclosureReview).where(
                DisclosureReview.request_id == row.id, DisclosureReview.version == row.version,
                DisclosureReview.reviewer == (row.reviewer or ""))).all()}
            docs = []
            for d in self._documents(session, row):
                rs = by_doc.get(d.id, [])
                docs.append({"id": d.id, "doc_type": d.doc_type, "doc_date": d.doc_date, "pages": d.page_count,
                             "third_party": d.third_party, "locked": d.third_party and not self.p.third_party,
                             "proposed": sum(r.status == "proposed" for r in rs),
                             "applied": sum(r.status == "accepted" for r in rs),
                             "withheld": any(r.status == "accepted" and r.scope == "document" for r in rs),
                             "reviewed": d.id in reviewed})
            out["documents"] = docs
            out["pages"] = sum(d["pages"] for d in docs)
            out["all_reviewed"] = bool(docs) and all(d["reviewed"] for d in docs)
            out["copies"] = [_copy_dict(c) for c in session.scalars(
                select(CopyGiven).where(CopyGiven.request_id == row.id).order_by(CopyGiven.id))]
            return out

    # --- pages and redactions ------------------------------------------------------------------

    def document(self, request_id: int, doc_id: str) -> dict[str, Any]:
        """One document of the request: its pages and every redaction on them (for the tool)."""
        with self.db.session() as session:
            row = self._request(session, request_id)
            doc = self._document(session, row, doc_id)
            reds = session.scalars(select(Redaction).where(Redaction.request_id == row.id,
                                                           Redaction.document_id == doc.id).order_by(Redaction.id)).all()
            return {"request": self._summary(session, row), "id": doc.id, "doc_type": doc.doc_type,
                    "doc_date": doc.doc_date, "pages": doc.page_count, "third_party": doc.third_party,
                    "redactions": [_redaction_dict(r, self.exemptions) for r in reds],
                    "editable": row.state == "preparing" and row.prepared_by == self.p.username}

    def page_image(self, request_id: int, doc_id: str, page: int, *, large: bool) -> Path:
        """A page image to redact or review by; opening it is logged like any read of the record."""
        dpi = self.settings.web.page_image_dpi * (2 if large else 1)
        with self.db.session() as session:
            row = self._request(session, request_id)
            doc = self._document(session, row, doc_id)
            if not 1 <= page <= doc.page_count:
                raise NotFound(f"no page {page} in document {doc_id}")
            retrieval.log_document_access(session, doc, actor=self.p.actor, action="view", use=self._use(row),
                                          parameters={"object": "page_image", "page": page, "dpi": dpi,
                                                      "request_id": row.id})
            key, sha, count = doc.searchable_key, doc.searchable_sha256, doc.page_count
        return page_images.page_image(self.services.store, self.settings.home, key=key, sha256=sha, page=page,
                                      page_count=count, dpi=dpi)

    def _local(self, doc: Document) -> Path:
        return page_images.local_pdf(self.services.store, doc.searchable_key, doc.searchable_sha256,
                                     page_images.cache_dir(self.settings.home))

    def propose(self, request_id: int) -> dict[str, Any]:
        """escr's proposals for the whole bundle from the OCR word boxes; none is applied until a
        person accepts it. Running it again adds only what is not proposed already."""
        with self.db.session() as session:
            row = self._request(session, request_id, change=True)
            self._editable(row)
            index = _Index(session, row.child_ids, self.settings.child_id_pattern)
            added: dict[str, int] = defaultdict(int)
            for doc in self._documents(session, row):
                if doc.third_party and not self.p.third_party:
                    continue
                known = _known_boxes(session, row.id, doc.id)
                if doc.third_party:
                    if (None, None) not in known:
                        session.add(self._new(row, doc.id, None, "document", None, "third_party", "third_party_document",
                                              "The document is flagged as holding third-party information", 0.9))
                        added["third_party_document"] += 1
                for page, words in enumerate(bundles.page_words(self._local(doc)), start=1):
                    for f in find_on_page(words, index):
                        for box in f.boxes:
                            if (page, box) in known:
                                continue
                            known.add((page, box))
                            session.add(self._new(row, doc.id, page, "area", box, "third_party", f.source, f.why,
                                                  f.confidence))
                            added[f.source] += 1
            self._touch(row)
            self._event(session, Kind.REDACTIONS_PROPOSED, row, payloads.RedactionsProposed(
                request_id=row.id, proposed=dict(added), total=sum(added.values())))
            return {"proposed": sum(added.values()), "by_source": dict(added)}

    def search_and_redact(self, request_id: int, term: str, reason: str) -> dict[str, Any]:
        """Propose a redaction of a name or phrase everywhere it appears in the bundle."""
        term = (term or "").strip()[:200]
        if len(term) < 2:
            raise ValidationFailed("say what to look for (at least two characters)", code="validation_failed")
        with self.db.session() as session:
            row = self._request(session, request_id, change=True)
            self._editable(row)
            self._reason(reason)
            count = 0
            for doc in self._documents(session, row):
                if doc.third_party and not self.p.third_party:
                    continue
                known = _known_boxes(session, row.id, doc.id)
                for page, words in enumerate(bundles.page_words(self._local(doc)), start=1):
                    for boxes in find_term(words, term):
                        for box in boxes:
                            if (page, box) not in known:
                                known.add((page, box))
                                session.add(self._new(row, doc.id, page, "area", box, reason, "search",
                                                      "Matches the words searched for", 1.0))
                                count += 1
            self._touch(row)
            self._event(session, Kind.REDACTIONS_PROPOSED, row,
                        payloads.RedactionsProposed(request_id=row.id, proposed={"search": count}, total=count))
            return {"proposed": count}

    def _new(self, row: DisclosureRequest, doc_id: str, page: int | None, scope: str,
             box: tuple[float, float, float, float] | None, reason: str, source: str, why: str,
             confidence: float | None, status: str = "proposed") -> Redaction:
        x0, y0, x1, y1 = box if box else (None, None, None, None)
        return Redaction(request_id=row.id, document_id=doc_id, page=page, scope=scope, x0=x0, y0=y0, x1=x1, y1=y1,
                         reason=reason, status=status, source=source, why=why[:512], confidence=confidence,
                         created_by=self.p.username, created_at=now(),
                         decided_by=self.p.username if status == "accepted" else None,
                         decided_at=now() if status == "accepted" else None)

    def redact(self, request_id: int, doc_id: str, *, reason: str, page: int | None = None,
               box: tuple[float, float, float, float] | None = None, whole: str = "area") -> dict[str, Any]:
        """A person's own redaction: an area of a page, a whole page or the whole document."""
        if whole not in SCOPES:
            raise ValidationFailed("a redaction covers an area, a page or the document", code="validation_failed")
        with self.db.session() as session:
            row = self._request(session, request_id, change=True)
            self._editable(row)
            doc = self._document(session, row, doc_id)
            self._reason(reason)
            if whole != "document" and (page is None or not 1 <= page <= doc.page_count):
                raise InvalidState(f"choose a page of document {doc_id} (1 to {doc.page_count})",
                                   code="validation_failed")
            if whole == "area":
                if box is None:
                    raise ValidationFailed("draw the area to redact", code="validation_failed")
                box = _box(*box)
            red = self._new(row, doc.id, page if whole != "document" else None, whole, box if whole == "area" else None,
                            reason, "person", "Drawn by a person", None, status="accepted")
            session.add(red)
            session.flush()
            self._touch(row)
            self._event(session, Kind.REDACTION_CHANGED, row, payloads.RedactionChanged(
                request_id=row.id, redaction_id=red.id, scope=whole, page=red.page, reason=reason), "made",
                document_id=doc.id)
            return _redaction_dict(red, self.exemptions)

    def decide(self, request_id: int, redaction_ids: Sequence[int], action: str, *, reason: str | None = None,
               box: tuple[float, float, float, float] | None = None) -> int:
        """Accept or reject proposals, remove applied redactions, change a reason, or move an area."""
        if action not in ("accept", "reject", "remove", "reason", "move"):
            raise ValidationFailed("unknown action on a redaction", code="validation_failed")
        if action == "move":
            if len(set(redaction_ids)) != 1:
                raise ValidationFailed("move one redaction at a time", code="validation_failed")
            if box is None:
                raise ValidationFailed("give the four edges of the area's new place", code="validation_failed")
            self.move(request_id, next(iter(redaction_ids)), box)
            return 1
        with self.db.session() as session:
            row = self._request(session, request_id, change=True)
            self._editable(row)
            if reason is not None and reason != "":
                self._reason(reason)
            reds = session.scalars(select(Redaction).where(Redaction.request_id == row.id,
                                                           Redaction.id.in_(list(redaction_ids)))).all()
            if len(reds) != len(set(redaction_ids)):
                raise NotFound(f"not every redaction named is in {ref(row.id)}")
            changed = 0
            for red in reds:
                self._document(session, row, red.document_id)  # the third-party permission, if it is one
                if action == "accept" and red.status == "proposed":
                    red.status = "accepted"
                    red.reason = reason or red.reason
                elif action == "reject" and red.status == "proposed":
                    red.status = "rejected"
                elif action == "remove" and red.status == "accepted":
                    red.status = "removed"
                elif action == "reason" and red.status in ("proposed", "accepted") and reason:
                    red.reason = reason
                else:
                    continue
                red.decided_by, red.decided_at = self.p.username, now()
                changed += 1
            if changed:
                self._touch(row)
                self._event(session, Kind.REDACTION_CHANGED, row, payloads.RedactionChanged(
                    request_id=row.id, redactions=sorted(r.id for r in reds), count=changed), action)
            return changed

    def move(self, request_id: int, redaction_id: int, box: tuple[float, float, float, float]) -> dict[str, Any]:
        """Move or resize a saved area redaction: new edges, the same reason and the same author.

        Only the preparer, only while the bundle is being prepared; the protocol event keeps the old
        and the new edges (fractions of the page), never what lies under them."""
        with self.db.session() as session:
            row = self._request(session, request_id, change=True)
            self._editable(row)
            red = session.scalars(select(Redaction).where(Redaction.request_id == row.id,
                                                          Redaction.id == redaction_id)).first()
            if red is None:
                raise NotFound(f"redaction {redaction_id} is not in {ref(row.id)}")
            self._document(session, row, red.document_id)  # the third-party permission, if it is one
            if red.scope != "area" or red.status not in ("proposed", "accepted"):
                raise InvalidState("only an area that is applied or proposed can be moved; withdraw a page or "
                                   "document again instead", code="invalid_state")
            before = [red.x0, red.y0, red.x1, red.y1]
            red.x0, red.y0, red.x1, red.y1 = _box(*box)
            red.decided_by, red.decided_at = self.p.username, now()
            self._touch(row)
            self._event(session, Kind.REDACTION_CHANGED, row, payloads.RedactionChanged(
                request_id=row.id, redaction_id=red.id, page=red.page, before=before,
                after=[red.x0, red.y0, red.x1, red.y1], redactions=[red.id], count=1), "move",
                document_id=red.document_id)
            return _redaction_dict(red, self.exemptions)

    # --- review --------------------------------------------------------------------------------

    def submit(self, request_id: int, reviewer: str) -> dict[str, Any]:
        """Send the bundle to a second disclosure officer; every proposal must be decided first."""
        with self.db.session() as session:
            row = self._request(session, request_id, change=True)
            self._editable(row)
            other = session.scalars(select(User).where(User.username == (reviewer or "").strip())).first()
            if other is None or other.disabled or other.role != Role.DISCLOSURE_OFFICER:
                raise ValidationFailed("the reviewer must be another disclosure officer's user name", code="validation_failed")
            if other.username == row.prepared_by:
                raise ProtocolViolation("four-eyes: the preparer cannot review their own bundle", code="protocol_violation")
            docs = self._documents(session, row)
            if any(d.third_party for d in docs) and not other.third_party_access:
                raise ValidationFailed(f"{ref(row.id)} holds third-party documents: its reviewer needs the third-party "
                                   "permission", code="validation_failed")
            if not docs:
                raise InvalidState(f"{ref(row.id)} has no verified documents in its scope", code="invalid_state")
            waiting = session.scalars(select(Redaction.id).where(Redaction.request_id == row.id,
                                                                 Redaction.status == "proposed")).all()
            if waiting:
                raise InvalidState(f"{len(waiting)} proposed redactions are not yet accepted or rejected",
                                   code="proposals_undecided")
            row.state, row.reviewer, row.review_note = "in_review", other.username, None
            self._touch(row)
            self._event(session, Kind.DISCLOSURE_SUBMITTED, row, payloads.DisclosureReview(
                request_id=row.id, reviewer=other.username, version=row.version))
            return self._summary(session, row)

    def _reviewing(self, session: Session, request_id: int) -> DisclosureRequest:
        row = self._request(session, request_id, change=True)
        if row.state != "in_review":
            raise InvalidState(f"{ref(row.id)} is not waiting for review", code="invalid_state")
        if self.p.username == row.prepared_by:
            raise ProtocolViolation("four-eyes: the preparer cannot review or approve their own bundle",
                                    code="protocol_violation")
        if self.p.username != row.reviewer:
            raise AccessDenied(f"{ref(row.id)} waits for review by its named reviewer", code="not_the_reviewer")
        return row

    def review_document(self, request_id: int, doc_id: str) -> None:
        """The reviewer has looked at every page of this document and its redactions."""
        with self.db.session() as session:
            row = self._reviewing(session, request_id)
            doc = self._document(session, row, doc_id)
            exists = session.scalars(select(DisclosureReview).where(
                DisclosureReview.request_id == row.id, DisclosureReview.document_id == doc.id,
                DisclosureReview.reviewer == self.p.username, DisclosureReview.version == row.version)).first()
            if exists is None:
                session.add(DisclosureReview(request_id=row.id, document_id=doc.id, reviewer=self.p.username,
                                             version=row.version, pages=doc.page_count, reviewed_at=now()))
                self._event(session, Kind.DISCLOSURE_PAGES_REVIEWED, row, payloads.DisclosureReview(
                    request_id=row.id, pages=doc.page_count, version=row.version), document_id=doc.id)

    def approve(self, request_id: int, note: str = "") -> dict[str, Any]:
        with self.db.session() as session:
            row = self._reviewing(session, request_id)
            docs = self._documents(session, row)
            seen = set(session.scalars(select(DisclosureReview.document_id).where(
                DisclosureReview.request_id == row.id, DisclosureReview.reviewer == self.p.username,
                DisclosureReview.version == row.version)))
            if missing := [d.id for d in docs if d.id not in seen]:
                raise InvalidState(f"{len(missing)} documents are not yet reviewed page by page", code="not_reviewed")
            row.state, row.reviewed_at, row.review_note = "approved", now(), (note or "").strip()[:2000] or None
            row.updated_at = now()
            self._event(session, Kind.DISCLOSURE_APPROVED, row,
                        payloads.DisclosureReview(request_id=row.id, version=row.version, documents=len(docs)))
            return self._summary(session, row)

    def return_bundle(self, request_id: int, note: str) -> dict[str, Any]:
        with self.db.session() as session:
            row = self._reviewing(session, request_id)
            row.review_note = _reason_text(note, "what must change")
            row.state = "preparing"
            self._touch(row)
            self._event(session, Kind.DISCLOSURE_RETURNED, row,
                        payloads.DisclosureReview(request_id=row.id, version=row.version))
            return self._summary(session, row)

    # --- export --------------------------------------------------------------------------------

    def export(self, request_id: int) -> dict[str, Any]:
        """Write the approved bundle (burnt-in redactions, cover, index, schedule), store it, record
        its hash. Pages are rendered and written one at a time."""
        with self.db.session() as session:
            row = self._request(session, request_id, change=True)
            if row.state not in ("approved", "disclosed"):
                raise InvalidState(f"{ref(row.id)} must be approved by its reviewer before it is exported",
                                   code="invalid_state")
            plan = self._plan(session, row)
        out_dir = private_dir(self.settings.home / "cache" / "bundles")
        fd, tmp = tempfile.mkstemp(dir=out_dir, suffix=".pdf.part")
        try:
            with os.fdopen(fd, "wb") as fh:
                sha, pages = self._write_bundle(plan, fh)
            retain = None if any(d.retention_until is None for d in plan.docs) else max(
                (d.retention_until for d in plan.docs if d.retention_until), default=None)
            stored = self.services.store.put_file(content_key("disclosures", sha, ".pdf"), Path(tmp), sha256=sha,
                                                  content_type="application/pdf", retain_until=retain)
        finally:
            Path(tmp).unlink(missing_ok=True)
        with self.db.session() as session:
            row = self._request(session, request_id, change=True)
            row.bundle_key, row.bundle_sha256, row.bundle_pages = stored.key, sha, pages
            row.exported_by, row.exported_at = self.p.username, now()
            self._event(session, Kind.BUNDLE_EXPORTED, row, payloads.BundleExported(
                request_id=row.id, bundle_sha256=sha, pages=pages, documents=len(plan.docs),
                redactions=len(plan.schedule)))
            return self._summary(session, row)

    def _plan(self, session: Session, row: DisclosureRequest) -> _Plan:
        docs = self._documents(session, row)
        for d in docs:
            self._document(session, row, d.id)
        reds = session.scalars(select(Redaction).where(Redaction.request_id == row.id,
                                                       Redaction.status == "accepted").order_by(Redaction.id)).all()
        by_doc: dict[str, list[Redaction]] = defaultdict(list)
        for r in reds:
            by_doc[r.document_id].append(r)
        children = {c.child_id: f"{c.given_names} {c.family_name}"
                    for c in session.scalars(select(Child).where(Child.child_id.in_(row.child_ids)))}
        for d in docs:
            session.expunge(d)
        return _Plan(summary=self._summary(session, row), children=children, docs=docs,
                     redactions={k: [_redaction_dict(r, self.exemptions) for r in v] for k, v in by_doc.items()},
                     schedule=[_redaction_dict(r, self.exemptions) for r in reds], doc_types=self._doc_type_labels())

    def _doc_type_labels(self) -> dict[str, str]:
        return {code: t.label for code, t in self.services.doctypes.types.items()}

    def _write_bundle(self, plan: _Plan, fh: BinaryIO) -> tuple[str, int]:
        cfg = self.settings.disclosure
        writer = bundles.BundleWriter(fh)
        starts = {}
        front = 1
        for _ in range(3):  # the front matter's length decides the page numbers it lists
            pos = front + 1
            for d in plan.docs:
                starts[d.id] = pos
                pos += 1 if _withheld(plan, d.id) else d.page_count
            pages = bundles.paginate(self._front_matter(plan, starts))
            if len(pages) == front:
                break
            front = len(pages)
        for lines in pages:
            writer.text_page(lines)
        for d in plan.docs:
            reds = plan.redactions.get(d.id, [])
            label = f"{plan.doc_types.get(d.doc_type or '', labels.words(d.doc_type or 'document'))}"
            if _withheld(plan, d.id):
                reason = next(r["reason_label"] for r in reds if r["scope"] == "document")
                writer.text_page([bundles.Line(f"Document {d.id}: {label}", 14, True),
                                  bundles.Line(f"This document ({d.page_count} pages) is withheld in full.", 11, gap=20),
                                  bundles.Line(f"Reason: {reason}", 11)])
                continue
            for page, words in enumerate(bundles.page_words(self._local(d)), start=1):
                whole = [r for r in reds if r["scope"] == "page" and r["page"] == page]
                if whole:
                    writer.text_page([bundles.Line(f"Document {d.id}, page {page}", 14, True),
                                      bundles.Line("This page is withheld in full.", 11, gap=20),
                                      bundles.Line(f"Reason: {whole[0]['reason_label']}", 11)])
                    continue
                boxes = [tuple(r["box"]) for r in reds if r["scope"] == "area" and r["page"] == page]
                image = bundles.render_page(self._local(d), page, cfg.render_dpi)
                burnt = bundles.burn_in(image, boxes)  # type: ignore[arg-type]
                image.close()
                kept = [w for w in words if not any(bundles.overlaps(w.box, b) for b in boxes)]  # type: ignore[arg-type]
                writer.image_page(burnt, cfg.render_dpi, kept, quality=cfg.jpeg_quality)
                burnt.close()
        return writer.close()

    def _front_matter(self, plan: _Plan, starts: dict[str, int]) -> list[bundles.Line]:
        s, L = plan.summary, bundles.Line
        zone = self.settings.web.timezone
        lines = [L(f"Disclosure bundle {s['ref']}", 18, True),
                 L(f"Prepared for: {s['requester']} ({s['relationship']})", 11, gap=16),
                 L(f"Basis: {s['basis_label']}", 11),
                 L("Records of: " + "; ".join(f"{plan.children.get(c, c)} ({c})" for c in s["children"]), 11),
                 L(f"Request received {labels.uk_date(s['received_on'])}; due {labels.uk_date(s['due_on'])}", 11),
                 L(f"Prepared by {s['prepared_by']}; reviewed and approved by {s['reviewer']}"
                   f" on {labels.local_time(s['reviewed_at'], zone)}", 11),
                 L(f"{len(plan.docs)} documents; {len(plan.schedule)} redactions, listed in the schedule.", 11),
                 L("Redacted areas are blacked out in the page images themselves and their words are left out of "
                   "the text layer: nothing lies beneath them in this copy.", 10, gap=10),
                 L("Index of documents", 14, True, gap=20)]
        for d in plan.docs:
            label = plan.doc_types.get(d.doc_type or "", labels.words(d.doc_type or "document"))
            note = " - withheld in full" if _withheld(plan, d.id) else ""
            lines.append(L(f"Page {starts[d.id]}: {label}, {labels.uk_date(d.doc_date, empty='undated')}, "
                           f"{d.page_count} page{'' if d.page_count == 1 else 's'} (document {d.id}){note}", 10))
        lines.append(L("Schedule of redactions", 14, True, gap=20))
        if not plan.schedule:
            lines.append(L("Nothing is redacted.", 10))
        for row in schedule_rows(plan.schedule, starts):
            where = "whole document" if row["scope"] == "document" else (
                f"bundle page {row['bundle_page']} (document {row['document_id']} page {row['document_page']})")
            lines.append(L(f"{where}: {row['reason']} - {row['count']} "
                           f"{'redaction' if row['count'] == 1 else 'redactions'}", 10))
        return lines

    def open_bundle(self, request_id: int) -> tuple[BinaryIO, str]:
        """The exported bundle, to download; logged on each child's record."""
        with self.db.session() as session:
            row = self._request(session, request_id)
            if not row.bundle_key:
                raise NotFound(f"{ref(row.id)} has not been exported yet")
            record_all(session, [AccessEvent(actor=self.p.actor, action="download", child_id=c, purpose=f"disclosure request {ref(row.id)}",
                                             parameters={"basis": "disclosure", "request_id": row.id,
                                                         "object": "disclosure_bundle", "sha256": row.bundle_sha256})
                                 for c in row.child_ids])
            key, name = row.bundle_key, f"disclosure-{ref(row.id)}.pdf"
        return self.services.store.open(key), name

    def schedule_csv(self, request_id: int) -> str:
        """The redaction schedule as CSV: bundle page, document, page, scope, reason, count."""
        with self.db.session() as session:
            row = self._request(session, request_id)
            plan = self._plan(session, row)
        starts, pos = {}, 2
        if row.bundle_pages:
            pos = row.bundle_pages - sum(1 if _withheld(plan, d.id) else d.page_count for d in plan.docs) + 1
        for d in plan.docs:
            starts[d.id] = pos
            pos += 1 if _withheld(plan, d.id) else d.page_count
        return csv_text(("bundle_page", "document_id", "document_page", "scope", "reason_code", "reason", "count"),
                        ([r["bundle_page"] or "", r["document_id"], r["document_page"] or "", r["scope"], r["code"],
                          r["reason"], r["count"]] for r in schedule_rows(plan.schedule, starts)))

    # --- copies given --------------------------------------------------------------------------

    def record_disclosure(self, request_id: int, *, recipient: str, method: str, given_on: date | None = None,
                          note: str = "") -> dict[str, Any]:
        """The exported bundle was given: who received it, how, when, with its hash."""
        with self.db.session() as session:
            row = self._request(session, request_id, change=True)
            if not row.bundle_sha256 or row.state not in ("approved", "disclosed"):
                raise InvalidState(f"{ref(row.id)} is given only after it is approved and exported", code="invalid_state")
            docs = [d.id for d in self._documents(session, row)]
            copy = self._copy(session, child_ids=row.child_ids, document_ids=docs, recipient=recipient, method=method,
                              basis=row.basis, redacted=True, bundle_sha256=row.bundle_sha256, note=note,
                              given_on=given_on, request_id=row.id)
            row.state, row.updated_at = "disclosed", now()
            return copy

    def _copy(self, session: Session, *, child_ids: Sequence[str], document_ids: Sequence[str], recipient: str,
              method: str, basis: str, redacted: bool, bundle_sha256: str | None, note: str, given_on: date | None,
              request_id: int | None) -> dict[str, Any]:
        recipient = (recipient or "").strip()[:200]
        if not recipient:
            raise ValidationFailed("say who received the copy", code="validation_failed")
        if method not in METHODS:
            raise ValidationFailed(f"how it was given must be one of {', '.join(METHODS)}", code="validation_failed")
        if basis not in BASES:
            raise ValidationFailed(f"the basis must be one of {', '.join(BASES)}", code="validation_failed")
        given = given_on or now().date()
        if given > now().date() + timedelta(days=1):
            raise ValidationFailed("a copy cannot be given in the future", code="validation_failed")
        copy = CopyGiven(request_id=request_id, child_ids=sorted(set(child_ids)), document_ids=list(document_ids),
                         recipient=recipient, method=method, basis=basis, redacted=redacted, bundle_sha256=bundle_sha256,
                         note=(note or "").strip()[:2000], given_on=given, given_by=self.p.username, recorded_at=now())
        session.add(copy)
        session.flush()
        session.add_all([CopyGivenChild(copy_id=copy.id, child_id=c) for c in copy.child_ids])
        record_all(session, [ProtocolEvent(kind=Kind.COPY_GIVEN, actor=self.p.actor, child_id=c,
                                           parameters=payloads.CopyGiven(
                                               copy_id=copy.id, request_id=request_id, method=method, basis=basis,
                                               documents=len(copy.document_ids), redacted=redacted,
                                               bundle_sha256=bundle_sha256))
                             for c in copy.child_ids]
                   + [AccessEvent(actor=self.p.actor, action="disclose", child_id=c,
                                  purpose=f"copy given ({METHODS[method].lower()})",
                                  parameters={"copy_id": copy.id, "request_id": request_id, "basis": basis})
                      for c in copy.child_ids])
        return _copy_dict(copy)

    def record_copy_of_document(self, doc_id: str, *, recipient: str, method: str, basis: str,
                                given_on: date | None = None, note: str = "") -> dict[str, Any]:
        """A copy of one document given outside a request (to a parent at a meeting, to a court):
        recorded by someone who may open it."""
        require_change(self.p)
        with self.db.session() as session:
            doc = session.get(Document, doc_id)
            if doc is None:
                raise NotFound(f"no document {doc_id}")
            access.document_grant(session, self.p, doc, content=True)
            if doc.state != DocumentState.VERIFIED:
                raise InvalidState(f"document {doc_id} is not verified; only verified documents are given out",
                                   code="invalid_state")
            return self._copy(session, child_ids=[c.child_id for c in doc.children], document_ids=[doc.id],
                              recipient=recipient, method=method, basis=basis, redacted=False, bundle_sha256=None,
                              note=note, given_on=given_on, request_id=None)

    def copies_for_child(self, child_id: str) -> list[dict[str, Any]]:
        """The disclosure log of one child's record, for anyone who may see the record."""
        with self.db.session() as session:
            _, grant = access.child_grant(session, self.p, child_id)
            rows = session.scalars(select(CopyGiven).join(CopyGivenChild, CopyGivenChild.copy_id == CopyGiven.id)
                                   .where(CopyGivenChild.child_id == child_id).order_by(CopyGiven.id.desc())).all()
            retrieval.log_child_access(session, child_id, actor=self.p.actor, action="list", use=grant.use,
                                       parameters={"object": "copies_given"})
            return [_copy_dict(c) for c in rows]

    # --- provenance ----------------------------------------------------------------------------

    def certificate(self, request_id: int) -> dict[str, Any]:
        """What was disclosed, redacted by whom, reviewed by whom, with the hashes: the request's events."""
        with self.db.session() as session:
            row = self._request(session, request_id)
            out = self._summary(session, row)
            docs = self._documents(session, row)
            out["documents"] = [{"id": d.id, "doc_type": d.doc_type, "doc_date": d.doc_date, "pages": d.page_count,
                                 "searchable_sha256": d.searchable_sha256} for d in docs]
            reds = session.scalars(select(Redaction).where(Redaction.request_id == row.id,
                                                           Redaction.status == "accepted")).all()
            out["redacted_by"] = sorted({r.decided_by or r.created_by for r in reds})
            out["redactions"] = len(reds)
            events = session.scalars(select(Event).where(Event.kind.in_([str(k) for k in DISCLOSURE_KINDS]))
                                     .order_by(Event.id)).all()
            out["events"] = [{"id": e.id, "at": e.at, "kind": e.kind, "actor": e.actor, "outcome": e.outcome,
                              "document_id": e.document_id, "hash": e.hash} for e in events
                             if _request_of(e) == row.id]
            out["copies"] = [_copy_dict(c) for c in session.scalars(
                select(CopyGiven).where(CopyGiven.request_id == row.id).order_by(CopyGiven.id))]
            return out


def _request_of(event: Event) -> int | None:
    """The request a logged disclosure step names, read through its kind's model (None for a row
    altered past reading: the fixity check reports it)."""
    try:
        if event.kind == Kind.COPY_GIVEN:
            copy = payloads.read(payloads.CopyGiven, event.detail.get("parameters"))
            return copy.request_id if copy else None
        step = payloads.read(payloads.DisclosureStep, event.detail.get("parameters"))
    except payloads.PayloadMismatch:
        return None
    return step.request_id if step else None


@dataclass
class _Plan:
    summary: dict[str, Any]
    children: dict[str, str]
    docs: list[Document]
    redactions: dict[str, list[dict[str, Any]]]
    schedule: list[dict[str, Any]]
    doc_types: dict[str, str]


def _withheld(plan: _Plan, doc_id: str) -> bool:
    return any(r["scope"] == "document" for r in plan.redactions.get(doc_id, []))


def schedule_rows(reds: Sequence[dict[str, Any]], starts: dict[str, int]) -> Iterator[dict[str, Any]]:
    """The schedule: one row per page (or withheld document) and reason, with how many redactions."""
    counts: dict[tuple[str, int | None, str, str], int] = defaultdict(int)
    labels_of: dict[str, str] = {}
    for r in reds:
        key = (r["document_id"], r["page"], r["scope"] if r["scope"] == "document" else "page_or_area", r["reason"])
        counts[key] += 1
        labels_of[r["reason"]] = r["reason_label"]
    for (doc_id, page, scope, code), count in sorted(counts.items(), key=lambda kv: (starts.get(kv[0][0], 0),
                                                                                        kv[0][1] or 0, kv[0][3])):
        bundle_page = None if page is None else starts.get(doc_id, 0) + page - 1
        yield {"bundle_page": bundle_page, "document_id": doc_id, "document_page": page,
               "scope": "document" if scope == "document" else "page", "code": code,
               "reason": labels_of[code], "count": count}


def _known_boxes(session: Session, request_id: int, doc_id: str) -> set[Any]:
    rows = session.execute(select(Redaction.page, Redaction.x0, Redaction.y0, Redaction.x1, Redaction.y1,
                                  Redaction.scope).where(Redaction.request_id == request_id,
                                                         Redaction.document_id == doc_id)).all()
    out: set[Any] = set()
    for page, x0, y0, x1, y1, scope in rows:
        out.add((None, None) if scope == "document" else (page, (x0, y0, x1, y1)))
    return out


def _redaction_dict(r: Redaction, exemptions: dict[str, str]) -> dict[str, Any]:
    return {"id": r.id, "document_id": r.document_id, "page": r.page, "scope": r.scope,
            "scope_label": SCOPES.get(r.scope, r.scope),
            "box": [r.x0, r.y0, r.x1, r.y1] if r.scope == "area" else None, "reason": r.reason,
            "reason_label": exemptions.get(r.reason) or labels.words(r.reason), "status": r.status, "source": r.source,
            "source_label": SOURCES.get(r.source, r.source), "why": r.why, "confidence": r.confidence,
            "created_by": r.created_by, "decided_by": r.decided_by}


def _copy_dict(c: CopyGiven) -> dict[str, Any]:
    return {"id": c.id, "request_id": c.request_id, "request_ref": ref(c.request_id) if c.request_id else None,
            "children": list(c.child_ids), "documents": list(c.document_ids), "recipient": c.recipient,
            "method": c.method, "method_label": METHODS.get(c.method, c.method), "basis": c.basis,
            "basis_label": BASES.get(c.basis, c.basis), "redacted": c.redacted, "bundle_sha256": c.bundle_sha256,
            "note": c.note, "given_on": c.given_on, "given_by": c.given_by, "recorded_at": c.recorded_at}


def private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def as_iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
