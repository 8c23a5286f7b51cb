"""The server-rendered pages: plain HTML forms and links, no script needed for any task.

Every route asks `Operations` (and so `escr.app.access`) before it reads or changes anything; a
page never relies on a link being hidden. After a change the browser is redirected (POST,
redirect, GET) with a short notice that holds ids only; a new password or API token is shown
on the answer to the POST itself, once, and never put in the session cookie.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response, StreamingResponse

from escr import clock
from escr.app import access, accounts, auditing, homes, labels, reading, saved_views
from escr.app.access import CAPABILITIES, Can, Principal, Role, require
from escr.app.keeping import Keeping
from escr.app.operations import BULK_LIMIT, Operations, parse_date
from escr.app.saved_views import SavedViews, ViewFilters
from escr.errors import EscrError, ValidationFailed
from escr.record.states import QUEUE_CHOICES, DocumentState
from escr.web.audit_charts import bars
from escr.web.auth import authenticate, client_address, current_principal, end_session, services_of, start_session
from escr.web.exports import ACCESS_LOG_COLUMNS, PROVENANCE_COLUMNS, access_log_row, csv_response

router = APIRouter(include_in_schema=False)

HOME = {Role.BUSINESS_SUPPORT: "/intake", Role.CASEWORKER: "/children", Role.TEAM_MANAGER: "/children",
        Role.AUDITOR: "/access-log", Role.ADMINISTRATOR: "/admin/users", Role.DISCLOSURE_OFFICER: "/disclosures"}

NAV: list[tuple[str, str, Can | None]] = [
    ("/", "Home", None),
    ("/intake", "Intake", Can.INTAKE),
    ("/queue", "Work queue", None),
    ("/corrections", "Corrections", Can.VERIFY),
    ("/children", "Find a child", Can.FIND_CHILDREN),
    ("/search", "Search documents", None),
    ("/paper/files", "Paper files", None),
    ("/access-log", "Access log", Can.AUDIT),
    ("/integrity", "Integrity", Can.AUDIT),
    ("/audit/casefiles", "Case-file audits", Can.AUDIT),
    ("/break-glass", "Break-glass", Can.BREAK_GLASS),
    ("/break-glass/reviews", "Break-glass reviews", Can.REVIEW_BREAK_GLASS),
    ("/disclosures", "Disclosures", Can.DISCLOSE),
    ("/admin/users", "Users", Can.ADMINISTER),
    ("/admin/teams", "Teams", Can.ADMINISTER),
    ("/account", "My account", None),
]


def _nav(principal: Principal | None) -> list[tuple[str, str]]:
    if principal is None:
        return []
    items = []
    for href, label, need in NAV:
        if href == "/queue" and not ({Can.INTAKE, Can.VERIFY} & CAPABILITIES[principal.role]):
            continue
        if href == "/search" and principal.role in (Role.ADMINISTRATOR, Role.DISCLOSURE_OFFICER):
            continue
        if href == "/paper/files" and principal.role not in (Role.BUSINESS_SUPPORT, Role.TEAM_MANAGER, Role.AUDITOR):
            continue
        if href == "/corrections" and not principal.can(Can.READ_RECORDS):
            continue  # they approve corrections of verified documents, which business support do not open
        if need is None or principal.can(need):
            items.append((href, label))
    return items


def base_context(request: Request) -> dict[str, Any]:
    try:
        principal = authenticate(request)
    except EscrError:
        principal = None
    return {"request": request, "me": principal, "nav": _nav(principal),
            "notices": [(list(n) + ["", ""])[:3] for n in request.session.pop("notices", [])]
            if "session" in request.scope else []}


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    ctx = base_context(request)
    ctx.update(context)
    return request.app.state.templates.TemplateResponse(request, template, ctx, status_code=status)


def notice(request: Request, text: str, kind: str = "ok", *, form: str = "") -> None:
    """A line shown at the top of the next page; `form` names the form a refusal is about."""
    request.session["notices"] = [*request.session.get("notices", []), [kind, text, form]]


def back(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def ops(request: Request, principal: Annotated[Principal, Depends(current_principal)]) -> Operations:
    return Operations(services_of(request), principal)


Ops = Annotated[Operations, Depends(ops)]


def _paging(request: Request, offset: int | str | None) -> tuple[int, int]:
    try:
        start = max(0, int(offset or 0))
    except ValueError:
        start = 0
    return start, services_of(request).settings.web.page_size


def _url(path: str, **params: Any) -> str:
    kept = {k: v for k, v in params.items() if v not in (None, "", [])}
    return path + ("?" + urlencode(kept, doseq=True) if kept else "")


def _safe_next(target: str | None) -> str | None:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


# --- signing in -------------------------------------------------------------------------------


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    if authenticate(request) is not None:
        return back(_safe_next(next) or "/")
    return render(request, "login.html", next=_safe_next(next) or "")


@router.post("/login")
def login(request: Request, username: Annotated[str, Form()], password: Annotated[str, Form()],
          next: Annotated[str, Form()] = "") -> Response:
    services = services_of(request)
    web = services.settings.web
    with services.db.session() as session:
        user, why = accounts.sign_in(session, username, password, max_failures=web.login_max_failures,
                                     lockout_minutes=web.login_lockout_minutes,
                                     client=client_address(request),
                                     client_max_failures=web.login_client_max_failures,
                                     backoff_seconds=web.login_backoff_seconds)
        if user is not None:
            start_session(request, session, user)
    if user is None:
        return render(request, "login.html", status=401, error=why, next=_safe_next(next) or "",
                      username=username[:128])
    return back(_safe_next(next) or "/")


@router.post("/logout")
def logout(request: Request) -> Response:
    end_session(request)
    return back("/login")


@router.get("/")
def home(request: Request, principal: Annotated[Principal, Depends(current_principal)]) -> Response:
    """Each role starts where their work is (escr.app.homes): the caseload, the intake, the
    integrity verdict, or the people and the state of the system."""
    services = services_of(request)
    kind = homes.home_kind(principal)
    if kind == "none":
        return back(HOME.get(principal.role, "/account"))
    data = getattr(homes.Homes(services, principal), kind)()
    saved = SavedViews(services, principal).list() if principal.can(Can.FIND_CHILDREN) else []
    if kind != "intake":
        # Issue 19: paper out of place, on the team manager's and the records manager's home.
        paper_overdue = Keeping(services, principal).overdue() if principal.role in (Role.TEAM_MANAGER,
                                                                                     Role.AUDITOR) else None
        return render(request, f"home_{kind}.html", data=data, paper_overdue=paper_overdue, saved_views=saved)
    every = services.settings.web.intake_refresh_seconds
    return render(request, "home_intake.html", data=data, refresh=every if data["processing"] else None,
                  saved_views=saved, poll_seconds=every, charts=_intake_charts(data["throughput"], data["queue_ages"]))


def _intake_charts(throughput: list[dict[str, Any]], queue_ages: list[dict[str, Any]]) -> dict[str, str]:
    """The intake home's charts: the last fortnight's throughput and how long the queues waited."""
    days = [f"{(d := date.fromisoformat(t['day'])).day} {d:%b}" for t in throughput]
    buckets = list(queue_ages[0]["ages"]) if queue_ages else []
    return {"throughput": bars(f"Documents filed and verified each day, {labels.uk_date(throughput[0]['day'])} to "
                               f"{labels.uk_date(throughput[-1]['day'])}", days,
                               [("Documents filed", [t["filed"] for t in throughput]),
                                ("Documents verified", [t["verified"] for t in throughput])],
                               stacked=False, ident="throughput-title"),
            "queue_ages": bars("Documents waiting in each queue, by how long they have waited",
                               [q["label"].split(":")[0] for q in queue_ages],
                               [(b, [q["ages"][b] for q in queue_ages]) for b in buckets], ident="ages-title")}


@router.get("/intake/processing")
def intake_processing(request: Request, principal: Annotated[Principal, Depends(current_principal)]) -> Response:
    """The intake home's "Being processed now" part alone, which its script fetches every few seconds."""
    data = homes.Homes(services_of(request), principal).processing()
    return render(request, "_intake_processing.html", data=data)


