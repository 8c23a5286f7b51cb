"""Keeping the stored objects' protection in step with the record: retention dates and legal holds.

A document's retention date is the longest period of any child it is filed to (DOMAIN.md: when a
child's status changes, the longest applicable period wins); an unknown date means keep. When
the child index changes a child's category, date of birth or closure, the dates of that child's
documents are recomputed: a later date is applied to every object the document refers to, an
earlier one never is (a person would have to shorten a GOVERNANCE lock with an explicit bypass;
under COMPLIANCE nobody can), and both dates are logged as a protocol event.

An object is under a legal hold while a person holds any document that refers to it, or while no
retention date is known for one of them; an original scan is shared by every document split
from it, so it is kept as long as the longest of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from escr.clock import iso
from escr.errors import InvalidState, NotFound, ProtocolViolation
from escr.record import payloads
from escr.record.events import Actor, Kind, ProtocolEvent, record
from escr.record.models import Child, Document, DocumentChild
from escr.record.retention import RetentionSchedule
from escr.record.status import periods_of
from escr.storage.objectstore import ObjectStore, Retention, today_utc


@dataclass(frozen=True)
class Protection:
    """What one stored object should have: kept until `until` (None: keep) and/or held."""

    key: str
    until: date | None
    held: bool

    @property
    def legal_hold(self) -> bool:
        return self.held or self.until is None


@dataclass(frozen=True)
class RetentionChange:
    document_id: str
    old: date | None
    new: date | None  # what is applied
    schedule: date | None  # what the schedule says now
    applied: bool


def child_keep_until(schedule: RetentionSchedule, child: Child) -> date | None:
    """How long a child's records are kept: from the status history (every status the child has
    had, the longest period winning); a child with no history yet, by the index's category."""
    if child.statuses:
        return schedule.keep_until_history(periods_of(child), date_of_birth=child.date_of_birth,
                                           final_contact=child.final_contact)
    return schedule.keep_until(child.category, date_of_birth=child.date_of_birth, final_contact=child.final_contact)


def keep_until(schedule: RetentionSchedule, children: Iterable[Child | None]) -> date | None:
    """The longest period of any of the document's children; unknown (or no child) means keep."""
    return schedule.longest(child_keep_until(schedule, c) for c in children if c is not None)


def later(a: date | None, b: date | None) -> date | None:
    """The longer of two retention dates; None (keep) outlasts any date."""
    return None if a is None or b is None else max(a, b)


def protections(session: Session, documents: Sequence[Document]) -> list[Protection]:
    """Every object of `documents`, with what the record says about it (siblings included)."""
    batch_ids = {d.batch_id for d in documents}
    siblings = session.scalars(select(Document).where(Document.batch_id.in_(batch_ids))).all()
    wanted: dict[str, list[Document]] = {}
    for doc in siblings:
        wanted.setdefault(doc.batch.original_key, []).append(doc)
    for doc in documents:
        wanted.setdefault(doc.searchable_key, []).append(doc)
        wanted.setdefault(doc.manifest_key, []).append(doc)
    result = []
    for key, docs in wanted.items():
        until: date | None = docs[0].retention_until
        for doc in docs[1:]:
            until = later(until, doc.retention_until)
        result.append(Protection(key, until, any(d.legal_hold for d in docs)))
    return result


def apply(store: ObjectStore, wanted: Protection) -> dict[str, Any]:
    """Extend (never shorten) the object's retention and set its hold; returns before and after."""
    before = store.get_retention(wanted.key)
    until = wanted.until
    if until is not None and until > today_utc() and (before.until is None or before.until < until):
        store.extend_retention(wanted.key, until)
    if before.legal_hold != wanted.legal_hold:
        store.set_legal_hold(wanted.key, wanted.legal_hold)
    after = store.get_retention(wanted.key)
    return {"before": before.as_dict(), "after": after.as_dict()}


def sync_objects(session: Session, store: ObjectStore, documents: Sequence[Document]) -> dict[str, Any]:
    return {p.key: apply(store, p) for p in protections(session, documents)}


