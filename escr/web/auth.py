"""Who is asking: a session cookie, an API token, or a trusted single-sign-on header.

- Browser sign-in sets a signed session cookie (HttpOnly, SameSite, Secure when configured)
  holding the user id, the user's session epoch (bumped on password reset, disable or change of
  rights, which ends every session at once) and a CSRF token.
- API clients send `Authorization: Bearer <token>`; only the token's SHA-256 is stored.
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
import time

from fastapi import Request

from escr import accounts
from escr.access import Principal, Unauthenticated
from escr.errors import EscrError
from escr.models import User
from escr.services import Services

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfFailed(EscrError):
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


def start_session(request: Request, user: User) -> None:
    """A fresh session for a signed-in user (a new CSRF token too, so none carries over)."""
    request.session.clear()
    request.session.update({"uid": user.id, "epoch": user.session_epoch, "csrf": secrets.token_urlsafe(32),
                            "seen": int(time.time()), "since": int(time.time())})


def _from_token(request: Request, services: Services, token: str) -> Principal:
    with services.db.session() as session:
        user = accounts.user_for_token(session, token)
        if user is None:
            raise Unauthenticated("the API token is not recognised, revoked or expired, or its user is disabled",
                                  code="invalid_token")
        return accounts.principal_for(user, via="token")


def _from_sso(request: Request, services: Services, name: str) -> Principal:
    with services.db.session() as session:
        user = session.query(User).filter(User.username == name.strip().lower()).first()
        if user is None or user.disabled:
            raise Unauthenticated("the single-sign-on user has no enabled escr account", code="sso_user_unknown")
        if request.session.get("uid") != user.id or request.session.get("epoch") != user.session_epoch:
            start_session(request, user)
        request.session["seen"] = int(time.time())
        return accounts.principal_for(user, via="sso")


def _from_session(request: Request, services: Services) -> Principal | None:
    uid = request.session.get("uid")
    if uid is None:
        return None
    web = services.settings.web
    stamp = int(time.time())
    if stamp - int(request.session.get("seen", 0)) > web.idle_minutes * 60 or \
            stamp - int(request.session.get("since", 0)) > web.session_hours * 3600:
        request.session.clear()
        return None
    with services.db.session() as session:
        user = session.get(User, uid)
        if user is None or user.disabled or user.session_epoch != request.session.get("epoch"):
            request.session.clear()
            return None
        principal = accounts.principal_for(user)
    request.session["seen"] = stamp
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
    return principal


async def csrf_guard(request: Request) -> None:
    """App-wide dependency: a state-changing request on a cookie or SSO session needs the CSRF token."""
    if request.method in SAFE_METHODS or bearer_token(request) is not None:
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
