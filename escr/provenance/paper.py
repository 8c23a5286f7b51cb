"""The paper original after scanning: custody moves, the quality-assurance hold, and disposition.

Paper may be destroyed only after its scan is verified and a quality-assurance hold has passed
(28 days by default, DOMAIN.md step 9), and never when its document type is on the
keep-the-original list (`keep_original` in config/doctypes.yaml, plus
`provenance.keep_original_types`). Destruction (who, when, method, certificate) and return are
recorded once per document, each with a protocol event. Batches of paper are tracked as they
move: each move names sender, recipient and date, and stays "unconfirmed" until someone other
than the sender confirms arrival (seed 001, sections 22-23); a move out of a place the paper has
not been confirmed to have reached is refused, so the chain of custody has no holes. A child's
paper volumes and originals move the same way, their volume id as the reference, through
`escr.app.paper` (a named manager's authority and a due-back date required).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from escr.errors import InvalidState, NotFound, ProtocolViolation
from escr.indexing.tagging import DocTypeCatalogue
from escr.record import payloads
from escr.record.events import Actor, Kind, ProtocolEvent, now, record
from escr.record.models import CoverSheetPrint, Document, ManifestMissing, Page, PaperDisposition, PaperMove
from escr.record.states import DocumentState
from escr.settings import ProvenanceSettings

PURPOSES = ("to_scanning", "to_archive", "removal", "return", "other")  # removal: a volume booked out
PAPER_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

IN_QA_HOLD, DUE, KEEP, DESTROYED, RETURNED, NOT_VERIFIED, LEGAL_HOLD = (
    "in_qa_hold", "due", "keep_original", "destroyed", "returned", "not_verified", "legal_hold")


@dataclass(frozen=True)
class PaperStatus:
    """Where one document's paper stands, and from when it may be destroyed."""

    document_id: str
    scan_id: str
    cover_batch_id: str | None
    doc_type: str | None
    children: tuple[str, ...]
    verified_at: datetime | None
    status: str
    eligible_from: date | None  # the first day it may be destroyed (None: never, or not yet known)
    reason: str
    location: str | None = None  # recipient of the newest move of its paper batch

    def as_dict(self) -> dict[str, Any]:
        return {"document_id": self.document_id, "scan_id": self.scan_id, "cover_batch_id": self.cover_batch_id,
                "doc_type": self.doc_type, "children": list(self.children),
                "verified_at": self.verified_at.isoformat() if self.verified_at else None, "status": self.status,
                "eligible_from": self.eligible_from.isoformat() if self.eligible_from else None,
                "reason": self.reason, "location": self.location}


def keep_original_types(catalogue: DocTypeCatalogue, settings: ProvenanceSettings) -> frozenset[str]:
    return frozenset({code for code, t in catalogue.types.items() if t.keep_original} | set(settings.keep_original_types))


def eligible_from(verified_at: datetime, hold_days: int) -> date:
    """Verified on day 0: held on days 0 to hold_days - 1, destroyable from day `hold_days`."""
    when = verified_at if verified_at.tzinfo else verified_at.replace(tzinfo=UTC)
    return when.astimezone(UTC).date() + timedelta(days=hold_days)


def paper_status(doc: Document, *, keep: frozenset[str], settings: ProvenanceSettings, today: date,
                 disposition: PaperDisposition | None = None, location: str | None = None) -> PaperStatus:
    children = tuple(sorted(c.child_id for c in doc.children))
    verified_at = None if doc.verified_at is None else (doc.verified_at if doc.verified_at.tzinfo
                                                        else doc.verified_at.replace(tzinfo=UTC))

    def status(code: str, reason: str, eligible: date | None = None) -> PaperStatus:
        return PaperStatus(doc.id, doc.batch_id, doc.coversheet_batch_id, doc.doc_type, children, verified_at,
                           code, eligible, reason, location)

    if disposition is not None:
        code = DESTROYED if disposition.action == "destroyed" else RETURNED
        return status(code, f"{disposition.action} on {disposition.at.isoformat()} by {disposition.by}")
    if doc.legal_hold:  # blocks the paper's destruction as it blocks the objects' deletion
        return status(LEGAL_HOLD, "under a legal hold: the paper is kept until the hold is released")
    if doc.state != DocumentState.VERIFIED or verified_at is None:
        return status(NOT_VERIFIED, f"the scan is {doc.state}; paper is kept until it is verified")
    if doc.doc_type is None or doc.doc_type in keep:
        why = "type not known" if doc.doc_type is None else f"{doc.doc_type} originals are kept"
        return status(KEEP, f"keep the original: {why}")
    eligible = eligible_from(verified_at, settings.qa_hold_days)
    if today < eligible:
        return status(IN_QA_HOLD, f"quality-assurance hold until {(eligible - timedelta(days=1)).isoformat()}", eligible)
    return status(DUE, f"hold of {settings.qa_hold_days} days over since {eligible.isoformat()}", eligible)


