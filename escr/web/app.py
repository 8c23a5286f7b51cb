"""The FastAPI application: sessions, security headers, errors as pages or JSON, the routes.

`create_app(services)` builds one app on the services object of the entry point; `escr serve`
runs it under uvicorn. Request logging here replaces uvicorn's access log, which would write
query strings (a searched name, a date of birth) into the log: lines carry method, path, status
and user id only, and paths hold ids, never personal data.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from escr import __version__
from escr.app.access import AccessDenied, PasswordChangeRequired
from escr.errors import ConfigError, EscrError, RequestTooLarge, Unauthenticated
from escr.record.states import OUT_OF_RECORD, DocumentState, PaperState
from escr.services import Services
from escr.settings import Settings
from escr.web.auth import authenticate, csrf_guard, csrf_token, is_local

log = logging.getLogger("escr.web")
HERE = Path(__file__).resolve().parent
SECRET_FILE = "web-secret.key"

API_DESCRIPTION = """
The escr REST API: the same need-to-know rules, logging and four-eyes checks as the web pages.

**Authentication**: `Authorization: Bearer <token>` with a personal API token (create one on the
*API tokens* page or with `escr users token`). A browser session also works, with the session's
CSRF token in `X-CSRF-Token` on every POST, PUT, PATCH or DELETE.

**Errors** are JSON: `{"error": {"code": "...", "message": "...", "status": 403}}`. Codes are stable:
`unauthenticated`, `invalid_token`, `sso_user_unknown` (401); `role_forbidden`, `not_your_team`,
`purpose_required`, `third_party_permission_required`, `not_in_intake`, `original_holds_other_records`,
`own_access`, `token_scope`, `token_cannot_create_tokens`, `password_change_required`,
`csrf_failed` (403); `not_found` (404); `method_not_allowed` (405); `invalid_state`,
`protocol_violation` (four-eyes), `already_exists`, `already_reviewed`, `already_allowed`,
`own_account`, `user_disabled`, `sign_in_failed` (409); `validation_failed`, `reason_required`,
`weak_password` (422); `input_rejected` (400); `request_too_large` (413); `database_failed`, `storage_failed` (503: an outage,
retry later). The status follows from the class of the error (see `escr/errors.py`), never from its code.

**Pagination**: every list takes `offset` (from 0) and `limit` (default 50, at most 200) and
answers `{"items": [...], "offset", "limit", "total", "next_offset"}`; `next_offset` is null on the
last page.

**Logging**: every listing, view, download and search of a child's documents is written to the
access log with who, when, what and why (purpose, break-glass), refused attempts included.
"""


def session_secret(settings: Settings) -> str:
    """ESCR_WEB__SECRET_KEY, else a random key generated once under ESCR_HOME (mode 0600)."""
    if settings.web.secret_key is not None:
        value = settings.web.secret_key.get_secret_value()
        if len(value) < 32:
            raise ConfigError("web.secret_key must be at least 32 characters")
        return value
    path = settings.home / SECRET_FILE
    settings.home.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(48) + "\n")
    return path.read_text().strip()


class BodyLimit:
    """Refuse a request body larger than the app takes, counted as it arrives: a stranger's 300 MB
    form posted to /login was held in memory whole before anything looked at it. Forms and JSON
    stop at `web.max_body_kb`; a multipart upload (a scan) at preflight's file size limit. The
    answer is 413, at once when the declared length is too large, else when the count passes it
    (whatever the route would have answered instead)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_upload_bytes: int) -> None:
        self.app, self.max_bytes, self.max_upload_bytes = app, max_bytes, max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        upload = headers.get(b"content-type", b"").lower().startswith(b"multipart/form-data")
        limit = self.max_upload_bytes if upload else self.max_bytes
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, send, limit)
            return
        state = {"seen": 0, "over": False, "answered": False}

        async def counted() -> Message:
            message = await receive()
            state["seen"] += len(message.get("body", b""))
            if state["seen"] > limit:
                state["over"] = True
                raise RequestTooLarge("request body too large")  # the route stops reading here
            return message

        async def answer(message: Message) -> None:
            if not state["over"]:
                await send(message)
            elif not state["answered"]:  # whatever the route made of the error, the answer is 413
                state["answered"] = True
                await self._refuse(scope, send, limit)

        await self.app(scope, counted, answer)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, limit: int) -> None:
        message = f"the request is larger than {limit // 1024} KB, the most escr takes"
        request = Request(scope)
        if wants_json(request):
            response: Response = JSONResponse(error_body(RequestTooLarge.code, message, 413), status_code=413)
        else:
            response = Response(f"<!doctype html><title>Too large - escr</title><p>The form sent was too large: "
                                f"{message}.</p>", status_code=413, media_type="text/html")
        await response(scope, lambda: _no_body(), send)


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