# --- finding a child and reading the record ---------------------------------------------------


# Searches are posted from their forms (and paged by posted forms), so a searched name or date of
# birth never travels in a URL: not in the browser's history, nor a proxy's access log. The GET
# routes show the empty form (and still answer ?q= for links made before).


@router.get("/children")
def find_children(request: Request, o: Ops, q: str = "", offset: int | None = None) -> Response:
    return _find_children(request, o, q, offset)


@router.post("/children")
def find_children_posted(request: Request, o: Ops, q: Annotated[str, Form()] = "",
                         offset: Annotated[str, Form()] = "") -> Response:
    return _find_children(request, o, q, offset)


def _find_children(request: Request, o: Ops, q: str, offset: int | str | None) -> Response:
    require(o.p, Can.FIND_CHILDREN)
    results = o.find_children(q, *_paging(request, offset)) if q.strip() else None
    return render(request, "children.html", q=q, results=results, action="/children")


@router.get("/children/{child_id}")
def child_record(request: Request, o: Ops, child_id: str, type: Annotated[list[str] | None, Query()] = None,
                 since: str = "", until: str = "", pending: str = "", state: str = "", third_party: str = "",
                 sort: str = "", view: str = "", offset: int | None = None) -> Response:
    """The chronology (escr.app.reading): the filters live in the URL, so a view can be kept as a
    link; a saved view (escr.app.saved_views) by its name alone, so its words stay out of the URL."""
    start, limit = _paging(request, offset)
    if view:
        return _chronology_page(request, o, child_id, view=view, offset=start, limit=limit)
    filters = ViewFilters.parse(types=type, since=since, until=until, state=state or ("all" if pending else "verified"),
                                third_party=third_party, sort=sort)
    return _chronology_page(request, o, child_id, filters, offset=start, limit=limit)


