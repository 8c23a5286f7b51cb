"""The REST API (`/api/v1`): everything the pages do, as JSON, under the same rules.

Each route asks `Operations` (which asks `escr.app.access`) and returns JSON; errors are JSON with
stable codes (see the OpenAPI description at /api/v1/openapi.json); lists are paginated.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from escr.app.access import Principal
from escr.app.operations import BULK_LIMIT, Operations, PageOf
from escr.app.reading import Reader
from escr.app.saved_views import SavedViews, ViewFilters
from escr.record.states import DocumentState
from escr.web.auth import current_principal, services_of
from escr.web.exports import ACCESS_LOG_COLUMNS, PROVENANCE_COLUMNS, access_log_row, csv_response


class ErrorDetail(BaseModel):
    code: str
    message: str
    status: int


class ErrorBody(BaseModel):
    error: ErrorDetail


class Page(BaseModel):
    items: list[dict[str, Any]]
    offset: int
    limit: int
    total: int
    next_offset: int | None


ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorBody} for s in (400, 401, 403, 404, 409, 422, 503)}

router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["escr"])


def ops(request: Request, principal: Annotated[Principal, Depends(current_principal)]) -> Operations:
    return Operations(services_of(request), principal)


def paging(request: Request, offset: Annotated[int, Query(ge=0)] = 0,
           limit: Annotated[int | None, Query(ge=1)] = None) -> tuple[int, int]:
    web = services_of(request).settings.web
    return offset, min(limit or web.page_size, web.max_page_size)


Ops = Annotated[Operations, Depends(ops)]
Paging = Annotated[tuple[int, int], Depends(paging)]


def _page(p: PageOf) -> dict[str, Any]:
    return p.as_dict()


def _stream(stream: Any, chunk: int = 1 << 16):  # type: ignore[no-untyped-def]
    with stream:
        while data := stream.read(chunk):
            yield data


# --- bodies ---------------------------------------------------------------------------------


class Reason(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class SearchText(BaseModel):
    """A search sent in the body, so names and dates of birth stay out of URLs and any proxy's log."""

    q: str = Field(max_length=500)


class Purpose(BaseModel):
    purpose: str = Field(min_length=1, max_length=2000)


class CoverSheetRequest(BaseModel):
    doc_type: str
    pages: int | None = Field(default=None, ge=1, le=9999)
    siblings: list[str] = Field(default_factory=list, description="further child ids on the same sheet")
    print_names: bool = True


class IndexRequest(BaseModel):
    children: list[str] = Field(min_length=1)
    doc_type: str
    doc_date: date | None = None
    version: int | None = Field(default=None, description="the document version you saw (a later change: 409 conflict)")


class ThirdPartyChange(BaseModel):
    third_party: bool
    reason: str


class RescanLink(BaseModel):
    replaces: str = Field(description="the rejected or withdrawn document this rescan replaces")


class CorrectionAsk(BaseModel):
    reason: str
    children: list[str] | None = None
    doc_type: str | None = None
    doc_date: date | None = None


class CorrectionDecision(BaseModel):
    note: str = ""


class Allocation(BaseModel):
    username: str | None = None


class Review(BaseModel):
    outcome: Literal["justified", "not_justified"]
    note: str = ""


class NewUser(BaseModel):
    username: str
    role: str
    display_name: str | None = None
    teams: list[str] = Field(default_factory=list)
    third_party_access: bool = False


class UserChange(BaseModel):
    role: str | None = None
    display_name: str | None = None
    third_party_access: bool | None = None
    disabled: bool | None = None


class NewTeam(BaseModel):
    code: str
    name: str | None = None


class NewToken(BaseModel):
    name: str = "API token"
    days: int | None = Field(default=None, ge=1, le=3650, description="default: the configured token lifetime")
    scope: Literal["read", "write", "admin"] = "write"


# --- who am I -------------------------------------------------------------------------------


@router.get("/me", summary="The signed-in user, their role, teams and what the role may do")
def me(o: Ops) -> dict[str, Any]:
    return o.me()