def _location(session: Session, doc: Document) -> str | None:
    refs = [r for r in (doc.coversheet_batch_id, doc.batch_id) if r]
    move = session.scalars(select(PaperMove).where(PaperMove.paper_ref.in_(refs))
                           .order_by(PaperMove.moved_at.desc(), PaperMove.id.desc()).limit(1)).first()
    if move is None:
        return None
    return move.recipient + ("" if move.confirmed_at else " (arrival not confirmed)")


def statuses(session: Session, *, catalogue: DocTypeCatalogue, settings: ProvenanceSettings, today: date,
             chunk: int = 500) -> Iterator[PaperStatus]:
    """Every verified document's paper, oldest verification first, streamed."""
    keep = keep_original_types(catalogue, settings)
    stmt = (select(Document, PaperDisposition).outerjoin(PaperDisposition, PaperDisposition.document_id == Document.id)
            .where(Document.state == DocumentState.VERIFIED).order_by(Document.verified_at, Document.id)
            .execution_options(yield_per=chunk))
    for doc, disposition in session.execute(stmt):
        yield paper_status(doc, keep=keep, settings=settings, today=today, disposition=disposition,
                           location=_location(session, doc))


def due(session: Session, *, catalogue: DocTypeCatalogue, settings: ProvenanceSettings, today: date) -> list[PaperStatus]:
    return [s for s in statuses(session, catalogue=catalogue, settings=settings, today=today) if s.status == DUE]


def status_of(session: Session, doc_id: str, *, catalogue: DocTypeCatalogue, settings: ProvenanceSettings,
              today: date) -> PaperStatus:
    doc = _document(session, doc_id)
    return paper_status(doc, keep=keep_original_types(catalogue, settings), settings=settings, today=today,
                        disposition=session.get(PaperDisposition, doc.id), location=_location(session, doc))


def _document(session: Session, doc_id: str) -> Document:
    doc = session.get(Document, doc_id)
    if doc is None:
        raise NotFound(f"no document {doc_id}")
    return doc


def _required(**values: str | None) -> None:
    empty = [name for name, value in values.items() if not (value and value.strip())]
    if empty:
        raise InvalidState(f"required: {', '.join(empty)}")


def manifest(session: Session, cover_batch_id: str) -> dict[str, Any]:
    """Declared against found for one cover-sheet batch (DOMAIN protocol step 6): the register's
    sheet and its declared pages, the documents filed under it and their pages, and the items a
    person listed as missing. Reconciled when something was found and every declared page is
    found, or the shortfall is accounted for by items listed missing."""
    sheet = session.get(CoverSheetPrint, cover_batch_id)
    docs = session.scalars(select(Document).where(Document.coversheet_batch_id == cover_batch_id)
                           .order_by(Document.id)).all()
    found_pages = sum(d.page_count for d in docs)
    missing = session.scalars(select(ManifestMissing).where(ManifestMissing.cover_batch_id == cover_batch_id)
                              .order_by(ManifestMissing.id)).all()
    declared = sheet.declared_pages if sheet else None
    reconciled = bool(docs) and (declared is None or found_pages >= declared or bool(missing))
    problem = None
    if sheet is None:
        problem = "not in the cover-sheet register"
    elif not docs:
        problem = "nothing scanned under this cover sheet"
    elif not reconciled:
        problem = f"{declared} pages declared, {found_pages} found and none listed missing"
    return {"cover_batch_id": cover_batch_id, "registered": sheet is not None,
            "declared": {"documents": 1 if sheet else None, "pages": declared,
                         "children": list(sheet.child_ids) if sheet else [], "doc_type": sheet.doc_type if sheet else None},
            "found": {"documents": len(docs), "pages": found_pages, "document_ids": [d.id for d in docs],
                      "pages_read": session.scalar(select(func.count()).select_from(Page)
                                                   .where(Page.document_id.in_([d.id for d in docs])))},
            "missing": [{"description": m.description, "pages": m.pages, "listed_by": m.listed_by,
                         "listed_at": m.listed_at.isoformat()} for m in missing],
            "reconciled": reconciled and sheet is not None, "problem": problem}


