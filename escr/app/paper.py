"""The paper components of a child's file: volumes and originals, their moves, and losses.

Seed 001 sections 1, 7, 22-23 and seed 003: a child's paper file is one or more volumes, each
with the dates it covers, where it is and what it holds; some documents are kept in original
(court orders, adoption papers, the child's own letters). A volume or original leaves its place
only with a named manager's authority given before it goes, is booked out with a due-back date
and booked in again; the receiving side confirms arrival, never the person who sent it. Overdue
items are listed. A volume or original missing or stolen is reported in one action, which opens
an incident, tells the configured people at once (the alert command and e-mail through the
configured SMTP relay) and shows on the child's record until the incident is closed.

The custody moves themselves are `escr.provenance.paper` moves with the volume id as reference.
"""

from __future__ import annotations

import json
import logging
import re
import smtplib
import subprocess
from dataclasses import dataclass
from datetime import date, datetime
from email.message import EmailMessage
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from escr.app.access import AccessDenied, Principal, Role, child_grant
from escr.errors import InvalidState, NotFound, ProtocolViolation, ValidationFailed
from escr.provenance import paper as custody
from escr.record import payloads
from escr.record.events import Actor, Kind, ProtocolEvent, now, record
from escr.record.models import (
    Child,
    Document,
    DocumentChild,
    DocumentVolume,
    IncidentFollowUp,
    PaperIncident,
    PaperMove,
    PaperVolume,
    User,
)
from escr.record.states import PAPER_LOSSES, PaperState
from escr.services import Services
from escr.settings import Settings

log = logging.getLogger("escr.app.paper")

KINDS = ("volume", "original")
LOSSES = PAPER_LOSSES
OUTCOMES = ("found", "recovered", "not_found")
VOLUME_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# Who keeps the paper file: business support and records managers (auditors) register, move and
# report; team managers too. Caseworkers may report a loss of a child they know about.
KEEPERS = (Role.BUSINESS_SUPPORT, Role.TEAM_MANAGER, Role.AUDITOR)
MANAGERS = (Role.TEAM_MANAGER, Role.AUDITOR)  # who may authorise a removal


def _keeper(principal: Principal) -> None:
    if principal.role not in KEEPERS:
        raise AccessDenied(f"the {principal.role} role does not keep paper files", code="role_forbidden")


def _volume(session: Session, volume_id: str) -> PaperVolume:
    vol = session.get(PaperVolume, volume_id)
    if vol is None:
        raise NotFound(f"no paper volume or original {volume_id}")
    return vol


def _text(value: str | None, what: str) -> str:
    if not (value and value.strip()):
        raise ValidationFailed(f"required: {what}")
    return value.strip()


def _event(session: Session, principal: Principal, kind: Kind, vol: PaperVolume, parameters: payloads.Payload,
           outcome: str = "ok") -> None:
    """A volume's event; its payload names the volume and its kind (`volume_id`, `kind`)."""
    record(session, ProtocolEvent(kind=kind, actor=principal.actor, child_id=vol.child_id, outcome=outcome,
                                  parameters=parameters))


def register(session: Session, principal: Principal, *, volume_id: str, child_id: str, kind: str, title: str,
             location: str, contents: str = "", doc_type: str | None = None, covers_from: date | None = None,
             covers_to: date | None = None) -> PaperVolume:
    """A volume of the child's paper file, or a document kept in original, with where it is."""
    _keeper(principal)
    child_grant(session, principal, child_id)
    if not VOLUME_ID.match(volume_id or ""):
        raise ValidationFailed("a volume id is letters, digits, '.', '_' or '-' (at most 64)")
    if kind not in KINDS:
        raise ValidationFailed(f"kind is one of {', '.join(KINDS)}")
    if covers_from and covers_to and covers_to < covers_from:
        raise ValidationFailed("the volume's last date is before its first")
    if session.get(PaperVolume, volume_id) is not None:
        raise InvalidState(f"volume {volume_id} is already registered", code="already_exists")
    vol = PaperVolume(id=volume_id, child_id=child_id, kind=kind, title=_text(title, "title"), contents=contents.strip(),
                      doc_type=doc_type, covers_from=covers_from, covers_to=covers_to,
                      location=_text(location, "location"), state=PaperState.IN_PLACE, legal_hold=False,
                      created_by=principal.username, created_at=now())
    session.add(vol)
    session.flush()
    _event(session, principal, Kind.VOLUME_REGISTERED, vol, payloads.VolumeRegistered(
        volume_id=vol.id, kind=vol.kind, location=vol.location,
        covers_from=covers_from.isoformat() if covers_from else None,
        covers_to=covers_to.isoformat() if covers_to else None, doc_type=doc_type))
    return vol