def _chronology_page(request: Request, o: Ops, child_id: str, filters: ViewFilters | None = None, *,
                     view: str | None = None, offset: int = 0, limit: int = 50, typed: dict[str, str] | None = None,
                     error: str | None = None) -> Response:
    data = reading.Reader(services_of(request), o.p).chronology(child_id, filters, view=view, offset=offset,
                                                                limit=limit)
    f: ViewFilters = data.pop("filters")
    workers = o.team_workers(child_id) if o.p.can(Can.ALLOCATE) else []
    keeping = Keeping(services_of(request), o.p)  # issue 19: status history, paper file, examinations
    kept = keeping.child_sections(child_id)
    shown = f.as_query()
    link = {"view": view} if view else shown
    return render(request, "child.html", 422 if error else 200, **data, filters=shown,
                  doc_type_choices=o.doc_types(), workers=workers, kept=kept, may=keeping.may(),
                  saved=SavedViews(services_of(request), o.p).list(), save_error=error,
                  typed=typed or {"name": view or "", "text": f.text},
                  view_choices={"state": saved_views.STATES, "third_party": saved_views.THIRD_PARTY,
                                "sort": saved_views.SORTS},
                  banners=labels.status_banners(kept["statuses"], data["child"]["category"], data["child"]["status"],
                                                clock.today(services_of(request).settings.web.timezone)),
                  filter_url=lambda **change: _url(f"/children/{child_id}", **{**shown, **change}),
                  page_url=lambda off: _url(f"/children/{child_id}", **link, offset=off))


@router.post("/children/{child_id}/views")
def save_view(request: Request, o: Ops, child_id: str, name: Annotated[str, Form()] = "",
              type: Annotated[list[str] | None, Form()] = None, since: Annotated[str, Form()] = "",
              until: Annotated[str, Form()] = "", state: Annotated[str, Form()] = "",
              third_party: Annotated[str, Form()] = "", sort: Annotated[str, Form()] = "",
              text: Annotated[str, Form()] = "") -> Response:
    """Save the chronology's filters as it shows them (and any words to find) under a name."""
    views = SavedViews(services_of(request), o.p)
    try:
        filters = ViewFilters.parse(types=type, since=since, until=until, state=state, third_party=third_party,
                                    sort=sort, text=text)
        saved = views.save(name, filters, child_id=child_id)
    except ValidationFailed as exc:  # the page again, with what was typed and why it was not saved
        try:
            kept_filters: ViewFilters | None = ViewFilters.parse(types=type, since=since, until=until, state=state,
                                                                 third_party=third_party, sort=sort)
        except ValidationFailed:
            kept_filters = None
        return _chronology_page(request, o, child_id, kept_filters, limit=_paging(request, 0)[1],
                                typed={"name": name, "text": text}, error=exc.message)
    notice(request, f"View \u201c{saved['name']}\u201d {'saved' if saved['created'] else 'updated'}.")
    return back(_url(f"/children/{child_id}", view=saved["name"]) + "#chronology")


@router.get("/views")
def views_page(request: Request, o: Ops) -> Response:
    """This person's saved views: open one in one click, or remove it."""
    return render(request, "views.html", saved=SavedViews(services_of(request), o.p).list())


@router.post("/views/remove")
def remove_view(request: Request, o: Ops, name: Annotated[str, Form()], next: Annotated[str, Form()] = "") -> Response:
    SavedViews(services_of(request), o.p).remove(name)
    notice(request, "View removed.")
    return back(_safe_next(next) or "/views")


@router.get("/children/{child_id}/search")
def child_search(request: Request, o: Ops, child_id: str, q: str = "", offset: int | None = None) -> Response:
    return _search(request, o, q, offset, child_id=child_id)


@router.post("/children/{child_id}/search")
def child_search_posted(request: Request, o: Ops, child_id: str, q: Annotated[str, Form()] = "",
                        offset: Annotated[str, Form()] = "") -> Response:
    return _search(request, o, q, offset, child_id=child_id)


@router.get("/search")
def search(request: Request, o: Ops, q: str = "", offset: int | None = None) -> Response:
    return _search(request, o, q, offset, child_id=None)


