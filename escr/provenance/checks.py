"""Fixity and provenance checks: each a function yielding typed findings (what, where, since when).

An auditor relies on the scanned image instead of the paper only if it can be shown that:
the protocol log is intact and matches the anchors written outside the database; every stored
object exists with the SHA-256 recorded when it was received; every filed document went
through the protocol's steps in order and was verified by a second person; and the store and
the database agree with each other. `pipelines/fixity.py` runs these checks in order;
`escr fixity` and the scheduled fixity run both go through it.

Everything streams: events and scans are read in short keyset-paged transactions of
`chunk` rows (short, so that a long check never holds SQLite's write lock and holds up intake),
and each object is read once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select

from escr.clock import as_utc
from escr.errors import EscrError, NotFound
from escr.provenance.anchors import SHA256, Anchor, StoredAnchor
from escr.record import payloads
from escr.record.database import GENESIS_HASH, Database
from escr.record.events import Kind, event_hash, payload_of
from escr.record.models import Batch, ChainAnchor, ChainHead, DisclosureRequest, Document, DocumentChild, Event
from escr.record.states import DocumentState
from escr.storage.objectstore import CHUNK, ObjectStore

MANIFEST_MAX_BYTES = 16 * 1024 * 1024


class Code(StrEnum):
    EVENT_ALTERED = "event_altered"  # an event's fields no longer give its recorded hash
    CHAIN_BROKEN = "chain_broken"  # an event does not name the hash of the event before it
    EVENTS_MISSING = "events_missing"  # ids skipped where the chain is broken: events deleted
    CHAIN_HEAD_MISMATCH = "chain_head_mismatch"  # the head names another last event: tail cut or added
    ANCHOR_MISMATCH = "anchor_mismatch"  # the event an anchor names now has another hash or position
    ANCHORED_EVENT_MISSING = "anchored_event_missing"  # an anchor names an event that is gone
    ANCHOR_INVALID = "anchor_invalid"  # an anchor object cannot be read or its seal fails
    ANCHOR_MISSING = "anchor_missing"  # an anchor the database lists is gone from the store
    ANCHOR_UNSEALED = "anchor_unsealed"  # plain SHA-256: whoever can write the store could re-make it
    ANCHOR_KEY_MISSING = "anchor_key_missing"  # sealed anchors, and no key to check them with
    ANCHOR_KEY_EXPOSED = "anchor_key_exposed"  # the key file is readable by others than its owner
    CHAIN_TAIL_CUT = "chain_tail_cut"  # an anchor's own `anchored` event is gone: the log's end was cut
    OBJECT_MISSING = "object_missing"
    OBJECT_ALTERED = "object_altered"
    OBJECT_UNREADABLE = "object_unreadable"
    RECORD_DISAGREES = "record_disagrees_with_log"  # a row's key or hash differs from the chained event
    MANIFEST_DISAGREES = "manifest_disagrees"
    STEP_MISSING = "step_missing"
    STEPS_OUT_OF_ORDER = "steps_out_of_order"
    FOUR_EYES = "four_eyes_violated"
    DOCUMENT_MISSING = "document_missing"  # the log says it was filed; there is no row
    OBJECT_UNREFERENCED = "object_unreferenced"  # an object in the store that no row names


@dataclass(frozen=True)
class Finding:
    """One problem: what is wrong, where (ids and keys only), and since when.

    `since` is when the thing was last known good or, if never checked, when it was written;
    `since_basis` says which. The fixity pipeline narrows it with earlier runs.
    """

    code: Code
    what: str
    where: str
    since: datetime | None = None
    since_basis: str = ""
    document_id: str | None = None
    batch_id: str | None = None
    event_id: int | None = None
    object_key: str | None = None
    first_reported: datetime | None = None

    @property
    def identity(self) -> dict[str, str]:
        return {"code": str(self.code), "where": self.where}

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": str(self.code), "what": self.what, "where": self.where,
                               "since": self.since.isoformat() if self.since else None,
                               "since_basis": self.since_basis}
        for name in ("document_id", "batch_id", "event_id", "object_key"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.first_reported is not None:
            out["first_reported"] = self.first_reported.isoformat()
        return out


@dataclass
class Tally:
    """Counts of what a run covered, for its report and the `fixity_runs` row."""

    events_checked: int = 0
    documents_checked: int = 0
    objects_checked: int = 0
    bytes_read: int = 0
    anchors_checked: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Scope:
    """What to check: everything, one child's documents, one document, or what arrived in a period
    (`since` and `until`, both days included; either may be open)."""

    child_id: str | None = None
    document_id: str | None = None
    scan_id: str | None = None
    since: date | None = None
    until: date | None = None

    @property
    def whole(self) -> bool:
        return (self.child_id is None and self.document_id is None and self.scan_id is None and self.since is None
                and self.until is None)

    @property
    def names_record(self) -> bool:
        """A scope picked by child, document or scan: rows deleted from it cannot be found by it."""
        return self.child_id is not None or self.document_id is not None or self.scan_id is not None

    def as_dict(self) -> dict[str, Any]:
        return {"child_id": self.child_id, "document_id": self.document_id, "scan_id": self.scan_id,
                "since": self.since.isoformat() if self.since else None,
                "until": self.until.isoformat() if self.until else None}

    @property
    def period(self) -> tuple[datetime | None, datetime | None]:
        """The period as moments in UTC: from the start of `since`, to before the day after `until`."""
        return (datetime.combine(self.since, datetime.min.time(), UTC) if self.since else None,
                datetime.combine(self.until + timedelta(days=1), datetime.min.time(), UTC) if self.until else None)



# --- the chain and its anchors -----------------------------------------------------------------


def check_anchor_objects(stored: Iterable[StoredAnchor], tally: Tally) -> Iterator[Finding]:
    """Anchor objects that cannot be read, whose seal does not hold, that are not sealed with a
    key, or that cannot be checked because the key is missing."""
    unverifiable = 0
    for item in stored:
        tally.anchors_checked += 1
        created = item.anchor.created_at if item.anchor else None
        if item.problem == "unverifiable":
            unverifiable += 1
        elif item.problem is not None:
            yield Finding(Code.ANCHOR_INVALID,
                          "anchor object is unreadable" if item.problem == "unreadable"
                          else "anchor object is not sealed by this system (its seal does not match)",
                          f"object {item.key}", created, "anchored at" if created else "", object_key=item.key)
        elif item.anchor is not None and item.anchor.method == SHA256:
            yield Finding(Code.ANCHOR_UNSEALED, "anchor is not sealed with a key: whoever can write the database "
                          "and the store could delete an event, rehash the chain and re-make this anchor",
                          f"object {item.key}", created, "anchored at", object_key=item.key)
    if unverifiable:
        yield Finding(Code.ANCHOR_KEY_MISSING, f"{unverifiable} anchor(s) are sealed with HMAC but no anchor key "
                      "is available (ESCR_ANCHOR__KEY or the key file): their seals cannot be checked",
                      "anchor key", None, "")


def check_anchor_key(*, key_available: bool, exposed: bool, anchors_listed: int) -> Iterator[Finding]:
    """The sealing key itself: gone although anchors were made, or readable by others."""
    if not key_available and anchors_listed:
        yield Finding(Code.ANCHOR_KEY_MISSING, "no anchor key is available (ESCR_ANCHOR__KEY or the key file) "
                      f"although {anchors_listed} anchor(s) were made: new anchors would use a new key",
                      "anchor key", None, "")
    if exposed:
        yield Finding(Code.ANCHOR_KEY_EXPOSED, "the anchor key file can be read by others than its owner "
                      "(make it mode 0600)", "anchor key", None, "")


def check_anchored_events(db: Database, anchors: Sequence[Anchor]) -> Iterator[Finding]:
    """Every anchor object was recorded by an `anchored` event written after the event it names;
    an anchor whose event is gone shows the end of the log was cut (with the chain head) back to
    before it. Events after the newest anchor's own event have nothing outside the database to
    vouch for them: anchoring often keeps that tail short."""
    if not anchors:
        return
    recorded: set[str] = set()
    last_id = 0
    while True:
        with db.session() as session:
            rows = session.execute(select(Event.id, Event.detail).where(Event.kind == "anchored", Event.id > last_id)
                                   .order_by(Event.id).limit(500)).all()
        if not rows:
            break
        for _, detail in rows:
            try:
                outputs = payloads.read(payloads.AnchoredOutputs, (detail or {}).get("outputs"))
            except payloads.PayloadMismatch:  # an altered row: check_chain reports it
                outputs = None
            if outputs is not None:
                recorded.add(outputs.anchor)
        last_id = rows[-1][0]
    for anchor in anchors:
        if anchor.key not in recorded:
            yield Finding(Code.CHAIN_TAIL_CUT, f"anchor {anchor.key} is not recorded by an `anchored` event in the "
                          f"log: events after event {anchor.event_id} were cut (or the anchoring failed midway)",
                          f"events after {anchor.event_id} / object {anchor.key}", anchor.created_at, "anchored at",
                          event_id=anchor.event_id, object_key=anchor.key)


def check_anchor_index(db: Database, anchor_keys: set[str]) -> Iterator[Finding]:
    """Anchors the database lists that are gone from the store (retention should make this impossible)."""
    last_id = 0
    while True:
        with db.session() as session:
            rows = session.execute(select(ChainAnchor.id, ChainAnchor.object_key, ChainAnchor.created_at)
                                   .where(ChainAnchor.id > last_id).order_by(ChainAnchor.id).limit(500)).all()
        if not rows:
            return
        for _row_id, key, created in rows:
            if key not in anchor_keys:
                yield Finding(Code.ANCHOR_MISSING, "anchor listed in the database is missing from the store",
                              f"object {key}", as_utc(created), "anchored at", object_key=key)
        last_id = rows[-1][0]


@dataclass
class _ChainState:
    prev_id: int
    prev_hash: str
    count: int  # events from the start of the chain up to prev_id
    seen_anchor_ids: set[int] = field(default_factory=set)


def chain_segment_start(db: Database, first_event_id: int | None) -> _ChainState:
    """Where a partial check starts: the event before `first_event_id`, trusted as recorded."""
    if first_event_id is None:
        return _ChainState(0, GENESIS_HASH, 0)
    with db.session() as session:
        before = session.execute(select(Event.id, Event.hash).where(Event.id < first_event_id)
                                 .order_by(Event.id.desc()).limit(1)).first()
        count = session.scalar(select(func.count(Event.id)).where(Event.id < first_event_id)) or 0
    if before is None:
        return _ChainState(0, GENESIS_HASH, 0)
    return _ChainState(before[0], before[1], count)


def _check_event(row: Event, state: _ChainState, anchors: dict[int, list[Anchor]]) -> Iterator[Finding]:
    at = as_utc(row.at)
    if event_hash(row.prev_hash, payload_of(row)) != row.hash:
        yield Finding(Code.EVENT_ALTERED, f"{row.kind} event's fields no longer give its recorded hash",
                      f"event {row.id}", at, "recorded at", row.document_id, row.batch_id, row.id)
    if row.prev_hash != state.prev_hash:
        if row.id != state.prev_id + 1:
            gap = f"{state.prev_id + 1}" if row.id == state.prev_id + 2 else f"{state.prev_id + 1}-{row.id - 1}"
            yield Finding(Code.EVENTS_MISSING, f"events {gap} are missing: event {row.id} does not follow "
                          f"from event {state.prev_id or 'genesis'}", f"events {gap}", at, "before the event recorded at",
                          event_id=row.id)
        else:
            yield Finding(Code.CHAIN_BROKEN, f"event {row.id} does not carry the hash of event "
                          f"{state.prev_id or 'genesis'}: one of them was altered and rehashed, or replaced",
                          f"event {row.id}", at, "recorded at", row.document_id, row.batch_id, row.id)
    state.count += 1
    for anchor in anchors.get(row.id, ()):
        state.seen_anchor_ids.add(row.id)
        if anchor.head_hash != row.hash or anchor.event_count != state.count:
            yield Finding(Code.ANCHOR_MISMATCH,
                          f"anchor says event {row.id} had hash {anchor.head_hash[:12]}... and was event number "
                          f"{anchor.event_count}; the log now has {row.hash[:12]}... and number {state.count}: "
                          "the events table was rewritten", f"event {row.id} / object {anchor.key}",
                          anchor.created_at, "anchored at", row.document_id, row.batch_id, row.id, anchor.key)
    state.prev_id, state.prev_hash = row.id, row.hash


def check_chain(db: Database, anchors: Sequence[Anchor], tally: Tally, *, first_event_id: int | None = None,
                last_event_id: int | None = None, chunk: int = 500) -> Iterator[Finding]:
    """Recompute every event's hash and link, page by page, and compare with the anchors.

    The whole chain when no bounds are given (then the chain head is checked too); otherwise
    the segment from the event before `first_event_id` to `last_event_id`.
    """
    by_id: dict[int, list[Anchor]] = {}
    for anchor in anchors:
        by_id.setdefault(anchor.event_id, []).append(anchor)
    state = chain_segment_start(db, first_event_id)
    start_id = state.prev_id
    head_values: tuple[int, str] | None = None
    looks_at_head = 0
    while True:
        with db.session() as session:
            stmt = select(Event).where(Event.id > state.prev_id).order_by(Event.id).limit(chunk)
            if last_event_id is not None:
                stmt = stmt.where(Event.id <= last_event_id)
            rows = session.scalars(stmt).all()
            head = session.get(ChainHead, 1) if not rows and last_event_id is None else None
            head_values = (head.last_event_id, head.last_hash) if head is not None else None
        for row in rows:
            tally.events_checked += 1
            yield from _check_event(row, state, by_id)
        if rows:
            continue
        # The head read after the last page may already name events appended meanwhile: look again.
        looks_at_head += 1
        if head_values is not None and head_values[0] > state.prev_id and looks_at_head < 3:
            continue
        break
    if head_values is not None and (head_values[0] != state.prev_id or head_values[1] != state.prev_hash):
        yield Finding(Code.CHAIN_HEAD_MISMATCH,
                      f"the chain head names event {head_values[0]} but the log ends at event {state.prev_id}: "
                      "events were cut from the end, or added without the chain", "chain head",
                      None, "", event_id=head_values[0])
    for event_id, listed in sorted(by_id.items()):
        if event_id in state.seen_anchor_ids or event_id <= start_id or (
                last_event_id is not None and event_id > last_event_id):
            continue
        for anchor in listed:
            yield Finding(Code.ANCHORED_EVENT_MISSING, f"anchor names event {event_id}, which is no longer in the log",
                          f"event {event_id} / object {anchor.key}", anchor.created_at, "anchored at",
                          event_id=event_id, object_key=anchor.key)


def check_filed_records_exist(db: Database, tally: Tally, *, chunk: int = 500) -> Iterator[Finding]:
    """Every document the log says was filed still has its row (one query per page of events)."""
    last_id = 0
    while True:
        with db.session() as session:
            rows = session.execute(select(Event.id, Event.document_id, Event.batch_id, Event.at)
                                   .where(Event.kind == "filed", Event.id > last_id)
                                   .order_by(Event.id).limit(chunk)).all()
            ids = {r.document_id for r in rows if r.document_id}
            present = set(session.scalars(select(Document.id).where(Document.id.in_(ids)))) if ids else set()
        if not rows:
            return
        for r in rows:
            if r.document_id and r.document_id not in present:
                yield Finding(Code.DOCUMENT_MISSING, "the log records this document as filed; its row is gone",
                              f"document {r.document_id}", as_utc(r.at), "filed at", r.document_id, r.batch_id, r.id)
        last_id = rows[-1].id


# --- scans, their documents and their log ----------------------------------------------------


@dataclass(frozen=True)
class LoggedEvent:
    id: int
    kind: str
    actor: str
    document_id: str | None
    outcome: str
    at: datetime
    detail: dict[str, Any]


@dataclass(frozen=True)
class DocumentFacts:
    id: str
    state: str
    indexed_by: str | None
    verified_by: str | None
    searchable_key: str
    searchable_sha256: str
    manifest_key: str
    manifest_sha256: str


@dataclass(frozen=True)
class ScanFacts:
    """One scanned file with the documents in scope and every protocol event naming it."""

    id: str
    operator: str
    sha256: str
    original_key: str
    filed_at: datetime
    documents: tuple[DocumentFacts, ...]
    events: tuple[LoggedEvent, ...]

    def events_of(self, doc_id: str) -> list[LoggedEvent]:
        return [e for e in self.events if e.document_id in (None, doc_id)]


def _scan_ids_stmt(scope: Scope):  # type: ignore[no-untyped-def]
    if scope.document_id is not None:
        return select(Document.batch_id).where(Document.id == scope.document_id)
    if scope.scan_id is not None:
        return select(Batch.id).where(Batch.id == scope.scan_id)
    if scope.child_id is not None:
        return (select(Document.batch_id).join(DocumentChild, DocumentChild.document_id == Document.id)
                .where(DocumentChild.child_id == scope.child_id).distinct())
    stmt = select(Batch.id)
    start, end = scope.period
    if start is not None:
        stmt = stmt.where(Batch.received_at >= start)
    if end is not None:
        stmt = stmt.where(Batch.received_at < end)
    return stmt


def _docs_in_scope(batch: Batch, scope: Scope) -> list[Document]:
    docs = list(batch.documents)
    if scope.document_id is not None:
        docs = [d for d in docs if d.id == scope.document_id]
    elif scope.child_id is not None:
        docs = [d for d in docs if any(c.child_id == scope.child_id for c in d.children)]
    return docs


def iter_scans(db: Database, scope: Scope, *, chunk: int = 100) -> Iterator[ScanFacts]:
    """Scans in scope as plain facts, a page at a time in short transactions."""
    last = ""
    while True:
        with db.session() as session:
            ids_stmt = _scan_ids_stmt(scope).subquery()
            batch_ids = list(session.scalars(select(ids_stmt.c[0]).where(ids_stmt.c[0] > last)
                                             .order_by(ids_stmt.c[0]).limit(chunk)))
            if not batch_ids:
                return
            events: dict[str, list[LoggedEvent]] = {b: [] for b in batch_ids}
            for e in session.scalars(select(Event).where(Event.batch_id.in_(batch_ids), Event.category == "protocol")
                                     .order_by(Event.id)):
                events[e.batch_id].append(LoggedEvent(e.id, e.kind, e.actor, e.document_id, e.outcome, as_utc(e.at),
                                                      e.detail or {}))
            scans = []
            for batch in session.scalars(select(Batch).where(Batch.id.in_(batch_ids)).order_by(Batch.id)):
                docs = tuple(DocumentFacts(d.id, d.state, d.indexed_by, d.verified_by, d.searchable_key,
                                           d.searchable_sha256, d.manifest_key, d.manifest_sha256)
                             for d in _docs_in_scope(batch, scope))
                scans.append(ScanFacts(batch.id, batch.operator, batch.sha256, batch.original_key,
                                       as_utc(batch.filed_at), docs, tuple(events[batch.id])))
        yield from scans
        last = batch_ids[-1]


def _last(events: Iterable[LoggedEvent], kind: str, doc_id: str | None = None) -> LoggedEvent | None:
    found = None
    for e in events:
        if e.kind == kind and (doc_id is None or e.document_id == doc_id):
            found = e
    return found


@dataclass(frozen=True)
class Expected:
    """What the chained log says each object's key and hash are (the row's value when unlogged)."""

    original_sha256: str
    searchable_sha256: str
    manifest_sha256: str


def expected_hashes(scan: ScanFacts, doc: DocumentFacts) -> Expected:
    logged_original = _received_original(scan)
    stored = _last(scan.events, Kind.STORED, doc.id)
    outputs = _logged(payloads.StoredOutputs, stored, "outputs")
    return Expected(logged_original or scan.sha256,
                    (outputs.searchable_sha256 if outputs else None) or doc.searchable_sha256,
                    (outputs.manifest_sha256 if outputs else None) or doc.manifest_sha256)


def _received_original(scan: ScanFacts) -> str | None:
    """The scan's SHA-256 as logged at receipt ("" or None: refused unread, or not logged)."""
    received = _last(scan.events, Kind.RECEIVED)
    logged = _logged(payloads.OriginalInput, received, "inputs")
    return logged.original if logged else None


