"""Case-file audit support: the evidence column of the audit tool, and the monthly sample.

Seed 004's audit tool lists 14 Quality Practice Standards with an evidence column of "What,
When and Where" and a judgement column for the auditor. A well-indexed scanned record can fill
the evidence column by itself: for each standard, the child's verified documents of the types
that evidence it (config/casefile_audit.yaml). The judgement stays the auditor's.

Each month one file per worker is prepared for audit, and a file prepared is not selected
again for at least 12 months (seed 004, 4.1 and 12.1). `sample()` makes and records that pick
from the workers' allocated children (`child_allocations`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from escr.errors import ConfigError, InvalidState, NotFound
from escr.indexing.tagging import DocTypeCatalogue
from escr.record import payloads
from escr.record.events import AccessEvent, Actor, Kind, ProtocolEvent, now, record
from escr.record.models import AuditSelection, Child, ChildAllocation, Document, DocumentChild, User
from escr.record.states import DocumentState

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class StandardConfig(BaseModel):
    number: int
    stage: str
    standard: str
    question: str
    evidence_types: list[str]
    applies_when_status: list[str] | None = None


class KeyDocumentConfig(BaseModel):
    name: str
    types: list[str]
    max_age_days: int


class CasefileAuditConfig(BaseModel):
    version: int
    source: str
    max_evidence_listed: int = 5
    standards: list[StandardConfig]
    key_documents: list[KeyDocumentConfig]


def load_config(path: Path, catalogue: DocTypeCatalogue) -> CasefileAuditConfig:
    """The standards and their evidence types; a type not in doctypes.yaml is a configuration error."""
    try:
        config = CasefileAuditConfig.model_validate(yaml.safe_load(path.read_text()))
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"case-file audit configuration {path.name} is invalid: {type(exc).__name__}") from exc
    named = {t for s in config.standards for t in s.evidence_types} | {t for k in config.key_documents for t in k.types}
    unknown = sorted(named - set(catalogue.types))
    if unknown:
        raise ConfigError(f"{path.name} names document types not in doctypes.yaml: {', '.join(unknown)}")
    if sorted(s.number for s in config.standards) != list(range(1, len(config.standards) + 1)):
        raise ConfigError(f"{path.name}: standards must be numbered 1, 2, 3 ... without gaps")
    return config


@dataclass(frozen=True)
class Evidence:
    """One line of the evidence column: What - When - Where."""

    what: str
    when: date | None
    when_basis: str  # document date | received
    where: str
    document_id: str
    doc_type: str

    def line(self) -> str:
        when = self.when.strftime("%d/%m/%Y") if self.when else "undated"
        return f"{self.what} - {when}{' (received)' if self.when_basis == 'received' else ''} - {self.where}"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "when": self.when.isoformat() if self.when else None, "line": self.line()}


@dataclass(frozen=True)
class StandardEvidence:
    number: int
    stage: str
    question: str
    applicable: bool
    evidence: list[Evidence]
    listed: int  # how many lines the evidence column shows

    @property
    def column(self) -> list[str]:
        if not self.applicable:
            return ["N/A: applies only when the case is closed or transferred"]
        if not self.evidence:
            return ["No scanned evidence on the record"]
        lines = [e.line() for e in self.evidence[: self.listed]]
        if len(self.evidence) > self.listed:
            lines.append(f"(and {len(self.evidence) - self.listed} more)")
        return lines

    def as_dict(self) -> dict[str, Any]:
        return {"number": self.number, "stage": self.stage, "question": self.question,
                "applicable": self.applicable, "evidence_column": self.column,
                "evidence": [e.as_dict() for e in self.evidence], "judgement": None}


@dataclass(frozen=True)
class KeyDocument:
    name: str
    present: bool
    latest: date | None
    document_id: str | None
    age_days: int | None
    max_age_days: int

    @property
    def up_to_date(self) -> bool:
        return self.age_days is not None and self.age_days <= self.max_age_days

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "latest": self.latest.isoformat() if self.latest else None,
                "up_to_date": self.up_to_date}


@dataclass(frozen=True)
class CasefileAudit:
    child_id: str
    team: str | None
    status: str | None
    allocated_worker: str | None
    as_of: date
    source: str
    standards: list[StandardEvidence]
    key_documents: list[KeyDocument]
    verified_documents: int
    awaiting_verification: int

    def as_dict(self) -> dict[str, Any]:
        return {"child_id": self.child_id, "team": self.team, "status": self.status,
                "allocated_worker": self.allocated_worker, "as_of": self.as_of.isoformat(), "source": self.source,
                "verified_documents": self.verified_documents, "awaiting_verification": self.awaiting_verification,
                "standards": [s.as_dict() for s in self.standards],
                "key_documents": [k.as_dict() for k in self.key_documents]}


def _evidence(doc: Document, labels: dict[str, str]) -> Evidence:
    received = doc.batch.received_at
    when, basis = (doc.doc_date, "document date") if doc.doc_date else (received.date(), "received")
    return Evidence(labels.get(doc.doc_type or "", doc.doc_type or "document"), when, basis,
                    f"escr {doc.id} (scanned)", doc.id, doc.doc_type or "")


def _worker(session: Session, child_id: str) -> str | None:
    return session.scalar(select(User.username).join(ChildAllocation, ChildAllocation.user_id == User.id)
                          .where(ChildAllocation.child_id == child_id))


def casefile_audit(session: Session, child_id: str, *, config: CasefileAuditConfig, catalogue: DocTypeCatalogue,
                   actor: Actor, today: date) -> CasefileAudit:
    """The audit tool for one child with its evidence column filled from the verified record."""
    child = session.get(Child, child_id)
    if child is None:
        raise NotFound(f"no child {child_id} in the child index")
    docs = list(session.scalars(select(Document).join(DocumentChild, DocumentChild.document_id == Document.id)
                                .where(DocumentChild.child_id == child_id)))
    verified = [d for d in docs if d.state == DocumentState.VERIFIED]
    labels = {code: t.label for code, t in catalogue.types.items()}
    items = sorted((_evidence(d, labels) for d in verified),
                   key=lambda e: (e.when or date.min, e.document_id), reverse=True)  # newest first
    status = (child.status or "").lower()
    standards = [StandardEvidence(s.number, s.stage, s.question,
                                  s.applies_when_status is None or status in s.applies_when_status,
                                  [e for e in items if e.doc_type in s.evidence_types], config.max_evidence_listed)
                 for s in sorted(config.standards, key=lambda s: s.number)]
    keys = []
    for k in config.key_documents:
        latest = next((e for e in items if e.doc_type in k.types), None)
        keys.append(KeyDocument(k.name, latest is not None, latest.when if latest else None,
                                latest.document_id if latest else None,
                                (today - latest.when).days if latest and latest.when else None, k.max_age_days))
    record(session, AccessEvent(actor=actor, action="list", child_id=child_id,
                                parameters={"purpose": "casefile_audit", "documents": len(verified)}))
    return CasefileAudit(child_id, child.team, child.status, _worker(session, child_id), today, config.source,
                         standards, keys, len(verified), sum(d.state == DocumentState.AWAITING_VERIFICATION for d in docs))


# --- the monthly sample --------------------------------------------------------------------------


def month_index(month: str) -> int:
    match = MONTH.match(month or "")
    if not match:
        raise InvalidState(f"not a month (YYYY-MM): {month}")
    return int(match.group(1)) * 12 + int(match.group(2)) - 1


def excluded(prepared_month: str, month: str, gap_months: int) -> bool:
    """A file prepared in one month is not selected again for at least `gap_months` months."""
    return abs(month_index(month) - month_index(prepared_month)) < gap_months


@dataclass
class SampleResult:
    month: str
    selected: list[dict[str, Any]] = field(default_factory=list)  # new picks: worker, child_id, candidates
    already: list[dict[str, Any]] = field(default_factory=list)  # picks made earlier for this month
    no_eligible_file: list[str] = field(default_factory=list)  # workers all of whose files were prepared recently

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _allocations(session: Session) -> dict[str, list[str]]:
    rows = session.execute(select(User.username, ChildAllocation.child_id)
                           .join(ChildAllocation, ChildAllocation.user_id == User.id)
                           .where(User.disabled.is_(False)).order_by(User.username, ChildAllocation.child_id))
    workers: dict[str, list[str]] = {}
    for username, child_id in rows:
        workers.setdefault(username, []).append(child_id)
    return workers


def sample(session: Session, month: str, *, selected_by: str, gap_months: int = 12,
           rng: random.Random | None = None, workers: Sequence[str] | None = None) -> SampleResult:
    """Pick and record one file per worker for `month`; picks already made for the month stand."""
    month_index(month)
    pick = rng or random.SystemRandom()
    result = SampleResult(month)
    allocations = _allocations(session)
    if workers is not None:
        allocations = {w: c for w, c in allocations.items() if w in set(workers)}
    prepared = session.execute(select(AuditSelection.child_id, AuditSelection.month, AuditSelection.worker)).all()
    done_this_month = {w: c for c, m, w in prepared if m == month}
    recently = {c for c, m, _ in prepared if excluded(m, month, gap_months)}
    stamp = now()
    for worker, children in allocations.items():
        if worker in done_this_month:
            result.already.append({"worker": worker, "child_id": done_this_month[worker]})
            continue
        candidates = [c for c in children if c not in recently]
        if not candidates:
            result.no_eligible_file.append(worker)
            continue
        child_id = pick.choice(sorted(candidates))
        recently.add(child_id)
        session.add(AuditSelection(month=month, worker=worker, child_id=child_id, candidates=len(candidates),
                                   selected_by=selected_by, selected_at=stamp))
        record(session, ProtocolEvent(kind=Kind.AUDIT_SAMPLED, actor=Actor(kind="user", name=selected_by),
                                      child_id=child_id, at=stamp,
                                      parameters=payloads.AuditSampled(
                                          month=month, worker=worker, candidates=len(candidates),
                                          allocated=len(children), gap_months=gap_months)))
        result.selected.append({"worker": worker, "child_id": child_id, "candidates": len(candidates)})
    session.flush()
    return result


def selections(session: Session, month: str) -> list[AuditSelection]:
    month_index(month)
    return list(session.scalars(select(AuditSelection).where(AuditSelection.month == month)
                                .order_by(AuditSelection.worker)))
