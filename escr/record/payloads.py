"""Typed payloads of every event kind: one pydantic model per part, written and read through.

A protocol event keeps its facts in three JSON objects: `parameters` (what was done, with what),
`inputs` (name -> SHA-256 of what it read) and `outputs` (name -> key or SHA-256 of what it
wrote); the intake's also carry `software` (versions). Every kind has its models in `SHAPES`:
the writers build them, and every event is checked against them when it is made
(`extra="forbid"`: a field nobody declared is refused); the provenance certificate, the fixity
checks and the auditor's provenance steps read stored rows back through the same models
(`read`). A field renamed on one side therefore fails loudly, in the tests, instead of silently
blanking a certificate.

The models describe the JSON exactly as it is stored (the hash chain covers it): `as_json` gives
back what was set and nothing more. Rows already in the log stay readable: a field added later
is optional, and `read` ignores a field that a model no longer declares.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

Number = int | float  # kept as written: a JSON 300 stays 300, 300.0 stays 300.0


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def as_json(self) -> dict[str, Any]:
        """The stored JSON: the fields that were set, nothing filled in."""
        return self.model_dump(mode="json", exclude_unset=True, by_alias=True)


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


# --- the intake's own log: quarantine decisions, cover sheets, scanner checks ------------------


class QuarantineReleased(Payload):
    claim_id: str


class QuarantineDiscarded(Payload):
    claim_id: str
    reason: str
    keep_until: str  # ISO date
    code: str | None  # the quarantine's reason code, if it had one


class Duplicate(Payload):
    """Declared for the file found to be a copy of one already filed; escr now quarantines such a
    file (code `duplicate`) and writes no event of this kind, so its part is empty."""


class CoversheetPrinted(Payload):
    cover_batch_id: str
    children: list[str]
    doc_type: str | None
    declared_pages: int | None


class ManifestMissing(Payload):
    cover_batch_id: str
    pages: int | None


class ScannerMeasures(Payload):
    """`escr.provenance.scanner_check.Measures.as_dict`."""

    declared_dpi: Number
    effective_dpi: Number | None
    skew_deg: Number | None
    paper_white: int
    tones: list[int]
    tone_steps: int
    cer: Number | None


class ScannerChecked(Payload):
    check_id: int
    device: str
    day: str  # ISO date
    measures: ScannerMeasures
    failures: list[str]


class TargetScanInput(Payload):
    target_scan: str  # SHA-256 of the test-target scan


# --- people and permissions -----------------------------------------------------------------


class AccountChanges(Payload):
    role: list[str] | None = None  # [before, after]
    third_party: list[bool] | None = None  # [before, after]
    display_name: bool | None = None  # changed (the name itself is not logged)


class Account(Payload):
    """An account, team, token or allocation change: `action` says which; the other fields are
    written only by the actions they belong to."""

    action: str
    user: str | None = None
    role: str | None = None
    third_party: bool | None = None
    changes: AccountChanges | None = None
    must_change: bool | None = None
    sessions_ended: int | None = None
    token_id: int | None = None
    token_ids: list[int] | None = None
    prefix: str | None = None
    scope: str | None = None
    expires_at: str | None = None
    reason: str | None = None
    team: str | None = None


class SignIn(Payload):
    """A sign-in (web or terminal); a refused API token at the terminal names how and the command."""

    action: str  # "sign_in"
    must_change_password: bool | None = None
    via: str | None = None
    command: str | None = None


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


class Accessed(Payload):
    """An access event's parameters: on what grounds, and what was asked. The grounds are what
    escr reads back; the rest (an auditor's filters, a search's terms, a report's scope) say what
    was asked, open by design, and are kept exactly as written."""

    model_config = ConfigDict(extra="allow", frozen=True)

    basis: str | None = None  # the need-to-know rule that let them in
    break_glass_id: int | None = None


# --- the child index ------------------------------------------------------------------------


class ChildrenImported(Payload):
    added: int
    updated: int
    unchanged: int
    retention_fields_changed: int


class StatusPeriod(Payload):
    status: str
    from_: str | None = Field(alias="from")
    to: str | None
    on: str | None


class StatusAdded(StatusPeriod):
    id: int
    source: str
    recorded_by: str | None


class ChildStatus(Payload):
    """An import changed the status history (before and after), or a person added one status."""

    before: list[StatusPeriod] | None = None
    after: list[StatusPeriod] | None = None
    added: StatusAdded | None = None


# --- paper ----------------------------------------------------------------------------------


class VolumeRegistered(Payload):
    volume_id: str
    kind: str
    location: str
    covers_from: str | None
    covers_to: str | None
    doc_type: str | None


class VolumeLinked(Payload):
    volume_id: str


class PaperMoved(Payload):
    """A move of a paper batch (`paper_ref`, purpose, sender), or a volume booked out (`volume_id`,
    `kind`): a volume's booking-out writes both."""

    move_id: int
    recipient: str
    authorised_by: str | None
    due_back: str | None
    paper_ref: str | None = None
    purpose: str | None = None
    sender: str | None = None
    volume_id: str | None = None
    kind: str | None = None


class PaperArrived(Payload):
    move_id: int
    paper_ref: str
    recipient: str


class PaperDisposed(Payload):
    """Written as `paper_destroyed` or `paper_returned`."""

    on: str  # ISO date
    by: str
    method: str | None
    certificate_ref: str | None
    returned_to: str | None
    doc_type: str | None


class PaperIncident(Payload):
    """Written as `paper_incident` (opened) or `paper_incident_closed`."""

    volume_id: str
    kind: str
    incident_id: int


class PaperIncidentFollowUp(Payload):
    """A person's follow-up note (`follow_up_id`), or who was told when it opened."""

    incident_id: int
    follow_up_id: int | None = None
    command: str | None = None  # ok | failed | not_configured
    email: str | None = None
    recipients: int | None = None


# --- retention, holds and disposal -----------------------------------------------------------


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


class CategoryHold(Payload):
    """Written as `category_hold_set` or `category_hold_released`."""

    hold_id: int
    scope: str
    value: str
    reason: str


class DisposalItem(Payload):
    kind: str  # document | volume
    id: str
    child_ids: list[str]
    doc_type: str | None
    retention_until: str


class DisposalProposed(Payload):
    proposal_id: int
    items: list[DisposalItem]
    reason: str


class DisposalDecided(Payload):
    proposal_id: int
    note: str


class Disposed(Payload):
    proposal_id: int
    item: str
    hashes: dict[str, Any]


# --- records and audits ---------------------------------------------------------------------


class FileExamined(Payload):
    examination_id: int
    examined_on: str  # ISO date


class AuditSampled(Payload):
    month: str
    worker: str
    candidates: int
    allocated: int
    gap_months: int | None


class CasefileAudited(Payload):
    audit_id: int
    month: str | None  # the sample's month; None for an audit of a file not sampled
    revises: int | None
    judgements: dict[str, int]  # judgement -> standards judged so
    follow_up: bool
    examination_id: int


# --- people's corrections -------------------------------------------------------------------


class Superseded(Payload):
    replaced_by: str
    how: str


class ThirdPartyChanged(Payload):
    third_party: bool
    reason: str


class DocumentFacts(Payload):
    children: list[str]
    doc_type: str | None
    doc_date: str | None
    third_party: bool


class CorrectionChanges(Payload):
    children: list[str] | None = None
    doc_type: str | None = None
    doc_date: str | None = None


class CorrectionRequested(Payload):
    correction_id: int
    reason: str
    changes: CorrectionChanges
    before: DocumentFacts


class CorrectionApproved(Payload):
    correction_id: int
    requested_by: str
    reason: str
    before: DocumentFacts
    after: DocumentFacts
    removed: list[str]
    added: list[str]
    identity_qc: str | None


class CorrectionRefused(Payload):
    correction_id: int
    note: str


class MisfilingRecorded(Payload):
    correction_id: int
    opened_by: list[str]


# --- subject access and disclosure ----------------------------------------------------------


class DisclosureStep(Payload):
    """What every step of a disclosure request names: the request (`copy_given` names it too,
    but may be given without one)."""

    request_id: int


class DisclosureOpened(DisclosureStep):
    basis: str
    children: list[str]
    documents: int
    due_on: str  # ISO date


class DisclosureChanged(DisclosureStep):
    change: str  # due_date_extended
    before: str
    after: str


class RedactionsProposed(DisclosureStep):
    proposed: dict[str, int]  # source -> redactions proposed
    total: int


class RedactionChanged(DisclosureStep):
    """One redaction drawn (`redaction_id`, scope, page, reason), some decided (`redactions`,
    count), or an area moved (both, with its corners before and after)."""

    redaction_id: int | None = None
    scope: str | None = None
    page: int | None = None
    reason: str | None = None
    redactions: list[int] | None = None
    count: int | None = None
    before: list[Number | None] | None = None  # [x0, y0, x1, y1]
    after: list[Number | None] | None = None


class DisclosureReview(DisclosureStep):
    """Submitted for review (`reviewer`), pages reviewed, approved or returned: the request's
    version the step saw."""

    version: int
    reviewer: str | None = None
    pages: int | None = None
    documents: int | None = None


class BundleExported(DisclosureStep):
    bundle_sha256: str
    pages: int
    documents: int
    redactions: int


class CopyGiven(Payload):
    copy_id: int
    request_id: int | None
    method: str
    basis: str
    documents: int
    redacted: bool
    bundle_sha256: str | None


class Software(Payload):
    """The versions recorded with an intake event (`escr.services.Services.software`)."""

    escr: str
    tesseract: str | None = None
    pikepdf: str | None = None
    qpdf: str | None = None
    zxing_cpp: str | None = Field(default=None, alias="zxing-cpp")


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
    "duplicate": Shape(Duplicate),
    "quarantine_released": Shape(QuarantineReleased, OriginalInput),
    "quarantine_discarded": Shape(QuarantineDiscarded, OriginalInput),
    "coversheet_printed": Shape(CoversheetPrinted),
    "manifest_missing": Shape(ManifestMissing),
    "scanner_checked": Shape(ScannerChecked, TargetScanInput),
    "account": Shape(Account),
    "sign_in": Shape(SignIn),
    "break_glass": Shape(BreakGlass),
    "break_glass_reviewed": Shape(BreakGlassReviewed),
    "audit_purpose": Shape(AuditPurpose),
    "accessed": Shape(Accessed),
    "children_imported": Shape(ChildrenImported),
    "child_status": Shape(ChildStatus),
    "volume_registered": Shape(VolumeRegistered),
    "volume_linked": Shape(VolumeLinked),
    "paper_moved": Shape(PaperMoved),
    "paper_arrived": Shape(PaperArrived),
    "paper_destroyed": Shape(PaperDisposed),
    "paper_returned": Shape(PaperDisposed),
    "paper_incident": Shape(PaperIncident),
    "paper_incident_follow_up": Shape(PaperIncidentFollowUp),
    "paper_incident_closed": Shape(PaperIncident),
    "retention_changed": Shape(RetentionChanged),
    "retention_not_shortened": Shape(RetentionChanged),
    "legal_hold_set": Shape(LegalHold),
    "legal_hold_released": Shape(LegalHold),
    "category_hold_set": Shape(CategoryHold),
    "category_hold_released": Shape(CategoryHold),
    "disposal_proposed": Shape(DisposalProposed),
    "disposal_decided": Shape(DisposalDecided),
    "disposed": Shape(Disposed),
    "file_examined": Shape(FileExamined),
    "audit_sampled": Shape(AuditSampled),
    "casefile_audited": Shape(CasefileAudited),
    "superseded": Shape(Superseded),
    "third_party_changed": Shape(ThirdPartyChanged),
    "correction_requested": Shape(CorrectionRequested),
    "correction_approved": Shape(CorrectionApproved),
    "correction_refused": Shape(CorrectionRefused),
    "misfiling_recorded": Shape(MisfilingRecorded),
    "disclosure_opened": Shape(DisclosureOpened),
    "disclosure_changed": Shape(DisclosureChanged),
    "redactions_proposed": Shape(RedactionsProposed),
    "redaction_changed": Shape(RedactionChanged),
    "disclosure_submitted": Shape(DisclosureReview),
    "disclosure_pages_reviewed": Shape(DisclosureReview),
    "disclosure_approved": Shape(DisclosureReview),
    "disclosure_returned": Shape(DisclosureReview),
    "bundle_exported": Shape(BundleExported),
    "copy_given": Shape(CopyGiven),
}


class PayloadMismatch(ValueError):
    """A payload that does not fit its kind's model: on writing, a bug in the writer; on reading,
    a row that was altered or a model changed without its old rows in mind."""


def check(kind: str, part: str, data: dict[str, Any]) -> None:
    """Refuse `data` as the `part` of a `kind` event unless it is exactly its model's JSON
    (`software`, of any kind, is checked against `Software`)."""
    shape = SHAPES.get(kind)
    model = Software if part == "software" else getattr(shape, part) if shape else None
    if model is None:
        if shape is not None and data:
            raise PayloadMismatch(f"a {kind} event has no {part}")
        return
    if not data and part == "software":
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
        known = {f.alias or name for name, f in model.model_fields.items()}
        kept = data if model.model_config.get("extra") == "allow" else {k: v for k, v in data.items() if k in known}
        return model.model_validate(kept)
    except ValidationError as exc:
        wrong = ", ".join(f"{'.'.join(map(str, e['loc']))} ({e['type']})" for e in exc.errors())
        raise PayloadMismatch(f"a logged event does not fit {model.__name__}: {wrong}") from None