def _logged(model: type[payloads.P], event: LoggedEvent | None, part: str) -> payloads.P | None:
    """An event's part through its payload model; None when there is none or it does not fit (an
    altered event: the chain check reports it, and the row's own values are checked instead)."""
    if event is None:
        return None
    try:
        return payloads.read(model, event.detail.get(part))
    except payloads.PayloadMismatch:
        return None


def check_record_against_log(scan: ScanFacts) -> Iterator[Finding]:
    """A row whose key or hash differs from what the chained event recorded was edited."""
    received = _last(scan.events, Kind.RECEIVED)
    if received is not None:
        logged = _received_original(scan)
        if logged and logged != scan.sha256:
            yield Finding(Code.RECORD_DISAGREES, "the scan's recorded SHA-256 differs from the one logged at receipt",
                          f"scan {scan.id} (sha256)", received.at, "received at", batch_id=scan.id, event_id=received.id)
    for doc in scan.documents:
        stored = _last(scan.events, Kind.STORED, doc.id)
        outputs = _logged(payloads.StoredOutputs, stored, "outputs")
        if stored is None or outputs is None:
            continue
        pairs = {"original": scan.original_key, "searchable": doc.searchable_key,
                 "searchable_sha256": doc.searchable_sha256, "manifest": doc.manifest_key,
                 "manifest_sha256": doc.manifest_sha256}
        for name, value in pairs.items():
            if getattr(outputs, name) != value:
                yield Finding(Code.RECORD_DISAGREES, f"the document's {name} differs from the one logged when it was stored",
                              f"document {doc.id} ({name})", stored.at, "stored at", doc.id, scan.id, stored.id)


