"""Correcting a verified document: one person asks, with a reason; a second person approves.

A verified document misfiled to the wrong child, or with the wrong type or date, is put right
without rewriting anything: the links that end go to the link history, the stored objects are
untouched, every step is a protocol event, and access through an old link ends the moment the
correction is approved. A misfiling record lists everyone who opened the document while it was
filed to the wrong child (from the access log), so the council can assess a data breach.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from escr.app import access
from escr.app.access import AccessDenied, Can, Principal, Role, require
from escr.app.verification import (
    MIN_REASON_CHARS,
    claim,
    identity_check,
    load_document,
    relink,
    third_party_for,
)
from escr.clock import iso
from escr.errors import InvalidState, NotFound, ProtocolViolation, ValidationFailed
from escr.indexing.tagging import DocType
from escr.record import payloads
from escr.record.events import Kind, ProtocolEvent, now, record
from escr.record.models import Child, CorrectionRequest, Document, DocumentChild, Event, Tag
from escr.record.states import DocumentState

PENDING, APPROVED, REFUSED = "pending", "approved", "refused"
OPENING_ACTIONS = ("view", "download")  # what counts as having opened the document


def _reason(text: str | None, what: str) -> str:
    text = (text or "").strip()
    if len(text) < MIN_REASON_CHARS:
        raise ValidationFailed(f"{what} must be stated in at least {MIN_REASON_CHARS} characters", code="reason_required")
    return text[:2000]



def _state_of(doc: Document) -> dict[str, Any]:
    return {"children": sorted(c.child_id for c in doc.children), "doc_type": doc.doc_type,
            "doc_date": iso(doc.doc_date), "third_party": doc.third_party}


def request_dict(row: CorrectionRequest) -> dict[str, Any]:
    return {"id": row.id, "document_id": row.document_id, "status": row.status, "reason": row.reason,
            "changes": row.changes, "requested_by": row.requested_by, "requested_at": iso(row.requested_at),
            "decided_by": row.decided_by, "decided_at": iso(row.decided_at), "decision_note": row.decision_note,
            "misfiling": row.misfiling}


def request_correction(
    session: Session, principal: Principal, doc_id: str, *, reason: str, types: Mapping[str, DocType],
    child_ids: Sequence[str] | None = None, doc_type: str | None = None, doc_date: date | None = None,
) -> CorrectionRequest:
    """Ask for a verified document to be moved to other children or given another type or date.

    Whoever asks must be able to open the document (they are saying what it is); nothing changes
    until a second person approves."""
    if not (principal.can(Can.VERIFY) or principal.can(Can.READ_RECORDS)):
        raise AccessDenied(f"the {principal.role} role may not ask for corrections", code="role_forbidden")
    doc = load_document(session, doc_id)
    access.document_grant(session, principal, doc, content=True)
    if doc.state != DocumentState.VERIFIED:
        raise InvalidState(f"document {doc.id} is {doc.state}: before verification it is re-indexed, not corrected")
    reason = _reason(reason, "the reason for the correction")
    pending = session.scalars(select(CorrectionRequest).where(CorrectionRequest.document_id == doc.id,
                                                              CorrectionRequest.status == PENDING)).first()
    if pending is not None:
        raise InvalidState(f"correction {pending.id} of document {doc.id} is already waiting for approval",
                           code="already_exists")
    changes: dict[str, Any] = {}
    if child_ids is not None:
        wanted = list(dict.fromkeys(c.strip() for c in child_ids if c and c.strip()))
        if not wanted or any(len(c) > 64 for c in wanted):
            raise ValidationFailed("give the ids of the children the document belongs to")
        # Only those who may browse the whole index are told here that an id is not in it; for
        # anyone else that would say which ids exist, so the approver is told instead.
        missing = [c for c in wanted if session.get(Child, c) is None]
        if missing and principal.role in (Role.BUSINESS_SUPPORT, Role.AUDITOR):
            raise NotFound(f"children not in the child index: {', '.join(missing)}")
        if sorted(wanted) != sorted(c.child_id for c in doc.children):
            changes["children"] = wanted
    if doc_type is not None and doc_type != doc.doc_type:
        if doc_type not in types:
            raise ValidationFailed(f"unknown document type {doc_type}")
        changes["doc_type"] = doc_type
    if doc_date is not None and doc_date != doc.doc_date:
        changes["doc_date"] = doc_date.isoformat()
    if not changes:
        raise ValidationFailed("the correction changes nothing: give other children, another type or another date")
    changes["before"] = _state_of(doc)
    row = CorrectionRequest(document_id=doc.id, status=PENDING, reason=reason, changes=changes,
                            requested_by=principal.username, requested_at=now(), misfiling=[])
    session.add(row)
    session.flush()
    record(session, ProtocolEvent(kind=Kind.CORRECTION_REQUESTED, actor=principal.actor, batch_id=doc.batch_id,
                                  document_id=doc.id, outcome=PENDING,
                                  parameters=payloads.CorrectionRequested(
                                      correction_id=row.id, reason=reason,
                                      changes=payloads.CorrectionChanges(
                                          **{k: v for k, v in changes.items() if k != "before"}),
                                      before=payloads.DocumentFacts(**changes["before"]))))
    return row


def _pending(session: Session, principal: Principal, request_id: int) -> tuple[CorrectionRequest, Document]:
    require(principal, Can.VERIFY)
    row = session.get(CorrectionRequest, request_id)
    if row is None:
        raise NotFound(f"no correction {request_id}")
    if row.status != PENDING:
        raise InvalidState(f"correction {request_id} was already {row.status}", code="already_reviewed")
    if _asked_by(row, principal):
        raise ProtocolViolation(f"{principal.username} asked for correction {request_id} and cannot approve or "
                                "refuse it (four-eyes rule)")
    doc = load_document(session, row.document_id)
    access.verify_grant(session, principal, doc)  # a second person who may open it
    return row, doc


def misfiling_record(session: Session, doc: Document, links: Sequence[DocumentChild]) -> list[dict[str, Any]]:
    """Everyone who opened the document while it was filed to each of `links` (the wrong children)."""
    found = []
    for link in links:
        since = link.linked_at
        rows = session.scalars(select(Event).where(
            Event.category == "access", Event.document_id == doc.id, Event.at >= since,
            Event.outcome != "denied").order_by(Event.id)).all()
        people: dict[str, dict[str, Any]] = {}
        seen: set[tuple[str, str, str]] = set()
        for e in rows:
            action = (e.detail or {}).get("action")
            key = (e.actor, iso(e.at) or "", str(action))
            if action not in OPENING_ACTIONS or key in seen:  # one read logs a row per linked child
                continue
            seen.add(key)
            entry = people.setdefault(e.actor, {"actor": e.actor, "first": iso(e.at), "last": iso(e.at),
                                                "opened": 0, "break_glass": False})
            entry["last"], entry["opened"] = iso(e.at), entry["opened"] + 1
            entry["break_glass"] = entry["break_glass"] or e.outcome == "break_glass"
        found.append({"child_id": link.child_id, "linked_at": iso(since), "linked_by": link.linked_by,
                      "people": sorted(people.values(), key=lambda p: p["first"])})
    return found


def approve_correction(
    session: Session, principal: Principal, request_id: int, *, note: str = "", types: Mapping[str, DocType],
    on_retention_change: Callable[[Session, list[str]], object] | None = None,
) -> CorrectionRequest:
    """A second person approves: the document moves, the old links go to the history (and stop
    giving access at once), the misfiling record is written; objects are never rewritten."""
    row, doc = _pending(session, principal, request_id)
    claim(session, doc)
    stamp = now()
    before = _state_of(doc)
    changes = row.changes
    removed: list[str] = []
    added: list[str] = []
    if "children" in changes:
        wanted = list(changes["children"])
        missing = [c for c in wanted if session.get(Child, c) is None]
        if missing:
            raise InvalidState(f"children not in the child index: {', '.join(missing)}; refuse this correction "
                               "and say so, or ask for the child to be added to the index first")
        gone = [link for link in doc.children if link.child_id not in wanted]
        row.misfiling = misfiling_record(session, doc, gone)
        removed, added = relink(session, doc, wanted, user=principal.username, reason="corrected", stamp=stamp)
        doc.tags.extend(Tag(name="child_id", value=c, source=f"person:{principal.username}", confidence=1.0,
                            detail=f"correction {row.id}", created_at=stamp) for c in wanted)
    if "doc_type" in changes:
        doc.doc_type = changes["doc_type"]
        doc.tags.append(Tag(name="doc_type", value=doc.doc_type, source=f"person:{principal.username}",
                            confidence=1.0, detail=f"correction {row.id}", created_at=stamp))
        flag = third_party_for(doc, doc.doc_type, types)
        if flag is not None:
            doc.third_party = flag
    if "doc_date" in changes:
        doc.doc_date = date.fromisoformat(changes["doc_date"])
        doc.tags.append(Tag(name="doc_date", value=changes["doc_date"], source=f"person:{principal.username}",
                            confidence=1.0, detail=f"correction {row.id}", created_at=stamp))
    identity = identity_check(session, doc) if removed or added else None
    doc.updated_at = stamp
    row.status, row.decided_by, row.decided_at = APPROVED, principal.username, stamp
    row.decision_note = (note or "").strip()[:2000] or None
    record(session, ProtocolEvent(kind=Kind.CORRECTION_APPROVED, actor=principal.actor, batch_id=doc.batch_id,
                                  document_id=doc.id, outcome=APPROVED,
                                  parameters=payloads.CorrectionApproved(
                                      correction_id=row.id, requested_by=row.requested_by, reason=row.reason,
                                      before=payloads.DocumentFacts(**before),
                                      after=payloads.DocumentFacts(**_state_of(doc)), removed=removed, added=added,
                                      identity_qc=identity.status if identity else None)))
    for entry in row.misfiling:
        record(session, ProtocolEvent(kind=Kind.MISFILING_RECORDED, actor=principal.actor, batch_id=doc.batch_id,
                                      document_id=doc.id, child_id=entry["child_id"], outcome="recorded",
                                      parameters=payloads.MisfilingRecorded(
                                          correction_id=row.id, opened_by=[p["actor"] for p in entry["people"]])))
    if on_retention_change is not None:
        session.flush()
        on_retention_change(session, sorted({*before["children"], *(c.child_id for c in doc.children)}))
    return row


def refuse_correction(session: Session, principal: Principal, request_id: int, *, note: str) -> CorrectionRequest:
    row, doc = _pending(session, principal, request_id)
    note = _reason(note, "the reason for refusing")
    row.status, row.decided_by, row.decided_at, row.decision_note = REFUSED, principal.username, now(), note
    record(session, ProtocolEvent(kind=Kind.CORRECTION_REFUSED, actor=principal.actor, batch_id=doc.batch_id,
                                  document_id=doc.id, outcome=REFUSED,
                                  parameters=payloads.CorrectionRefused(correction_id=row.id, note=note)))
    return row


def corrections_of(session: Session, principal: Principal, doc_id: str) -> list[dict[str, Any]]:
    """A document's correction requests, for whoever may see its metadata; `may_decide` says
    whether this person may approve or refuse one (a second person who may open every page)."""
    doc = load_document(session, doc_id)
    access.document_grant(session, principal, doc, content=False)
    rows = session.scalars(select(CorrectionRequest).where(CorrectionRequest.document_id == doc.id)
                           .order_by(CorrectionRequest.id)).all()
    seeing = False
    if principal.can(Can.VERIFY) and any(r.status == PENDING for r in rows):
        try:
            access.verify_grant(session, principal, doc)
            seeing = True
        except AccessDenied:
            pass
    return [{**request_dict(r), "asked_by_you": _asked_by(r, principal),
             "may_decide": seeing and r.status == PENDING and not _asked_by(r, principal)} for r in rows]


def _asked_by(row: CorrectionRequest, principal: Principal) -> bool:
    return row.requested_by.strip().casefold() == principal.username.strip().casefold()


def waiting_for(session: Session, principal: Principal) -> list[dict[str, Any]]:
    """Corrections waiting for a second person that this person may approve or refuse: asked by
    someone else, about a document whose every page they may open (so none is offered unseen)."""
    require(principal, Can.VERIFY)
    rows = session.scalars(select(CorrectionRequest).where(CorrectionRequest.status == PENDING)
                           .order_by(CorrectionRequest.requested_at, CorrectionRequest.id)).all()
    found = []
    for row in rows:
        if _asked_by(row, principal):
            continue
        try:
            access.verify_grant(session, principal, load_document(session, row.document_id))
        except AccessDenied:
            continue
        found.append(request_dict(row))
    return found
