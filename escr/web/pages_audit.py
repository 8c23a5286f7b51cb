"""The auditor's pages (issue 17): integrity checks, certificates of scanning, the case-file audit
and its quarterly collation, paper custody and the access log's activity chart.

Each route parses its input, calls escr.app (auditing, casefile, stewardship) and renders; the
rules, the logging and the wording of findings live there.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from escr import clock
from escr.app import auditing, casefile, labels, stewardship
from escr.app.access import Can, Principal, require
from escr.app.operations import parse_date
from escr.errors import NotFound, ValidationFailed
from escr.web.audit_charts import bars
from escr.web.auth import current_principal, services_of
from escr.web.pages import back, notice, render

router = APIRouter(include_in_schema=False)

Who = Annotated[Principal, Depends(current_principal)]


# --- certificate of scanning ---------------------------------------------------------------------


@router.get("/documents/{doc_id}/certificate")
def certificate(request: Request, who: Who, doc_id: str, format: str = "html") -> Response:
    fmt = format
    data, media_type, name = auditing.certificate_file(services_of(request), who, doc_id, fmt)
    disposition = "inline" if fmt == "html" else "attachment"
    return Response(data, media_type=media_type, headers={"Content-Disposition": f'{disposition}; filename="{name}"'})


# --- integrity ------------------------------------------------------------------------------------


def _integrity_page(request: Request, who: Principal, status: int = 200, shown: str = "", **form: Any) -> Response:
    f = {"what": "child", "child": "", "document": "", "since": "", "until": "", **form}
    runs = auditing.fixity_runs(services_of(request), who, child_id=f["child"].strip() if shown == "child" else None,
                                document_id=f["document"].strip() if shown == "document" else None)
    return render(request, "audit_integrity.html", status=status, runs=runs, shown=shown, f=f)


@router.get("/integrity")
def integrity(request: Request, who: Who, child: str = "", document: str = "") -> Response:
    """The check form and the recent runs; with ?child= or ?document=, the runs that covered it."""
    what = "document" if document else "child"
    shown = what if (child or document) else ""
    return _integrity_page(request, who, shown=shown, what=what, child=child, document=document)


@router.post("/integrity")
def integrity_check(request: Request, who: Who, what: Annotated[str, Form()] = "child",
                    child: Annotated[str, Form()] = "", document: Annotated[str, Form()] = "",
                    since: Annotated[str, Form()] = "", until: Annotated[str, Form()] = "") -> Response:
    """Run a check for a child, a document or a period; a mistake keeps what was typed."""
    try:
        if what == "period":
            result = auditing.check_integrity(services_of(request), who, since=parse_date(since, "from"),
                                              until=parse_date(until, "to"))
        else:
            chosen = {"child": {"child_id": child.strip()}, "document": {"document_id": document.strip()}}.get(what, {})
            result = auditing.check_integrity(services_of(request), who, **chosen)
    except (ValidationFailed, NotFound) as exc:
        return _integrity_page(request, who, 422, problem=exc.message, what=what, child=child, document=document,
                               since=since, until=until)
    notice(request, "Check finished: nothing wrong found." if result["ok"] else
           f"Check finished: {result['findings_count']} problem(s) found.", "ok" if result["ok"] else "error")
    return back(f"/integrity/runs/{result['id']}")


@router.get("/integrity/runs/{run_id}")
def integrity_run(request: Request, who: Who, run_id: int) -> Response:
    return render(request, "audit_integrity_run.html", run=auditing.fixity_run(services_of(request), who, run_id))


# --- case-file audit --------------------------------------------------------------------------------


@router.get("/audit/casefiles")
def casefiles(request: Request, who: Who) -> Response:
    return render(request, "audit_casefiles.html", due=casefile.audits_due(services_of(request), who),
                  this_month=clock.now().strftime("%Y-%m"))


@router.post("/audit/sample")
def audit_sample(request: Request, who: Who, month: Annotated[str, Form()]) -> Response:
    result = stewardship.audit_sample(services_of(request), who, month.strip())
    picked = len(result.selected)
    notice(request, f"{picked} file{'' if picked == 1 else 's'} picked for {month.strip()}"
           + (f"; {len(result.already)} picked before" if result.already else "")
           + (f"; no eligible file for {', '.join(result.no_eligible_file)}" if result.no_eligible_file else "")
           + ".")
    return back("/audit/casefiles")


@router.get("/audit/casefiles/go")
def casefile_go(who: Who, child_id: str = "") -> Response:
    """The 'audit any child' box: to that child's audit tool (an unknown id is refused there)."""
    require(who, Can.AUDIT)
    return back(f"/audit/casefiles/{quote(child_id.strip(), safe='')}" if child_id.strip() else "/audit/casefiles")