@router.get("/doctypes", summary="The document types")
def doctypes(o: Ops) -> list[dict[str, str]]:
    return [{"code": code, "label": label} for code, label in o.doc_types()]


# --- children and their records --------------------------------------------------------------


@router.get("/children", response_model=Page, summary="Find a child by id, NHS number, name or date of birth")
def find_children(o: Ops, pg: Paging, q: str) -> dict[str, Any]:
    return _page(o.find_children(q, *pg))


@router.post("/children/find", response_model=Page,
             summary="Find a child, the query in the body (keeps names out of URLs)")
def find_children_posted(o: Ops, pg: Paging, body: SearchText) -> dict[str, Any]:
    return _page(o.find_children(body.q, *pg))


@router.get("/children/{child_id}", summary="A child's index entry")
def child(o: Ops, child_id: str) -> dict[str, Any]:
    return o.child_summary(child_id)


@router.get("/children/{child_id}/documents", response_model=Page,
            summary="The child's documents in date order (the chronology), undated last")
def child_documents(o: Ops, pg: Paging, child_id: str, type: str | None = None, since: date | None = None,
                    until: date | None = None) -> dict[str, Any]:
    return _page(o.child_documents(child_id, doc_type=type, since=since, until=until, offset=pg[0], limit=pg[1]))


@router.get("/children/{child_id}/chronology",
            summary="The child's chronology as the page reads it: filtered, or opened through a saved view")
def child_chronology(o: Ops, pg: Paging, child_id: str, view: str | None = None,
                     type: Annotated[list[str] | None, Query()] = None, since: date | None = None,
                     until: date | None = None, state: str | None = None, third_party: str | None = None,
                     sort: str | None = None) -> dict[str, Any]:
    """With `view`, one of your saved views (its filters, not the others given here); the read is
    checked and logged as any other. States: verified (default), all, pending."""
    reader = Reader(o.services, o.p)
    if view is not None:
        data = reader.chronology(child_id, view=view, offset=pg[0], limit=pg[1])
    else:
        data = reader.chronology(child_id, ViewFilters.parse(types=type, since=since, until=until, state=state,
                                                             third_party=third_party, sort=sort),
                                 offset=pg[0], limit=pg[1])
    return {**data, "filters": data["filters"].as_dict(), "documents": _page(data["documents"])}


@router.get("/children/{child_id}/search", response_model=Page, summary="Full-text search in one child's record")
def child_search(o: Ops, pg: Paging, child_id: str, q: str) -> dict[str, Any]:
    return _page(o.search(q, child_id=child_id, offset=pg[0], limit=pg[1]))


@router.post("/children/{child_id}/search", response_model=Page,
             summary="Full-text search in one child's record, the query in the body")
def child_search_posted(o: Ops, pg: Paging, child_id: str, body: SearchText) -> dict[str, Any]:
    return _page(o.search(body.q, child_id=child_id, offset=pg[0], limit=pg[1]))


@router.post("/children/{child_id}/coversheet", summary="A printable cover sheet (PDF) for the child",
             response_class=StreamingResponse)
def coversheet(o: Ops, child_id: str, body: CoverSheetRequest) -> StreamingResponse:
    pdf = o.coversheet([child_id, *body.siblings], body.doc_type, body.pages, print_names=body.print_names)
    return StreamingResponse(iter([pdf]), media_type="application/pdf",
                             headers={"Content-Disposition": f'attachment; filename="coversheet-{child_id}.pdf"'})


@router.post("/children/{child_id}/break-glass", status_code=201,
             summary="Emergency access to a child outside your teams: logged and flagged for review")
def break_glass(o: Ops, child_id: str, body: Reason) -> dict[str, Any]:
    return o.break_glass(child_id, body.reason)


@router.post("/children/{child_id}/purpose", status_code=201,
             summary="Auditors: record why you need to open this child's documents")
