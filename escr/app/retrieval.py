"""Reading the record: every listing, view, download, search and provenance look is logged.

Seed 003 requires a record of anyone who used a child's record for any reason, so each
function here writes its access event in the same transaction as the read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, BinaryIO

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, joinedload, selectinload

from escr.app.verification import load_document
from escr.clock import iso
from escr.errors import NotFound
from escr.record.database import Database, DocumentCondition
from escr.record.events import AccessEvent, Actor, record, record_all
from escr.record.models import Batch, Child, Document, DocumentChild, DocumentLinkHistory, Event, QcResult
from escr.record.states import OUT_OF_RECORD, DocumentState
from escr.storage.objectstore import ObjectStore


@dataclass(frozen=True)
class Use:
    """Why, and on what grounds, a person reads the record; written into every access event.

    `basis` names the need-to-know rule that let them in (team, allocated, intake, audit,
    audit_purpose, break_glass); a break-glass read has outcome "break_glass" so that it
    stands out in the access log and can be reviewed.
    """

    purpose: str | None = None
    basis: str | None = None
    break_glass_id: int | None = None


def _access(session: Session, actor: Actor, action: str, *, use: Use | None = None,
            parameters: dict[str, Any] | None = None, **fields: Any) -> None:
    record(session, _access_event(actor, action, use=use, parameters=parameters, **fields))


def _access_event(actor: Actor, action: str, *, use: Use | None = None,
                  parameters: dict[str, Any] | None = None, **fields: Any) -> AccessEvent:
    use = use or Use()
    params = dict(parameters or {})
    if use.basis:
        params["basis"] = use.basis
    if use.break_glass_id is not None:
        params["break_glass_id"] = use.break_glass_id
    fields.setdefault("outcome", "break_glass" if use.break_glass_id is not None else "ok")
    return AccessEvent(actor=actor, action=action, purpose=use.purpose,  # type: ignore[arg-type]
                       parameters=params, **fields)


def _access_document(session: Session, actor: Actor, action: str, doc: Document, **fields: Any) -> None:
    """One event per child the document belongs to, so each child's access log is complete."""
    child_ids: list[str | None] = list(sorted(c.child_id for c in doc.children)) or [None]
    for child_id in child_ids:
        _access(session, actor, action, document_id=doc.id, child_id=child_id, **fields)


def log_document_access(session: Session, doc: Document, *, actor: Actor, action: str, use: Use | None = None,
                        parameters: dict[str, Any] | None = None) -> None:
    """Log a read that does not go through the functions below (e.g. a page image)."""
    _access_document(session, actor, action, doc, use=use, parameters=parameters)


def log_child_access(session: Session, child_id: str, *, actor: Actor, action: str, use: Use | None = None,
                     parameters: dict[str, Any] | None = None) -> None:
    """Log a read of a child's own details (the index entry: name, date of birth, NHS number)."""
    _access(session, actor, action, child_id=child_id, use=use, parameters=parameters)


def log_refused(session: Session, *, actor: Actor, action: str, code: str, child_id: str | None = None,
                document_id: str | None = None) -> None:
    """A refused attempt is a use of the record too: it goes in the access log as "denied"."""
    _access(session, actor, action, child_id=child_id, document_id=document_id, outcome="denied",
            parameters={"code": code})


class DocumentScope(Collection[str]):
    """The documents a person may read (escr.app.access.readable_document_ids): a condition on a
    document id column, so a search applies it inside the database however many documents it
    admits, and, only when iterated, the set of their ids."""

    def __init__(self, session: Session, condition: DocumentCondition,
                 children: Select[tuple[str]] | None = None) -> None:
        self.condition = condition
        self.children = children  # when known: every child whose documents the condition admits
        self._session = session
        self._ids: frozenset[str] | None = None

    def _all(self) -> frozenset[str]:
        if self._ids is None:
            self._ids = frozenset(self._session.scalars(select(Document.id).where(self.condition(Document.id.expression))))
        return self._ids

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._all()

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


def _summary(doc: Any, children: Collection[str], received_at: datetime) -> dict[str, Any]:
    """`doc`: a Document, or a row with the same column names."""
    return {
        "id": doc.id, "doc_type": doc.doc_type, "doc_date": doc.doc_date.isoformat() if doc.doc_date else None,
        "pages": doc.page_count, "state": doc.state, "children": sorted(children),
        "third_party": doc.third_party, "scan_id": doc.batch_id,
        "received_at": received_at.isoformat(), "verified_by": doc.verified_by,
        "not_yet_verified": doc.state != DocumentState.VERIFIED,
    }


def summary(doc: Document) -> dict[str, Any]:
    return _summary(doc, [c.child_id for c in doc.children], doc.batch.received_at)


