"""Users, teams, allocation of children to workers, passwords and API tokens.

Passwords are kept as argon2id hashes, API tokens as SHA-256 hashes (a token is random and
long, so a fast hash is enough); neither is ever stored or logged in clear. Every change to who
may see what is a protocol event, so an auditor can reconstruct anyone's access at any time.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from escr.app.access import ACCOUNT_ROLES, AccessDenied, Can, PasswordChangeRequired, Principal, Role, Scope, require
from escr.clock import as_utc, iso
from escr.errors import InvalidState, NotFound, ValidationFailed
from escr.record import payloads
from escr.record.events import AccessEvent, Actor, Kind, ProtocolEvent, now, record
from escr.record.models import (
    ApiToken,
    Child,
    ChildAllocation,
    SignInThrottle,
    Team,
    TeamMembership,
    User,
    WebSession,
)
from escr.settings import WebSettings

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
TEAM_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MIN_PASSWORD_CHARS = 12
TOKEN_PREFIX = "escr_"

_hasher = PasswordHasher()


class SignInFailed(InvalidState):
    """Wrong user name or password, a disabled or locked account: deliberately one message."""

    code = "sign_in_failed"


# --- Passwords and tokens -----------------------------------------------------------------


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(stored: str | None, password: str) -> bool:
    if not stored:
        return False
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def new_password() -> str:
    """A random password to hand over once; the person changes it at first sign-in."""
    return secrets.token_urlsafe(15)


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValidationFailed(f"a password needs at least {MIN_PASSWORD_CHARS} characters", code="weak_password")


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()



def _event(session: Session, actor: Actor, parameters: payloads.Account | payloads.SignIn, *, outcome: str = "ok",
           child_id: str | None = None) -> None:
    kind = Kind.SIGN_IN if isinstance(parameters, payloads.SignIn) else Kind.ACCOUNT
    record(session, ProtocolEvent(kind=kind, actor=actor, child_id=child_id, outcome=outcome, parameters=parameters))


# --- Users --------------------------------------------------------------------------------


def get_user(session: Session, username: str) -> User:
    user = session.scalars(select(User).where(User.username == username.strip().lower())).first()
    if user is None:
        raise NotFound(f"no user {username}")
    return user


def principal_for(user: User, *, via: str = "session", scope: str | None = None) -> Principal:
    return Principal(user_id=user.id, username=user.username, display_name=user.display_name, role=Role(user.role),
                     teams=frozenset(m.team_code for m in user.memberships), third_party=user.third_party_access,
                     via=via, scope=Scope(scope) if scope else None,
                     must_change_password=bool(user.must_change_password))


def _flag_self_grant(session: Session, actor: Actor, user: User, what: str, **parameters: Any) -> None:
    """Someone widened their own access: an access event flagged for the auditor's review, so an
    administrator who adds themselves to a team (or allocates a child to themselves) is seen."""
    if actor.kind != "user" or actor.name != user.username:
        return
    record(session, AccessEvent(actor=actor, action="self_grant", outcome="flagged_for_review",
                                child_id=parameters.pop("child_id", None),
                                parameters={"what": what, "role": user.role, **parameters}))


def _role(role: str) -> Role:
    try:
        found = Role(role)
    except ValueError:
        found = None
    if found is None or found not in ACCOUNT_ROLES:
        raise ValidationFailed(f"unknown role {role}; one of {', '.join(r.value for r in ACCOUNT_ROLES)}")
    return found


def add_user(
    session: Session, username: str, *, role: str, actor: Actor, display_name: str | None = None,
    teams: Sequence[str] = (), third_party: bool = False, password: str | None = None,
    must_change_password: bool = False,
) -> tuple[User, str]:
    """Create a user; returns the user and their first password (given, or random to hand over once).
    `must_change_password`: someone else chose it, so the person must choose their own at first sign-in."""
    username = username.strip().lower()
    if not USERNAME.match(username):
        raise ValidationFailed("a user name is 2-64 lowercase letters, digits, '.', '_', '-' or '@'")
    if session.scalars(select(User).where(User.username == username)).first() is not None:
        raise InvalidState(f"user {username} already exists", code="already_exists")
    password = password or new_password()
    check_password_strength(password)
    stamp = now()
    user = User(username=username, display_name=(display_name or username).strip()[:200], role=_role(role).value,
                password_hash=hash_password(password), third_party_access=third_party, disabled=False,
                session_epoch=0, failed_logins=0, created_at=stamp, updated_at=stamp,
                must_change_password=must_change_password)
    session.add(user)
    session.flush()
    _event(session, actor, payloads.Account(action="user_added", user=username, role=user.role,
                                            third_party=third_party, must_change=must_change_password or None))
    for team in teams:
        add_member(session, team, username, actor=actor)
    return user, password


def update_user(session: Session, username: str, *, actor: Actor, role: str | None = None,
                display_name: str | None = None, third_party: bool | None = None) -> User:
    user = get_user(session, username)
    changes: dict[str, Any] = {}
    if role is not None and role != user.role:
        changes["role"] = [user.role, _role(role).value]
        user.role = _role(role).value
    if third_party is not None and third_party != user.third_party_access:
        changes["third_party"] = [user.third_party_access, third_party]
        user.third_party_access = third_party
    if display_name is not None and display_name.strip() and display_name.strip() != user.display_name:
        user.display_name = display_name.strip()[:200]
        changes["display_name"] = True
    if changes:
        if "role" in changes or "third_party" in changes:
            user.session_epoch += 1  # new rights take effect at the next sign-in, for every session
            revoke_all_tokens(session, user, actor=actor, reason="rights_changed")
        user.updated_at = now()
        _event(session, actor, payloads.Account(action="user_updated", user=user.username,
                                                changes=payloads.AccountChanges(**changes)))
        if "role" in changes:
            _flag_self_grant(session, actor, user, "own_role_changed", change=changes["role"])
    return user


def set_disabled(session: Session, username: str, disabled: bool, *, actor: Actor) -> User:
    """Disable (or re-enable) an account: every session and API token of a disabled user stops working."""
    user = get_user(session, username)
    if actor.name == user.username and disabled:
        raise InvalidState("you cannot disable your own account", code="own_account")
    user.disabled, user.updated_at = disabled, now()
    user.session_epoch += 1
    if disabled:  # revoked, not merely refused: re-enabling the account brings none of them back
        revoke_all_tokens(session, user, actor=actor, reason="disabled")
    _event(session, actor, payloads.Account(action="user_disabled" if disabled else "user_enabled", user=user.username))
    return user


def reset_password(session: Session, username: str, *, actor: Actor, password: str | None = None) -> str:
    """Set a new password (random unless given) that must be changed at the next sign-in; end every
    session and revoke every API token (whoever knew the old password may have made one)."""
    user = get_user(session, username)
    password = password or new_password()
    check_password_strength(password)
    user.password_hash = hash_password(password)
    user.session_epoch += 1
    user.must_change_password = True
    user.failed_logins, user.locked_until, user.updated_at = 0, None, now()
    revoke_all_tokens(session, user, actor=actor, reason="password_reset")
    _event(session, actor, payloads.Account(action="password_reset", user=user.username, must_change=True))
    return password


def change_own_password(session: Session, user_id: int, old: str, new: str, *,
                        keep_session: str | None = None) -> None:
    """Change one's own password: every other sign-in (all but `keep_session`, the cookie's session
    id of the request doing it) ends and every API token is revoked, since a thief may hold one."""
    user = session.get(User, user_id)
    if user is None or not password_matches(user.password_hash, old):
        raise SignInFailed("the current password is not right")
    check_password_strength(new)
    if password_matches(user.password_hash, new):
        raise ValidationFailed("the new password must differ from the current one", code="weak_password")
    actor = Actor(kind="user", name=user.username)
    stamp = now()
    user.password_hash = hash_password(new)
    user.must_change_password = False
    user.updated_at = stamp
    keep = token_digest(keep_session) if keep_session else None
    ended = 0
    for row in session.scalars(select(WebSession).where(WebSession.user_id == user.id,
                                                        WebSession.ended_at.is_(None))):
        if row.id_sha256 != keep:
            row.ended_at, row.end_reason = stamp, "password_changed"
            ended += 1
    revoke_all_tokens(session, user, actor=actor, reason="password_changed")
    _event(session, actor, payloads.Account(action="password_changed", user=user.username, sessions_ended=ended))


_NOT_RECOGNISED = "user name or password not recognised, or the account is disabled"
_THROTTLED = "too many failed sign-ins from here; wait a few minutes and try again"


def _throttle_keys(name: str, client: str | None) -> list[str]:
    """One counter for the address, one for this user name from this address (hashed: no names kept)."""
    where = (client or "-").strip()[:64]
    return [token_digest(f"client:{where}"), token_digest(f"account:{name}|{where}")]


def _blocked(session: Session, keys: list[str], stamp: datetime) -> bool:
    for key in keys:
        row = session.get(SignInThrottle, key)
        until = as_utc(row.blocked_until) if row is not None else None
        if until is not None and until > stamp:
            return True
    return False


def _count_failure(session: Session, keys: list[str], stamp: datetime, limits: list[int], *,
                   backoff_seconds: float, max_wait: timedelta) -> None:
    """Add a failure to each counter; past its limit each further failure doubles the wait.

    A counter quiet for longer than the longest wait starts again from nothing."""
    for key, limit in zip(keys, limits, strict=True):
        row = session.get(SignInThrottle, key)
        if row is None:
            try:  # two first failures from one address at once: the second counts on the first's row
                with session.begin_nested():
                    row = SignInThrottle(key_sha256=key, failures=0, last_failure_at=stamp)
                    session.add(row)
            except IntegrityError:
                row = session.get(SignInThrottle, key, populate_existing=True, with_for_update=True)
                assert row is not None
        elif stamp - as_utc(row.last_failure_at) > max_wait:  # type: ignore[operator]
            row.failures, row.blocked_until = 0, None
        row.failures += 1
        row.last_failure_at = stamp
        if row.failures >= limit:
            wait = min(timedelta(seconds=backoff_seconds * 2 ** min(row.failures - limit, 30)), max_wait)
            row.blocked_until = stamp + wait
    session.query(SignInThrottle).filter(SignInThrottle.last_failure_at < stamp - 2 * max_wait).delete()


def sign_in(session: Session, username: str, password: str, *, max_failures: int, lockout_minutes: float,
            client: str | None = None, client_max_failures: int | None = None,
            backoff_seconds: float = 2.0) -> tuple[User | None, str]:
    """Check a password, throttling failures per client address and per user name from that address.

    Every refusal of a wrong name, wrong password or disabled account is the same message after
    the same password-hashing work, so nobody learns which names exist; a throttled try is refused
    alike for known and unknown names without checking the password. Failures never lock the
    account itself, so a stranger cannot lock anyone out. Each attempt is an event.

    Returns (user, "") or (None, why): the caller commits either way (so failures count) and
    then refuses with the message.
    """
    name = (username or "").strip().lower()[:128]
    actor = Actor(kind="user", name=name or "-")
    stamp = now()
    keys = _throttle_keys(name, client)
    if _blocked(session, keys, stamp):
        _event(session, actor, payloads.SignIn(action="sign_in"), outcome="throttled")
        return None, _THROTTLED
    user = session.scalars(select(User).where(User.username == name)).first() if name else None
    stored = user.password_hash if user is not None and not user.disabled else None
    # The same work either way: no user-name probing by timing.
    matched = password_matches(stored or _dummy_hash(), password) and stored is not None
    if user is None or not matched:
        _count_failure(session, keys, stamp, [client_max_failures or 4 * max_failures, max_failures],
                       backoff_seconds=backoff_seconds, max_wait=timedelta(minutes=lockout_minutes))
        _event(session, actor, payloads.SignIn(action="sign_in"), outcome="failed")
        return None, _NOT_RECOGNISED
    if _hasher.check_needs_rehash(user.password_hash or ""):
        user.password_hash = hash_password(password)
    row = session.get(SignInThrottle, keys[1])
    if row is not None:
        session.delete(row)
    user.failed_logins, user.locked_until, user.last_login_at = 0, None, stamp
    _event(session, actor, payloads.SignIn(action="sign_in", must_change_password=True) if user.must_change_password
           else payloads.SignIn(action="sign_in"))
    return user, ""


@functools.cache
def _dummy_hash() -> str:
    """A hash to check a password against when the user name is unknown, so that a wrong name
    takes as long as a wrong password. Made on first use: hashing takes a few tenths of a second
    by design, and every command and worker that imports this module would otherwise pay it."""
    return _hasher.hash("not a password of anyone")


# --- Browser sessions ---------------------------------------------------------------------

# How stale a session's last-seen time may get before a request writes it again: the idle limit
# is counted in minutes, and page images arrive in bursts that need not each write a row.
_SEEN_EVERY = timedelta(seconds=30)


def open_session(session: Session, user: User, *, via: str = "session", lifetime: timedelta) -> str:
    """A new sign-in for the cookie; returns its random id, of which only the SHA-256 is kept.

    Everyone's sign-ins that ended, or would have, more than a lifetime ago are dropped here, so
    the table holds about one day's sign-ins, including those of people who never sign in again
    (a leaver's); the sign-in events stay in the protocol.
    """
    stamp = now()
    sid = secrets.token_urlsafe(32)
    session.query(WebSession).filter(WebSession.last_seen_at < stamp - 2 * lifetime).delete()
    session.add(WebSession(id_sha256=token_digest(sid), user_id=user.id, epoch=user.session_epoch, via=via,
                           started_at=stamp, last_seen_at=stamp))
    return sid


def session_user(session: Session, sid: str, *, idle: timedelta, lifetime: timedelta) -> User | None:
    """The user signed in by this session id, or None once it ended, idled out or rights changed."""
    # One round trip for the sign-in, its user and the user's teams: every page and page image
    # starts here.
    found = session.execute(select(WebSession, User).outerjoin(User, User.id == WebSession.user_id)
                            .where(WebSession.id_sha256 == token_digest(sid))
                            .options(joinedload(User.memberships))).unique().first()
    if found is None:
        return None
    row, user = found
    if row.ended_at is not None:
        return None
    stamp = now()
    why = ("expired" if stamp - as_utc(row.started_at) > lifetime  # type: ignore[operator]
           else "idle" if stamp - as_utc(row.last_seen_at) > idle  # type: ignore[operator]
           else "rights_changed" if user is None or user.disabled or user.session_epoch != row.epoch
           else None)
    if why is not None:
        row.ended_at, row.end_reason = stamp, why
        return None
    if stamp - as_utc(row.last_seen_at) >= _SEEN_EVERY:  # type: ignore[operator]
        row.last_seen_at = stamp
    return user


def close_session(session: Session, sid: str, *, reason: str = "signed_out") -> None:
    """End a sign-in on the server: a copy of its cookie kept anywhere no longer signs anyone in."""
    row = session.get(WebSession, token_digest(sid))
    if row is not None and row.ended_at is None:
        row.ended_at, row.end_reason = now(), reason


# --- API tokens ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str  # shown once, never stored


def create_token(session: Session, user: User, name: str, *, actor: Actor, days: int | None = None,
                 scope: str = Scope.WRITE, via: str | None = None, limits: WebSettings | None = None) -> NewToken:
    """A new API token for `user`, expiring after `days` (default: the configured token lifetime).

    `via` is how the person asking signed in: an API token never makes another (a stolen token
    could otherwise outlive its own revocation), nor does a sign-in that must change its password.
    """
    limits = limits or WebSettings()
    if via == "token":
        raise AccessDenied("an API token cannot create API tokens; sign in with your password to make one",
                           code="token_cannot_create_tokens")
    if user.disabled:
        raise InvalidState(f"user {user.username} is disabled", code="user_disabled")
    if user.must_change_password and actor.name == user.username:
        raise PasswordChangeRequired("choose a new password first")
    try:
        scope = Scope(scope)
    except ValueError:
        raise ValidationFailed(f"unknown token scope {scope}; one of {', '.join(s.value for s in Scope)}") from None
    if scope is Scope.ADMIN and Role(user.role) is not Role.ADMINISTRATOR:
        raise ValidationFailed("only an administrator's token can have the admin scope")
    days = days or limits.token_days
    if not 1 <= days <= limits.token_max_days:
        raise ValidationFailed(f"an API token lasts 1 to {limits.token_max_days} days")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    stamp = now()
    token = ApiToken(user_id=user.id, name=(name or "API token").strip()[:128], token_sha256=token_digest(secret),
                     prefix=secret[: len(TOKEN_PREFIX) + 6], created_at=stamp, scope=scope.value,
                     expires_at=stamp + timedelta(days=days))
    session.add(token)
    session.flush()
    _event(session, actor, payloads.Account(
        action="token_created", user=user.username, token_id=token.id, prefix=token.prefix, scope=scope.value,
        expires_at=token.expires_at.isoformat() if token.expires_at else None))
    return NewToken(token, secret)


def revoke_token(session: Session, token_id: int, *, actor: Actor, owner_id: int | None = None,
                 reason: str = "revoked") -> ApiToken:
    """Revoke a token; with `owner_id`, only that user's own token (self-service)."""
    token = session.get(ApiToken, token_id)
    if token is None or (owner_id is not None and token.user_id != owner_id):
        raise NotFound(f"no API token {token_id}")
    if token.revoked_at is None:
        token.revoked_at, token.revoked_reason = now(), reason
        _event(session, actor, payloads.Account(action="token_revoked", token_id=token.id, prefix=token.prefix,
                                                reason=reason))
    return token


def revoke_all_tokens(session: Session, user: User, *, actor: Actor, reason: str) -> int:
    """Revoke every live token of the user (a reset, own password change, disable or change of rights)."""
    stamp = now()
    live = [t for t in tokens_of(session, user.id) if t.revoked_at is None]
    for token in live:
        token.revoked_at, token.revoked_reason = stamp, reason
    if live:
        _event(session, actor, payloads.Account(action="tokens_revoked", user=user.username, reason=reason,
                                                token_ids=[t.id for t in live]))
    return len(live)


def token_for(session: Session, secret: str) -> tuple[User, ApiToken] | None:
    """The enabled user a live token belongs to, and the token; None when unknown, revoked,
    expired, or its user is disabled."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    # One round trip for the token, its user and the user's teams: every API call starts here.
    found = session.execute(select(ApiToken, User).join(User, User.id == ApiToken.user_id)
                            .where(ApiToken.token_sha256 == token_digest(secret))
                            .options(joinedload(User.memberships))).unique().first()
    stamp = now()
    if found is None:
        return None
    token, user = found
    if token.revoked_at is not None:
        return None
    expires = as_utc(token.expires_at)
    if expires is not None and expires <= stamp:
        return None
    if user.disabled:
        return None
    last = as_utc(token.last_used_at)
    if last is None or stamp - last > timedelta(minutes=1):
        token.last_used_at = stamp
    return user, token


def user_for_token(session: Session, secret: str) -> User | None:
    """The enabled user a live token belongs to, or None (unknown, revoked, expired or disabled)."""
    found = token_for(session, secret)
    return None if found is None else found[0]


def tokens_of(session: Session, user_id: int) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)))


def token_dict(token: ApiToken, username: str | None = None) -> dict[str, Any]:
    """What anyone may see of a token: never the token itself or its hash."""
    data = {"id": token.id, "name": token.name, "prefix": token.prefix, "scope": token.scope,
            "created_at": iso(token.created_at), "expires_at": iso(token.expires_at),
            "last_used_at": iso(token.last_used_at), "revoked": token.revoked_at is not None,
            "revoked_at": iso(token.revoked_at), "revoked_reason": token.revoked_reason}
    if username is not None:
        data["user"] = username
    return data


def user_tokens(session: Session, principal: Principal, username: str) -> list[dict[str, Any]]:
    """Administrators: another user's API tokens (never the tokens themselves)."""
    require(principal, Can.ADMINISTER)
    user = get_user(session, username)
    return [token_dict(t, user.username) for t in tokens_of(session, user.id)]


def admin_revoke_token(session: Session, principal: Principal, token_id: int) -> dict[str, Any]:
    """Administrators: revoke anyone's API token."""
    require(principal, Can.ADMINISTER)
    token = revoke_token(session, token_id, actor=principal.actor, reason="by_administrator")
    owner = session.get(User, token.user_id)
    return token_dict(token, owner.username if owner else None)


def admin_revoke_all_tokens(session: Session, principal: Principal, username: str) -> int:
    """Administrators: revoke every API token of a user (e.g. a lost laptop)."""
    require(principal, Can.ADMINISTER)
    return revoke_all_tokens(session, get_user(session, username), actor=principal.actor, reason="by_administrator")


# --- Teams and allocation -----------------------------------------------------------------


def add_team(session: Session, code: str, *, actor: Actor, name: str | None = None) -> Team:
    code = code.strip()
    if not TEAM_CODE.match(code):
        raise ValidationFailed("a team code is 1-64 letters, digits, '.', '_' or '-' (as in the child index's team column)")
    if session.get(Team, code) is not None:
        raise InvalidState(f"team {code} already exists", code="already_exists")
    team = Team(code=code, name=(name or code).strip()[:200], created_at=now())
    session.add(team)
    _event(session, actor, payloads.Account(action="team_added", team=code))
    return team


def get_team(session: Session, code: str) -> Team:
    team = session.get(Team, code)
    if team is None:
        raise NotFound(f"no team {code}; add it with `escr teams add {code}`")
    return team


def add_member(session: Session, team_code: str, username: str, *, actor: Actor) -> None:
    team = get_team(session, team_code)
    user = get_user(session, username)
    if session.get(TeamMembership, (user.id, team.code)) is not None:
        return
    session.add(TeamMembership(user_id=user.id, team_code=team.code, added_by=actor.name, added_at=now()))
    user.session_epoch += 1
    session.flush()
    session.expire(user, ["memberships"])
    _event(session, actor, payloads.Account(action="member_added", team=team.code, user=user.username))
    _flag_self_grant(session, actor, user, "added_self_to_team", team=team.code)


def remove_member(session: Session, team_code: str, username: str, *, actor: Actor) -> None:
    user = get_user(session, username)
    membership = session.get(TeamMembership, (user.id, team_code))
    if membership is None:
        raise NotFound(f"{username} is not a member of team {team_code}")
    session.delete(membership)
    user.session_epoch += 1
    session.flush()
    session.expire(user, ["memberships"])
    _event(session, actor, payloads.Account(action="member_removed", team=team_code, user=user.username))


def team_members(session: Session, team_code: str) -> list[User]:
    return list(session.scalars(select(User).join(TeamMembership).where(TeamMembership.team_code == team_code)
                                .order_by(User.username)))


def allocate(session: Session, child_id: str, username: str | None, *, actor: Actor) -> ChildAllocation | None:
    """Allocate a child to a named worker (None: clear the allocation)."""
    if session.get(Child, child_id) is None:
        raise NotFound(f"no child {child_id} in the child index")
    current = session.get(ChildAllocation, child_id)
    if username is None:
        if current is not None:
            session.delete(current)
            _event(session, actor, payloads.Account(action="child_unallocated"), child_id=child_id)
        return None
    user = get_user(session, username)
    if Role(user.role) not in (Role.CASEWORKER, Role.TEAM_MANAGER):
        raise ValidationFailed(f"children are allocated to caseworkers or team managers, not to a {user.role}")
    if current is None:
        current = ChildAllocation(child_id=child_id, user_id=user.id, allocated_by=actor.name, allocated_at=now())
        session.add(current)
    else:
        current.user_id, current.allocated_by, current.allocated_at = user.id, actor.name, now()
    _event(session, actor, payloads.Account(action="child_allocated", user=user.username), child_id=child_id)
    _flag_self_grant(session, actor, user, "allocated_child_to_self", child_id=child_id)
    return current


def allocated_worker(session: Session, child_id: str) -> User | None:
    allocation = session.get(ChildAllocation, child_id)
    return None if allocation is None else session.get(User, allocation.user_id)


def count_users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0
