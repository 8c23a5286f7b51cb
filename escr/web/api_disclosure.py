"""REST API (`/api/v1`) for subject access and disclosure (issue 18): the same use cases as the
disclosure pages, as JSON. Each route parses its input and calls `escr.app.disclosure`."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from escr.app.access import Principal
from escr.app.disclosure import Disclosures, parse_ref
from escr.web.auth import current_principal, services_of
from escr.web.pages import _chunks

router = APIRouter(prefix="/api/v1", tags=["disclosure"])


def _disclosures(request: Request, principal: Annotated[Principal, Depends(current_principal)]) -> Disclosures:
    return Disclosures(services_of(request), principal)


D = Annotated[Disclosures, Depends(_disclosures)]
Text = Annotated[str, Field(min_length=1, max_length=2000)]
Fraction = Annotated[float, Field(ge=0, le=1)]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


class NewRequest(BaseModel):
    requester: Text
    relationship: Annotated[str, Field(min_length=1, max_length=64)]
    basis: Literal["subject_access", "court", "agency_sharing", "care_leaver", "other"]
    children: list[str] = Field(min_length=1, max_length=50)
    documents: list[str] | None = None
    received_on: date | None = None
    due_on: date | None = None
    period_from: date | None = None
    period_to: date | None = None


@router.get("/disclosures")
def list_requests(d: D) -> dict[str, Any]:
    return {"items": _jsonable(d.requests())}


@router.post("/disclosures", status_code=201)
def open_request(body: NewRequest, d: D) -> dict[str, Any]:
    return _jsonable(d.open_request(requester=body.requester, relationship=body.relationship, basis=body.basis,
                                    child_ids=body.children, document_ids=body.documents, received_on=body.received_on,
                                    due_on=body.due_on, period_from=body.period_from, period_to=body.period_to))


@router.get("/disclosures/{request_id}")
def get_request(request_id: str, d: D) -> dict[str, Any]:
    return _jsonable(d.request(parse_ref(request_id)))


class Extension(BaseModel):
    due_on: date
    reason: Text


@router.post("/disclosures/{request_id}/extend")
def extend(request_id: str, body: Extension, d: D) -> dict[str, Any]:
    return _jsonable(d.extend(parse_ref(request_id), body.due_on, body.reason))


@router.post("/disclosures/{request_id}/propose")
def propose(request_id: str, d: D) -> dict[str, Any]:
    return d.propose(parse_ref(request_id))


class SearchRedact(BaseModel):
    term: Annotated[str, Field(min_length=2, max_length=200)]
    reason: Annotated[str, Field(min_length=1, max_length=32)]


@router.post("/disclosures/{request_id}/search-redact")
def search_redact(request_id: str, body: SearchRedact, d: D) -> dict[str, Any]:
    return d.search_and_redact(parse_ref(request_id), body.term, body.reason)


@router.get("/disclosures/{request_id}/documents/{doc_id}")
def get_document(request_id: str, doc_id: str, d: D) -> dict[str, Any]:
    return _jsonable(d.document(parse_ref(request_id), doc_id))


class NewRedaction(BaseModel):
    reason: Annotated[str, Field(min_length=1, max_length=32)]
    scope: Literal["area", "page", "document"] = "area"
    page: int | None = None
    box: tuple[Fraction, Fraction, Fraction, Fraction] | None = None  # x0, y0 (top left), x1, y1: fractions of the page


@router.post("/disclosures/{request_id}/documents/{doc_id}/redactions", status_code=201)
def redact(request_id: str, doc_id: str, body: NewRedaction, d: D) -> dict[str, Any]:
    return d.redact(parse_ref(request_id), doc_id, reason=body.reason, page=body.page, box=body.box, whole=body.scope)


class Decision(BaseModel):
    ids: list[int] = Field(min_length=1)
    action: Literal["accept", "reject", "remove", "reason", "move"]
    reason: str | None = Field(default=None, max_length=32)
    box: tuple[Fraction, Fraction, Fraction, Fraction] | None = None


@router.post("/disclosures/{request_id}/redactions/decide")
def decide(request_id: str, body: Decision, d: D) -> dict[str, Any]:
    return {"changed": d.decide(parse_ref(request_id), body.ids, body.action, reason=body.reason, box=body.box)}


class Submission(BaseModel):
    reviewer: Annotated[str, Field(min_length=1, max_length=128)]


@router.post("/disclosures/{request_id}/submit")
def submit(request_id: str, body: Submission, d: D) -> dict[str, Any]:
    return _jsonable(d.submit(parse_ref(request_id), body.reviewer))


@router.post("/disclosures/{request_id}/documents/{doc_id}/reviewed")
def reviewed(request_id: str, doc_id: str, d: D) -> dict[str, Any]:
    d.review_document(parse_ref(request_id), doc_id)
    return {"document_id": doc_id, "reviewed": True}


class Note(BaseModel):
    note: str = Field(default="", max_length=2000)


@router.post("/disclosures/{request_id}/approve")
def approve(request_id: str, body: Note, d: D) -> dict[str, Any]:
    return _jsonable(d.approve(parse_ref(request_id), body.note))


@router.post("/disclosures/{request_id}/return")
def return_bundle(request_id: str, body: Note, d: D) -> dict[str, Any]:
    return _jsonable(d.return_bundle(parse_ref(request_id), body.note))


@router.post("/disclosures/{request_id}/export")
def export(request_id: str, d: D) -> dict[str, Any]:
    return _jsonable(d.export(parse_ref(request_id)))



@router.get("/disclosures/{request_id}/bundle.pdf")
def bundle_pdf(request_id: str, d: D) -> Response:
    stream, name = d.open_bundle(parse_ref(request_id))
    return StreamingResponse(_chunks(stream), media_type="application/pdf",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/disclosures/{request_id}/schedule.csv")
def schedule_csv(request_id: str, d: D) -> Response:
    return Response(d.schedule_csv(parse_ref(request_id)), media_type="text/csv")


class Copy(BaseModel):
    recipient: Annotated[str, Field(min_length=1, max_length=200)]
    method: Literal["post", "secure_email", "collected", "in_person", "court"]
    given_on: date | None = None
    note: str = Field(default="", max_length=2000)


@router.post("/disclosures/{request_id}/copies", status_code=201)
def record_copy(request_id: str, body: Copy, d: D) -> dict[str, Any]:
    return _jsonable(d.record_disclosure(parse_ref(request_id), recipient=body.recipient, method=body.method,
                                         given_on=body.given_on, note=body.note))


@router.get("/disclosures/{request_id}/certificate")
def certificate(request_id: str, d: D) -> dict[str, Any]:
    return _jsonable(d.certificate(parse_ref(request_id)))


@router.get("/children/{child_id}/copies-given")
def copies_given(child_id: str, d: D) -> dict[str, Any]:
    return {"child_id": child_id, "items": _jsonable(d.copies_for_child(child_id))}


class DocumentCopy(Copy):
    basis: Literal["subject_access", "court", "agency_sharing", "care_leaver", "other"]


@router.post("/documents/{doc_id}/copies-given", status_code=201)
def copy_of_document(doc_id: str, body: DocumentCopy, d: D) -> dict[str, Any]:
    return _jsonable(d.record_copy_of_document(doc_id, recipient=body.recipient, method=body.method, basis=body.basis,
                                               given_on=body.given_on, note=body.note))
