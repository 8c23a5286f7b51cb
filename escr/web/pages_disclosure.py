"""The disclosure officer's pages (issue 18): requests, the redaction tool, review, export and
the log of copies given. Plain HTML forms; `static/disclosure.js` adds drawing boxes with the
mouse or the keyboard on top of the same forms. Every rule is in `escr.app.disclosure`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import FileResponse, Response, StreamingResponse

from escr.app import labels
from escr.app.access import Principal
from escr.app.disclosure import BASES, METHODS, Disclosures, parse_ref
from escr.app.operations import parse_date
from escr.errors import ValidationFailed
from escr.web.auth import current_principal, services_of
from escr.web.pages import _chunks, back, notice, render

router = APIRouter(include_in_schema=False)


def _disclosures(request: Request, principal: Annotated[Principal, Depends(current_principal)]) -> Disclosures:
    return Disclosures(services_of(request), principal)


D = Annotated[Disclosures, Depends(_disclosures)]


def _percent(value: str, what: str) -> float:
    try:
        number = float(value.strip().rstrip("%"))
    except ValueError:
        raise ValidationFailed(f"the {what} edge must be a number from 0 to 100", code="validation_failed") from None
    return number / 100.0



@router.get("/disclosures")
def disclosures(request: Request, d: D) -> Response:
    return render(request, "disclosure/list.html", requests=d.requests(), bases=BASES)


@router.post("/disclosures")
def open_request(request: Request, d: D, requester: Annotated[str, Form()], relationship: Annotated[str, Form()],
                 basis: Annotated[str, Form()], children: Annotated[str, Form()],
                 received_on: Annotated[str, Form()] = "", period_from: Annotated[str, Form()] = "",
                 period_to: Annotated[str, Form()] = "", documents: Annotated[str, Form()] = "") -> Response:
    opened = d.open_request(requester=requester, relationship=relationship, basis=basis,
                            child_ids=children.replace(",", " ").split(),
                            received_on=parse_date(received_on, "date received"),
                            period_from=parse_date(period_from, "start of the period"),
                            period_to=parse_date(period_to, "end of the period"),
                            document_ids=documents.replace(",", " ").split() or None)
    notice(request, f"Request {opened['ref']} opened: due {labels.uk_date(opened['due_on'])}.")
    return back(f"/disclosures/{opened['id']}")


@router.get("/disclosures/{request_id}")
def disclosure(request: Request, d: D, request_id: str) -> Response:
    data = d.request(parse_ref(request_id))
    return render(request, "disclosure/request.html", r=data, exemptions=d.exemptions, methods=METHODS)


@router.post("/disclosures/{request_id}/extend")
def extend(request: Request, d: D, request_id: str, due_on: Annotated[str, Form()],
           reason: Annotated[str, Form()]) -> Response:
    rid = parse_ref(request_id)
    due = parse_date(due_on, "new due date")
    if due is None:
        raise ValidationFailed("give the new due date", code="validation_failed")
    d.extend(rid, due, reason)
    notice(request, "Due date extended.")
    return back(f"/disclosures/{rid}")


@router.post("/disclosures/{request_id}/propose")
def propose(request: Request, d: D, request_id: str) -> Response:
    rid = parse_ref(request_id)
    found = d.propose(rid)
    notice(request, f"{found['proposed']} redactions proposed. None is applied until you accept it.")
    return back(f"/disclosures/{rid}")


@router.post("/disclosures/{request_id}/search-redact")
def search_redact(request: Request, d: D, request_id: str, term: Annotated[str, Form()],
                  reason: Annotated[str, Form()]) -> Response:
    rid = parse_ref(request_id)
    found = d.search_and_redact(rid, term, reason)
    notice(request, f"{found['proposed']} places found and proposed for redaction.")
    return back(f"/disclosures/{rid}")


@router.get("/disclosures/{request_id}/documents/{doc_id}")
def document(request: Request, d: D, request_id: str, doc_id: str) -> Response:
    data = d.document(parse_ref(request_id), doc_id)
    return render(request, "disclosure/document.html", doc=data, r=data["request"], exemptions=d.exemptions,
                  head_script=True)


@router.get("/disclosures/{request_id}/documents/{doc_id}/pages/{page}.png")
def page_image(d: D, request_id: str, doc_id: str, page: int, size: str = "large") -> Response:
    return FileResponse(d.page_image(parse_ref(request_id), doc_id, page, large=size == "large"), media_type="image/png")


@router.post("/disclosures/{request_id}/documents/{doc_id}/redactions")
def redact(request: Request, d: D, request_id: str, doc_id: str, reason: Annotated[str, Form()],
           page: Annotated[str, Form()] = "", whole: Annotated[str, Form()] = "area",
           x0: Annotated[str, Form()] = "", y0: Annotated[str, Form()] = "", x1: Annotated[str, Form()] = "",
           y1: Annotated[str, Form()] = "") -> Response:
    rid = parse_ref(request_id)
    number = int(page) if page.strip().isdigit() else None
    box = None
    if whole == "area":
        box = (_percent(x0, "left"), _percent(y0, "top"), _percent(x1, "right"), _percent(y1, "bottom"))
    d.redact(rid, doc_id, reason=reason, page=number, box=box, whole=whole)
    notice(request, {"area": f"Area of page {number} redacted.", "page": f"Page {number} withheld in full.",
                     "document": "The whole document is withheld."}.get(whole, "Redacted."))
    return back(f"/disclosures/{rid}/documents/{doc_id}" + (f"#page-{number}" if number else ""))


@router.post("/disclosures/{request_id}/redactions/decide")
def decide(request: Request, d: D, request_id: str, action: Annotated[str, Form()],
           ids: Annotated[list[int] | None, Form()] = None, reason: Annotated[str, Form()] = "",
           back_to: Annotated[str, Form()] = "", x0: Annotated[str, Form()] = "", y0: Annotated[str, Form()] = "",
           x1: Annotated[str, Form()] = "", y1: Annotated[str, Form()] = "") -> Response:
    rid = parse_ref(request_id)
    if not ids:
        raise ValidationFailed("tick at least one redaction first", code="validation_failed")
    box = None
    if action == "move":
        box = (_percent(x0, "left"), _percent(y0, "top"), _percent(x1, "right"), _percent(y1, "bottom"))
    changed = d.decide(rid, ids, action, reason=reason or None, box=box)
    words = {"accept": "accepted", "reject": "rejected", "remove": "removed", "reason": "given a new reason",
             "move": "moved"}
    notice(request, f"{changed} redaction{'' if changed == 1 else 's'} {words.get(action, 'changed')}.")
    target = back_to if back_to.startswith(f"/disclosures/{rid}") else f"/disclosures/{rid}"
    return back(target)


@router.post("/disclosures/{request_id}/submit")
def submit(request: Request, d: D, request_id: str, reviewer: Annotated[str, Form()]) -> Response:
    rid = parse_ref(request_id)
    d.submit(rid, reviewer)
    notice(request, f"Sent to {reviewer.strip()} for review.")
    return back(f"/disclosures/{rid}")


@router.post("/disclosures/{request_id}/documents/{doc_id}/reviewed")
def reviewed(request: Request, d: D, request_id: str, doc_id: str) -> Response:
    rid = parse_ref(request_id)
    d.review_document(rid, doc_id)
    notice(request, f"Document {doc_id} marked as reviewed, every page.")
    return back(f"/disclosures/{rid}")


@router.post("/disclosures/{request_id}/approve")
def approve(request: Request, d: D, request_id: str, note: Annotated[str, Form()] = "") -> Response:
    rid = parse_ref(request_id)
    d.approve(rid, note)
    notice(request, "Bundle approved. It can now be exported.")
    return back(f"/disclosures/{rid}")


@router.post("/disclosures/{request_id}/return")
def return_bundle(request: Request, d: D, request_id: str, note: Annotated[str, Form()]) -> Response:
    rid = parse_ref(request_id)
    d.return_bundle(rid, note)
    notice(request, "Bundle returned to its preparer.")
    return back(f"/disclosures/{rid}")


@router.post("/disclosures/{request_id}/export")
def export(request: Request, d: D, request_id: str) -> Response:
    rid = parse_ref(request_id)
    done = d.export(rid)
    notice(request, f"Bundle exported: {done['bundle_pages']} pages.")
    return back(f"/disclosures/{rid}")


@router.get("/disclosures/{request_id}/bundle.pdf")
def bundle_pdf(d: D, request_id: str) -> Response:
    stream, name = d.open_bundle(parse_ref(request_id))
    return StreamingResponse(_chunks(stream), media_type="application/pdf",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/disclosures/{request_id}/schedule.csv")
def schedule_csv(d: D, request_id: str) -> Response:
    rid = parse_ref(request_id)
    return Response(d.schedule_csv(rid), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="schedule-DR-{rid}.csv"'})


@router.post("/disclosures/{request_id}/copies")
def record_copy(request: Request, d: D, request_id: str, recipient: Annotated[str, Form()],
                method: Annotated[str, Form()], given_on: Annotated[str, Form()] = "",
                note: Annotated[str, Form()] = "") -> Response:
    rid = parse_ref(request_id)
    d.record_disclosure(rid, recipient=recipient, method=method, given_on=parse_date(given_on, "date given"), note=note)
    notice(request, "Copy given recorded on each child's record.")
    return back(f"/disclosures/{rid}")


@router.get("/disclosures/{request_id}/certificate")
def certificate(request: Request, d: D, request_id: str) -> Response:
    return render(request, "disclosure/certificate.html", c=d.certificate(parse_ref(request_id)))


@router.get("/children/{child_id}/copies-given")
def copies_given(request: Request, d: D, child_id: str) -> Response:
    return render(request, "disclosure/copies.html", child_id=child_id, copies=d.copies_for_child(child_id))


@router.post("/documents/{doc_id}/copies-given")
def copy_of_document(request: Request, d: D, doc_id: str, recipient: Annotated[str, Form()],
                     method: Annotated[str, Form()], basis: Annotated[str, Form()],
                     given_on: Annotated[str, Form()] = "", note: Annotated[str, Form()] = "") -> Response:
    d.record_copy_of_document(doc_id, recipient=recipient, method=method, basis=basis,
                              given_on=parse_date(given_on, "date given"), note=note)
    notice(request, f"Copy of {doc_id} given: recorded on the child's record.")
    return back(f"/documents/{doc_id}")
