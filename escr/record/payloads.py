"""Typed payloads of the protocol events that proof is built from: one pydantic model per part.

A protocol event keeps its facts in three JSON objects: `parameters` (what was done, with what),
`inputs` (name -> SHA-256 of what it read) and `outputs` (name -> key or SHA-256 of what it
wrote). For the kinds in `SHAPES`, the writers build these models and every `ProtocolEvent` of
the kind is checked against them when it is made (`extra="forbid"`: a field nobody declared is
refused); the provenance certificate and the fixity checks read stored rows back through the
same models (`read`). A field renamed on one side therefore fails loudly, in the tests, instead
of silently blanking a certificate.

The models describe the JSON exactly as it is stored (the hash chain covers it): `as_json` gives
back what was set and nothing more. Rows already in the log stay readable: a field added later
is optional, and `read` ignores a field that a model no longer declares.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

Number = int | float  # kept as written: a JSON 300 stays 300, 300.0 stays 300.0


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def as_json(self) -> dict[str, Any]:
        """The stored JSON: the fields that were set, nothing filled in."""
        return self.model_dump(mode="json", exclude_unset=True)


P = TypeVar("P", bound=Payload)


class OriginalInput(Payload):
    """The SHA-256 of the as-scanned file a step read ("" when it was refused unread)."""

    original: str


class Received(Payload):
    operator: str
    device: str
    intake_path: str
    size_bytes: int
    claim_id: str
    received_at: str  # ISO 8601, UTC


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
    active_content_removed: list[str] | None = None  # absent from rows filed before it was listed


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


class Stored(Payload):
    store: str
    retention_until: str | None
    original_retention_until: str | None = None  # absent from older rows
    lock_mode: str | None = None  # absent from older rows


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


class TagFound(Payload):
    name: str
    source: str
    confidence: Number


class Tagged(Payload):
    tags: list[TagFound]
    doc_type: str | None
    doc_date: str | None  # ISO date
    third_party: bool


class Linked(Payload):
    """Written as `linked` when the document has children, else as `needs_indexing`."""

    children: dict[str, str]  # child id -> basis
    text_match: str
    candidates: list[str]


class QcCheck(Payload):
    check: str
    status: str
    numbers: dict[str, Any]


class Qc(Payload):
    checks: list[QcCheck]


class Filed(Payload):
    state: str
    reasons: list[str]
    children: list[str]


class Reason(Payload):
    """Why: a quarantine's message, in words."""

    reason: str


class PaperArrival(Payload):
    ref: str
    arrived_on: str  # ISO date
    old: str | None  # the date recorded before, if any
    cover_page: int | None = None  # only when read from a cover sheet's stamp


class IndexedFields(Payload):
    """What indexing set, before or after. A whole indexing names them all; a correction of the
    third-party flag before verification names only the flag (and, before, the indexer it replaced)."""

    children: list[str] | None = None
    doc_type: str | None = None
    doc_date: str | None = None  # ISO date
    third_party: bool | None = None  # absent from rows before 4 December 2026
    indexed_by: str | None = None  # before only


class Indexed(Payload):
    before: IndexedFields
    after: IndexedFields
    removed: list[str] | None = None  # absent from rows before 4 December 2026
    added: list[str] | None = None
    identity_qc: str | None = None
    reason: str | None = None  # a correction of the third-party flag: why


class QcAccepted(Payload):
    reason: str
    new_state: str


class Verified(Payload):
    children: list[str]
    doc_type: str | None
    third_party: bool | None


class Decided(Payload):
    """A rejection or withdrawal: why, and the children the document was unlinked from."""

    reason: str
    unlinked: list[str] | None = None  # absent from rows before 5 December 2026


class Anchored(Payload):
    event_id: int
    event_count: int
    method: str
    head_hash: str


class AnchoredOutputs(Payload):
    anchor: str  # the anchor object's key
    anchor_sha256: str


class FixityScope(Payload):
    child_id: str | None
    document_id: str | None
    scan_id: str | None
    since: str | None
    until: str | None = None  # absent from runs before 6 December 2026


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
    """One finding, as `escr.provenance.checks.Finding.as_dict` gives it."""

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


@dataclass(frozen=True)
class Shape:
    """The models of one kind's parameters, inputs and outputs (None: that part stays empty)."""

    parameters: type[Payload] | None = None
    inputs: type[Payload] | None = None
    outputs: type[Payload] | None = None


# By event kind (escr.record.events.Kind values: events.py checks every event here, so this
# module cannot import it back).
SHAPES: dict[str, Shape] = {
    "received": Shape(Received, OriginalInput),
    "preflight": Shape(Preflight, OriginalInput),
    "ocr": Shape(Ocr),
    "stored": Shape(Stored, OriginalInput, StoredOutputs),
    "split": Shape(Split),
    "tagged": Shape(Tagged),
    "linked": Shape(Linked),
    "needs_indexing": Shape(Linked),
    "qc": Shape(Qc),
    "filed": Shape(Filed),
    "quarantined": Shape(Reason),
    "paper_arrival": Shape(PaperArrival),
    "indexed": Shape(Indexed),
    "qc_accepted": Shape(QcAccepted),
    "verified": Shape(Verified),
    "rejected": Shape(Decided),
    "withdrawn": Shape(Decided),
    "anchored": Shape(Anchored, outputs=AnchoredOutputs),
    "fixity_checked": Shape(FixityChecked),
    "fixity_alert": Shape(FixityAlert),
}


class PayloadMismatch(ValueError):
    """A payload that does not fit its kind's model: on writing, a bug in the writer; on reading,
    a row that was altered or a model changed without its old rows in mind."""


def check(kind: str, part: str, data: dict[str, Any]) -> None:
    """Refuse `data` as the `part` of a `kind` event unless it is exactly its model's JSON."""
    shape = SHAPES.get(kind)
    model = getattr(shape, part) if shape else None
    if model is None:
        if shape is not None and data:
            raise PayloadMismatch(f"a {kind} event has no {part}")
        return
    stored = json.loads(json.dumps(data, default=str))  # as the log keeps it: {2: 270} is {"2": 270} there
    try:
        parsed = model.model_validate(stored)
    except ValidationError as exc:  # field names and error types only: values may be personal data
        wrong = ", ".join(f"{'.'.join(map(str, e['loc']))} ({e['type']})" for e in exc.errors())
        raise PayloadMismatch(f"the {part} of a {kind} event do not fit {model.__name__}: {wrong}") from None
    if parsed.as_json() != stored:
        raise PayloadMismatch(f"the {part} of a {kind} event would not read back as written")


def read(model: type[P], data: dict[str, Any] | None) -> P | None:
    """A stored row's part as its model; fields the model no longer declares are ignored, a
    missing required field fails (so a renamed field is caught, not read as blank)."""
    if not data:
        return None
    try:
        return model.model_validate({k: v for k, v in data.items() if k in model.model_fields})
    except ValidationError as exc:
        wrong = ", ".join(f"{'.'.join(map(str, e['loc']))} ({e['type']})" for e in exc.errors())
        raise PayloadMismatch(f"a logged event does not fit {model.__name__}: {wrong}") from None
