"""The payload of each protocol event kind, as one pydantic model per kind.

A protocol event keeps its facts in three JSON objects: `parameters` (what was done, with what),
`inputs` (name -> SHA-256 of what it read) and `outputs` (name -> key or SHA-256 of what it
wrote). Writers build these models and `escr.record.events.record` checks every event of a
kind listed here against them; readers (the provenance certificate, the fixity checks) parse
stored rows with the same models. So a field renamed on one side fails loudly on the other
instead of silently leaving a certificate line blank.

The models describe the JSON exactly as it has always been stored (the hash chain covers it):
field names, nesting and number types are those of existing rows. `extra="forbid"`: a field
nobody declared is refused, on writing and on reading.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, model_serializer

Number = int | float  # kept as written: a JSON 300 stays 300, 300.0 stays 300.0


class Payload(BaseModel):
    """Fields named in `added_later` came after rows were first written: absent in older rows
    (None here) and left out again when None, so every stored row round-trips exactly."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    added_later: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _without_absent_later_fields(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        return {k: v for k, v in data.items() if not (k in self.added_later and v is None)}


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
    added_later: ClassVar[frozenset[str]] = frozenset({"original_version", "searchable_version", "manifest_version"})


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
    colour: str
    encoding: str | None
    size_pt: list[Number]  # [width, height]


class Preflight(Payload):
    media_type: str
    page_count: int
    producer: str | None
    notes: list[str]
    pages: list[PreflightPage]
    active_content_removed: list[str] | None = None  # what sanitising took out of a PDF (newer rows)
    added_later: ClassVar[frozenset[str]] = frozenset({"active_content_removed"})


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


# Kind value -> (parameters, inputs, outputs); a kind not listed here is not checked yet.
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
}


def dump(payload: Payload | dict[str, Any]) -> dict[str, Any]:
    """The JSON object a payload is stored as."""
    return payload.model_dump(mode="json") if isinstance(payload, Payload) else dict(payload)


def check(kind: str, parameters: dict[str, Any], inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
    """Refuse an event whose payload does not fit its kind's models (pydantic.ValidationError)."""
    schema = SCHEMAS.get(kind)
    if schema is None:
        return
    for model, data in zip(schema, (parameters, inputs, outputs), strict=True):
        if model is not None:
            model.model_validate(data)
        elif data:
            raise ValueError(f"a {kind} event has no {'inputs' if data is inputs else 'outputs'}")


def parameters(model: type[P], detail: dict[str, Any] | None) -> P:
    """A stored event's parameters through its kind's model."""
    return model.model_validate((detail or {}).get("parameters") or {})


def inputs(model: type[P], detail: dict[str, Any] | None) -> P:
    return model.model_validate((detail or {}).get("inputs") or {})


def outputs(model: type[P], detail: dict[str, Any] | None) -> P:
    return model.model_validate((detail or {}).get("outputs") or {})
