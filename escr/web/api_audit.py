"""REST API (`/api/v1`) for the auditor's tools (issue 17): the provenance verdict, certificates of
scanning, integrity checks, case-file audits and their collation, paper custody and the access
log's activity. Each route parses its input and calls escr.app (auditing, casefile,
stewardship), exactly as the pages in escr/web/pages_audit.py do.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from escr.app import auditing, casefile, stewardship
from escr.app.access import Principal
from escr.services import Services
from escr.web.api import ERRORS
from escr.web.auth import current_principal, services_of

router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["audit"])

Who = Annotated[Principal, Depends(current_principal)]


def _services(request: Request) -> Services:
    return services_of(request)


Svc = Annotated[Services, Depends(_services)]


@router.get("/documents/{doc_id}/verdict", summary="Can the document be relied on? The checks, then each step")
def verdict(doc_id: str, who: Who, svc: Svc) -> dict[str, Any]:
    return auditing.provenance_view(svc, who, doc_id)


@router.get("/documents/{doc_id}/certificate", response_class=Response,
            summary="The certificate of scanning (html, pdf or json), with a fresh fixity check")
def certificate(doc_id: str, who: Who, svc: Svc,
                format: Literal["html", "pdf", "json"] = "json") -> Response:
    data, media_type, name = auditing.certificate_file(svc, who, doc_id, format)
    return Response(data, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/integrity/runs", summary="The newest fixity runs with their findings explained")
def integrity_runs(who: Who, svc: Svc, limit: Annotated[int, Query(ge=1, le=200)] = 20) -> dict[str, Any]:
    return {"items": auditing.fixity_runs(svc, who, limit=limit)}


@router.get("/integrity/runs/{run_id}", summary="One fixity run and its findings")
def integrity_run(run_id: int, who: Who, svc: Svc) -> dict[str, Any]:
    return auditing.fixity_run(svc, who, run_id)


class IntegrityCheck(BaseModel):
    child_id: str | None = Field(default=None, max_length=64)
    document_id: str | None = Field(default=None, max_length=40)
    since: date | None = Field(default=None, description="Scans received from this day")
    until: date | None = Field(default=None, description="Scans received up to and including this day")


@router.post("/integrity/checks", status_code=201, summary="Check a child, a document or a period now")
def integrity_check(body: IntegrityCheck, who: Who, svc: Svc) -> dict[str, Any]:
    return auditing.check_integrity(svc, who, child_id=body.child_id, document_id=body.document_id, since=body.since,
                                    until=body.until)


@router.get("/casefile-audits/due", summary="Files picked in a monthly sample and not yet audited")
def audits_due(who: Who, svc: Svc) -> dict[str, Any]:
    return {"items": casefile.audits_due(svc, who)}


class Sample(BaseModel):
    month: str = Field(max_length=7, description="YYYY-MM")


@router.post("/casefile-audits/sample", status_code=201, summary="Pick one file per worker for the month")
def audit_sample(body: Sample, who: Who, svc: Svc) -> dict[str, Any]:
    return stewardship.audit_sample(svc, who, body.month).as_dict()  # type: ignore[no-any-return]


@router.get("/casefile-audits/collation.csv", response_class=Response, summary="The quarter's collation as CSV, a row per team")
def collation_csv(who: Who, svc: Svc, quarter: str | None = None) -> Response:
    data = casefile.collation(svc, who, quarter)
    return Response(casefile.collation_csv(data), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="casefile-audits-{data["quarter"]}.csv"'})


@router.get("/casefile-audits/collation", summary="A quarter's audits collated per team (quarter: 2026-Q1)")
def collation(who: Who, svc: Svc, quarter: str | None = None) -> dict[str, Any]:
    return casefile.collation(svc, who, quarter)


@router.get("/children/{child_id}/casefile-audit", summary="The audit tool: standards, evidence, earlier audits")
def audit_form(child_id: str, who: Who, svc: Svc) -> dict[str, Any]:
    return casefile.audit_form(svc, who, child_id)


class Judgement(BaseModel):
    number: int = Field(ge=1, le=100)
    judgement: Literal["yes", "no", "na"]
    comment: str = Field(default="", max_length=casefile.COMMENT_MAX)


class CasefileAuditBody(BaseModel):
    standards: list[Judgement]
    grading: Literal["good", "requires_improvement", "inadequate"]
    comments: str = Field(default="", max_length=casefile.COMMENT_MAX)
    manager_comments: str = Field(default="", max_length=casefile.COMMENT_MAX)
    follow_up: bool = False
    revises: int | None = None


@router.post("/children/{child_id}/casefile-audit", status_code=201, summary="Record a completed case-file audit")
def record_audit(child_id: str, body: CasefileAuditBody, who: Who, svc: Svc) -> dict[str, Any]:
    return casefile.record_audit(svc, who, child_id, judgements={s.number: s.judgement for s in body.standards},
                                 comments={s.number: s.comment for s in body.standards}, grading=body.grading,
                                 overall=body.comments, manager_comments=body.manager_comments,
                                 follow_up=body.follow_up, revises=body.revises)


@router.get("/paper/custody", summary="Where each paper volume and original is, due back, overdue")
def paper_custody(who: Who, svc: Svc, child: str | None = None) -> dict[str, Any]:
    return auditing.paper_custody(svc, who, child_id=child or None)


@router.get("/access-log/activity", summary="Uses of children's records per local day")
def access_activity(who: Who, svc: Svc, days: Annotated[int, Query(ge=1, le=auditing.ACTIVITY_MAX_DAYS)] = 30
                    ) -> dict[str, Any]:
    return auditing.access_activity(svc, who, days=days, zone=svc.settings.web.timezone)
