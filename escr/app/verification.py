"""Indexing and verification by people, under the four-eyes rule.

The protocol's final QC is by someone other than the scanner or the indexer; the checks here
are the only way a document's state moves after intake, and each move is a protocol event.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

from sqlalchemy.orm import Session

from escr.errors import InvalidState, NotFound, ProtocolViolation
from escr.record import payloads
from escr.record.events import Actor, Kind, ProtocolEvent, now, record
from escr.record.models import Child, Document, DocumentChild, Tag
from escr.record.states import ACCEPT_QC, INDEX, REJECT, VERIFY, DocumentState, next_state, require_state


def load_document(session: Session, doc_id: str) -> Document:
    doc = session.get(Document, doc_id)
    if doc is None:
        raise NotFound(f"no document {doc_id}")
    return doc


def _same_person(a: str | None, b: str | None) -> bool:
    return bool(a and b and a.strip().casefold() == b.strip().casefold())


def _require_other_person(doc: Document, user: str, action: str) -> None:
    if _same_person(user, doc.batch.operator):
        raise ProtocolViolation(f"{user} scanned document {doc.id} and cannot {action} it (four-eyes rule)")
    if _same_person(user, doc.indexed_by):
        raise ProtocolViolation(f"{user} indexed document {doc.id} and cannot {action} it (four-eyes rule)")


def _event(session: Session, kind: Kind, doc: Document, user: str, **fields: object) -> None:
    record(session, ProtocolEvent(kind=kind, actor=Actor(kind="user", name=user), batch_id=doc.batch_id,
                                  document_id=doc.id, **fields))  # type: ignore[arg-type]


def index_document(
    session: Session, doc_id: str, *, user: str, child_ids: Sequence[str], doc_type: str,
    known_types: Sequence[str], doc_date: date | None = None,
    on_retention_change: Callable[[Session, list[str]], object] | None = None,
) -> Document:
    """A person picks the child(ren) and type for a document the pipeline could not match.

    The children picked decide how long the document is kept: `on_retention_change` gets their
    ids once the document is indexed (escr.record.retention_updates.retention_hook)."""
    doc = load_document(session, doc_id)
    require_state(doc.id, doc.state, INDEX)
    if doc_type not in known_types:
        raise InvalidState(f"unknown document type {doc_type}")
    missing = [c for c in child_ids if session.get(Child, c) is None]
    if missing or not child_ids:
        raise NotFound(f"children not in the child index: {', '.join(missing) or '(none given)'}")
    stamp = now()
    before = payloads.IndexFields(children=sorted(c.child_id for c in doc.children), doc_type=doc.doc_type,
                                  doc_date=doc.doc_date.isoformat() if doc.doc_date else None)
    doc.children = [DocumentChild(child_id=c, basis="person", linked_by=user, linked_at=stamp) for c in dict.fromkeys(child_ids)]
    doc.doc_type, doc.indexed_by, doc.updated_at = doc_type, user, stamp
    doc.tags.append(Tag(name="doc_type", value=doc_type, source=f"person:{user}", confidence=1.0, created_at=stamp))
    doc.tags.extend(Tag(name="child_id", value=c, source=f"person:{user}", confidence=1.0, created_at=stamp) for c in child_ids)
    if doc_date is not None:
        doc.doc_date = doc_date
        doc.tags.append(Tag(name="doc_date", value=doc_date.isoformat(), source=f"person:{user}", confidence=1.0, created_at=stamp))
    doc.state, doc.state_reasons = next_state(doc.id, doc.state, INDEX, DocumentState.AWAITING_VERIFICATION), []
    _event(session, Kind.INDEXED, doc, user, parameters=payloads.Indexed(before=before, after=payloads.IndexFields(
        children=sorted(child_ids), doc_type=doc_type, doc_date=doc.doc_date.isoformat() if doc.doc_date else None)))
    if on_retention_change is not None:
        session.flush()
        on_retention_change(session, list(dict.fromkeys(child_ids)))
    return doc


def accept_qc_failure(session: Session, doc_id: str, *, user: str, reason: str) -> Document:
    """A person judges a scan usable despite an automated QC failure (e.g. a faint original)."""
    doc = load_document(session, doc_id)
    require_state(doc.id, doc.state, ACCEPT_QC)
    _require_other_person(doc, user, "pass QC on")
    if not reason.strip():
        raise InvalidState("a reason is required to accept a QC failure")
    ready = bool(doc.children and doc.doc_type)
    doc.state = next_state(doc.id, doc.state, ACCEPT_QC, DocumentState.AWAITING_VERIFICATION if ready
                           else DocumentState.NEEDS_INDEXING)
    doc.state_reasons = [] if ready else ["pick the child(ren) and document type"]
    doc.updated_at = now()
    _event(session, Kind.QC_ACCEPTED, doc, user, parameters=payloads.QcAccepted(reason=reason, new_state=doc.state))
    return doc


def verify_document(session: Session, doc_id: str, *, user: str) -> Document:
    doc = load_document(session, doc_id)
    require_state(doc.id, doc.state, VERIFY)
    _require_other_person(doc, user, "verify")
    stamp = now()
    doc.state = next_state(doc.id, doc.state, VERIFY, DocumentState.VERIFIED)
    doc.verified_by, doc.verified_at, doc.updated_at = user, stamp, stamp
    _event(session, Kind.VERIFIED, doc, user, parameters=payloads.Verified(
        children=sorted(c.child_id for c in doc.children), doc_type=doc.doc_type))
    return doc


def reject_document(session: Session, doc_id: str, *, user: str, reason: str) -> Document:
    """The scan is not acceptable: the paper must be rescanned (the rejected scan is kept)."""
    doc = load_document(session, doc_id)
    require_state(doc.id, doc.state, REJECT)
    _require_other_person(doc, user, "reject")
    if not reason.strip():
        raise InvalidState("a reason is required to reject a document")
    doc.state = next_state(doc.id, doc.state, REJECT, DocumentState.REJECTED)
    doc.state_reasons, doc.updated_at = [reason], now()
    _event(session, Kind.REJECTED, doc, user, outcome=DocumentState.REJECTED, parameters=payloads.Rejected(reason=reason))
    return doc