@router.post("/search")
def search_posted(request: Request, o: Ops, q: Annotated[str, Form()] = "",
                  offset: Annotated[str, Form()] = "") -> Response:
    return _search(request, o, q, offset, child_id=None)


def _search(request: Request, o: Ops, q: str, offset: int | str | None, *, child_id: str | None) -> Response:
    child = o.child_summary(child_id) if child_id is not None else None
    if child_id is None:
        o.check_search()
    start, limit = _paging(request, offset)
    results = o.search(q, child_id=child_id, offset=start, limit=limit) if q.strip() else None
    return render(request, "search.html", q=q, child=child, results=results,
                  action=f"/children/{child_id}/search" if child_id is not None else "/search")


@router.post("/children/{child_id}/coversheet")
def coversheet(o: Ops, child_id: str, doc_type: Annotated[str, Form()], pages: Annotated[str, Form()] = "",
               siblings: Annotated[str, Form()] = "", print_names: Annotated[str, Form()] = "") -> Response:
    extra = [s.strip() for s in siblings.replace(",", " ").split() if s.strip()]
    count = int(pages) if pages.strip().isdigit() and int(pages) > 0 else None
    pdf = o.coversheet([child_id, *extra], doc_type, count, print_names=bool(print_names))
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="coversheet-{child_id}.pdf"'})


@router.post("/children/{child_id}/allocation")
def allocate(request: Request, o: Ops, child_id: str, username: Annotated[str, Form()] = "") -> Response:
    o.allocate(child_id, username.strip() or None)
    notice(request, f"Allocation of {child_id} saved.")
    return back(f"/children/{child_id}")


@router.post("/children/{child_id}/purpose")
def child_purpose(request: Request, o: Ops, child_id: str, purpose: Annotated[str, Form()]) -> Response:
    o.record_purpose(purpose, child_id=child_id)
    notice(request, f"Purpose recorded: the documents of {child_id} are open to you for a while.")
    return back(f"/children/{child_id}")


# --- documents --------------------------------------------------------------------------------


@router.get("/documents/{doc_id}")
def document(request: Request, o: Ops, doc_id: str) -> Response:
    doc = o.document(doc_id)
    return render(request, "document.html", doc=doc, corrections=o.corrections(doc_id),
                  doc_type_choices=o.doc_types())


@router.get("/documents/{doc_id}/view")
def viewer(request: Request, principal: Annotated[Principal, Depends(current_principal)], doc_id: str,
           page: int | None = None, zoom: int | None = None, child: str | None = None) -> Response:
    """The document's pages in the app (escr.app.reading): one page at a readable size, zoom,
    previous and next, thumbnails; plain links and images, so it needs no script. From a child's
    chronology (`child`), also the previous and next document there."""
    data = reading.Reader(services_of(request), principal).viewer(doc_id, page, zoom=zoom, child=child)
    return render(request, "viewer.html", **data)


@router.post("/documents/{doc_id}/view")
def viewer_search(request: Request, principal: Annotated[Principal, Depends(current_principal)], doc_id: str,
                  q: Annotated[str, Form()] = "", page: Annotated[str, Form()] = "",
                  zoom: Annotated[str, Form()] = "", child: Annotated[str, Form()] = "") -> Response:
    """The viewer with the words searched for marked on the page: posted, so the words stay out
    of the URL (and of the browser's history), as every search's do."""
    data = reading.Reader(services_of(request), principal).viewer(
        doc_id, int(page) if page.strip().isdigit() else None, query=q,
        zoom=int(zoom) if zoom.strip().isdigit() else None, child=child.strip() or None)
    return render(request, "viewer.html", **data)


@router.post("/documents/{doc_id}/third-party")
def third_party(request: Request, o: Ops, doc_id: str, third_party: Annotated[str, Form()],
                reason: Annotated[str, Form()], version: Annotated[int | None, Form()] = None,
                back_to: Annotated[str, Form()] = "") -> Response:
    on = o.set_third_party(doc_id, on=third_party == "yes", reason=reason, version=version)
    notice(request, f"Document {doc_id} is {'now' if on else 'no longer'} flagged as holding third-party information.")
    return back(f"/documents/{doc_id}/work" if back_to == "work" else f"/documents/{doc_id}")


@router.post("/documents/{doc_id}/replaces")
def replaces(request: Request, o: Ops, doc_id: str, replaces: Annotated[str, Form()] = "",
             replaces_other: Annotated[str, Form()] = "") -> Response:
    chosen = replaces_other.strip() or replaces.strip()  # an id typed in wins over a scan ticked
    if not chosen:
        raise ValidationFailed("choose the rejected or withdrawn scan this one replaces, or type its id")
    o.link_rescan(doc_id, chosen)
    notice(request, f"Document {doc_id} replaces {chosen}, which is now superseded.")
    return back(f"/documents/{doc_id}")


