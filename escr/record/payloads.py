"""The payload of each protocol event kind, as one pydantic model per kind.

A protocol event keeps its facts in three JSON objects: `parameters` (what was done, with what),
`inputs` (name -> SHA-256 of what it read) and `outputs` (name -> key or SHA-256 of what it
wrote). Writers build these models, and every ProtocolEvent is checked against its kind's
models when it is made (each field declared, the JSON reading back exactly as written); readers
(the provenance certificate, the fixity checks) parse stored rows with the same models. So a
field renamed on one side fails loudly on the other instead of silently blanking a certificate.

The models describe the JSON exactly as it has always been stored (the hash chain covers it):
field names, nesting and number types are those of existing rows. `extra="forbid"`: a field
nobody declared is refused, on writing and on reading.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, model_serializer
from pydantic_core import to_jsonable_python

Number = int | float  # kept as written: a JSON 300 stays 300, 300.0 stays 300.0


class Payload(BaseModel):
    """Fields named in `omitted_when_none` are absent from some stored rows (added in a later
    version, or written only when they have a value): None here, and left out again when None,
    so every stored row round-trips exactly."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    omitted_when_none: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _without_absent_fields(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        return {k: v for k, v in data.items() if not (k in self.omitted_when_none and v is None)}


P = TypeVar("P", bound=Payload)


# --- inputs and outputs ---------------------------------------------------------------------------


class OriginalInput(Payload):
    """The SHA-256 of the as-scanned file a step read ("" when it was refused unread)."""

    original: str


class StoredOutputs(Payload):
    """Keys and hashes of what the intake stored for one document; versions where the store keeps them."""

    original: str
    searchable: str
    searchable_sha256: str
    manifest: str
    manifest_sha256: str
    original_version: str | None = None
    searchable_version: str | None = None
    manifest_version: str | None = None
    omitted_when_none: ClassVar[frozenset[str]] = frozenset({"original_version", "searchable_version", "manifest_version"})


# --- the intake ------------------------------------------------------------------------------------


class Received(Payload):
    operator: str
    device: str
    intake_path: str
    size_bytes: int
    claim_id: str
    received_at: str


class PreflightPage(Payload):
    index: int
    dpi: list[Number | None]  # [x, y]; None where the file does not say
    colour: str | None
    encoding: str | None
    size_pt: list[Number]  # [width, height]


class Preflight(Payload):
    media_type: str
    page_count: int
    producer: str | None
    notes: list[str]
    pages: list[PreflightPage]
    active_content_removed: list[str] | None = None  # what sanitising took out of a PDF (newer rows)
    omitted_when_none: ClassVar[frozenset[str]] = frozenset({"active_content_removed"})


class Quarantined(Payload):
    reason: str


class SplitDocument(Payload):
    id: str
    pages: list[int]
    cover_page: int | None
    declared_pages: int | None


class Split(Payload):
    cover_pages: list[int]
    cover_batches: list[str]
    empty_cover_pages: list[int]
    documents: list[SplitDocument]


class OcrPageLog(Payload):
    index: int
    dpi: int
    rotation: int
    blank: bool
    mean_conf: Number | None
    words: int
    tesseract_runs: int


class Ocr(Payload):
    language: str
    pages: list[OcrPageLog]


class TagLog(Payload):
    name: str
    source: str
    confidence: Number


class Tagged(Payload):
    tags: list[TagLog]
    doc_type: str | None
    doc_date: str | None
    third_party: bool


class Linked(Payload):
    """Written as `linked` when the document has children, else as `needs_indexing`."""

    children: dict[str, str]  # child id -> basis
    text_match: str
    retention_until: str | None
    candidates: list[str]


class QcCheckLog(Payload):
    check: str
    status: str
    numbers: dict[str, Any]


class Qc(Payload):
    checks: list[QcCheckLog]


class Stored(Payload):
    store: str
    retention_until: str | None
    original_retention_until: str | None
    lock_mode: str | None


class Filed(Payload):
    state: str
    reasons: list[str]
    children: list[str]


# --- people after intake ---------------------------------------------------------------------------


class IndexFields(Payload):
    children: list[str]
    doc_type: str | None
    doc_date: str | None


class Indexed(Payload):
    before: IndexFields
    after: IndexFields


class QcAccepted(Payload):
    reason: str
    new_state: str


class Verified(Payload):
    children: list[str]
    doc_type: str | None


class Rejected(Payload):
    reason: str


# --- quarantine ------------------------------------------------------------------------------------


class QuarantineReleased(Payload):
    claim_id: str


class QuarantineDiscarded(Payload):
    claim_id: str
    reason: str
    keep_until: str
    code: str | None


# --- people and permissions ------------------------------------------------------------------------


class Account(Payload):
    """An account, team, token or allocation change, or a sign-in: `action` says which; the other
    fields are written only by the actions they belong to."""

    action: str
    user: str | None = None
    role: str | None = None
    third_party: bool | None = None
    changes: dict[str, Any] | None = None
    token_id: int | None = None
    prefix: str | None = None
    team: str | None = None
    omitted_when_none: ClassVar[frozenset[str]] = frozenset(
        {"user", "role", "third_party", "changes", "token_id", "prefix", "team"})


class BreakGlass(Payload):
    break_glass_id: int
    reason: str
    expires_at: str


class BreakGlassReviewed(Payload):
    break_glass_id: int
    note: str | None


class AuditPurpose(Payload):
    purpose_id: int
    purpose: str
    expires_at: str


class ChildrenImported(Payload):
    added: int
    updated: int
    unchanged: int
    retention_fields_changed: int


