"""Who is asking: a session cookie, an API token, or a trusted single-sign-on header.

- Browser sign-in opens a session on the server (`WebSession`: started, last seen, ended) and sets
  a signed cookie (HttpOnly, SameSite, Secure when configured) holding only its random id, a CSRF
  token and notices waiting to be shown. Signing out ends the server's session, so a copy of the
  cookie is worthless; a password reset, disable or change of rights bumps the user's session
  epoch, which ends every session at once. An ordinary request writes the server's row, not the
  cookie, so a slow answer can never put back an older cookie over a newer one.
- API clients send `Authorization: Bearer <token>`; only the token's SHA-256 is stored. A token's
  scope is enforced: a read-only token is refused every state-changing request here (and by
  `escr.app.access.require` for the capabilities that change things), admin routes need "admin".
- After an administrator's password reset, a signed-in person may only change their password
  (or sign out) until they have.
- A reverse proxy doing single sign-on may name the user in a header, trusted only from the
  configured proxy addresses and only when that header is configured.

Every state-changing request authenticated by a cookie or SSO must carry the session's CSRF
token (form field `csrf_token` or header `X-CSRF-Token`); `csrf_guard` is applied to the whole
app, so no route can forget it. Token-authenticated requests carry no ambient credential and
need none.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from escr.app import accounts
from escr.app.access import PasswordChangeRequired, Principal, require_change
from escr.errors import Forbidden, NotFound, Unauthenticated
from escr.services import Services

if TYPE_CHECKING:  # types only: the web reaches the record through escr.app
    from sqlalchemy.orm import Session

    from escr.record.models import User

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# What a person who must change their password may still reach.
PASSWORD_CHANGE_PATHS = frozenset({"/account", "/account/password", "/logout", "/api/v1/me",
                                   "/api/v1/account/password"})


class CsrfFailed(Forbidden):
    code = "csrf_failed"


def services_of(request: Request) -> Services:
    return request.app.state.services


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use (also before sign-in, for the sign-in form)."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def _trusted_proxy(host: str | None, proxies: list[str]) -> bool:
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    for entry in proxies:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


# Headers a proxy adds to say whom it forwarded a request for.
FORWARDED_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


def client_address(request: Request) -> str | None:
    """The address of the person's own machine, for throttling sign-ins.

    Behind a proxy every request comes from the proxy's address, so counting that would let one
    stranger's wrong passwords stop everyone signing in. When the peer is one of
    `web.trusted_proxies`, the address is the last hop of X-Forwarded-For that is not itself a
    trusted proxy (the one the proxy saw); the header is believed from nobody else."""
    peer = request.client.host if request.client else None
    proxies = services_of(request).settings.web.trusted_proxies
    if not _trusted_proxy(peer, proxies):
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",")]
    for hop in reversed(hops):
        try:
            address = str(ipaddress.ip_address(hop))
        except ValueError:
            return peer  # a hop that is no address: count the proxy rather than trust the rest
        if not _trusted_proxy(address, proxies):
            return address
    return peer


def is_local(request: Request) -> bool:
    """A request made on the server itself: from a loopback address and not forwarded by a proxy
    (which says whom it forwarded for); a proxy on the server would otherwise make everyone local."""
    peer = request.client.host if request.client else None
    try:
        loopback = ipaddress.ip_address(peer or "").is_loopback
    except ValueError:
        return False
    return loopback and not any(h in request.headers for h in FORWARDED_HEADERS)


def _limits(services: Services) -> dict[str, timedelta]:
    web = services.settings.web
    return {"idle": timedelta(minutes=web.idle_minutes), "lifetime": timedelta(hours=web.session_hours)}


def start_session(request: Request, db: Session, user: User, *, via: str = "session") -> None:
    """A fresh sign-in: a new server-side session and a new CSRF token, so nothing carries over."""
    old = request.session.get("sid")
    if old:
        accounts.close_session(db, old, reason="replaced")
    sid = accounts.open_session(db, user, via=via, lifetime=_limits(services_of(request))["lifetime"])
    request.session.clear()
    request.session.update({"sid": sid, "csrf": secrets.token_urlsafe(32)})


def end_session(request: Request) -> None:
    """Sign out: the server forgets the sign-in, the browser is told to drop the cookie."""
    sid = request.session.get("sid")
    if sid:
        with services_of(request).db.session() as db:
            accounts.close_session(db, sid)
    request.session.clear()


def _from_token(request: Request, services: Services, token: str) -> Principal:
    with services.db.session() as session:
        found = accounts.token_for(session, token)
        if found is None:
            raise Unauthenticated("the API token is not recognised, revoked or expired, or its user is disabled",
                                  code="invalid_token")
        user, row = found
        return accounts.principal_for(user, via="token", scope=row.scope)


def _from_sso(request: Request, services: Services, name: str) -> Principal:
    with services.db.session() as db:
        try:
            user = accounts.get_user(db, name)
        except NotFound:
            user = None
        if user is None or user.disabled:
            raise Unauthenticated("the single-sign-on user has no enabled escr account", code="sso_user_unknown")
        sid = request.session.get("sid")
        current = accounts.session_user(db, sid, **_limits(services)) if sid else None
        if current is None or current.id != user.id:
            start_session(request, db, user, via="sso")
        return accounts.principal_for(user, via="sso")


def _from_session(request: Request, services: Services) -> Principal | None:
    """The signed-in user of the cookie's session; checking it writes the server's row, never the cookie.

    A cookie that names an ended session is dropped (that is the only time this changes it).
    """
    sid = request.session.get("sid")
    if not sid:
        return None
    with services.db.session() as db:
        user = accounts.session_user(db, sid, **_limits(services))
        principal = accounts.principal_for(user) if user is not None else None
    if principal is None:
        request.session.clear()
    return principal


def authenticate(request: Request) -> Principal | None:
    """The person behind this request, or None; a bad token or SSO user is an error, not anonymous."""
    if hasattr(request.state, "principal"):
        return request.state.principal
    services = services_of(request)
    token = bearer_token(request)
    principal: Principal | None
    if token is not None:
        principal = _from_token(request, services, token)
    else:
        web = services.settings.web
        sso_name = request.headers.get(web.sso_header) if web.sso_header else None
        client = request.client.host if request.client else None
        if sso_name and _trusted_proxy(client, web.trusted_proxies):
            principal = _from_sso(request, services, sso_name)
        else:
            principal = _from_session(request, services)
    request.state.principal = principal
    return principal


def current_principal(request: Request) -> Principal:
    """FastAPI dependency: the signed-in person, or 401 / a redirect to the sign-in page."""
    principal = authenticate(request)
    if principal is None:
        raise Unauthenticated("sign in first")
    if principal.must_change_password and principal.via == "session" and request.url.path not in PASSWORD_CHANGE_PATHS:
        raise PasswordChangeRequired("your password was set by an administrator: choose your own on your "
                                     "account page (/account) first")
    return principal


async def csrf_guard(request: Request) -> None:
    """App-wide dependency: a state-changing request on a cookie or SSO session needs the CSRF token;
    on an API token, a scope that may change things."""
    if request.method in SAFE_METHODS:
        return
    if bearer_token(request) is not None:
        principal = await run_in_threadpool(authenticate, request)
        if principal is not None:
            require_change(principal)
        return
    expected = request.session.get("csrf")
    supplied = request.headers.get("x-csrf-token")
    if supplied is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get("csrf_token")
        supplied = value if isinstance(value, str) else None
    if not expected or not supplied or not hmac.compare_digest(str(expected), supplied):
        raise CsrfFailed("the form has expired or did not come from escr; reload the page and try again")
