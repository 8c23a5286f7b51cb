"""Looking after the record rather than reading it: legal holds, retention dates, the paper
originals, certificates of scanning and case-file audit.

Every function takes the acting principal; the rules of escr.app.access decide, and a read is
written to the access log as the web's reads are.

- Legal holds and retention dates: auditors (records managers are auditors in escr's roles).
- The paper originals (custody moves, QA hold, disposition): business support and auditors.
- Certificates of scanning and case-file audit: auditors; a case-file audit needs the child.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from escr.app import access
from escr.app.access import AccessDenied, Can, Principal, require, require_change
from escr.errors import NotFound, ValidationFailed
from escr.record.events import AccessEvent, record
from escr.record.models import Document
from escr.services import Services


def _paper_keeper(principal: Principal) -> None:
    if not (principal.can(Can.INTAKE) or principal.can(Can.AUDIT)):
        raise AccessDenied(f"the {principal.role} role does not handle the paper originals", code="role_forbidden")


def _document(session: Any, doc_id: str) -> Document:
    doc = session.get(Document, doc_id)
    if doc is None:
        raise NotFound(f"document {doc_id} not found")
    return doc


# --- legal holds and retention ---------------------------------------------------------------


def set_legal_hold(services: Services, principal: Principal, document_id: str, *, on: bool,
                   reason: str) -> dict[str, Any]:
    """Set or release a person's legal hold on a document's objects; the reason is kept in the event."""
    require(principal, Can.AUDIT)
    from escr.record.retention_updates import set_legal_hold as hold

    with services.db.session() as session:
        _document(session, document_id)
        return hold(session, services.store, document_id, on=on, reason=reason, actor=principal.actor)


def retention(services: Services, principal: Principal, document_id: str) -> dict[str, Any]:
    """A document's retention date and how each of its objects is locked in the store (logged)."""
    require(principal, Can.AUDIT)
    with services.db.session() as session:
        doc = _document(session, document_id)
        access.document_grant(session, principal, doc, content=False)
        keys = {"original": doc.batch.original_key, "searchable": doc.searchable_key, "manifest": doc.manifest_key}
        result: dict[str, Any] = {
            "document": doc.id, "retention_until": doc.retention_until.isoformat() if doc.retention_until else None,
            "legal_hold": doc.legal_hold,
            "objects": {name: {"key": key, **services.store.get_retention(key).as_dict()}
                        for name, key in keys.items()}}
        record(session, AccessEvent(actor=principal.actor, action="provenance", document_id=doc.id,
                                    parameters={"command": "retention show"}))
    return result


# --- the paper originals ------------------------------------------------------------------------


def paper_statuses(services: Services, principal: Principal, *, today: date, due_only: bool) -> list[dict[str, Any]]:
    _paper_keeper(principal)
    from escr.provenance import paper

    with services.db.session() as session:
        return [s.as_dict() for s in paper.statuses(session, catalogue=services.doctypes,
                                                    settings=services.settings.provenance, today=today)
                if not due_only or s.status == paper.DUE]


def _dispositions(rows: Any) -> list[dict[str, Any]]:
    return [{"document_id": r.document_id, "action": r.action, "on": r.at.isoformat()} for r in rows]


def destroy_paper(services: Services, principal: Principal, doc_ids: list[str], *, by: str | None, method: str,
                  certificate: str, today: date, on: date | None) -> list[dict[str, Any]]:
    """Record the destruction of paper originals (all or none: each must be due)."""
    _paper_keeper(principal)
    from escr.provenance import paper

    with services.db.session() as session:
        return _dispositions(paper.destroy(session, doc_ids, by=by or principal.username, method=method,
                                           certificate_ref=certificate, recorded_by=principal.username,
                                           catalogue=services.doctypes, settings=services.settings.provenance,
                                           today=today, on=on))


def return_paper(services: Services, principal: Principal, doc_ids: list[str], *, to: str, by: str | None,
                 today: date, on: date | None) -> list[dict[str, Any]]:
    _paper_keeper(principal)
    from escr.provenance import paper

    with services.db.session() as session:
        return _dispositions(paper.return_paper(session, doc_ids, returned_to=to, by=by or principal.username,
                                                recorded_by=principal.username, catalogue=services.doctypes,
                                                settings=services.settings.provenance, today=today, on=on))


def move_paper(services: Services, principal: Principal, paper_ref: str, *, sender: str, recipient: str,
               purpose: str, authorised_by: str | None, due_back: date | None) -> dict[str, Any]:
    _paper_keeper(principal)
    from escr.provenance import paper

    with services.db.session() as session:
        row = paper.move(session, paper_ref, sender=sender, recipient=recipient, purpose=purpose,
                         recorded_by=principal.username, authorised_by=authorised_by, due_back=due_back)
        return {"move_id": row.id, "paper_ref": row.paper_ref, "sender": row.sender, "recipient": row.recipient}


def confirm_paper(services: Services, principal: Principal, move_id: int) -> dict[str, Any]:
    """Confirm a batch of paper arrived; its sender may not (escr.provenance.paper refuses it)."""
    _paper_keeper(principal)
    from escr.provenance import paper

    with services.db.session() as session:
        row = paper.confirm(session, move_id, by=principal.username)
        return {"move_id": row.id, "paper_ref": row.paper_ref, "confirmed_by": row.confirmed_by}


def unconfirmed_paper(services: Services, principal: Principal) -> list[dict[str, Any]]:
    _paper_keeper(principal)
    from escr.provenance import paper

    with services.db.session() as session:
        return [m.as_dict() for m in paper.open_moves(session)]


# --- certificates and case-file audit ---------------------------------------------------------------


def certificate(services: Services, principal: Principal, *, document_id: str | None, batch: str | None,
                child_id: str | None) -> dict[str, Any]:
    """The certificate of scanning for a document, a scan or a child (a fresh fixity check included)."""
    require(principal, Can.AUDIT)
    from escr.provenance.certificate import build_report

    return build_report(services, actor=principal.actor, document_id=document_id, batch=batch, child_id=child_id)


def write_certificate(report: dict[str, Any], fmt: str, output: Path) -> Path:
    from escr.provenance.certificate import FORMATS, write_report

    if fmt not in FORMATS:
        raise ValidationFailed(f"the format must be one of {', '.join(FORMATS)}")
    return write_report(report, fmt, output)


def casefile_audit(services: Services, principal: Principal, child_id: str, *, today: date) -> Any:
    """The 14 standards with their evidence from the child's verified documents."""
    require(principal, Can.AUDIT)
    from escr.provenance.casefile_audit import casefile_audit as audit
    from escr.provenance.casefile_audit import load_config

    config = load_config(services.settings.config_file(services.settings.provenance.casefile_audit_file),
                         services.doctypes)
    with services.db.session() as session:
        access.child_grant(session, principal, child_id)
        return audit(session, child_id, config=config, catalogue=services.doctypes, actor=principal.actor,
                     today=today)


def audit_sample(services: Services, principal: Principal, month: str) -> Any:
    """Pick and record one file per worker for the month; each pick is noted on the child's file
    as prepared for audit (seed 004 13.2)."""
    require(principal, Can.AUDIT)
    require_change(principal)
    from escr.app.casefile import mark_prepared
    from escr.provenance.casefile_audit import sample

    with services.db.session() as session:
        result = sample(session, month, selected_by=principal.username,
                        gap_months=services.settings.provenance.audit_sample_gap_months)
        mark_prepared(session, principal, result.selected, month)
        return result
