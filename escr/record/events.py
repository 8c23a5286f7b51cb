"""Protocol and access events: typed records, written through one function.

Every step of the controlled-scanning protocol and every use of a child's record becomes an
append-only event row. `record()` is the only writer: it chains each event to the one before
it (SHA-256 over a canonical encoding) so that an edit, insertion, deletion or reordering
breaks the chain and can be detected later.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy.orm import Session

from escr.record.database import chain_head_for_update
from escr.record.models import Event
from escr.record.payloads import Payload, check

log = logging.getLogger("escr.record.events")


class Kind(StrEnum):
    RECEIVED = "received"
    DUPLICATE = "duplicate"
    PREFLIGHT = "preflight"
    QUARANTINED = "quarantined"
    QUARANTINE_RELEASED = "quarantine_released"
    SPLIT = "split"
    OCR = "ocr"
    TAGGED = "tagged"
    LINKED = "linked"
    NEEDS_INDEXING = "needs_indexing"
    QC = "qc"
    STORED = "stored"
    FILED = "filed"
    INDEXED = "indexed"
    QC_ACCEPTED = "qc_accepted"
    VERIFIED = "verified"
    REJECTED = "rejected"
    CHILDREN_IMPORTED = "children_imported"
    ACCESSED = "accessed"
    # People and permissions (web app): who could see what, and when that changed.
    ACCOUNT = "account"
    SIGN_IN = "sign_in"
    BREAK_GLASS = "break_glass"
    BREAK_GLASS_REVIEWED = "break_glass_reviewed"
    AUDIT_PURPOSE = "audit_purpose"
    QUARANTINE_DISCARDED = "quarantine_discarded"
    # Provenance: chain anchors, fixity checks, the paper original, case-file audit samples.
    ANCHORED = "anchored"
    FIXITY_CHECKED = "fixity_checked"
    FIXITY_ALERT = "fixity_alert"
    PAPER_MOVED = "paper_moved"
    PAPER_ARRIVED = "paper_arrived"
    PAPER_DESTROYED = "paper_destroyed"
    PAPER_RETURNED = "paper_returned"
    AUDIT_SAMPLED = "audit_sampled"
    CASEFILE_AUDITED = "casefile_audited"  # an auditor's judgement and grading of a child's file
    # Object storage: retention dates recomputed after a child's category or closure changed, holds.
    RETENTION_CHANGED = "retention_changed"
    RETENTION_NOT_SHORTENED = "retention_not_shortened"
    LEGAL_HOLD_SET = "legal_hold_set"
    LEGAL_HOLD_RELEASED = "legal_hold_released"
    # The record as the seeds keep it (issue 19): status history, paper volumes and originals,
    # missing or stolen paper, disposal, when paper arrived, managers' file examinations.
    CHILD_STATUS = "child_status"
    VOLUME_REGISTERED = "volume_registered"
    VOLUME_LINKED = "volume_linked"
    PAPER_INCIDENT = "paper_incident"
    PAPER_INCIDENT_FOLLOW_UP = "paper_incident_follow_up"
    PAPER_INCIDENT_CLOSED = "paper_incident_closed"
    CATEGORY_HOLD_SET = "category_hold_set"
    CATEGORY_HOLD_RELEASED = "category_hold_released"
    DISPOSAL_PROPOSED = "disposal_proposed"
    DISPOSAL_DECIDED = "disposal_decided"
    DISPOSED = "disposed"
    PAPER_ARRIVAL = "paper_arrival"
    FILE_EXAMINED = "file_examined"
    COVERSHEET_PRINTED = "coversheet_printed"
    MANIFEST_MISSING = "manifest_missing"
    SCANNER_CHECKED = "scanner_checked"
    # People's corrections: withdrawal, rescans, the third-party flag, two-person corrections.
    WITHDRAWN = "withdrawn"
    SUPERSEDED = "superseded"
    THIRD_PARTY_CHANGED = "third_party_changed"
    CORRECTION_REQUESTED = "correction_requested"
    CORRECTION_APPROVED = "correction_approved"
    CORRECTION_REFUSED = "correction_refused"
    MISFILING_RECORDED = "misfiling_recorded"
    # Subject access and disclosure (issue 18): requests, redactions, review, export, copies given.
    DISCLOSURE_OPENED = "disclosure_opened"
    DISCLOSURE_CHANGED = "disclosure_changed"
    REDACTIONS_PROPOSED = "redactions_proposed"
    REDACTION_CHANGED = "redaction_changed"
    DISCLOSURE_SUBMITTED = "disclosure_submitted"
    DISCLOSURE_PAGES_REVIEWED = "disclosure_pages_reviewed"
    DISCLOSURE_APPROVED = "disclosure_approved"
    DISCLOSURE_RETURNED = "disclosure_returned"
    BUNDLE_EXPORTED = "bundle_exported"
    COPY_GIVEN = "copy_given"


class Actor(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["operator", "user", "system"]
    name: str

    @classmethod
    def system(cls) -> Actor:
        return cls(kind="system", name="escr")


def now() -> datetime:
    return datetime.now(UTC)


def _as_stored_json(value: Any) -> Any:
    """A writer may pass the kind's payload model (escr.record.payloads); it is stored as its JSON."""
    return value.as_json() if isinstance(value, Payload) else value