@router.post("/documents/{doc_id}/corrections")
def request_correction(request: Request, o: Ops, doc_id: str, reason: Annotated[str, Form()],
                       children: Annotated[str, Form()] = "", doc_type: Annotated[str, Form()] = "",
                       doc_date: Annotated[str, Form()] = "") -> Response:
    ids = children.replace(",", " ").split()
    o.request_correction(doc_id, reason=reason, child_ids=ids or None, doc_type=doc_type or None,
                         doc_date=parse_date(doc_date, "document date"))
    notice(request, f"Correction of {doc_id} asked for: it waits for a second person's approval.")
    return back(f"/documents/{doc_id}")


@router.get("/corrections")
def corrections_waiting(request: Request, o: Ops) -> Response:
    """Corrections asked by someone else that this person may approve or refuse (on the document's page)."""
    return render(request, "corrections.html", waiting=o.corrections_waiting())


@router.post("/corrections/{request_id}/approve")
def approve_correction(request: Request, o: Ops, request_id: int, note: Annotated[str, Form()] = "") -> Response:
    done = o.decide_correction(request_id, approve=True, note=note)
    notice(request, f"Correction approved: document {done['document_id']} corrected.")
    return back(f"/documents/{done['document_id']}")


@router.post("/corrections/{request_id}/refuse")
def refuse_correction(request: Request, o: Ops, request_id: int, reason: Annotated[str, Form()]) -> Response:
    done = o.decide_correction(request_id, approve=False, note=reason)
    notice(request, "Correction refused.")
    return back(f"/documents/{done['document_id']}")