def _steps_for(scan: ScanFacts, doc: DocumentFacts, events: list[LoggedEvent]) -> list[tuple[str, ...]]:
    steps: list[tuple[str, ...]] = [("received",), ("preflight",), ("split",), ("ocr",), ("tagged",),
                                    ("linked", "needs_indexing"), ("qc",), ("stored",), ("filed",)]
    if doc.state == DocumentState.VERIFIED or doc.verified_by:
        filed = _last(events, "filed", doc.id)
        if filed is not None and filed.outcome == DocumentState.QC_FAILED:
            steps.append(("qc_accepted",))
        if (filed is not None and filed.outcome == DocumentState.NEEDS_INDEXING) or doc.indexed_by:
            steps.append(("indexed",))
        steps.append(("verified",))
    elif doc.indexed_by:
        steps.append(("indexed",))
    return steps


def _match_steps(kinds: list[str], steps: list[tuple[str, ...]]) -> tuple[list[str], list[str]]:
    """(missing, out of order): each step must come after the one before it."""
    missing: list[str] = []
    disordered: list[str] = []
    pos = -1
    for step in steps:
        found = next((i for i in range(pos + 1, len(kinds)) if kinds[i] in step), None)
        if found is not None:
            pos = found
        elif any(k in step for k in kinds[: pos + 1]):
            disordered.append("|".join(step))
        else:
            missing.append("|".join(step))
    return missing, disordered