def recompute_retention(session: Session, store: ObjectStore, schedule: RetentionSchedule,
                        child_ids: Iterable[str], *, actor: Actor,
                        reason: str = "child index changed") -> list[RetentionChange]:
    """Recompute the dates of these children's documents; extend objects, never shorten, log both dates."""
    ids = sorted(set(child_ids))
    if not ids:
        return []
    linked = select(DocumentChild.document_id).where(DocumentChild.child_id.in_(ids))
    documents = session.scalars(select(Document).where(Document.id.in_(linked)).order_by(Document.id)).all()
    changes = []
    held_now: list[Document] = []
    for doc in documents:
        scheduled = keep_until(schedule, (session.get(Child, link.child_id) for link in doc.children))
        floor = _floor(doc.retention_until, _locked_until(store, doc))
        applied = None if scheduled is None else max(scheduled, floor) if floor else scheduled
        if applied == doc.retention_until and scheduled == applied:
            continue
        old, changed = doc.retention_until, applied != doc.retention_until
        doc.retention_until = applied
        changes.append(RetentionChange(doc.id, old, applied, scheduled, changed))
        if changed and applied is not None and applied <= today_utc() and not doc.legal_hold:
            # A date already past would leave the objects unprotected (no lock can be set in the
            # past): they stay held until a person reviews them (escr hold release, with a reason).
            doc.legal_hold = True
            held_now.append(doc)
    session.flush()
    changed_docs = [d for d in documents if any(c.document_id == d.id and c.applied for c in changes)]
    objects = sync_objects(session, store, changed_docs) if changed_docs else {}
    by_id = {d.id: d for d in documents}
    for change in changes:
        doc = by_id[change.document_id]
        keys = {doc.batch.original_key, doc.searchable_key, doc.manifest_key}
        record(session, ProtocolEvent(
            kind=Kind.RETENTION_CHANGED if change.applied else Kind.RETENTION_NOT_SHORTENED,
            actor=actor, batch_id=doc.batch_id, document_id=doc.id,
            outcome=("dated" if change.old is None else "extended") if change.applied else "not_shortened",
            parameters=payloads.RetentionChanged(
                old=iso(change.old), new=iso(change.new), schedule=iso(change.schedule), reason=reason,
                children=sorted(link.child_id for link in doc.children), lock_mode=getattr(store, "lock_mode", None),
                objects={k: v for k, v in objects.items() if k in keys})))
    for doc in held_now:
        keys = {doc.batch.original_key, doc.searchable_key, doc.manifest_key}
        record(session, ProtocolEvent(
            kind=Kind.LEGAL_HOLD_SET, actor=actor, batch_id=doc.batch_id, document_id=doc.id, outcome="held_for_review",
            parameters=payloads.LegalHold(reason=f"retention date {iso(doc.retention_until)} already passed "
                                                 f"({reason}); held until a person reviews it",
                                          objects={k: v for k, v in objects.items() if k in keys})))
    return changes


def retention_hook(store: ObjectStore, schedule: RetentionSchedule, actor: Actor, *,
                   reason: str = "child index import") -> Callable[[Session, list[str]], object]:
    """What a change to a document's children calls with the children concerned: `escr children
    import` (category, birth date or closure changed) and indexing by hand (children picked)."""
    return lambda session, child_ids: recompute_retention(session, store, schedule, child_ids, actor=actor,
                                                          reason=reason)


def set_legal_hold(session: Session, store: ObjectStore, document_id: str, *, on: bool, reason: str,
                   actor: Actor) -> dict[str, Any]:
    """A person's legal hold on a document's objects, set or released, with the reason logged."""
    if not reason.strip():
        raise ProtocolViolation("a legal hold is set or released only with a reason (--reason)")
    doc = session.get(Document, document_id)
    if doc is None:
        raise NotFound(f"document {document_id} not found")
    if doc.legal_hold == on:
        raise InvalidState(f"document {document_id} is {'already' if on else 'not'} under a legal hold")
    doc.legal_hold = on
    session.flush()
    objects = sync_objects(session, store, [doc])
    record(session, ProtocolEvent(
        kind=Kind.LEGAL_HOLD_SET if on else Kind.LEGAL_HOLD_RELEASED, actor=actor, batch_id=doc.batch_id,
        document_id=doc.id, parameters=payloads.LegalHold(reason=reason.strip(), objects=objects)))
    return {"document": doc.id, "legal_hold": on, "objects": objects}


def _locked_until(store: ObjectStore, doc: Document) -> date | None:
    """The date the document's reading copy is locked to now, if that lock still runs."""
    retention: Retention = store.get_retention(doc.searchable_key)
    return retention.until if retention.until and retention.until > today_utc() else None


def _floor(*dates: date | None) -> date | None:
    """No new date may fall before what is recorded or already locked (the longest period wins)."""
    known = [d for d in dates if d is not None]
    return max(known) if known else None