def child_purpose(o: Ops, child_id: str, body: Purpose) -> dict[str, Any]:
    return {"expires_at": o.record_purpose(body.purpose, child_id=child_id)}


@router.put("/children/{child_id}/allocation", summary="Allocate the child to a worker (null clears)")
def allocation(o: Ops, child_id: str, body: Allocation) -> dict[str, Any]:
    o.allocate(child_id, body.username)
    return {"child_id": child_id, "allocated_to": body.username}


# --- saved views (escr.app.saved_views): your own, by name ------------------------------------


class ViewBody(BaseModel):
    """A saved view's filters (all optional: the chronology as it opens) and the child it opens on."""

    child_id: str | None = Field(default=None, max_length=64)
    types: list[str] = Field(default_factory=list, max_length=30)
    since: date | None = None
    until: date | None = None
    state: Literal["verified", "all", "pending"] = "verified"
    third_party: Literal["any", "only", "without"] = "any"
    text: str = Field(default="", max_length=200)
    sort: Literal["oldest", "newest"] = "oldest"


@router.get("/views", summary="Your saved views")
def views(o: Ops) -> list[dict[str, Any]]:
    return SavedViews(o.services, o.p).list()


@router.get("/views/{name}", summary="One of your saved views")
def view(o: Ops, name: str) -> dict[str, Any]:
    return SavedViews(o.services, o.p).get(name)


@router.put("/views/{name}", summary="Save a view under this name (replacing yours of that name)")
def put_view(o: Ops, name: str, body: ViewBody, response: Response) -> dict[str, Any]:
    filters = ViewFilters.parse(types=body.types, since=body.since, until=body.until, state=body.state,
                                third_party=body.third_party, text=body.text, sort=body.sort)
    saved = SavedViews(o.services, o.p).save(name, filters, child_id=body.child_id)
    response.status_code = 201 if saved.pop("created") else 200
    return saved


@router.delete("/views/{name}", status_code=204, summary="Remove one of your saved views")
def delete_view(o: Ops, name: str) -> Response:
    SavedViews(o.services, o.p).remove(name)
    return Response(status_code=204)


@router.get("/search", response_model=Page, summary="Full-text search over the documents you may open")
def search(o: Ops, pg: Paging, q: str) -> dict[str, Any]:
    return _page(o.search(q, child_id=None, offset=pg[0], limit=pg[1]))


@router.post("/search", response_model=Page, summary="Full-text search, the query in the body")
def search_posted(o: Ops, pg: Paging, body: SearchText) -> dict[str, Any]:
    return _page(o.search(body.q, child_id=None, offset=pg[0], limit=pg[1]))


# --- documents ------------------------------------------------------------------------------


@router.get("/documents/{doc_id}", summary="A document's type, date, tags, QC results, links and who verified it")
def document(o: Ops, doc_id: str) -> dict[str, Any]:
    return o.document(doc_id)


@router.get("/documents/{doc_id}/content", response_class=StreamingResponse,
            summary="The searchable PDF (or, with original=true, the untouched scan)")
def content(o: Ops, doc_id: str, original: bool = False, download: bool = False) -> StreamingResponse:
    stream, name, media = o.open_content(doc_id, original=original)
    # Always an attachment: served with `CSP: sandbox`, a PDF would not display inline in Chrome.
    return StreamingResponse(_stream(stream), media_type=media,
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/documents/{doc_id}/pages/{page}", response_class=FileResponse,
            summary="A page image (PNG): a thumbnail, or size=large for reading and verification")
def page_image(o: Ops, doc_id: str, page: int, size: Literal["thumb", "large"] = "thumb") -> FileResponse:
    return FileResponse(o.page_image(doc_id, page, large=size == "large"), media_type="image/png")


@router.get("/documents/{doc_id}/provenance", summary="Every protocol event of the document in order, with hashes")
def provenance(o: Ops, pg: Paging, doc_id: str) -> dict[str, Any]:
    data = o.provenance(doc_id, *pg)
    data["events"] = data["events"].as_dict()
    return data