@router.get("/documents/{doc_id}/pdf")
def document_pdf(o: Ops, doc_id: str, download: int = 0) -> Response:
    """Always a download: files are served with `CSP: sandbox`, under which Chrome refuses to show a
    PDF inline ("blocked by Chrome"); the pages are read in the app as page images instead."""
    stream, name, media = o.open_content(doc_id)
    return StreamingResponse(_chunks(stream), media_type=media,
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/documents/{doc_id}/original")
def document_original(o: Ops, doc_id: str) -> Response:
    stream, name, media = o.open_content(doc_id, original=True)
    return StreamingResponse(_chunks(stream), media_type=media,
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _chunks(stream: Any, size: int = 1 << 16):  # type: ignore[no-untyped-def]
    with stream:
        while data := stream.read(size):
            yield data


@router.get("/documents/{doc_id}/pages/{page}.png")
def page_image(o: Ops, doc_id: str, page: int, size: str = "thumb") -> Response:
    return FileResponse(o.page_image(doc_id, page, large=size == "large", view=size == "view"), media_type="image/png")


@router.get("/documents/{doc_id}/provenance")
def provenance(request: Request, o: Ops, doc_id: str) -> Response:
    """A verdict first (escr.app.auditing), then the protocol events as steps in words."""
    return render(request, "provenance.html", prov=auditing.provenance_view(services_of(request), o.p, doc_id),
                  doc_id=doc_id)


@router.get("/documents/{doc_id}/provenance.csv")
def provenance_csv(o: Ops, doc_id: str) -> Response:
    data = o.provenance(doc_id, 0, 1_000_000)
    return csv_response(data["events"].items, PROVENANCE_COLUMNS, f"provenance-{doc_id}.csv")


@router.post("/documents/{doc_id}/purpose")
def document_purpose(request: Request, o: Ops, doc_id: str, purpose: Annotated[str, Form()]) -> Response:
    o.record_purpose(purpose, document_id=doc_id)
    notice(request, f"Purpose recorded: document {doc_id} is open to you for a while.")
    return back(f"/documents/{doc_id}")


@router.get("/documents/{doc_id}/work")
def work(request: Request, o: Ops, doc_id: str, find: str = "") -> Response:
    """Indexing and verification: page images beside the extracted metadata, with the decisions;
    `find` looks a child up (id, NHS number, or name and date of birth) to tick in the index form."""
    doc = o.document(doc_id)
    found = o.find_children(find, 0, 20).items if find.strip() and "index" in doc["actions"] else None
    return render(request, "work.html", doc=doc, doc_type_choices=o.doc_types(), find=find, found=found)


@router.post("/documents/{doc_id}/index")
def index(request: Request, o: Ops, doc_id: str, doc_type: Annotated[str, Form()],
          children: Annotated[list[str] | None, Form()] = None, other_children: Annotated[str, Form()] = "",
          doc_date: Annotated[str, Form()] = "", version: Annotated[int | None, Form()] = None) -> Response:
    # No candidate ticked (or none offered) is the usual case: the ids typed in are the children.
    chosen = [*(children or []), *other_children.replace(",", " ").split()]
    state = o.index(doc_id, child_ids=chosen, doc_type=doc_type, doc_date=parse_date(doc_date, "document date"),
                    version=version)
    notice(request, f"Document {doc_id} indexed; it now waits for verification by someone else."
           if state == DocumentState.AWAITING_VERIFICATION else f"Document {doc_id} indexed ({state}).")
    return back(f"/documents/{doc_id}/work")


@router.post("/documents/{doc_id}/verify")
def verify(request: Request, o: Ops, doc_id: str, version: Annotated[int | None, Form()] = None) -> Response:
    o.decide(doc_id, "verify", version=version)
    notice(request, f"Document {doc_id} verified.")
    return back("/queue?state=awaiting_verification")


@router.post("/documents/{doc_id}/reject")
def reject(request: Request, o: Ops, doc_id: str, reason: Annotated[str, Form()],
           version: Annotated[int | None, Form()] = None) -> Response:
    o.decide(doc_id, "reject", reason=reason, version=version)
    notice(request, f"Document {doc_id} rejected: the paper must be rescanned.")
    return back("/queue")


@router.post("/documents/{doc_id}/accept-qc")
def accept_qc(request: Request, o: Ops, doc_id: str, reason: Annotated[str, Form()]) -> Response:
    state = o.decide(doc_id, "accept_qc", reason=reason)
    notice(request, f"QC failure of {doc_id} accepted; now {state.replace('_', ' ')}.")
    return back(f"/documents/{doc_id}/work")


@router.post("/documents/{doc_id}/withdraw")
def withdraw(request: Request, o: Ops, doc_id: str, reason: Annotated[str, Form()],
             version: Annotated[int | None, Form()] = None) -> Response:
    o.decide(doc_id, "withdraw", reason=reason, version=version)
    notice(request, f"Scan {doc_id} withdrawn for a rescan.")
    return back("/queue")


# --- business support: intake -----------------------------------------------------------------


@router.get("/intake")
def intake(request: Request, o: Ops) -> Response:
    return render(request, "intake.html", dash=o.dashboard(), quarantine=o.quarantine_entries(), bulk_limit=BULK_LIMIT)


@router.get("/queue")
def queue(request: Request, o: Ops, state: str = "", offset: int | None = None, operator: str = "",
          doc_type: str = "", child: str = "") -> Response:
    filters = {"operator": operator, "doc_type": doc_type, "child": child}
    page = o.queue(state or None, *_paging(request, offset), **{k: v or None for k, v in filters.items()})
    queues = [(s, *labels.QUEUES[s]) for s in QUEUE_CHOICES if s != DocumentState.NEEDS_INDEXING or o.p.can(Can.INDEX)]
    return render(request, "queue.html", queue_state=state, page=page, queues=queues, f=filters,
                  heading=labels.QUEUES[DocumentState(state)][1] if state else None, operators=o.queue_operators(),
                  doc_type_choices=[(code, t.label) for code, t in services_of(request).doctypes.types.items()],
                  page_url=lambda off: _url("/queue", state=state, offset=off, **filters))


@router.post("/queue/reject")
def queue_reject(request: Request, o: Ops, reason: Annotated[str, Form()] = "",
                 documents: Annotated[list[str] | None, Form()] = None, back_to: Annotated[str, Form()] = "") -> Response:
    """Reject the chosen scans for a rescan with one reason: the queue's one bulk action."""
    done = o.reject_many(documents or [], reason)
    if done["rejected"]:
        notice(request, f"{len(done['rejected'])} rejected for a rescan: {', '.join(done['rejected'])}.")
    for r in done["refused"]:
        notice(request, f"Document {r['id']} not rejected: {labels.label(r['code'], 'error')}", "error")
    return back(_safe_next(back_to) or "/queue")


@router.post("/quarantine/retry")
def quarantine_retry_many(request: Request, o: Ops,
                          claim_ids: Annotated[list[str] | None, Form()] = None) -> Response:
    """Put the chosen quarantined files back in the intake folder: quarantine's bulk action."""
    done = o.retry_many_quarantined(claim_ids or [])
    if done["returned"]:
        n = len(done["returned"])
        notice(request, f"{n} file{'' if n == 1 else 's'} put back in the intake folder for another try: "
               f"{', '.join(r['returned_to'] for r in done['returned'])}.")
    for r in done["refused"]:
        notice(request, f"Quarantined file {r['claim_id']} not retried: {r['why']}.", "error")
    return back("/intake#quarantine")


@router.post("/quarantine/{claim_id}/retry")
def quarantine_retry(request: Request, o: Ops, claim_id: str) -> Response:
    o.retry_quarantined(claim_id)
    notice(request, f"Quarantined file {claim_id} put back in the intake folder for another try.")
    return back("/intake")


@router.post("/quarantine/{claim_id}/discard")
def quarantine_discard(request: Request, o: Ops, claim_id: str, reason: Annotated[str, Form()]) -> Response:
    keep_until = o.discard_quarantined(claim_id, reason)
    notice(request, f"Quarantined file {claim_id} discarded; its bytes are kept until at least {keep_until}.")
    return back("/intake")


# --- auditors ---------------------------------------------------------------------------------


def _log_filters(child: str, user: str, since: str, until: str, action: str, outcome: str) -> dict[str, Any]:
    return {"child_id": child or None, "user": user or None, "since": parse_date(since, "from"),
            "until": parse_date(until, "to"), "action": action or None, "outcome": outcome or None}


@router.get("/access-log")
def access_log(request: Request, o: Ops, child: str = "", user: str = "", since: str = "", until: str = "",
               action: str = "", outcome: str = "", offset: int | None = None) -> Response:
    filters = _log_filters(child, user, since, until, action, outcome)
    page = o.access_log(*_paging(request, offset), **filters)
    raw = {"child": child, "user": user, "since": since, "until": until, "action": action, "outcome": outcome}
    return render(request, "access_log.html", page=page, f=raw, csv_url=_url("/access-log.csv", **raw),
                  page_url=lambda off: _url("/access-log", **raw, offset=off))


@router.get("/access-log.csv")
def access_log_csv(o: Ops, child: str = "", user: str = "", since: str = "", until: str = "", action: str = "",
                   outcome: str = "") -> Response:
    rows = o.access_log_all(**_log_filters(child, user, since, until, action, outcome))
    return csv_response((access_log_row(r) for r in rows), ACCESS_LOG_COLUMNS, "access-log.csv")


# --- break-glass ------------------------------------------------------------------------------


@router.get("/break-glass")
def break_glass_form(request: Request, o: Ops, child: str = "", offset: int | None = None) -> Response:
    page = o.break_glass_list(everyone=False, pending_only=False, offset=_paging(request, offset)[0],
                              limit=_paging(request, offset)[1])
    return render(request, "break_glass.html", child=child, page=page,
                  page_url=lambda off: _url("/break-glass", offset=off))


@router.post("/break-glass/find")
def break_glass_find(request: Request, o: Ops, name: Annotated[str, Form()] = "",
                     date_of_birth: Annotated[str, Form()] = "") -> Response:
    """Find the child by name and date of birth (posted: they stay out of URLs), keeping what was
    typed when nothing or something wrong was entered."""
    found, problem = None, None
    try:
        found = homes.find_for_break_glass(services_of(request), o.p, name, date_of_birth)
    except ValidationFailed as exc:
        problem = exc.message
    page = o.break_glass_list(everyone=False, pending_only=False, offset=0, limit=_paging(request, 0)[1])
    return render(request, "break_glass.html", child="", page=page, found=found, problem=problem,
                  name=name, date_of_birth=date_of_birth, status=422 if problem else 200,
                  page_url=lambda off: _url("/break-glass", offset=off))


@router.post("/break-glass")
def break_glass(request: Request, o: Ops, child_id: Annotated[str, Form()], reason: Annotated[str, Form()]) -> Response:
    glass = o.break_glass(child_id, reason)
    until = labels.local_time(glass["expires_at"], services_of(request).settings.web.timezone)
    notice(request, f"Break-glass access to {glass['child_id']} until {until}. It is logged and will be reviewed.",
           "warn")
    return back(f"/children/{glass['child_id']}")


@router.get("/break-glass/reviews")
def break_glass_reviews(request: Request, o: Ops, all: int = 0, offset: int | None = None) -> Response:
    page = o.break_glass_list(everyone=True, pending_only=not all, offset=_paging(request, offset)[0],
                              limit=_paging(request, offset)[1])
    return render(request, "break_glass_reviews.html", page=page, show_all=bool(all),
                  page_url=lambda off: _url("/break-glass/reviews", all=all or None, offset=off))


@router.post("/break-glass/{glass_id}/review")
def break_glass_review(request: Request, o: Ops, glass_id: int, outcome: Annotated[str, Form()],
                       note: Annotated[str, Form()] = "") -> Response:
    o.review_break_glass(glass_id, outcome, note)
    notice(request, f"Break-glass access {glass_id} reviewed.")
    return back("/break-glass/reviews")


# --- administration ---------------------------------------------------------------------------


@router.get("/admin/users")
def users(request: Request, o: Ops, offset: int | None = None) -> Response:
    page = o.users(*_paging(request, offset))
    return render(request, "users.html", page=page, roles=list(access.roles()), teams=o.teams(),
                  page_url=lambda off: _url("/admin/users", offset=off))


@router.post("/admin/users")
def add_user(request: Request, o: Ops, username: Annotated[str, Form()], role: Annotated[str, Form()],
             display_name: Annotated[str, Form()] = "", teams: Annotated[list[str] | None, Form()] = None,
             third_party: Annotated[str, Form()] = "") -> Response:
    password = o.add_user(username, role=role, display_name=display_name or None, teams=teams or [],
                          third_party=bool(third_party))
    return render(request, "secret_shown.html", title=f"User {username.strip().lower()} added",
                  label="First password", secret=password,
                  explain="Give this password to the person in a safe way; it is not shown again. At their "
                          "first sign-in they must choose a password of their own before anything else.",
                  back_url="/admin/users")


@router.post("/admin/users/{username}")
def update_user(request: Request, o: Ops, username: str, role: Annotated[str, Form()] = "",
                third_party: Annotated[str, Form()] = "", disabled: Annotated[str, Form()] = "") -> Response:
    o.update_user(username, role=role or None, third_party=third_party == "yes",
                  disabled=disabled == "yes")
    notice(request, f"User {username} updated.")
    return back("/admin/users")


@router.post("/admin/users/{username}/reset-password")
def reset_password(request: Request, o: Ops, username: str) -> Response:
    password = o.reset_password(username)
    return render(request, "secret_shown.html", title=f"New password for {username}", label="New password",
                  secret=password, explain="Every session of this user has ended. Give them this password in a "
                                           "safe way; it is not shown again.", back_url="/admin/users")


@router.get("/admin/users/{username}/tokens")
def user_tokens(request: Request, o: Ops, username: str) -> Response:
    return render(request, "user_tokens.html", username=username, tokens=o.user_tokens(username))


@router.post("/admin/tokens/{token_id}/revoke")
def admin_revoke_token(request: Request, o: Ops, token_id: int) -> Response:
    token = o.admin_revoke_token(token_id)
    notice(request, f"API token {token_id} of {token['user']} revoked.")
    return back(f"/admin/users/{token['user']}/tokens")


@router.get("/admin/teams")
def teams(request: Request, o: Ops) -> Response:
    return render(request, "teams.html", teams=o.teams())


@router.post("/admin/teams")
def add_team(request: Request, o: Ops, code: Annotated[str, Form()], name: Annotated[str, Form()] = "") -> Response:
    o.add_team(code, name or None)
    notice(request, f"Team {code} added.")
    return back("/admin/teams")


@router.post("/admin/teams/{code}/members")
def add_member(request: Request, o: Ops, code: str, username: Annotated[str, Form()]) -> Response:
    o.set_membership(code, username, True)
    notice(request, f"{username} added to team {code}.")
    return back("/admin/teams")


@router.post("/admin/teams/{code}/members/{username}/remove")
def remove_member(request: Request, o: Ops, code: str, username: str) -> Response:
    o.set_membership(code, username, False)
    notice(request, f"{username} removed from team {code}.")
    return back("/admin/teams")


# --- own account ------------------------------------------------------------------------------


@router.get("/account")
def account(request: Request, o: Ops) -> Response:
    web = services_of(request).settings.web
    return render(request, "account.html", tokens=o.tokens(), info=o.me(), token_days=web.token_days,
                  token_max_days=web.token_max_days)


@router.post("/account/password")
def change_password(request: Request, o: Ops, current: Annotated[str, Form()], new: Annotated[str, Form()],
                    repeat: Annotated[str, Form()]) -> Response:
    if new != repeat:
        notice(request, "The two new passwords differ; nothing was changed.", "error")
        return back("/account")
    o.change_password(current, new, keep_session=request.session.get("sid"))
    notice(request, "Password changed.")
    return back("/account")


@router.post("/account/tokens")
def create_token(request: Request, o: Ops, name: Annotated[str, Form()] = "API token",
                 days: Annotated[str, Form()] = "", scope: Annotated[str, Form()] = "write") -> Response:
    new = o.create_token(name, int(days) if days.strip().isdigit() and int(days) > 0 else None, scope)
    return render(request, "secret_shown.html", title=f"API token {new['name']} created", label="API token",
                  secret=new["token"], explain="Copy it now: it is not shown again. Send it as "
                  "'Authorization: Bearer <token>'. Revoke it on your account page when no longer needed.",
                  back_url="/account")


@router.post("/account/tokens/{token_id}/revoke")
def revoke_token(request: Request, o: Ops, token_id: int) -> Response:
    o.revoke_token(token_id)
    notice(request, f"API token {token_id} revoked.")
    return back("/account")
