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
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:  # field names and error types only: values may be personal data
        wrong = ", ".join(f"{'.'.join(map(str, e['loc']))} ({e['type']})" for e in exc.errors())
        raise PayloadMismatch(f"the {part} of a {kind} event do not fit {model.__name__}: {wrong}") from None
    if parsed.as_json() != data:
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