def summaries(session: Session, doc_ids: Collection[str]) -> dict[str, dict[str, Any]]:
    """`summary` of many documents in two plain queries (a search returns up to 200: loading
    them as ORM objects with their links and scans took several times as long)."""
    ids = sorted(set(doc_ids))
    if not ids:
        return {}
    children: dict[str, list[str]] = defaultdict(list)
    for doc_id, child_id in session.execute(
            select(DocumentChild.document_id, DocumentChild.child_id).where(DocumentChild.document_id.in_(ids))):
        children[doc_id].append(child_id)
    # The scan's time as a per-row look-up: joined, PostgreSQL reads every scan to hash them.
    received_at = select(Batch.received_at).where(Batch.id == Document.batch_id).scalar_subquery()
    rows = session.execute(
        select(Document.id, Document.doc_type, Document.doc_date, Document.page_count, Document.state,
               Document.third_party, Document.batch_id, Document.verified_by, received_at.label("received_at"))
        .where(Document.id.in_(ids)))
    return {r.id: _summary(r, children[r.id], r.received_at) for r in rows}


def chronology_order(doc: Any) -> tuple[bool, date, Any, str]:
    """A child's chronology's order: by the document's date, undated last, then as filed; for a
    document row or any row with its `doc_date`, `created_at` and `id`."""
    return (doc.doc_date is None, doc.doc_date or date.min, doc.created_at, doc.id)


def list_documents(
    session: Session, child_id: str, *, actor: Actor, doc_type: str | None = None,
    since: date | None = None, until: date | None = None, use: Use | None = None, view_id: int | None = None,
) -> list[dict[str, Any]]:
    """A child's documents in date order (the chronology), undated ones last; rejected, withdrawn
    and superseded scans are out of the record (they stay in the audit trail). `view_id`: the
    saved view it was opened through, noted in the access event."""
    if session.get(Child, child_id) is None:
        raise NotFound(f"no child {child_id} in the child index")
    stmt = (select(Document).join(DocumentChild).where(DocumentChild.child_id == child_id,
                                                       Document.state.not_in(OUT_OF_RECORD))
            .options(selectinload(Document.children), joinedload(Document.batch)))  # a few queries, not 2 per document
    if doc_type:
        stmt = stmt.where(Document.doc_type == doc_type)
    if since:
        stmt = stmt.where(Document.doc_date >= since)
    if until:
        stmt = stmt.where(Document.doc_date <= until)
    docs = session.scalars(stmt).all()
    docs = sorted(docs, key=chronology_order)
    _access(session, actor, "list", child_id=child_id, use=use,
            parameters={"doc_type": doc_type, "since": since, "until": until, "count": len(docs),
                        **({"view": view_id} if view_id is not None else {})})
    return [summary(d) for d in docs]



def _qc(q: QcResult) -> dict[str, Any]:
    return {"check": q.check, "status": q.status, "message": q.message, "numbers": q.numbers}


def _latest_checks(results: Sequence[QcResult]) -> list[QcResult]:
    latest: dict[str, QcResult] = {}
    for q in results:  # in the order they were recorded
        latest[q.check] = q
    return sorted(latest.values(), key=lambda q: results.index(q))


def show_document(session: Session, doc_id: str, *, actor: Actor, use: Use | None = None) -> dict[str, Any]:
    doc = load_document(session, doc_id)
    _access_document(session, actor, "view", doc, use=use)
    current = _latest_checks(doc.qc_results)
    return {
        **summary(doc),
        "state_reasons": doc.state_reasons, "operator": doc.batch.operator, "device": doc.batch.device,
        "indexed_by": doc.indexed_by, "verified_at": doc.verified_at.isoformat() if doc.verified_at else None,
        "tags": [{"name": t.name, "value": t.value, "source": t.source, "confidence": t.confidence} for t in doc.tags],
        # Each check's latest result (a re-index re-runs the identity check; the earlier results stay
        # in `qc_earlier` and the log), so nobody is told of a failure that no longer holds.
        "qc": [_qc(q) for q in current],
        "qc_earlier": [_qc(q) for q in doc.qc_results if q not in current],
        "candidates": [{"child_id": c.child_id, "score": c.score, "reasons": c.reasons} for c in doc.candidates],
        "children_links": [{"child_id": c.child_id, "basis": c.basis, "linked_by": c.linked_by} for c in doc.children],
        "earlier_links": [{"child_id": h.child_id, "basis": h.basis, "linked_by": h.linked_by,
                           "linked_at": iso(h.linked_at), "unlinked_by": h.unlinked_by,
                           "unlinked_at": iso(h.unlinked_at), "reason": h.reason}
                          for h in session.scalars(select(DocumentLinkHistory).where(
                              DocumentLinkHistory.document_id == doc.id).order_by(DocumentLinkHistory.id))],
        "objects": {"original": doc.batch.original_key, "original_sha256": doc.batch.sha256,
                    "searchable": doc.searchable_key, "searchable_sha256": doc.searchable_sha256,
                    "manifest": doc.manifest_key},
        "original_pages": {"first": doc.first_page + 1, "last": doc.last_page + 1, "cover": None if doc.cover_page is None else doc.cover_page + 1},
    }