def _manifest_problem(session: Session, doc: Document) -> str | None:
    """Paper of a registered cover-sheet batch may be destroyed only once its manifest is reconciled."""
    if not doc.coversheet_batch_id or session.get(CoverSheetPrint, doc.coversheet_batch_id) is None:
        return None  # sheets printed before the register existed are not held back
    result = manifest(session, doc.coversheet_batch_id)
    return None if result["reconciled"] else f"batch manifest of {doc.coversheet_batch_id}: {result['problem']}"


def _dispose(session: Session, doc_ids: Sequence[str], *, action: str, allowed: Iterable[str], on: date,
             today: date, catalogue: DocTypeCatalogue, settings: ProvenanceSettings, by: str,
             recorded_by: str, method: str | None = None, certificate_ref: str | None = None,
             returned_to: str | None = None) -> list[PaperDisposition]:
    """All or nothing: one document that may not be disposed of stops the whole record."""
    if not doc_ids:
        raise InvalidState("name at least one document")
    if on > today:
        raise InvalidState(f"the {action} date {on.isoformat()} is in the future")
    keep = keep_original_types(catalogue, settings)
    problems, docs = [], []
    for doc_id in dict.fromkeys(doc_ids):
        doc = _document(session, doc_id)
        state = paper_status(doc, keep=keep, settings=settings, today=on, disposition=session.get(PaperDisposition, doc.id))
        if state.status not in allowed:
            problems.append(f"{doc_id}: {state.status.replace('_', ' ')} ({state.reason})")
        elif action == "destroyed" and (problem := _manifest_problem(session, doc)):
            problems.append(f"{doc_id}: {problem}")
        docs.append(doc)
    if problems:
        raise InvalidState(f"paper cannot be {action}: " + "; ".join(problems))
    stamp, rows = now(), []
    for doc in docs:
        row = PaperDisposition(document_id=doc.id, action=action, at=on, by=by, method=method,
                               certificate_ref=certificate_ref, returned_to=returned_to, recorded_by=recorded_by,
                               recorded_at=stamp)
        session.add(row)
        rows.append(row)
        record(session, ProtocolEvent(
            kind=Kind.PAPER_DESTROYED if action == "destroyed" else Kind.PAPER_RETURNED,
            actor=Actor(kind="user", name=recorded_by), batch_id=doc.batch_id, document_id=doc.id, outcome=action,
            parameters=payloads.PaperDisposed(on=on.isoformat(), by=by, method=method, certificate_ref=certificate_ref,
                                              returned_to=returned_to, doc_type=doc.doc_type)))
    session.flush()
    return rows


def destroy(session: Session, doc_ids: Sequence[str], *, by: str, method: str, certificate_ref: str,
            recorded_by: str, catalogue: DocTypeCatalogue, settings: ProvenanceSettings, today: date,
            on: date | None = None) -> list[PaperDisposition]:
    """Record that the paper of these documents was destroyed (after the hold; never keep-originals)."""
    _required(by=by, method=method, certificate_ref=certificate_ref)
    return _dispose(session, doc_ids, action="destroyed", allowed=[DUE], on=on or today, today=today,
                    catalogue=catalogue, settings=settings, by=by, recorded_by=recorded_by, method=method,
                    certificate_ref=certificate_ref)


def return_paper(session: Session, doc_ids: Sequence[str], *, returned_to: str, by: str, recorded_by: str,
                 catalogue: DocTypeCatalogue, settings: ProvenanceSettings, today: date,
                 on: date | None = None) -> list[PaperDisposition]:
    """Record that the paper was given back (to its sender or owner) after the hold; keep-originals may be."""
    _required(by=by, returned_to=returned_to)
    return _dispose(session, doc_ids, action="returned", allowed=[DUE, KEEP], on=on or today, today=today,
                    catalogue=catalogue, settings=settings, by=by, recorded_by=recorded_by,
                    returned_to=returned_to)


# --- custody of paper batches ------------------------------------------------------------------