def link_document(session: Session, principal: Principal, document_id: str, volume_id: str) -> DocumentVolume:
    """Record which volume a scanned document's paper came from (same child only)."""
    _keeper(principal)
    vol = _volume(session, volume_id)
    doc = session.get(Document, document_id)
    if doc is None:
        raise NotFound(f"no document {document_id}")
    if vol.child_id not in {c.child_id for c in doc.children}:
        raise InvalidState(f"document {document_id} is not filed to the child of volume {volume_id}")
    row = session.get(DocumentVolume, document_id)
    if row is None:
        row = DocumentVolume(document_id=document_id, volume_id=volume_id, recorded_by=principal.username,
                             recorded_at=now())
        session.add(row)
    else:
        row.volume_id, row.recorded_by, row.recorded_at = volume_id, principal.username, now()
    session.flush()
    record(session, ProtocolEvent(kind=Kind.VOLUME_LINKED, actor=principal.actor, document_id=document_id,
                                  batch_id=doc.batch_id, child_id=vol.child_id,
                                  parameters=payloads.VolumeLinked(volume_id=volume_id)))
    return row


# --- removal and movement ----------------------------------------------------------------------


def _manager(session: Session, username: str | None) -> User:
    name = _text(username, "authorised_by (the manager who authorised the removal)").lower()
    user = session.scalars(select(User).where(User.username == name)).first()
    if user is None or user.disabled or Role(user.role) not in MANAGERS:
        raise ProtocolViolation(f"{name} is not a manager who may authorise a removal of paper")
    return user


def book_out(session: Session, principal: Principal, volume_id: str, *, recipient: str, authorised_by: str,
             due_back: date, today: date | None = None) -> PaperMove:
    """Take a volume or original out of its place: a named manager's authority first, a due-back date."""
    _keeper(principal)
    vol = _volume(session, volume_id)
    if vol.state in LOSSES or vol.state == PaperState.DISPOSED:
        raise InvalidState(f"volume {volume_id} is {vol.state}")
    manager = _manager(session, authorised_by)
    if due_back < (today or now().date()):
        raise ValidationFailed("the due-back date has passed already")
    move = custody.move(session, vol.id, sender=vol.location, recipient=_text(recipient, "recipient"),
                        purpose="removal", recorded_by=principal.username, authorised_by=manager.username,
                        due_back=due_back)
    vol.state = PaperState.BOOKED_OUT
    _event(session, principal, Kind.PAPER_MOVED, vol, payloads.PaperMoved(
        volume_id=vol.id, kind=vol.kind, move_id=move.id, recipient=move.recipient, authorised_by=manager.username,
        due_back=due_back.isoformat()), outcome=PaperState.BOOKED_OUT)
    return move


def book_in(session: Session, principal: Principal, volume_id: str, *, to: str) -> PaperMove:
    """Send a booked-out volume back to a place; it is in place once the receiver confirms."""
    _keeper(principal)
    vol = _volume(session, volume_id)
    history = custody.custody(session, vol.id)
    if vol.state != PaperState.BOOKED_OUT or not history:
        raise InvalidState(f"volume {volume_id} is not booked out")
    return custody.move(session, vol.id, sender=history[-1].recipient, recipient=_text(to, "to"), purpose="return",
                        recorded_by=principal.username)