def _same(a: str | None, b: str | None) -> bool:
    return bool(a and b and a.strip().casefold() == b.strip().casefold())


def check_protocol(scan: ScanFacts) -> Iterator[Finding]:
    """Every required step, in order; verified by someone other than the scanner and the indexer."""
    for doc in scan.documents:
        events = scan.events_of(doc.id)
        missing, disordered = _match_steps([e.kind for e in events], _steps_for(scan, doc, events))
        if missing:
            yield Finding(Code.STEP_MISSING, f"protocol step(s) not in the log: {', '.join(missing)}",
                          f"document {doc.id}", scan.filed_at, "filed at", doc.id, scan.id)
        if disordered:
            yield Finding(Code.STEPS_OUT_OF_ORDER, f"protocol step(s) out of order: {', '.join(disordered)}",
                          f"document {doc.id}", scan.filed_at, "filed at", doc.id, scan.id)
        yield from _check_people(scan, doc, events)


def _check_people(scan: ScanFacts, doc: DocumentFacts, events: list[LoggedEvent]) -> Iterator[Finding]:
    verified = _last(events, "verified", doc.id)
    indexers = {e.actor for e in events if e.kind == "indexed" and e.document_id == doc.id}
    if doc.indexed_by:
        indexers.add(doc.indexed_by)
    if verified is not None:
        verifier = verified.actor
        if doc.verified_by is not None and not _same(verifier, doc.verified_by):
            yield Finding(Code.RECORD_DISAGREES, "the document's verifier differs from the one in the log",
                          f"document {doc.id} (verified_by)", verified.at, "verified at", doc.id, scan.id, verified.id)
        if _same(verifier, scan.operator) or any(_same(verifier, i) for i in indexers):
            role = "scanned" if _same(verifier, scan.operator) else "indexed"
            yield Finding(Code.FOUR_EYES, f"verified by the person who {role} it (four-eyes rule)",
                          f"document {doc.id}", verified.at, "verified at", doc.id, scan.id, verified.id)
    elif doc.verified_by:
        if _same(doc.verified_by, scan.operator) or any(_same(doc.verified_by, i) for i in indexers):
            yield Finding(Code.FOUR_EYES, "verified by the person who scanned or indexed it (four-eyes rule)",
                          f"document {doc.id}", scan.filed_at, "filed at", doc.id, scan.id)
    accepted = _last(events, "qc_accepted", doc.id)
    if accepted is not None and _same(accepted.actor, scan.operator):
        yield Finding(Code.FOUR_EYES, "QC failure accepted by the person who scanned it (four-eyes rule)",
                      f"document {doc.id}", accepted.at, "accepted at", doc.id, scan.id, accepted.id)


