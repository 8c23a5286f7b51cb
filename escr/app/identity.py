"""Who is acting at the command line: an escr account signed in by API token or password, or the
host operator running a set-up or maintenance command on the server.

The CLI takes no one's word for who they are: `--user NAME` alone makes nobody that person. A
token or password that does not sign anyone in is refused here and the refusal is written to the
protocol log, as a refused sign-in on the web is.
"""

from __future__ import annotations

import logging

from escr.app import accounts
from escr.app.access import PasswordChangeRequired, Principal, Unauthenticated, host_operator
from escr.record import payloads
from escr.record.events import Actor, Kind, ProtocolEvent, record
from escr.services import Services

log = logging.getLogger("escr.cli")

HOW_TO_SIGN_IN = ("set ESCR_TOKEN to an API token (create one with `escr tokens create` after signing in on a "
                  "terminal, or ask an administrator for `escr users token NAME`) or run the command on a "
                  "terminal to sign in with your user name and password")


def principal_for_token(services: Services, secret: str, *, command: str) -> Principal:
    """The account a live API token belongs to; a bad, revoked or expired token, or a disabled user's, is refused."""
    with services.db.session() as session:
        found = accounts.token_for(session, secret.strip())
        if found is not None:  # the token's scope holds at the command line as on the API
            user, token = found
            return accounts.principal_for(user, via="token", scope=token.scope)
        record(session, ProtocolEvent(kind=Kind.SIGN_IN, actor=Actor(kind="user", name="-"), outcome="refused",
                                      parameters=payloads.SignIn(action="sign_in", via="cli-token", command=command)))
    log.warning("escr %s refused: API token not recognised", command)
    raise Unauthenticated("ESCR_TOKEN is not a live API token (unknown, revoked or expired, or its user is "
                          f"disabled); {HOW_TO_SIGN_IN}", code="invalid_token")


def principal_for_password(services: Services, username: str, password: str, *, command: str) -> Principal:
    """Sign in with a password, under the same lockout rules as the web's sign-in page (each attempt logged)."""
    web = services.settings.web
    with services.db.session() as session:
        user, why = accounts.sign_in(session, username, password, max_failures=web.login_max_failures,
                                     lockout_minutes=web.login_lockout_minutes)
        principal = accounts.principal_for(user, via="cli-password") if user is not None else None
    if principal is None:
        log.warning("escr %s refused: sign-in failed", command)
        raise Unauthenticated(f"{why}; {HOW_TO_SIGN_IN}", code="sign_in_failed")
    if principal.must_change_password:  # the same rule as the web's: nothing else until then
        log.info("escr %s refused: the password must be changed first", command)
        raise PasswordChangeRequired("your password was set by an administrator: sign in to the web app and "
                                     "choose your own on the My account page first")
    return principal


def not_signed_in(command: str) -> Unauthenticated:
    """The refusal for a command run with no credentials and no terminal to ask on."""
    log.info("escr %s refused: no credentials", command)
    return Unauthenticated(f"`escr {command}` acts as an escr account: {HOW_TO_SIGN_IN}", code="unauthenticated")


def as_host_operator(login: str, *, command: str) -> Principal:
    """The explicit principal of a server-side set-up or maintenance command, logged as it starts."""
    principal = host_operator(login)
    log.info("escr %s runs as %s (no access to record content)", command, principal.username)
    return principal