def open_document(
    session: Session, store: ObjectStore, doc_id: str, *, actor: Actor, original: bool = False,
    use: Use | None = None,
) -> tuple[BinaryIO, str]:
    """The reading copy, or the untouched scan it came from; returns (stream, suggested file name)."""
    doc = load_document(session, doc_id)
    key = doc.batch.original_key if original else doc.searchable_key
    _access_document(session, actor, "download", doc, use=use,
            parameters={"object": "original" if original else "searchable"})
    suffix = key.rsplit(".", 1)[-1]
    name = f"{doc.batch_id}-original.{suffix}" if original else f"{doc.id}.pdf"
    return store.open(key), name


def search(
    session: Session, db: Database, query: str, *, actor: Actor, child_id: str | None = None, limit: int = 50,
    document_ids: Collection[str] | None = None, use: Use | None = None,
    grounds: Callable[[str], Use] | None = None,
) -> list[dict[str, Any]]:
    """Full-text search; `document_ids`, when given, is what the person may read (need-to-know):
    a `DocumentScope` is applied inside the database, any other collection as a list of ids.

    A search over many records shows text from each child's documents, so besides the search's
    own event each child whose documents are among the hits gets one, with the grounds
    `grounds(child_id)` gives (a break-glass one is flagged like any break-glass read)."""
    scope = document_ids if isinstance(document_ids, DocumentScope) else None
    doc_ids = None if document_ids is None or scope is not None else set(document_ids)
    if child_id is not None:
        in_child = select(DocumentChild.document_id).where(DocumentChild.child_id == child_id)
        if scope is not None:
            in_child = in_child.where(scope.condition(DocumentChild.document_id.expression))
            scope = None
        in_record = set(session.scalars(in_child))
        doc_ids = in_record if doc_ids is None else doc_ids & in_record
    hits = db.search_pages(session, query, document_ids=None if doc_ids is None else sorted(doc_ids),
                           scope=None if scope is None else scope.condition,
                           scope_children=None if scope is None else scope.children, limit=limit)
    _access(session, actor, "search", child_id=child_id, use=use, parameters={"query": query, "hits": len(hits)})
    docs = summaries(session, {h.document_id for h in hits})
    if child_id is None and grounds is not None:
        per_child: dict[str, int] = defaultdict(int)
        for h in hits:
            for shown in docs[h.document_id]["children"]:
                per_child[shown] += 1
        # Loaded in one query and held here, so `grounds` finds each child in the session.
        shown_children = session.scalars(select(Child).where(Child.child_id.in_(sorted(per_child)))).all()
        record_all(session, [_access_event(actor, "search", child_id=shown, use=grounds(shown),
                                           parameters={"query": query, "hits": count, "in": "search_across_records"})
                             for shown, count in sorted(per_child.items())])
        del shown_children
    return [{**docs[h.document_id], "page": h.page_seq, "snippet": h.snippet} for h in hits]


def provenance(session: Session, doc_id: str, *, actor: Actor, use: Use | None = None) -> dict[str, Any]:
    """Every protocol event of the document and of the scan it came from, in order, with hashes."""
    doc = load_document(session, doc_id)
    batch: Batch = doc.batch
    events = session.scalars(
        select(Event).where(Event.category == "protocol")
        .where((Event.document_id == doc.id) | ((Event.batch_id == batch.id) & Event.document_id.is_(None)))
        .order_by(Event.id)).all()
    _access_document(session, actor, "provenance", doc, use=use)
    return {
        "document": show_document_unlogged(doc),
        "original": {"sha256": batch.sha256, "key": batch.original_key, "size_bytes": batch.size_bytes,
                     "media_type": batch.media_type, "operator": batch.operator, "device": batch.device,
                     "received_at": batch.received_at.isoformat(), "producer": batch.producer},
        "events": list(_event_dicts(events)),
    }


def show_document_unlogged(doc: Document) -> dict[str, Any]:
    return {**summary(doc), "searchable_sha256": doc.searchable_sha256, "manifest_key": doc.manifest_key}


def _event_dicts(events: Sequence[Event]) -> Iterator[dict[str, Any]]:
    for e in events:
        yield {"seq": e.id, "at": e.at.isoformat(), "kind": e.kind, "actor": f"{e.actor_kind}:{e.actor}",
               "outcome": e.outcome, "document_id": e.document_id, "detail": e.detail, "hash": e.hash,
               "prev_hash": e.prev_hash}