# --- the objects -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadResult:
    sha256: str | None  # None: missing or unreadable
    size: int
    problem: str | None = None  # missing | unreadable
    head: bytes = b""  # the bytes, for small objects whose content is checked too (manifests)
    detail: str = ""  # why unreadable, as the store said it (keys only)


def read_object(store: ObjectStore, key: str, *, keep_bytes: bool = False) -> ReadResult:
    """Stream one object through SHA-256; never raises for a missing or unreadable object."""
    digest = hashlib.sha256()
    size = 0
    kept = bytearray()
    try:
        with store.open(key) as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                if keep_bytes and len(kept) < MANIFEST_MAX_BYTES:
                    kept.extend(chunk)
    except NotFound:
        return ReadResult(None, 0, "missing")
    except EscrError as exc:  # e.g. an S3 store refusing bytes that no longer match the hash stored with them
        return ReadResult(None, size, "unreadable", detail=exc.message)
    except OSError as exc:
        return ReadResult(None, size, "unreadable", detail=type(exc).__name__)
    return ReadResult(digest.hexdigest(), size, None, bytes(kept))


def _object_findings(key: str, role: str, expected: str, result: ReadResult, scan: ScanFacts,
                     doc_id: str | None) -> Iterator[Finding]:
    where = f"object {key} ({role} of {'document ' + doc_id if doc_id else 'scan ' + scan.id})"
    if result.problem == "missing":
        yield Finding(Code.OBJECT_MISSING, f"the {role} is missing from the store", where, scan.filed_at,
                      "stored at", doc_id, scan.id, object_key=key)
    elif result.problem is not None:
        yield Finding(Code.OBJECT_UNREADABLE, f"the {role} cannot be read from the store: {result.detail}", where,
                      scan.filed_at,
                      "stored at", doc_id, scan.id, object_key=key)
    elif result.sha256 != expected:
        yield Finding(Code.OBJECT_ALTERED, f"the {role}'s SHA-256 is {result.sha256}, not the {expected} recorded "
                      "when it was received", where, scan.filed_at, "stored at", doc_id, scan.id, object_key=key)