@router.get("/audit/casefiles/{child_id}")
def casefile_form(request: Request, who: Who, child_id: str, revise: int | None = None) -> Response:
    form = casefile.audit_form(services_of(request), who, child_id)
    return render(request, "audit_casefile.html", form=form, typed=_revision(form, revise), problem=None)


def _revision(form: dict[str, Any], revise: int | None) -> dict[str, Any]:
    """What the form starts with: empty, or an earlier audit's answers when revising it."""
    earlier = next((a for a in form["audits"] if a["id"] == revise), None) if revise else None
    if earlier is None:
        return {"revises": None}
    typed: dict[str, Any] = {"revises": earlier["id"], "grading": earlier["grading"],
                             "comments": earlier["comments"], "manager_comments": earlier["manager_comments"],
                             "follow_up": earlier["follow_up"]}
    for s in earlier["standards"]:
        typed[f"judgement_{s['number']}"] = s.get("judgement")
        typed[f"comment_{s['number']}"] = s.get("comment", "")
    return typed


@router.post("/audit/casefiles/{child_id}")
async def casefile_record(request: Request, who: Who, child_id: str) -> Response:
    form = await request.form()
    typed = {k: v for k, v in form.items() if k != "csrf_token" and isinstance(v, str)}
    judgements: dict[int, str] = {}
    comments: dict[int, str] = {}
    for key, value in typed.items():
        kind, _, number = key.partition("_")
        if number.isdigit() and kind == "judgement":
            judgements[int(number)] = value
        elif number.isdigit() and kind == "comment":
            comments[int(number)] = value
    revises = int(typed["revises"]) if typed.get("revises", "").isdigit() else None
    services = services_of(request)
    try:
        done = await run_in_threadpool(
            casefile.record_audit, services, who, child_id, judgements=judgements, comments=comments,
            grading=typed.get("grading", ""), overall=typed.get("comments", ""),
            manager_comments=typed.get("manager_comments", ""), follow_up=typed.get("follow_up") == "yes",
            revises=revises)
    except ValidationFailed as exc:
        page = await run_in_threadpool(casefile.audit_form, services, who, child_id)
        return render(request, "audit_casefile.html", status=422, form=page,
                      typed={**typed, "revises": revises, "follow_up": typed.get("follow_up") == "yes"},
                      problem=exc.message)
    notice(request, f"Case-file audit of {child_id} recorded: {done['grading_label']}. A note that the file was "
                    "audited is on the child's file.")
    return back(f"/audit/casefiles/{child_id}#audit-{done['id']}")


@router.get("/audit/collation.csv")
def collation_csv(request: Request, who: Who, quarter: str = "") -> Response:
    data = casefile.collation(services_of(request), who, quarter or None)
    return Response(casefile.collation_csv(data), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="casefile-audits-{data["quarter"]}.csv"'})


@router.get("/audit/collation")
def collation(request: Request, who: Who, quarter: str = "") -> Response:
    try:
        data = casefile.collation(services_of(request), who, quarter or None)
    except ValidationFailed as exc:
        notice(request, exc.message, "error")
        return back("/audit/collation")
    return render(request, "audit_collation.html", c=data)


# --- paper custody ---------------------------------------------------------------------------------


@router.get("/paper")
def paper(request: Request, who: Who, child: str = "") -> Response:
    data = auditing.paper_custody(services_of(request), who, child_id=child.strip() or None)
    return render(request, "audit_paper.html", p=data, child=child.strip())


# --- the access log's activity ------------------------------------------------------------------------


@router.get("/access-log/activity")
def access_activity(request: Request, who: Who, days: int = 30) -> Response:
    services = services_of(request)
    days = min(max(days, 1), auditing.ACTIVITY_MAX_DAYS)
    data = auditing.access_activity(services, who, days=days, zone=services.settings.web.timezone)
    names = [labels.uk_date(d["day"], short=True)[:5] for d in data["days"]]
    chart = bars(f"Uses of children's records per day, {labels.uk_date(data['from'])} to "
                 f"{labels.uk_date(data['to'])}", names,
                 [("Allowed", [d["allowed"] for d in data["days"]]),
                  ("Refused", [d["refused"] for d in data["days"]]),
                  ("Break-glass", [d["break_glass"] for d in data["days"]])])
    return render(request, "audit_activity.html", a=data, chart=chart, days=days)
