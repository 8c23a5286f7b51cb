"""The child's record beyond its documents: the status history and managers' file examinations.

Status history (seed 001 sections 17-18): mostly kept by the child index import; a team manager
or business support may add a period or a dated status the export does not carry (an adoption
order, a date of death), and the documents' retention dates are recomputed at once.

File examinations (seed 003 section 4): a manager's supervision, review or audit of a child's
file is recorded with its purpose and notes, and shown on the child's record; the rows are
append-only (a correction is a new examination).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from escr.app.access import AccessDenied, Principal, Role, child_grant
from escr.errors import ValidationFailed
from escr.record import payloads
from escr.record.events import Kind, ProtocolEvent, now, record
from escr.record.models import FileExamination
from escr.record.retention_updates import recompute_retention
from escr.record.status import add_status, as_dict
from escr.services import Services
from escr.storage.objectstore import today_utc

EXAMINATIONS = ("supervision", "review", "audit")
STATUS_KEEPERS = (Role.TEAM_MANAGER, Role.BUSINESS_SUPPORT)
EXAMINERS = (Role.TEAM_MANAGER, Role.AUDITOR)


def status_history(session: Session, principal: Principal, child_id: str) -> list[dict[str, Any]]:
    child, _ = child_grant(session, principal, child_id)
    return [as_dict(s) for s in sorted(child.statuses, key=lambda s: (s.from_date or s.on_date or date.min, s.id))]


def add_child_status(services: Services, principal: Principal, child_id: str, *, status: str,
                     from_date: date | None = None, to_date: date | None = None,
                     on_date: date | None = None) -> dict[str, Any]:
    """A person's entry in the status history; the child's documents are redated (never shortened)."""
    if principal.role not in STATUS_KEEPERS:
        raise AccessDenied(f"the {principal.role} role does not keep the status history", code="role_forbidden")
    with services.db.session() as session:
        child, _ = child_grant(session, principal, child_id)
        try:
            row = add_status(session, child, status=status, from_date=from_date, to_date=to_date, on_date=on_date,
                             actor=principal.actor)
        except ValueError as exc:
            raise ValidationFailed(str(exc)) from exc
        changes = recompute_retention(session, services.store, services.retention, [child_id], actor=principal.actor,
                                      reason="status history changed")
        return {"status": as_dict(row), "retention_changes": len(changes)}


def examine(session: Session, principal: Principal, child_id: str, *, kind: str, purpose: str, notes: str,
            examined_on: date | None = None) -> FileExamination:
    """Record a manager's examination of the child's file."""
    if principal.role not in EXAMINERS:
        raise AccessDenied("only a manager or auditor records a file examination", code="role_forbidden")
    child_grant(session, principal, child_id)
    if kind not in EXAMINATIONS:
        raise ValidationFailed(f"kind is one of {', '.join(EXAMINATIONS)}")
    if not purpose.strip():
        raise ValidationFailed("required: purpose")
    day = examined_on or today_utc()
    if day > today_utc():
        raise ValidationFailed("the examination date is in the future")
    row = FileExamination(child_id=child_id, kind=kind, purpose=purpose.strip(), notes=notes.strip(), examined_on=day,
                          examined_by=principal.username, recorded_at=now())
    session.add(row)
    session.flush()
    record(session, ProtocolEvent(kind=Kind.FILE_EXAMINED, actor=principal.actor, child_id=child_id, outcome=kind,
                                  parameters=payloads.FileExamined(examination_id=row.id, examined_on=day.isoformat())))
    return row


def examinations(session: Session, principal: Principal, child_id: str) -> list[dict[str, Any]]:
    child_grant(session, principal, child_id)
    rows = session.scalars(select(FileExamination).where(FileExamination.child_id == child_id)
                           .order_by(FileExamination.examined_on.desc(), FileExamination.id.desc()))
    return [{"id": r.id, "kind": r.kind, "purpose": r.purpose, "notes": r.notes,
             "examined_on": r.examined_on.isoformat(), "examined_by": r.examined_by} for r in rows]