def check_objects(store: ObjectStore, scan: ScanFacts, tally: Tally) -> Iterator[Finding]:
    """Each object of the scan read once: the original, then each document's copy and manifest."""
    read: dict[str, ReadResult] = {}

    def once(key: str, keep: bool = False) -> ReadResult:
        if key not in read:
            read[key] = read_object(store, key, keep_bytes=keep)
            tally.objects_checked += 1
            tally.bytes_read += read[key].size
        return read[key]

    for i, doc in enumerate(scan.documents):
        tally.documents_checked += 1
        expected = expected_hashes(scan, doc)
        if i == 0:
            yield from _object_findings(scan.original_key, "original scan", expected.original_sha256,
                                        once(scan.original_key), scan, None)
        yield from _object_findings(doc.searchable_key, "reading copy", expected.searchable_sha256,
                                    once(doc.searchable_key), scan, doc.id)
        manifest = once(doc.manifest_key, keep=True)
        yield from _object_findings(doc.manifest_key, "manifest", expected.manifest_sha256, manifest, scan, doc.id)
        if manifest.problem is None and manifest.sha256 == expected.manifest_sha256:
            yield from _check_manifest(manifest.head, doc, expected, scan)
    if not scan.documents:
        yield from _object_findings(scan.original_key, "original scan", scan.sha256, once(scan.original_key), scan, None)