# --- provenance ------------------------------------------------------------------------------------


class Anchored(Payload):
    event_id: int
    event_count: int
    method: str
    head_hash: str


class AnchorOutputs(Payload):
    anchor: str
    anchor_sha256: str


class FixityScope(Payload):
    child_id: str | None
    document_id: str | None
    scan_id: str | None
    since: str | None


class FixityChecked(Payload):
    run_id: int
    trigger: str
    scope: FixityScope
    events: int
    documents: int
    objects: int
    bytes: int
    findings: int
    by_code: dict[str, int]


class FixityAlert(Payload):
    """One finding of a fixity check, as `escr.provenance.checks.Finding.as_dict` writes it."""

    code: str
    what: str
    where: str
    since: str | None
    since_basis: str | None
    document_id: str | None = None
    batch_id: str | None = None
    event_id: int | None = None
    object_key: str | None = None
    first_reported: str | None = None
    omitted_when_none: ClassVar[frozenset[str]] = frozenset(
        {"document_id", "batch_id", "event_id", "object_key", "first_reported"})


class PaperMoved(Payload):
    move_id: int
    paper_ref: str
    purpose: str
    sender: str
    recipient: str
    authorised_by: str | None
    due_back: str | None


class PaperArrived(Payload):
    move_id: int
    paper_ref: str
    recipient: str


class PaperDisposed(Payload):
    """Written as `paper_destroyed` or `paper_returned`."""

    on: str
    by: str
    method: str | None
    certificate_ref: str | None
    returned_to: str | None
    doc_type: str | None


class AuditSampled(Payload):
    month: str
    worker: str
    candidates: int
    allocated: int
    gap_months: int | None


# --- storage ---------------------------------------------------------------------------------------


class RetentionChanged(Payload):
    """Written as `retention_changed` or `retention_not_shortened`."""

    old: str | None
    new: str | None
    schedule: str | None
    reason: str
    children: list[str]
    lock_mode: str | None
    objects: dict[str, Any]


class LegalHold(Payload):
    """Written as `legal_hold_set` or `legal_hold_released`."""

    reason: str
    objects: dict[str, Any]


# Kind value -> (parameters, inputs, outputs). Every protocol kind escr writes is here (`duplicate`
# is declared but never written; access events have their own model, AccessEvent).
SCHEMAS: dict[str, tuple[type[Payload], type[Payload] | None, type[Payload] | None]] = {
    "received": (Received, OriginalInput, None),
    "preflight": (Preflight, OriginalInput, None),
    "quarantined": (Quarantined, None, None),
    "split": (Split, None, None),
    "ocr": (Ocr, None, None),
    "tagged": (Tagged, None, None),
    "linked": (Linked, None, None),
    "needs_indexing": (Linked, None, None),
    "qc": (Qc, None, None),
    "stored": (Stored, OriginalInput, StoredOutputs),
    "filed": (Filed, None, None),
    "indexed": (Indexed, None, None),
    "qc_accepted": (QcAccepted, None, None),
    "verified": (Verified, None, None),
    "rejected": (Rejected, None, None),
    "quarantine_released": (QuarantineReleased, OriginalInput, None),
    "quarantine_discarded": (QuarantineDiscarded, OriginalInput, None),
    "account": (Account, None, None),
    "sign_in": (Account, None, None),
    "break_glass": (BreakGlass, None, None),
    "break_glass_reviewed": (BreakGlassReviewed, None, None),
    "audit_purpose": (AuditPurpose, None, None),
    "children_imported": (ChildrenImported, None, None),
    "anchored": (Anchored, None, AnchorOutputs),
    "fixity_checked": (FixityChecked, None, None),
    "fixity_alert": (FixityAlert, None, None),
    "paper_moved": (PaperMoved, None, None),
    "paper_arrived": (PaperArrived, None, None),
    "paper_destroyed": (PaperDisposed, None, None),
    "paper_returned": (PaperDisposed, None, None),
    "audit_sampled": (AuditSampled, None, None),
    "retention_changed": (RetentionChanged, None, None),
    "retention_not_shortened": (RetentionChanged, None, None),
    "legal_hold_set": (LegalHold, None, None),
    "legal_hold_released": (LegalHold, None, None),
}


def dump(payload: Payload | Mapping[str, Any]) -> dict[str, Any]:
    """The JSON object a payload is stored as."""
    return payload.model_dump(mode="json") if isinstance(payload, Payload) else dict(payload)


def check(kind: str, *sections: Mapping[str, Any] | Payload) -> None:
    """Refuse an event whose parameters, inputs and outputs do not fit its kind's models, or
    would not read back through them exactly as written (pydantic.ValidationError, ValueError)."""
    schema = SCHEMAS.get(kind)
    if schema is None:
        return
    for model, section, name in zip(schema, sections, ("parameters", "inputs", "outputs"), strict=True):
        data = dump(section)
        if model is not None:
            stored = to_jsonable_python(data)
            if model.model_validate(stored).model_dump(mode="json") != stored:  # e.g. a number's type changed
                raise ValueError(f"a {kind} event's payload would not read back as written")
        elif data:
            raise ValueError(f"a {kind} event has no {name}")


def parameters(model: type[P], detail: dict[str, Any] | None) -> P:
    """A stored event's parameters through its kind's model."""
    return model.model_validate((detail or {}).get("parameters") or {})


def inputs(model: type[P], detail: dict[str, Any] | None) -> P:
    return model.model_validate((detail or {}).get("inputs") or {})


def outputs(model: type[P], detail: dict[str, Any] | None) -> P:
    return model.model_validate((detail or {}).get("outputs") or {})