def confirm_arrival(session: Session, principal: Principal, move_id: int) -> PaperMove:
    """The receiving side confirms; whoever booked the move (or sent it) cannot."""
    if principal.role not in KEEPERS + (Role.CASEWORKER,):  # a caseworker may be the one receiving
        raise AccessDenied(f"the {principal.role} role does not handle paper files", code="role_forbidden")
    move = session.get(PaperMove, move_id)
    if move is None:
        raise NotFound(f"no paper move {move_id}")
    vol = _volume(session, move.paper_ref)
    if principal.username.casefold() == move.recorded_by.casefold():
        raise ProtocolViolation(f"{principal.username} booked move {move_id} and cannot confirm its arrival")
    row = custody.confirm(session, move_id, by=principal.username)
    vol.location = row.recipient
    if row.purpose == "return":
        vol.state = PaperState.IN_PLACE
    return row


def overdue(session: Session, principal: Principal, *, at: datetime | None = None) -> list[dict[str, Any]]:
    """Volumes and originals past their due-back date, or whose arrival is unconfirmed (for the
    team managers' and records managers' home pages)."""
    _keeper(principal)
    found = []
    for item in custody.open_moves(session, at=at):
        vol = session.get(PaperVolume, item.move.paper_ref)
        if vol is not None and principal.role is Role.TEAM_MANAGER:
            child = session.get(Child, vol.child_id)  # a team manager's list: their teams' children
            if child is None or child.team not in principal.teams:
                continue
        if vol is not None:
            found.append({**item.as_dict(), "child_id": vol.child_id, "title": vol.title, "kind": vol.kind})
    return found


# --- missing or stolen -------------------------------------------------------------------------


@dataclass(frozen=True)
class Notified:
    command: str  # ok | failed | not_configured
    email: str  # ok | failed | not_configured
    recipients: int

    def as_dict(self) -> dict[str, Any]:
        return {"command": self.command, "email": self.email, "recipients": self.recipients}


def notify(settings: Settings, subject: str, payload: dict[str, Any]) -> Notified:
    """Tell the configured people now: the alert command (payload as JSON on stdin) and e-mail.
    A failing channel is logged and reported, never raised: the report itself must stand."""
    command_result = "not_configured"
    if settings.provenance.alert_command:
        try:
            subprocess.run(settings.provenance.alert_command, input=json.dumps(payload).encode(), timeout=60,
                           check=True, capture_output=True)
            command_result = "ok"
        except (OSError, subprocess.SubprocessError) as exc:
            log.error("alert command failed for %s: %s", payload.get("incident_id"), type(exc).__name__)
            command_result = "failed"
    rec = settings.records
    email_result = "not_configured"
    if rec.smtp_host and rec.alert_recipients:
        message = EmailMessage()
        message["Subject"], message["From"], message["To"] = subject, rec.mail_from, ", ".join(rec.alert_recipients)
        message.set_content("\n".join(f"{k}: {v}" for k, v in payload.items()) + "\n")
        try:
            with smtplib.SMTP(rec.smtp_host, rec.smtp_port, timeout=rec.smtp_timeout_s) as smtp:
                if rec.smtp_starttls:
                    smtp.starttls()
                if rec.smtp_username and rec.smtp_password:
                    smtp.login(rec.smtp_username, rec.smtp_password.get_secret_value())
                smtp.send_message(message)
            email_result = "ok"
        except (OSError, smtplib.SMTPException) as exc:
            log.error("alert e-mail failed for %s: %s", payload.get("incident_id"), type(exc).__name__)
            email_result = "failed"
    return Notified(command_result, email_result, len(rec.alert_recipients))