def _same(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


def custody(session: Session, paper_ref: str) -> list[PaperMove]:
    return list(session.scalars(select(PaperMove).where(PaperMove.paper_ref == paper_ref)
                                .order_by(PaperMove.moved_at, PaperMove.id)))


def move(session: Session, paper_ref: str, *, sender: str, recipient: str, purpose: str, recorded_by: str,
         moved_at: datetime | None = None, authorised_by: str | None = None, due_back: date | None = None) -> PaperMove:
    """Book a batch of paper out from `sender` to `recipient`; it stays unconfirmed until arrival is confirmed."""
    if not PAPER_REF.match(paper_ref or ""):
        raise InvalidState("a paper batch reference is a cover-sheet batch id or scan id (letters, digits, . _ -)")
    if purpose not in PURPOSES:
        raise InvalidState(f"purpose must be one of {', '.join(PURPOSES)}")
    _required(sender=sender, recipient=recipient)
    if _same(sender, recipient):
        raise InvalidState("sender and recipient are the same")
    stamp = moved_at or now()
    history = custody(session, paper_ref)
    if history:
        last = history[-1]
        if last.confirmed_at is None:
            raise InvalidState(f"move {last.id} of {paper_ref} to {last.recipient} is not yet confirmed as arrived")
        if not _same(last.recipient, sender):
            raise InvalidState(f"{paper_ref} was last received by {last.recipient}, not {sender}")
        if stamp < _aware(last.confirmed_at):
            raise InvalidState(f"{paper_ref} arrived with {last.recipient} only at {_aware(last.confirmed_at).isoformat()}")
    row = PaperMove(paper_ref=paper_ref, purpose=purpose, sender=sender.strip(), recipient=recipient.strip(),
                    authorised_by=authorised_by, due_back=due_back, moved_at=stamp, recorded_by=recorded_by)
    session.add(row)
    session.flush()
    record(session, ProtocolEvent(kind=Kind.PAPER_MOVED, actor=Actor(kind="user", name=recorded_by), at=stamp,
                                  parameters=payloads.PaperMoved(
                                      move_id=row.id, paper_ref=paper_ref, purpose=purpose, sender=row.sender,
                                      recipient=row.recipient, authorised_by=authorised_by,
                                      due_back=due_back.isoformat() if due_back else None)))
    return row


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def confirm(session: Session, move_id: int, *, by: str, at: datetime | None = None) -> PaperMove:
    """The recipient's side confirms arrival; the sender cannot confirm their own delivery."""
    row = session.get(PaperMove, move_id)
    if row is None:
        raise NotFound(f"no paper move {move_id}")
    if row.confirmed_at is not None:
        raise InvalidState(f"move {move_id} was already confirmed by {row.confirmed_by}")
    _required(by=by)
    if _same(by, row.sender):
        raise ProtocolViolation(f"{by} sent move {move_id} and cannot confirm its arrival")
    stamp = at or now()
    if stamp < _aware(row.moved_at):
        raise InvalidState(f"arrival cannot be before the move ({_aware(row.moved_at).isoformat()})")
    row.confirmed_by, row.confirmed_at = by.strip(), stamp
    record(session, ProtocolEvent(kind=Kind.PAPER_ARRIVED, actor=Actor(kind="user", name=by), at=stamp,
                                  parameters=payloads.PaperArrived(move_id=row.id, paper_ref=row.paper_ref,
                                                                   recipient=row.recipient)))
    return row


@dataclass(frozen=True)
class OpenMove:
    move: PaperMove
    problem: str  # unconfirmed | overdue_return
    days: int

    def as_dict(self) -> dict[str, Any]:
        m = self.move
        return {"move_id": m.id, "paper_ref": m.paper_ref, "purpose": m.purpose, "sender": m.sender,
                "recipient": m.recipient, "moved_at": _aware(m.moved_at).isoformat(),
                "due_back": m.due_back.isoformat() if m.due_back else None, "problem": self.problem,
                "days": self.days}


def open_moves(session: Session, *, at: datetime | None = None) -> list[OpenMove]:
    """Moves not confirmed as arrived, and removals past their agreed return date (seed 001, 22)."""
    stamp = at or now()
    found: list[OpenMove] = []
    for row in session.scalars(select(PaperMove).where(PaperMove.confirmed_at.is_(None))
                               .order_by(PaperMove.moved_at, PaperMove.id)):
        found.append(OpenMove(row, "unconfirmed", (stamp - _aware(row.moved_at)).days))
    overdue = select(PaperMove).where(PaperMove.due_back.is_not(None), PaperMove.due_back < stamp.date(),
                                      PaperMove.confirmed_at.is_not(None)).order_by(PaperMove.due_back)
    for row in session.scalars(overdue):
        later = custody(session, row.paper_ref)
        if later and later[-1].id == row.id:  # still with the recipient
            found.append(OpenMove(row, "overdue_return", (stamp.date() - row.due_back).days))
    return found