class SecurityHeaders:
    """Headers for every response: no caching of record pages, no framing, no referrer to other sites, no type
    sniffing; a strict CSP on pages, and on everything else (PDFs, original scans, page images,
    exports) `sandbox`, so a file opened in the browser runs nothing and reaches nothing of escr."""

    HEADERS = [
        (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; style-src 'self'; "
                                     b"script-src 'self'; object-src 'self'; frame-ancestors 'self'; "
                                     b"form-action 'self'; base-uri 'none'"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),  # to escr itself only: a refused form finds its page
        (b"x-frame-options", b"SAMEORIGIN"),
        (b"cache-control", b"no-store"),
    ]

    FILE_CSP = (b"content-security-policy", b"sandbox")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                html = any(k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in headers)
                message["headers"] = headers + [(k, v) if html or k != b"content-security-policy" else self.FILE_CSP
                                                for k, v in self.HEADERS if k not in present]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            principal = scope.get("state", {}).get("principal")
            log.info("%s %s %s user=%s %.0fms", scope["method"], scope["path"], status["code"],
                     principal.user_id if principal else "-", (time.perf_counter() - started) * 1000)


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path in ("/healthz", "/metrics")


def error_body(code: str, message: str, status: int, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status, **extra}}


def _error_response(request: Request, status: int, code: str, message: str) -> Response:
    if wants_json(request):
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(error_body(code, message, status), status_code=status, headers=headers)
    if status == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    from escr.web.pages import base_context, notice  # pages imports this module: deliberate, lazy

    form_page = _refused_form_page(request, status)
    if form_page is not None:
        # Back to the form the person filled in, the reason on top (static/forms.js puts back what
        # they typed): an error page with a Home link would lose both their place and their input.
        heading = "Please check what you entered" if status == 422 else "Not possible now"
        notice(request, f"{heading}: {message}", "error", form=request.url.path)
        return RedirectResponse(form_page, status_code=303)
    templates: Jinja2Templates = request.app.state.templates
    context = base_context(request)
    context.update(status=status, code=code, message=message, path=request.url.path)
    return templates.TemplateResponse(request, "error.html", context, status_code=status)


