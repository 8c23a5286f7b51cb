"""The cover-sheet register and the batch manifest (DOMAIN protocol steps 2 and 6).

Every printed cover sheet is recorded, so a sheet printed but not scanned after a configured
number of days is listed (paper that never reached the scanner). Per cover-sheet batch, what
the sheet declared is set against what was found; a person lists items as missing, and the
paper of a registered batch may not be destroyed until its manifest is reconciled
(`escr.provenance.paper.manifest`).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from escr.app.access import AccessDenied, Principal, Role
from escr.errors import InvalidState, NotFound, ValidationFailed
from escr.provenance import paper as custody
from escr.record import payloads
from escr.record.events import Kind, ProtocolEvent, now, record
from escr.record.models import CoverSheetPrint, Document, ManifestMissing
from escr.storage.objectstore import today_utc

KEEPERS = (Role.BUSINESS_SUPPORT, Role.TEAM_MANAGER, Role.AUDITOR)


def _keeper(principal: Principal) -> None:
    if principal.role not in KEEPERS:
        raise AccessDenied(f"the {principal.role} role keeps no cover-sheet register", code="role_forbidden")


def register_printed(session: Session, principal: Principal, *, batch_id: str, child_ids: list[str], doc_type: str,
                     declared_pages: int | None) -> CoverSheetPrint:
    """Called when a cover sheet is printed (Operations.coversheet, `escr coversheet`). Printing a
    registered sheet again with the same children and type is a reprint (logged, one row); the
    same id for other paper is refused, since a batch id must name one batch."""
    _keeper(principal)
    printed = payloads.CoversheetPrinted(cover_batch_id=batch_id, children=list(child_ids), doc_type=doc_type,
                                         declared_pages=declared_pages)
    existing = session.get(CoverSheetPrint, batch_id)
    if existing is not None:
        if sorted(existing.child_ids) != sorted(child_ids) or existing.doc_type != doc_type:
            raise InvalidState(f"cover sheet {batch_id} is already in the register for other paper",
                               code="already_exists")
        record(session, ProtocolEvent(kind=Kind.COVERSHEET_PRINTED, actor=principal.actor, outcome="reprint",
                                      parameters=printed))
        return existing
    row = CoverSheetPrint(batch_id=batch_id, child_ids=list(child_ids), doc_type=doc_type,
                          declared_pages=declared_pages, printed_by=principal.username, printed_at=now())
    session.add(row)
    session.flush()
    record(session, ProtocolEvent(kind=Kind.COVERSHEET_PRINTED, actor=principal.actor, parameters=printed))
    return row


def unscanned(session: Session, principal: Principal, *, days: int, today: date | None = None) -> list[dict[str, Any]]:
    """Sheets printed at least `days` days ago with nothing scanned under them, oldest first."""
    _keeper(principal)
    cutoff = (today or today_utc()) - timedelta(days=days)
    scanned = select(Document.coversheet_batch_id).where(Document.coversheet_batch_id.is_not(None))
    rows = session.scalars(select(CoverSheetPrint).where(CoverSheetPrint.batch_id.not_in(scanned))
                           .order_by(CoverSheetPrint.printed_at, CoverSheetPrint.batch_id))
    return [{"cover_batch_id": r.batch_id, "children": r.child_ids, "doc_type": r.doc_type,
             "declared_pages": r.declared_pages, "printed_by": r.printed_by, "printed_at": r.printed_at.isoformat()}
            for r in rows if r.printed_at.date() <= cutoff]


def manifest(session: Session, principal: Principal, cover_batch_id: str) -> dict[str, Any]:
    _keeper(principal)
    return custody.manifest(session, cover_batch_id)


def list_missing(session: Session, principal: Principal, cover_batch_id: str, *, description: str,
                 pages: int | None = None) -> dict[str, Any]:
    """A person lists an item of the batch as missing: it is accounted for, not found."""
    _keeper(principal)
    if session.get(CoverSheetPrint, cover_batch_id) is None:
        raise NotFound(f"cover sheet {cover_batch_id} is not in the register")
    if not description.strip():
        raise ValidationFailed("required: description")
    if pages is not None and pages < 1:
        raise ValidationFailed("pages is at least 1")
    session.add(ManifestMissing(cover_batch_id=cover_batch_id, description=description.strip(), pages=pages,
                                listed_by=principal.username, listed_at=now()))
    session.flush()
    record(session, ProtocolEvent(kind=Kind.MANIFEST_MISSING, actor=principal.actor,
                                  parameters=payloads.ManifestMissing(cover_batch_id=cover_batch_id, pages=pages)))
    return custody.manifest(session, cover_batch_id)
