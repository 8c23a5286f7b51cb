"""REST API (`/api/v1`) for the record as the seeds keep it (issue 19): status history, paper
volumes and originals, losses, disposal, timeliness and file examinations.

Each route parses its input, calls the application layer (`escr.app.paper`, `disposal`,
`timeliness`, `records`), which checks the role and need-to-know, and returns JSON. Errors are
the app's JSON errors with stable codes.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field

from escr.app import coversheets, disposal, paper, records, scanner_checks, timeliness
from escr.app.access import Principal
from escr.services import Services
from escr.web.auth import current_principal, services_of

router = APIRouter(prefix="/api/v1", tags=["records"])

Who = Annotated[Principal, Depends(current_principal)]


def _services(request: Request) -> Services:
    return services_of(request)


Svc = Annotated[Services, Depends(_services)]
Text = Annotated[str, Field(min_length=1, max_length=2000)]


# --- status history and file examinations ------------------------------------------------------


class StatusEntry(BaseModel):
    status: str = Field(min_length=1, max_length=32)
    from_date: date | None = None
    to_date: date | None = None
    on_date: date | None = None


@router.get("/children/{child_id}/statuses")
def get_statuses(child_id: str, who: Who, svc: Svc) -> dict[str, Any]:
    with svc.db.session() as session:
        return {"child_id": child_id, "statuses": records.status_history(session, who, child_id)}


@router.post("/children/{child_id}/statuses", status_code=201)
def add_status(child_id: str, body: StatusEntry, who: Who, svc: Svc) -> dict[str, Any]:
    return records.add_child_status(svc, who, child_id, status=body.status, from_date=body.from_date,
                                    to_date=body.to_date, on_date=body.on_date)


class Examination(BaseModel):
    kind: Literal["supervision", "review", "audit"]
    purpose: Text
    notes: str = Field(default="", max_length=20000)
    examined_on: date | None = None


@router.get("/children/{child_id}/examinations")
def get_examinations(child_id: str, who: Who, svc: Svc) -> dict[str, Any]:
    with svc.db.session() as session:
        return {"child_id": child_id, "examinations": records.examinations(session, who, child_id)}


@router.post("/children/{child_id}/examinations", status_code=201)
def add_examination(child_id: str, body: Examination, who: Who, svc: Svc) -> dict[str, Any]:
    with svc.db.session() as session:
        row = records.examine(session, who, child_id, kind=body.kind, purpose=body.purpose, notes=body.notes,
                              examined_on=body.examined_on)
        return {"id": row.id, "child_id": child_id, "kind": row.kind, "examined_on": row.examined_on.isoformat()}


# --- paper volumes and originals ---------------------------------------------------------------


@router.get("/children/{child_id}/components")
def get_components(child_id: str, who: Who, svc: Svc) -> dict[str, Any]:
    with svc.db.session() as session:
        return paper.components(session, who, child_id)


class Volume(BaseModel):
    id: str = Field(min_length=1, max_length=64)
    child_id: str = Field(min_length=1, max_length=64)
    kind: Literal["volume", "original"]
    title: Text
    location: Text
    contents: str = Field(default="", max_length=20000)
    doc_type: str | None = Field(default=None, max_length=64)
    covers_from: date | None = None
    covers_to: date | None = None


@router.post("/paper/volumes", status_code=201)
def register_volume(body: Volume, who: Who, svc: Svc) -> dict[str, Any]:
    with svc.db.session() as session:
        vol = paper.register(session, who, volume_id=body.id, child_id=body.child_id, kind=body.kind, title=body.title,
                             location=body.location, contents=body.contents, doc_type=body.doc_type,
                             covers_from=body.covers_from, covers_to=body.covers_to)
        return paper.volume_dict(vol)


class VolumeLink(BaseModel):
    volume_id: str = Field(min_length=1, max_length=64)


@router.get("/paper/volumes/{volume_id}")
def get_volume(volume_id: str, who: Who, svc: Svc) -> dict[str, Any]:
    """One volume or original: where it is, its moves, incidents and the documents from it."""
    with svc.db.session() as session:
        return paper.volume_detail(session, who, volume_id)


@router.get("/paper/incidents")
def get_open_incidents(who: Who, svc: Svc) -> dict[str, Any]:
    """Every volume or original reported missing or stolen whose incident is still open."""
    with svc.db.session() as session:
        return {"items": paper.open_incidents(session, who)}


@router.put("/documents/{doc_id}/volume")
def link_volume(doc_id: str, body: VolumeLink, who: Who, svc: Svc) -> dict[str, Any]:
    with svc.db.session() as session:
        paper.link_document(session, who, doc_id, body.volume_id)
        return {"document_id": doc_id, "volume_id": body.volume_id}


class BookOut(BaseModel):
    recipient: Text
    authorised_by: Text
    due_back: date


def _move(m: Any) -> dict[str, Any]:
    return {"move_id": m.id, "paper_ref": m.paper_ref, "sender": m.sender, "recipient": m.recipient,
            "purpose": m.purpose, "authorised_by": m.authorised_by,
            "due_back": m.due_back.isoformat() if m.due_back else None,
            "confirmed_by": m.confirmed_by}


@router.post("/paper/volumes/{volume_id}/book-out", status_code=201)
def book_out(volume_id: str, body: BookOut, who: Who, svc: Svc) -> dict[str, Any]:
    with svc.db.session() as session:
        return _move(paper.book_out(session, who, volume_id, recipient=body.recipient,
                                    authorised_by=body.authorised_by, due_back=body.due_back))


class BookIn(BaseModel):
    to: Text


@router.post("/paper/volumes/{volume_id}/book-in", status_code=201)
def book_in(volume_id: str, body: BookIn, who: Who, svc: Svc) -> dict[str, Any]:
    with svc.db.session() as session:
        return _move(paper.book_in(session, who, volume_id, to=body.to))


@router.post("/paper/moves/{move_id}/confirm")
def confirm(move_id: int, who: Who, svc: Svc) -> dict[str, Any]:
    with svc.db.session() as session:
        return _move(paper.confirm_arrival(session, who, move_id))


@router.get("/paper/overdue")
def overdue(who: Who, svc: Svc) -> dict[str, Any]:
    with svc.db.session() as session:
        return {"items": paper.overdue(session, who)}


class Loss(BaseModel):
    kind: Literal["missing", "stolen"]
    description: Text


@router.post("/paper/volumes/{volume_id}/loss", status_code=201)
def report_loss(volume_id: str, body: Loss, who: Who, svc: Svc) -> dict[str, Any]:
    incident = paper.report_loss(svc, who, volume_id, kind=body.kind, description=body.description)
    return {"incident_id": incident.id, "volume_id": volume_id, "kind": incident.kind, "notified": incident.notified}


class Note(BaseModel):
    note: Text


@router.post("/paper/incidents/{incident_id}/follow-ups", status_code=201)
def follow_up(incident_id: int, body: Note, who: Who, svc: Svc) -> dict[str, Any]:
    with svc.db.session() as session:
        row = paper.follow_up(session, who, incident_id, body.note)
        return {"incident_id": incident_id, "follow_up_id": row.id}


class Close(BaseModel):
    outcome: Literal["found", "recovered", "not_found"]
    location: str | None = Field(default=None, max_length=200)


@router.post("/paper/incidents/{incident_id}/close")
def close_incident(incident_id: int, body: Close, who: Who, svc: Svc) -> dict[str, Any]:
    with svc.db.session() as session:
        return paper.incident_dict(paper.close_incident(session, who, incident_id, outcome=body.outcome,
                                                        location=body.location))


# --- disposal ------------------------------------------------------------------------------------


@router.get("/disposal/review")
def review(who: Who, svc: Svc) -> dict[str, Any]:
    with svc.db.session() as session:
        return {"items": [c.as_dict() for c in disposal.review_list(session, who, svc.retention)]}


class Item(BaseModel):
    kind: Literal["document", "volume"]
    id: str = Field(min_length=1, max_length=64)


class Proposal(BaseModel):
    items: list[Item] = Field(min_length=1, max_length=1000)
    reason: Text


@router.post("/disposal/proposals", status_code=201)
def propose(body: Proposal, who: Who, svc: Svc) -> dict[str, Any]:
    with svc.db.session() as session:
        p = disposal.propose(session, who, svc.retention, [(i.kind, i.id) for i in body.items], reason=body.reason)
        return {"proposal_id": p.id, "state": p.state, "items": p.items}


class Decision(BaseModel):
    approve: bool
    note: Text


@router.post("/disposal/proposals/{proposal_id}/decision")
def decide(proposal_id: int, body: Decision, who: Who, svc: Svc) -> dict[str, Any]:
    with svc.db.session() as session:
        p = disposal.decide(session, who, proposal_id, approve=body.approve, note=body.note)
        return {"proposal_id": p.id, "state": p.state, "decided_by": p.decided_by}


@router.post("/disposal/proposals/{proposal_id}/carry-out")
def carry_out(proposal_id: int, who: Who, svc: Svc) -> dict[str, Any]:
    return disposal.carry_out(svc, who, proposal_id).as_dict()


@router.get("/disposal/proposals")
def get_proposals(who: Who, svc: Svc) -> dict[str, Any]:
    with svc.db.session() as session:
        return {"items": disposal.proposals(session, who)}


@router.get("/disposal/holds")
def get_holds(who: Who, svc: Svc) -> dict[str, Any]:
    """The category-wide holds in force."""
    with svc.db.session() as session:
        return {"items": disposal.holds(session, who)}


@router.get("/disposal/tombstones")
def get_tombstones(who: Who, svc: Svc, item_id: str | None = None) -> dict[str, Any]:
    with svc.db.session() as session:
        return {"items": disposal.tombstones(session, who, item_id=item_id)}


class Hold(BaseModel):
    scope: Literal["doc_type", "status"]
    value: str = Field(min_length=1, max_length=64)
    reason: Text


@router.post("/disposal/holds", status_code=201)
def set_hold(body: Hold, who: Who, svc: Svc) -> dict[str, Any]:
    with svc.db.session() as session:
        h = disposal.set_category_hold(session, who, scope=body.scope, value=body.value, reason=body.reason,
                                       known_types=svc.doctypes.types)
        return {"hold_id": h.id, "scope": h.scope, "value": h.value}


class Release(BaseModel):
    reason: Text


@router.post("/disposal/holds/{hold_id}/release")
def release_hold(hold_id: int, body: Release, who: Who, svc: Svc) -> dict[str, Any]:
    with svc.db.session() as session:
        h = disposal.release_category_hold(session, who, hold_id, reason=body.reason)
        return {"hold_id": h.id, "released_by": h.released_by}


# --- timeliness ----------------------------------------------------------------------------------


class Arrival(BaseModel):
    ref: str = Field(min_length=1, max_length=64)
    arrived_on: date
    source: Literal["cover_stamp", "officer"] = "officer"


@router.post("/paper/arrivals", status_code=201)
def record_arrival(body: Arrival, who: Who, svc: Svc) -> dict[str, Any]:
    with svc.db.session() as session:
        row = timeliness.record_arrival(session, who, body.ref, body.arrived_on, source=body.source)
        return {"ref": row.ref, "arrived_on": row.arrived_on.isoformat(), "source": row.source}


@router.get("/paper/arrivals")
def get_arrivals(who: Who, svc: Svc, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict[str, Any]:
    """The arrival dates recorded last, newest first (an officer's entries and read stamps)."""
    with svc.db.session() as session:
        return {"items": timeliness.recent_arrivals(session, who, limit=limit)}


@router.get("/reports/timeliness", response_model=None)
def timeliness_report(who: Who, svc: Svc, month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$")],
                      format: Literal["json", "csv"] = "json") -> dict[str, Any] | Response:
    rec = svc.settings.records
    with svc.db.session() as session:
        rows = timeliness.report(session, who, month, target=rec.target_working_days, oldest=rec.oldest_waiting)
    if format == "csv":
        return Response(timeliness.report_csv(rows), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="timeliness-{month}.csv"'})
    return {"month": month, "target_working_days": rec.target_working_days, "teams": [r.as_dict() for r in rows]}


# --- cover-sheet register and batch manifest -----------------------------------------------------


@router.get("/coversheets/unscanned")
def unscanned(who: Who, svc: Svc, days: Annotated[int | None, Query(ge=0)] = None) -> dict[str, Any]:
    wait = svc.settings.records.unscanned_after_days if days is None else days
    with svc.db.session() as session:
        return {"days": wait, "items": coversheets.unscanned(session, who, days=wait)}


@router.get("/coversheets/{cover_batch_id}/manifest")
def get_manifest(cover_batch_id: str, who: Who, svc: Svc) -> dict[str, Any]:
    with svc.db.session() as session:
        return coversheets.manifest(session, who, cover_batch_id)


class Missing(BaseModel):
    description: Text
    pages: int | None = Field(default=None, ge=1)


@router.post("/coversheets/{cover_batch_id}/missing", status_code=201)
def list_missing(cover_batch_id: str, body: Missing, who: Who, svc: Svc) -> dict[str, Any]:
    with svc.db.session() as session:
        return coversheets.list_missing(session, who, cover_batch_id, description=body.description, pages=body.pages)


# --- scanner checks ------------------------------------------------------------------------------


@router.get("/scanner-checks/target")
def scanner_target(who: Who) -> Response:
    """The test target to print (any signed-in person may print it)."""
    return Response(scanner_checks.printable_target(), media_type="application/pdf",
                    headers={"Content-Disposition": 'attachment; filename="escr-scanner-target.pdf"'})


@router.get("/scanner-checks")
def list_scanner_checks(who: Who, svc: Svc, device: str | None = None) -> dict[str, Any]:
    with svc.db.session() as session:
        return {"items": scanner_checks.checks(session, who, device=device)}


@router.post("/scanner-checks", status_code=201)
def run_scanner_check(who: Who, svc: Svc, device: Annotated[str, Form(min_length=1, max_length=128)],
                      scan: Annotated[UploadFile, File()]) -> dict[str, Any]:
    """Upload the scanned target of `device`; it is measured and logged for today."""
    suffix = Path(scan.filename or "scan").suffix.lower()[:8]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"target{suffix}"
        with open(path, "wb") as out:
            shutil.copyfileobj(scan.file, out)
        check = scanner_checks.run_check(svc, who, device=device, path=path)
    return {"id": check.id, "device": check.device, "day": check.day.isoformat(), "passed": check.passed,
            "measures": check.measures, "failures": check.failures}