def report_loss(services: Services, principal: Principal, volume_id: str, *, kind: str,
                description: str) -> PaperIncident:
    """One action: the volume is marked missing or stolen, an incident opens, people are told."""
    if kind not in LOSSES:
        raise ValidationFailed(f"kind is one of {', '.join(LOSSES)}")
    if principal.role not in KEEPERS + (Role.CASEWORKER,):
        raise AccessDenied(f"the {principal.role} role does not handle paper files", code="role_forbidden")
    with services.db.session() as session:
        vol = _volume(session, volume_id)
        if principal.role is Role.CASEWORKER:
            child_grant(session, principal, vol.child_id)  # a caseworker of the child may report it
        if session.scalars(select(PaperIncident).where(PaperIncident.volume_id == volume_id,
                                                       PaperIncident.closed_at.is_(None))).first():
            raise InvalidState(f"volume {volume_id} already has an open incident")
        incident = PaperIncident(volume_id=vol.id, child_id=vol.child_id, kind=kind,
                                 description=_text(description, "description"), reported_by=principal.username,
                                 reported_at=now(), notified={})
        session.add(incident)
        vol.state = kind
        session.flush()
        _event(session, principal, Kind.PAPER_INCIDENT, vol,
               payloads.PaperIncident(volume_id=vol.id, kind=vol.kind, incident_id=incident.id), outcome=kind)
        payload = {"incident_id": incident.id, "what": f"paper {vol.kind} reported {kind}", "volume_id": vol.id,
                   "child_id": vol.child_id, "reported_by": principal.username,
                   "reported_at": incident.reported_at.isoformat(), "last_known_location": vol.location}
        incident_id = incident.id
    result = notify(services.settings, f"escr: paper {kind} (incident {incident_id}, volume {volume_id})", payload)
    with services.db.session() as session:
        opened = session.get(PaperIncident, incident_id)
        assert opened is not None
        opened.notified = result.as_dict()
        record(session, ProtocolEvent(kind=Kind.PAPER_INCIDENT_FOLLOW_UP, actor=Actor.system(),
                                      child_id=opened.child_id, outcome="notified",
                                      parameters=payloads.PaperIncidentFollowUp(
                                          incident_id=incident_id, command=result.command, email=result.email,
                                          recipients=result.recipients)))
        session.flush()
        session.expunge(opened)
    return opened


def follow_up(session: Session, principal: Principal, incident_id: int, note: str) -> IncidentFollowUp:
    _keeper(principal)
    incident = _open_incident(session, incident_id)
    row = IncidentFollowUp(incident_id=incident.id, note=_text(note, "note"), by=principal.username, at=now())
    session.add(row)
    session.flush()
    record(session, ProtocolEvent(kind=Kind.PAPER_INCIDENT_FOLLOW_UP, actor=principal.actor, child_id=incident.child_id,
                                  parameters=payloads.PaperIncidentFollowUp(incident_id=incident.id,
                                                                            follow_up_id=row.id)))
    return row


def close_incident(session: Session, principal: Principal, incident_id: int, *, outcome: str,
                   location: str | None = None) -> PaperIncident:
    """Closed by a manager; a found volume is back in place at `location`."""
    if principal.role not in MANAGERS:
        raise AccessDenied("only a team manager or records manager closes a paper incident", code="role_forbidden")
    if outcome not in OUTCOMES:
        raise ValidationFailed(f"outcome is one of {', '.join(OUTCOMES)}")
    incident = _open_incident(session, incident_id)
    vol = _volume(session, incident.volume_id)
    if outcome in ("found", "recovered"):
        vol.location, vol.state = _text(location, "location (where the paper is now)"), PaperState.IN_PLACE
    incident.closed_by, incident.closed_at, incident.outcome = principal.username, now(), outcome
    _event(session, principal, Kind.PAPER_INCIDENT_CLOSED, vol,
           payloads.PaperIncident(volume_id=vol.id, kind=vol.kind, incident_id=incident.id), outcome=outcome)
    return incident


def _open_incident(session: Session, incident_id: int) -> PaperIncident:
    incident = session.get(PaperIncident, incident_id)
    if incident is None:
        raise NotFound(f"no paper incident {incident_id}")
    if incident.closed_at is not None:
        raise InvalidState(f"incident {incident_id} is closed")
    return incident


# --- the child's record: every component and where it is ----------------------------------------