@router.get("/documents/{doc_id}/provenance.csv", response_class=StreamingResponse,
            summary="The provenance events as CSV")
def provenance_csv(o: Ops, doc_id: str) -> StreamingResponse:
    data = o.provenance(doc_id, 0, 1_000_000)
    return csv_response(data["events"].items, PROVENANCE_COLUMNS, f"provenance-{doc_id}.csv")


@router.post("/documents/{doc_id}/purpose", status_code=201,
             summary="Auditors: record why you need to open this document")
def document_purpose(o: Ops, doc_id: str, body: Purpose) -> dict[str, Any]:
    return {"expires_at": o.record_purpose(body.purpose, document_id=doc_id)}


@router.post("/documents/{doc_id}/index", summary="Index by hand: the child(ren), type and date")
def index(o: Ops, doc_id: str, body: IndexRequest) -> dict[str, Any]:
    return {"id": doc_id, "state": o.index(doc_id, child_ids=body.children, doc_type=body.doc_type,
                                           doc_date=body.doc_date, version=body.version)}


@router.post("/documents/{doc_id}/verify", summary="Verify (four-eyes: not the scanner, not the indexer)")
def verify(o: Ops, doc_id: str, version: int | None = None) -> dict[str, Any]:
    return {"id": doc_id, "state": o.decide(doc_id, "verify", version=version)}


@router.post("/documents/{doc_id}/reject", summary="Reject a scan with a reason: the paper must be rescanned")
def reject(o: Ops, doc_id: str, body: Reason, version: int | None = None) -> dict[str, Any]:
    return {"id": doc_id, "state": o.decide(doc_id, "reject", reason=body.reason, version=version)}


@router.post("/documents/{doc_id}/accept-qc", summary="Accept a scan despite an automated QC failure, with a reason")
def accept_qc(o: Ops, doc_id: str, body: Reason, version: int | None = None) -> dict[str, Any]:
    return {"id": doc_id, "state": o.decide(doc_id, "accept_qc", reason=body.reason, version=version)}


@router.post("/documents/{doc_id}/withdraw", summary="The scanner withdraws their own scan for a rescan, with a reason")
def withdraw(o: Ops, doc_id: str, body: Reason, version: int | None = None) -> dict[str, Any]:
    return {"id": doc_id, "state": o.decide(doc_id, "withdraw", reason=body.reason, version=version)}


@router.post("/documents/{doc_id}/third-party", summary="Set or clear the third-party flag, with a reason")
def third_party(o: Ops, doc_id: str, body: ThirdPartyChange, version: int | None = None) -> dict[str, Any]:
    return {"id": doc_id, "third_party": o.set_third_party(doc_id, on=body.third_party, reason=body.reason,
                                                           version=version)}


@router.post("/documents/{doc_id}/replaces", summary="Link a rescan to the scan it replaces (that one is superseded)")
def replaces(o: Ops, doc_id: str, body: RescanLink) -> dict[str, Any]:
    return {"id": doc_id, "replaces": body.replaces, "replaced_state": o.link_rescan(doc_id, body.replaces)}


@router.get("/documents/{doc_id}/corrections", summary="A document's correction requests and misfiling records")
def corrections(o: Ops, doc_id: str) -> list[dict[str, Any]]:
    return o.corrections(doc_id)


@router.post("/documents/{doc_id}/corrections", status_code=201,
             summary="Ask for a verified document to be corrected (a second person approves)")
def request_correction(o: Ops, doc_id: str, body: CorrectionAsk) -> dict[str, Any]:
    return o.request_correction(doc_id, reason=body.reason, child_ids=body.children, doc_type=body.doc_type,
                                doc_date=body.doc_date)


@router.get("/corrections", summary="Corrections asked by someone else that you may approve or refuse")
def corrections_waiting(o: Ops) -> list[dict[str, Any]]:
    return o.corrections_waiting()