def _refused_form_page(request: Request, status: int) -> str | None:
    """The page (path and query) of this site a refused HTML form was posted from, if any."""
    if request.method != "POST" or status not in (409, 422) or "session" not in request.scope:
        return None
    referer = urlsplit(request.headers.get("referer", ""))
    if not referer.path.startswith("/") or referer.path.startswith("//") or referer.path == request.url.path:
        return None
    if referer.netloc and referer.netloc != request.url.netloc:
        return None
    return referer.path + (f"?{referer.query}" if referer.query else "")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(EscrError)
    async def escr_error(request: Request, exc: EscrError) -> Response:
        status = exc.http_status  # each class of escr.errors knows its own
        if isinstance(exc, PasswordChangeRequired) and not wants_json(request):
            return RedirectResponse("/account", status_code=303)  # after an administrator's reset: the form
        if status >= 500:
            log.error("request %s %s failed: %s", request.method, request.url.path, exc.code)
        return _error_response(request, status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        fields = sorted({".".join(str(p) for p in e["loc"] if p not in ("body", "query", "path", "form"))
                         for e in exc.errors()})
        return _error_response(request, 422, "validation_failed",
                               f"missing or invalid: {', '.join(f for f in fields if f) or 'request'}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        codes = {404: "not_found", 405: "method_not_allowed"}
        code = codes.get(exc.status_code, "http_error")
        message = "no such page" if exc.status_code == 404 else str(exc.detail)
        return _error_response(request, exc.status_code, code, message)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("request %s %s failed unexpectedly (%s)", request.method, request.url.path,
                      type(exc).__name__)
        return _error_response(request, 500, "internal_error", "something went wrong; the error was logged")


def _known(request: Request) -> bool:
    """A signed-in person or a valid API token (an invalid one is a stranger here, not an error)."""
    try:
        return authenticate(request) is not None
    except EscrError:
        return False


def _allowed(request: Request, access: str) -> bool:
    return access == "open" or (access == "localhost" and is_local(request)) or \
        (access == "signed_in" and _known(request))


def _require_access(request: Request, access: str) -> None:
    """web.health_access / metrics_access / openapi_access: who may read this."""
    if _allowed(request, access):
        return
    if access == "signed_in":
        raise Unauthenticated("sign in first")
    raise AccessDenied("only open to clients on the server itself", code="local_only")


def _install_health(app: FastAPI, services: Services) -> None:
    """`/healthz` and `/metrics` from escr.runtime.metrics when present, else simple local versions,
    and the OpenAPI description, each open to whom the settings say."""
    web = services.settings.web

    @app.get("/healthz", include_in_schema=False)
    def healthz(request: Request) -> JSONResponse:
        _require_access(request, web.health_access)
        try:
            from escr.runtime.health import health
        except ImportError:
            health = _simple_health
        result = health(services)
        code = 200 if result.get("status") == "ok" else 503
        if not (is_local(request) or _known(request)):  # a load balancer needs the answer, not the detail
            result = {"status": result.get("status")}
        return JSONResponse(result, status_code=code)

    @app.get("/api/v1/openapi.json", include_in_schema=False)
    def openapi(request: Request) -> JSONResponse:
        _require_access(request, web.openapi_access)
        return JSONResponse(app.openapi())

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        _require_access(request, web.metrics_access)
        try:
            from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

            from escr.runtime.health import record_registry
            from escr.runtime.metrics import PROCESS
        except ImportError:
            return Response(_simple_metrics(services), media_type="text/plain; version=0.0.4")
        body = generate_latest(PROCESS) + generate_latest(record_registry(services.settings, services.db))
        return Response(body, media_type=CONTENT_TYPE_LATEST)


def _simple_health(services: Services) -> dict[str, Any]:
    from escr.app.maintenance import database_health

    return database_health(services)


def _simple_metrics(services: Services) -> str:
    from escr.app.maintenance import document_counts

    rows = document_counts(services)
    lines = ["# HELP escr_documents Documents in the record, by state.", "# TYPE escr_documents gauge"]
    lines += [f'escr_documents{{state="{state}"}} {count}' for state, count in rows]
    return "\n".join(lines) + "\n"


def install_filters(templates: Jinja2Templates, services: Services) -> None:
    """One set of filters for every page: UK dates, local times with the zone, words for codes."""
    from escr.app import labels

    zone = services.settings.web.timezone
    doc_types = {code: t.label for code, t in services.doctypes.types.items()}
    env = templates.env
    env.filters["ukdate"] = lambda v, empty="-": labels.uk_date(v, empty=empty)
    env.filters["ukdate_short"] = lambda v, empty="-": labels.uk_date(v, short=True, empty=empty)
    env.filters["localtime"] = lambda v: labels.local_time(v, zone)
    env.filters["localtime_short"] = lambda v: labels.local_time(v, zone, short=True)
    env.filters["age"] = labels.age
    env.filters["label"] = labels.label
    env.filters["words"] = labels.words
    env.filters["reason"] = labels.reason
    env.filters["doc_type"] = lambda code: doc_types.get(code or "", labels.words(code)) if code else "-"
    env.globals["child_banner"] = labels.child_banner
    env.globals["timezone"] = zone
    env.globals["OUT_OF_RECORD"] = OUT_OF_RECORD
    env.globals["PaperState"] = PaperState
    env.globals["State"] = DocumentState  # templates compare states by name, never by spelling the string


def create_app(services: Services) -> FastAPI:
    settings = services.settings
    web = settings.web
    app = FastAPI(title="escr", version=__version__, description=API_DESCRIPTION,
                  openapi_url=None, docs_url=None, redoc_url=None,  # served by _install_health
                  dependencies=[Depends(csrf_guard)])
    app.state.services = services
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals["csrf_token"] = csrf_token
    install_filters(templates, services)
    from escr.app.disclosure import BASES, METHODS

    templates.env.globals["disclosure_bases"], templates.env.globals["disclosure_methods"] = BASES, METHODS
    app.state.templates = templates
    app.add_middleware(SessionMiddleware, secret_key=session_secret(settings), session_cookie="escr_session",
                       max_age=int(web.session_hours * 3600), same_site=web.same_site,
                       https_only=web.secure_cookies)
    app.add_middleware(BodyLimit, max_bytes=web.max_body_kb * 1024,
                       max_upload_bytes=settings.preflight.max_file_bytes + 1024**2)  # the form around the file
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    _install_error_handlers(app)
    _install_health(app, services)

    from escr.web import api, pages

    app.include_router(api.router)
    from escr.web.api_records import router as records_router  # issue 19: paper, status, disposal, timeliness
    app.include_router(records_router)
    from escr.web.api_audit import router as audit_api_router  # issue 17: the auditor's tools

    app.include_router(audit_api_router)
    from escr.web import api_disclosure, pages_disclosure  # issue 18: subject access and disclosure
    from escr.web.pages_records import router as records_pages  # issue 19's pages

    app.include_router(api_disclosure.router)
    app.include_router(pages_disclosure.router)
    app.include_router(pages.router)
    from escr.web.pages_audit import router as audit_router  # issue 17: the auditor's tools

    app.include_router(audit_router)
    app.include_router(records_pages)
    return app