def components(session: Session, principal: Principal, child_id: str) -> dict[str, Any]:
    """Electronic documents, paper volumes and originals of a child, where each one is now, and
    the open paper incidents (shown until closed)."""
    child_grant(session, principal, child_id)
    vols = session.scalars(select(PaperVolume).where(PaperVolume.child_id == child_id)
                           .order_by(PaperVolume.covers_from, PaperVolume.id)).all()
    docs = session.scalars(select(Document).join(DocumentChild).where(DocumentChild.child_id == child_id)
                           .order_by(Document.doc_date, Document.id)).all()
    from_volume = dict(session.execute(select(DocumentVolume.document_id, DocumentVolume.volume_id)
                                       .where(DocumentVolume.document_id.in_([d.id for d in docs]))).all())
    incidents = session.scalars(select(PaperIncident).where(PaperIncident.child_id == child_id,
                                                            PaperIncident.closed_at.is_(None))
                                .order_by(PaperIncident.id)).all()
    return {
        "child_id": child_id,
        "documents": [{"id": d.id, "doc_type": d.doc_type, "doc_date": d.doc_date.isoformat() if d.doc_date else None,
                       "state": d.state, "location": "electronic record", "volume_id": from_volume.get(d.id)}
                      for d in docs],
        "paper": [volume_dict(v) for v in vols],
        "open_incidents": [incident_dict(i) for i in incidents],
    }


def volume_dict(v: PaperVolume) -> dict[str, Any]:
    return {"id": v.id, "kind": v.kind, "title": v.title, "contents": v.contents, "doc_type": v.doc_type,
            "covers_from": v.covers_from.isoformat() if v.covers_from else None,
            "covers_to": v.covers_to.isoformat() if v.covers_to else None, "location": v.location, "state": v.state}


def incident_dict(i: PaperIncident) -> dict[str, Any]:
    return {"id": i.id, "volume_id": i.volume_id, "child_id": i.child_id, "kind": i.kind, "reported_by": i.reported_by,
            "reported_at": i.reported_at.isoformat(), "notified": i.notified,
            "follow_ups": [{"note": f.note, "by": f.by, "at": f.at.isoformat()} for f in i.follow_ups],
            "closed_at": i.closed_at.isoformat() if i.closed_at else None, "outcome": i.outcome}


def move_dict(m: PaperMove) -> dict[str, Any]:
    return {"move_id": m.id, "paper_ref": m.paper_ref, "sender": m.sender, "recipient": m.recipient,
            "purpose": m.purpose, "authorised_by": m.authorised_by, "recorded_by": m.recorded_by,
            "due_back": m.due_back.isoformat() if m.due_back else None, "moved_at": m.moved_at.isoformat(),
            "confirmed_by": m.confirmed_by, "confirmed_at": m.confirmed_at.isoformat() if m.confirmed_at else None}


def volume_detail(session: Session, principal: Principal, volume_id: str) -> dict[str, Any]:
    """One volume or original: where it is, every move it made, its incidents (open and closed),
    and the scanned documents whose paper came from it."""
    if principal.role not in KEEPERS + (Role.CASEWORKER,):
        raise AccessDenied(f"the {principal.role} role does not handle paper files", code="role_forbidden")
    vol = _volume(session, volume_id)
    child_grant(session, principal, vol.child_id)
    incidents = session.scalars(select(PaperIncident).where(PaperIncident.volume_id == vol.id)
                                .order_by(PaperIncident.id.desc())).all()
    docs = session.scalars(select(DocumentVolume.document_id).where(DocumentVolume.volume_id == vol.id)
                           .order_by(DocumentVolume.document_id)).all()
    return {**volume_dict(vol), "child_id": vol.child_id, "created_by": vol.created_by,
            "created_at": vol.created_at.isoformat(),
            "moves": [move_dict(m) for m in custody.custody(session, vol.id)],
            "incidents": [{**incident_dict(i), "description": i.description} for i in incidents],
            "documents": list(docs)}


def open_incidents(session: Session, principal: Principal) -> list[dict[str, Any]]:
    """Every open missing-or-stolen incident, for the paper page of those who keep the files."""
    _keeper(principal)
    rows = session.scalars(select(PaperIncident).where(PaperIncident.closed_at.is_(None))
                           .order_by(PaperIncident.reported_at)).all()
    return [incident_dict(i) for i in rows]