@router.post("/corrections/{request_id}/approve", summary="Approve a correction: the document moves")
def approve_correction(o: Ops, request_id: int, body: CorrectionDecision) -> dict[str, Any]:
    return o.decide_correction(request_id, approve=True, note=body.note)


@router.post("/corrections/{request_id}/refuse", summary="Refuse a correction, with a reason")
def refuse_correction(o: Ops, request_id: int, body: Reason) -> dict[str, Any]:
    return o.decide_correction(request_id, approve=False, note=body.reason)


# --- intake ---------------------------------------------------------------------------------


@router.get("/intake", summary="The intake dashboard: processing, quarantined, and each queue's size")
def intake(o: Ops) -> dict[str, Any]:
    return o.dashboard()


@router.get("/queue", response_model=Page, summary="Documents waiting for indexing, a QC decision or verification")
def queue(o: Ops, pg: Paging,
          state: DocumentState | None = None,  # a queue: escr.record.states.QUEUE_CHOICES
          ) -> dict[str, Any]:
    return _page(o.queue(state, *pg))


@router.get("/quarantine", response_model=Page, summary="Quarantined files with the reason and what to do")
def quarantine(o: Ops, pg: Paging) -> dict[str, Any]:
    return _page(o.quarantine(*pg))


class ClaimIds(BaseModel):
    claim_ids: list[Annotated[str, Field(max_length=100)]] = Field(
        description=f"Claim ids of quarantined files; at most {BULK_LIMIT}")


@router.post("/quarantine/retry", summary="Put several quarantined files back in the intake folder")
def quarantine_retry_many(o: Ops, body: ClaimIds) -> dict[str, Any]:
    """Each file is retried on its own: `returned` lists those put back (and where), `refused`
    those that were not, each with a code and the reason in words. More than the limit, or
    none, is refused whole (422) and nothing is retried."""
    return o.retry_many_quarantined(body.claim_ids)


@router.post("/quarantine/{claim_id}/retry", summary="Put a quarantined file back in the intake folder")
def quarantine_retry(o: Ops, claim_id: str) -> dict[str, Any]:
    return {"claim_id": claim_id, "returned_to": o.retry_quarantined(claim_id)}


@router.post("/quarantine/{claim_id}/discard",
             summary="Discard a quarantined file (logged; the bytes are kept until retention allows)")
def quarantine_discard(o: Ops, claim_id: str, body: Reason) -> dict[str, Any]:
    return {"claim_id": claim_id, "kept_until": o.discard_quarantined(claim_id, body.reason)}


# --- auditors -------------------------------------------------------------------------------


def _log_filters(child: str | None, user: str | None, since: date | None, until: date | None,
                 action: str | None, outcome: str | None) -> dict[str, Any]:
    return {"child_id": child, "user": user, "since": since, "until": until, "action": action, "outcome": outcome}


@router.get("/access-log", response_model=Page, summary="Who used which child's record, when, how and why")
def access_log(o: Ops, pg: Paging, child: str | None = None, user: str | None = None, since: date | None = None,
               until: date | None = None, action: str | None = None, outcome: str | None = None) -> dict[str, Any]:
    return _page(o.access_log(*pg, **_log_filters(child, user, since, until, action, outcome)))


@router.get("/access-log.csv", response_class=StreamingResponse, summary="The access log as CSV")
def access_log_csv(o: Ops, child: str | None = None, user: str | None = None, since: date | None = None,
                   until: date | None = None, action: str | None = None,
                   outcome: str | None = None) -> StreamingResponse:
    rows = o.access_log_all(**_log_filters(child, user, since, until, action, outcome))
    return csv_response((access_log_row(r) for r in rows), ACCESS_LOG_COLUMNS, "access-log.csv")


@router.get("/purposes", summary="Auditors: your purposes still in force")
def purposes(o: Ops) -> list[dict[str, Any]]:
    return o.purposes()


