"""Pages for the record as the seeds keep it (issue 19): the child's status history, paper file
and file examinations (forms posted from the child's record), the paper desk (arrival dates,
overdue volumes, open incidents, cover sheets not scanned), a volume's page, the batch
manifest, the timeliness report, disposal and the scanner check.

Each route parses the form, calls `escr.app.keeping` (the same front door as the CLI), and
redirects with a notice holding ids only; the rules of `escr.app` decide who may do what.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response

from escr import clock
from escr.app.access import Principal
from escr.app.keeping import Keeping
from escr.app.operations import parse_date
from escr.errors import ValidationFailed
from escr.web.audit_charts import bars
from escr.web.auth import current_principal, services_of
from escr.web.pages import back, notice, render

router = APIRouter(include_in_schema=False)


def keeping(request: Request, principal: Annotated[Principal, Depends(current_principal)]) -> Keeping:
    return Keeping(services_of(request), principal)


Keep = Annotated[Keeping, Depends(keeping)]


def _required_date(value: str, field: str) -> date:
    day = parse_date(value, field)
    if day is None:
        raise ValidationFailed(f"required: {field}")
    return day


# --- on the child's record ----------------------------------------------------------------------


@router.post("/children/{child_id}/statuses")
def add_status(request: Request, k: Keep, child_id: str, status: Annotated[str, Form()],
               from_date: Annotated[str, Form()] = "", to_date: Annotated[str, Form()] = "",
               on_date: Annotated[str, Form()] = "") -> Response:
    result = k.add_status(child_id, status=status, from_date=parse_date(from_date, "from"),
                          to_date=parse_date(to_date, "to"), on_date=parse_date(on_date, "date"))
    changed = result["retention_changes"]
    notice(request, f"Status added to {child_id}'s history; {changed} document retention date"
                    f"{'' if changed == 1 else 's'} recomputed.")
    return back(f"/children/{child_id}#status-history")


@router.post("/children/{child_id}/examinations")
def add_examination(request: Request, k: Keep, child_id: str, kind: Annotated[str, Form()],
                    purpose: Annotated[str, Form()], notes: Annotated[str, Form()] = "",
                    examined_on: Annotated[str, Form()] = "") -> Response:
    row = k.examine(child_id, kind=kind, purpose=purpose, notes=notes,
                    examined_on=parse_date(examined_on, "date of the examination"))
    notice(request, f"Examination {row['id']} recorded on {child_id}'s file.")
    return back(f"/children/{child_id}#examinations")


@router.post("/children/{child_id}/volumes")
def register_volume(request: Request, k: Keep, child_id: str, volume_id: Annotated[str, Form()],
                    kind: Annotated[str, Form()], title: Annotated[str, Form()], location: Annotated[str, Form()],
                    contents: Annotated[str, Form()] = "", doc_type: Annotated[str, Form()] = "",
                    covers_from: Annotated[str, Form()] = "", covers_to: Annotated[str, Form()] = "") -> Response:
    vol = k.register_volume(volume_id=volume_id.strip(), child_id=child_id, kind=kind, title=title, location=location,
                            contents=contents, doc_type=doc_type.strip() or None,
                            covers_from=parse_date(covers_from, "first date"),
                            covers_to=parse_date(covers_to, "last date"))
    notice(request, f"{vol['id']} registered on {child_id}'s file.")
    return back(f"/paper/volumes/{vol['id']}")


# --- the paper desk and a volume's page ------------------------------------------------------------


@router.get("/paper/files")
def paper_desk(request: Request, k: Keep) -> Response:
    may = k.may()
    if not may["keep_paper"]:
        k.overdue()  # raises the role's refusal
    return render(request, "paper.html", may=may, overdue=k.overdue(), incidents=k.open_incidents(),
                  unscanned=k.unscanned(), arrivals=k.recent_arrivals() if may["record_arrival"] else [],
                  today=clock.today(services_of(request).settings.web.timezone).isoformat())


@router.post("/paper/arrivals")
def record_arrival(request: Request, k: Keep, ref: Annotated[str, Form()], arrived_on: Annotated[str, Form()],
                   source: Annotated[str, Form()] = "officer") -> Response:
    row = k.record_arrival(ref, _required_date(arrived_on, "arrival date"), source=source)
    notice(request, f"Arrival of {row['ref']} recorded.")
    return back("/paper/files#arrivals")


@router.get("/paper/volumes/{volume_id}")
def volume(request: Request, k: Keep, volume_id: str) -> Response:
    return render(request, "volume.html", v=k.volume(volume_id), may=k.may(), me_name=k.p.username)


@router.post("/paper/volumes/{volume_id}/book-out")
def book_out(request: Request, k: Keep, volume_id: str, recipient: Annotated[str, Form()],
             authorised_by: Annotated[str, Form()], due_back: Annotated[str, Form()]) -> Response:
    m = k.book_out(volume_id, recipient=recipient, authorised_by=authorised_by,
                   due_back=_required_date(due_back, "due-back date"))
    notice(request, f"{volume_id} booked out (move {m['move_id']}); the receiver confirms arrival.")
    return back(f"/paper/volumes/{volume_id}")


@router.post("/paper/volumes/{volume_id}/book-in")
def book_in(request: Request, k: Keep, volume_id: str, to: Annotated[str, Form()]) -> Response:
    m = k.book_in(volume_id, to=to)
    notice(request, f"{volume_id} on its way back (move {m['move_id']}); the receiver confirms arrival.")
    return back(f"/paper/volumes/{volume_id}")


@router.post("/paper/volumes/{volume_id}/link")
def link_document(request: Request, k: Keep, volume_id: str, document_id: Annotated[str, Form()]) -> Response:
    k.link_document(document_id.strip(), volume_id)
    notice(request, f"Document {document_id.strip()} recorded as from {volume_id}.")
    return back(f"/paper/volumes/{volume_id}")


@router.post("/paper/volumes/{volume_id}/loss")
def report_loss(request: Request, k: Keep, volume_id: str, kind: Annotated[str, Form()],
                description: Annotated[str, Form()]) -> Response:
    r = k.report_loss(volume_id, kind=kind, description=description)
    told = r["notified"]
    ok = [w for w, key in (("the alert command", "command"), ("e-mail", "email")) if told.get(key) == "ok"]
    failed = [w for w, key in (("the alert command", "command"), ("e-mail", "email")) if told.get(key) == "failed"]
    text = f"Incident {r['incident_id']} opened: {volume_id} reported {kind}."
    text += f" Told at once by {' and '.join(ok)}." if ok else " Nobody could be told automatically."
    if failed:
        text += f" {' and '.join(failed).capitalize()} failed: tell the records manager yourself."
    notice(request, text, "ok" if ok and not failed else "warn")
    return back(f"/paper/volumes/{volume_id}")


@router.post("/paper/moves/{move_id}/confirm")
def confirm_move(request: Request, k: Keep, move_id: int, volume_id: Annotated[str, Form()] = "") -> Response:
    m = k.confirm_move(move_id)
    notice(request, f"Arrival of move {move_id} at {m['recipient']} confirmed.")
    return back(f"/paper/volumes/{m['paper_ref']}")


@router.post("/paper/incidents/{incident_id}/follow-ups")
def follow_up(request: Request, k: Keep, incident_id: int, note: Annotated[str, Form()],
              volume_id: Annotated[str, Form()] = "") -> Response:
    k.follow_up(incident_id, note)
    notice(request, f"Follow-up added to incident {incident_id}.")
    return back(f"/paper/volumes/{volume_id}" if volume_id else "/paper/files")


@router.post("/paper/incidents/{incident_id}/close")
def close_incident(request: Request, k: Keep, incident_id: int, outcome: Annotated[str, Form()],
                   location: Annotated[str, Form()] = "") -> Response:
    i = k.close_incident(incident_id, outcome=outcome, location=location.strip() or None)
    notice(request, f"Incident {incident_id} closed.")
    return back(f"/paper/volumes/{i['volume_id']}")


# --- cover-sheet register and batch manifest --------------------------------------------------------


@router.get("/coversheets/{cover_batch_id}")
def manifest(request: Request, k: Keep, cover_batch_id: str) -> Response:
    return render(request, "manifest.html", m=k.manifest(cover_batch_id))


@router.post("/coversheets/{cover_batch_id}/missing")
def list_missing(request: Request, k: Keep, cover_batch_id: str, description: Annotated[str, Form()],
                 pages: Annotated[str, Form()] = "") -> Response:
    count = pages.strip()
    if count and not count.isdigit():
        raise ValidationFailed("pages is a whole number")
    k.list_missing(cover_batch_id, description=description, pages=int(count) if count else None)
    notice(request, f"Missing item listed for batch {cover_batch_id}.")
    return back(f"/coversheets/{cover_batch_id}")


# --- timeliness ---------------------------------------------------------------------------------------


@router.get("/timeliness")
def timeliness(request: Request, k: Keep, month: str = "") -> Response:
    report = k.timeliness(month)
    label = date.fromisoformat(report["month"] + "-01").strftime("%B %Y")
    teams = report["teams"]
    chart = bars(f"Working days from arrival to verified, per team, paper that arrived in {label}",
                 [t["team"] for t in teams], [("Median", [t["median_days"] or 0 for t in teams]),
                                              ("90th percentile", [t["p90_days"] or 0 for t in teams])],
                 stacked=False, ident="timeliness-title", target=("Target", report["target_working_days"])) \
        if teams else ""
    return render(request, "timeliness.html", r=report, month_label=label, chart=chart)


@router.get("/timeliness.csv")
def timeliness_csv(k: Keep, month: str = "") -> Response:
    report = k.timeliness(month)
    return Response(report["csv"], media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="timeliness-{report["month"]}.csv"'})


# --- disposal -----------------------------------------------------------------------------------------


@router.get("/disposal")
def disposal(request: Request, k: Keep) -> Response:
    return render(request, "disposal.html", d=k.disposal_overview(), may=k.may(), me_name=k.p.username)


@router.post("/disposal/proposals")
def propose(request: Request, k: Keep, reason: Annotated[str, Form()],
            items: Annotated[list[str] | None, Form()] = None) -> Response:
    chosen = []
    for item in items or []:
        kind, _, item_id = item.partition(":")
        chosen.append((kind, item_id))
    if not chosen:
        raise ValidationFailed("tick at least one record to propose")
    p = k.propose_disposal(chosen, reason=reason)
    notice(request, f"Disposal proposal {p['proposal_id']} made; a second person must approve it.")
    return back("/disposal#proposals")


@router.post("/disposal/proposals/{proposal_id}/decision")
def decide(request: Request, k: Keep, proposal_id: int, decision: Annotated[str, Form()],
           note: Annotated[str, Form()]) -> Response:
    if decision not in ("approve", "refuse"):
        raise ValidationFailed("decide approve or refuse")
    p = k.decide_disposal(proposal_id, approve=decision == "approve", note=note)
    notice(request, f"Disposal proposal {proposal_id} {p['state']}.")
    return back("/disposal#proposals")


@router.post("/disposal/proposals/{proposal_id}/carry-out")
def carry_out(request: Request, k: Keep, proposal_id: int) -> Response:
    r = k.carry_out_disposal(proposal_id)
    waiting = len(r["waiting"])
    notice(request, f"Proposal {proposal_id}: {len(r['disposed'])} record(s) disposed of"
                    + (f", {waiting} waiting (locked or held)." if waiting else "."), "warn" if waiting else "ok")
    return back("/disposal#proposals")


@router.post("/disposal/holds")
def set_hold(request: Request, k: Keep, hold_class: Annotated[str, Form(alias="class")],
             reason: Annotated[str, Form()]) -> Response:
    scope, _, value = hold_class.partition(":")  # one list of every class: "doc_type:court_order", "status:cla"
    h = k.set_hold(scope=scope, value=value, reason=reason)
    notice(request, f"Category hold {h['hold_id']} set: nothing of it will be disposed of.")
    return back("/disposal#holds")


@router.post("/disposal/holds/{hold_id}/release")
def release_hold(request: Request, k: Keep, hold_id: int, reason: Annotated[str, Form()]) -> Response:
    k.release_hold(hold_id, reason=reason)
    notice(request, f"Category hold {hold_id} released.")
    return back("/disposal#holds")


# --- scanner check -------------------------------------------------------------------------------------


@router.get("/scanner-checks")
def scanner_checks(request: Request, k: Keep) -> Response:
    return render(request, "scanner_checks.html", checks=k.scanner_checks()[:60], may=k.may())


@router.get("/scanner-checks/target.pdf")
def scanner_target(k: Keep) -> Response:
    return Response(k.scanner_target(), media_type="application/pdf",
                    headers={"Content-Disposition": 'attachment; filename="escr-scanner-target.pdf"'})


@router.post("/scanner-checks")
def run_scanner_check(request: Request, k: Keep, device: Annotated[str, Form()] = "",
                      scan: Annotated[UploadFile | None, File()] = None) -> Response:
    """A form sent without a file reaches the rules too (they refuse the role, or ask for the scan)."""
    suffix = Path(scan.filename or "scan").suffix.lower()[:8] if scan is not None else ""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"target{suffix}"
        with open(path, "wb") as out:
            if scan is not None:
                shutil.copyfileobj(scan.file, out)
        r = k.run_scanner_check(device, path)
    if r["passed"]:
        notice(request, f"Scanner check {r['id']} of {r['device']} passed.")
    else:
        notice(request, f"Scanner check {r['id']} of {r['device']} failed: {'; '.join(r['failures'])}.", "warn")
    return back("/scanner-checks")