def _check_manifest(data: bytes, doc: DocumentFacts, expected: Expected, scan: ScanFacts) -> Iterator[Finding]:
    try:
        body = json.loads(data)
        said = (body.get("document_id"), body["original"]["sha256"], body["searchable"]["sha256"])
    except (ValueError, KeyError, TypeError):
        said = (None, None, None)
    if said != (doc.id, expected.original_sha256, expected.searchable_sha256):
        yield Finding(Code.MANIFEST_DISAGREES, "the manifest names another document or other hashes than the log",
                      f"object {doc.manifest_key} (manifest of document {doc.id})", scan.filed_at, "stored at",
                      doc.id, scan.id, object_key=doc.manifest_key)


def check_unreferenced(db: Database, store: ObjectStore, *, ignore_prefixes: Sequence[str],
                       chunk: int = 500) -> Iterator[Finding]:
    """Objects in the store that no scan or document row names (listed, not read)."""
    page: list[str] = []
    for key in store.iter_keys():
        if key.startswith(tuple(ignore_prefixes)):
            continue
        page.append(key)
        if len(page) >= chunk:
            yield from _unreferenced_in(db, page)
            page = []
    if page:
        yield from _unreferenced_in(db, page)


def unreferenced_keys(db: Database, keys: Sequence[str]) -> list[str]:
    with db.session() as session:
        named = set(session.scalars(select(Batch.original_key).where(Batch.original_key.in_(keys))))
        named |= set(session.scalars(select(Document.searchable_key).where(Document.searchable_key.in_(keys))))
        named |= set(session.scalars(select(Document.manifest_key).where(Document.manifest_key.in_(keys))))
        named |= set(session.scalars(select(DisclosureRequest.bundle_key).where(DisclosureRequest.bundle_key.in_(keys))))
    return [k for k in keys if k not in named]