@router.get("/break-glass", response_model=Page, summary="Your own break-glass accesses")
def break_glass_own(o: Ops, pg: Paging) -> dict[str, Any]:
    return _page(o.break_glass_list(everyone=False, pending_only=False, offset=pg[0], limit=pg[1]))


@router.get("/break-glass/reviews", response_model=Page,
            summary="Reviewers: everyone's break-glass accesses (pending=true: those waiting for review)")
def break_glass_all(o: Ops, pg: Paging, pending: bool = True) -> dict[str, Any]:
    return _page(o.break_glass_list(everyone=True, pending_only=pending, offset=pg[0], limit=pg[1]))


@router.post("/break-glass/{glass_id}/review", summary="Review a break-glass access")
def break_glass_review(o: Ops, glass_id: int, body: Review) -> dict[str, Any]:
    o.review_break_glass(glass_id, body.outcome, body.note)
    return {"id": glass_id, "review_outcome": body.outcome}


# --- administration -------------------------------------------------------------------------


@router.get("/users", response_model=Page, summary="Users")
def users(o: Ops, pg: Paging) -> dict[str, Any]:
    return _page(o.users(*pg))


@router.post("/users", status_code=201, summary="Add a user; the first password is in the answer, once")
def add_user(o: Ops, body: NewUser) -> dict[str, Any]:
    password = o.add_user(body.username, role=body.role, display_name=body.display_name, teams=body.teams,
                          third_party=body.third_party_access)
    return {"username": body.username.strip().lower(), "password": password}


@router.patch("/users/{username}", summary="Change a user's role, name, third-party permission, or disable them")
def update_user(o: Ops, username: str, body: UserChange) -> dict[str, Any]:
    return o.update_user(username, role=body.role, display_name=body.display_name,
                         third_party=body.third_party_access, disabled=body.disabled)


@router.post("/users/{username}/reset-password", summary="A new random password (shown once); ends every session")
def reset_password(o: Ops, username: str) -> dict[str, Any]:
    return {"username": username, "password": o.reset_password(username)}


@router.get("/teams", summary="Teams with their members and number of children")
def teams(o: Ops) -> list[dict[str, Any]]:
    return o.teams()


@router.post("/teams", status_code=201, summary="Add a team (its code as in the child index)")
def add_team(o: Ops, body: NewTeam) -> dict[str, Any]:
    o.add_team(body.code, body.name)
    return {"code": body.code}


@router.put("/teams/{code}/members/{username}", summary="Add a member to a team")
def add_member(o: Ops, code: str, username: str) -> dict[str, Any]:
    o.set_membership(code, username, True)
    return {"team": code, "member": username}


@router.delete("/teams/{code}/members/{username}", summary="Remove a member from a team")
def remove_member(o: Ops, code: str, username: str) -> dict[str, Any]:
    o.set_membership(code, username, False)
    return {"team": code, "removed": username}


# --- own API tokens -------------------------------------------------------------------------


@router.get("/tokens", summary="Your API tokens (never the tokens themselves)")
def tokens(o: Ops) -> list[dict[str, Any]]:
    return o.tokens()


@router.post("/tokens", status_code=201, summary="A new API token for yourself; shown once in the answer")
def create_token(o: Ops, body: NewToken) -> dict[str, Any]:
    return o.create_token(body.name, body.days, body.scope)


@router.delete("/tokens/{token_id}", summary="Revoke one of your API tokens")
def revoke_token(o: Ops, token_id: int) -> dict[str, Any]:
    o.revoke_token(token_id)
    return {"id": token_id, "revoked": True}



# --- everyone's API tokens (administrators) ---------------------------------------------------


@router.get("/users/{username}/tokens", summary="Administrators: a user's API tokens (never the tokens themselves)")
def user_tokens(o: Ops, username: str) -> list[dict[str, Any]]:
    return o.user_tokens(username)


@router.delete("/admin/tokens/{token_id}", summary="Administrators: revoke anyone's API token")
def admin_revoke_token(o: Ops, token_id: int) -> dict[str, Any]:
    return o.admin_revoke_token(token_id)