class ProtocolEvent(BaseModel):
    """A step of the scanning protocol: who did what to which file or document, with what."""

    model_config = ConfigDict(frozen=True)

    kind: Kind
    actor: Actor
    at: datetime = Field(default_factory=now)
    batch_id: str | None = None
    document_id: str | None = None
    child_id: str | None = None
    outcome: str = "ok"
    software: dict[str, str] = Field(default_factory=dict)
    parameters: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, str] = Field(default_factory=dict)  # name -> sha256
    outputs: dict[str, str] = Field(default_factory=dict)  # name -> sha256 or key

    category: Literal["protocol"] = "protocol"

    _payload_as_json = field_validator("parameters", "inputs", "outputs", "software", mode="before")(_as_stored_json)

    @model_validator(mode="after")
    def _fits_its_kind(self) -> ProtocolEvent:
        """A kind with payload models is refused unless each part is exactly its model's JSON."""
        for part in ("parameters", "inputs", "outputs", "software"):
            check(self.kind, part, getattr(self, part))
        return self


class AccessEvent(BaseModel):
    """Someone used a child's record: seed 003 requires a record of anyone who did, for any reason."""

    model_config = ConfigDict(frozen=True)

    actor: Actor
    # self_grant: own access widened; disclose: a copy of the record given to someone (escr.app.disclosure)
    action: Literal["list", "view", "download", "search", "provenance", "self_grant", "disclose"]
    at: datetime = Field(default_factory=now)
    child_id: str | None = None
    document_id: str | None = None
    purpose: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    outcome: str = "ok"

    kind: Literal[Kind.ACCESSED] = Kind.ACCESSED
    category: Literal["access"] = "access"

    _payload_as_json = field_validator("parameters", mode="before")(_as_stored_json)

    @model_validator(mode="after")
    def _fits_its_kind(self) -> AccessEvent:
        check(self.kind, "parameters", self.parameters)
        return self


AnyEvent = ProtocolEvent | AccessEvent


def canonical(payload: dict[str, Any]) -> bytes:
    """The encoding the chain hashes: sorted keys, no whitespace, UTF-8."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def event_hash(prev_hash: str, payload: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical(payload)).hexdigest()


def _detail(event: AnyEvent) -> dict[str, Any]:
    skip = {"kind", "actor", "at", "batch_id", "document_id", "child_id", "outcome", "category"}
    return event.model_dump(mode="json", exclude=skip)


def payload_of(row: Event) -> dict[str, Any]:
    """The fields of a stored event that the chain covers (everything but the hashes and id)."""
    return {
        "at": row.at.astimezone(UTC).isoformat() if row.at.tzinfo else row.at.replace(tzinfo=UTC).isoformat(),
        "category": row.category,
        "kind": row.kind,
        "actor_kind": row.actor_kind,
        "actor": row.actor,
        "batch_id": row.batch_id,
        "document_id": row.document_id,
        "child_id": row.child_id,
        "outcome": row.outcome,
        "detail": row.detail,
    }


def record(session: Session, event: AnyEvent) -> Event:
    """Append `event` to the chain inside the caller's transaction; the one writer of events."""
    return record_all(session, [event])[-1]


def record_all(session: Session, events: Sequence[AnyEvent]) -> list[Event]:
    """Append `events`, in order, with one lock of the chain's head and one insert: a search that
    shows 200 children's documents writes 200 access events, one round trip each took seconds."""
    head = chain_head_for_update(session)
    rows, prev = [], head.last_hash
    for event in events:
        row = Event(
            at=event.at.astimezone(UTC),
            category=event.category,
            kind=str(event.kind),
            actor_kind=event.actor.kind,
            actor=event.actor.name,
            batch_id=getattr(event, "batch_id", None),
            document_id=event.document_id,
            child_id=event.child_id,
            outcome=event.outcome,
            detail=_detail(event),
            prev_hash=prev,
            hash="",
        )
        row.hash = prev = event_hash(prev, payload_of(row))
        rows.append(row)
    if not rows:
        return rows
    session.add_all(rows)
    session.flush()  # one INSERT ... RETURNING for all of them, ids in the order added
    head.last_event_id = rows[-1].id
    head.last_hash = rows[-1].hash
    for row in rows:
        log.info(
            "event %s %s batch=%s doc=%s outcome=%s",
            row.category, row.kind, row.batch_id or "-", row.document_id or "-", row.outcome,
        )
    return rows