def _unreferenced_in(db: Database, keys: Sequence[str]) -> Iterator[Finding]:
    for key in unreferenced_keys(db, keys):
        yield Finding(Code.OBJECT_UNREFERENCED, "an object in the store that no scan or document in the database names",
                      f"object {key}", None, "", object_key=key)


# --- bounds of a partial check -------------------------------------------------------------------


def event_bounds(db: Database, scope: Scope, anchors: Sequence[Anchor]) -> tuple[int | None, int | None]:
    """The chain segment a scoped check covers: from its first event to the first anchor after its last."""
    if scope.whole:
        return None, None
    with db.session() as session:
        if not scope.names_record:  # a period: its events, up to the head when it is open-ended
            start, end = scope.period
            low, high = session.execute(select(func.min(Event.id), func.max(Event.id)).where(
                *([Event.at >= start] if start else []), *([Event.at < end] if end else []))).one()
            if low is None:
                return None, 0
            if end is None:
                return low, None
        else:
            ids = _scan_ids_stmt(scope).subquery()
            docs = select(Document.id).where(Document.batch_id.in_(select(ids.c[0])))
            if scope.document_id is not None:
                docs = select(Document.id).where(Document.id == scope.document_id)
            cond = (Event.document_id.in_(docs)) | (Event.batch_id.in_(select(ids.c[0])) & Event.document_id.is_(None))
            low, high = session.execute(select(func.min(Event.id), func.max(Event.id)).where(cond)).one()
    if low is None:
        return None, 0
    after = sorted(a.event_id for a in anchors if a.event_id >= high)
    return low, (after[0] if after else None)
