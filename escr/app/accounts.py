"""Users, teams, allocation of children to workers, passwords and API tokens.

Passwords are kept as argon2id hashes, API tokens as SHA-256 hashes (a token is random and
long, so a fast hash is enough); neither is ever stored or logged in clear. Every change to who
may see what is a protocol event, so an auditor can reconstruct anyone's access at any time.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from escr.app.access import Principal, Role
from escr.errors import InvalidState, NotFound, ValidationFailed
from escr.record import payloads
from escr.record.events import Actor, Kind, ProtocolEvent, now, record
from escr.record.models import ApiToken, Child, ChildAllocation, Team, TeamMembership, User, WebSession

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


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _event(session: Session, actor: Actor, action: str, *, outcome: str = "ok", child_id: str | None = None,
           kind: Kind = Kind.ACCOUNT, **parameters: Any) -> None:
    record(session, ProtocolEvent(kind=kind, actor=actor, child_id=child_id, outcome=outcome,
                                  parameters=payloads.Account(action=action, **parameters)))


# --- Users --------------------------------------------------------------------------------


def get_user(session: Session, username: str) -> User:
    user = session.scalars(select(User).where(User.username == username.strip().lower())).first()
    if user is None:
        raise NotFound(f"no user {username}")
    return user


def principal_for(user: User, *, via: str = "session") -> Principal:
    return Principal(user_id=user.id, username=user.username, display_name=user.display_name, role=Role(user.role),
                     teams=frozenset(m.team_code for m in user.memberships), third_party=user.third_party_access,
                     via=via)


def _role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise ValidationFailed(f"unknown role {role}; one of {', '.join(r.value for r in Role)}") from None


def add_user(
    session: Session, username: str, *, role: str, actor: Actor, display_name: str | None = None,
    teams: Sequence[str] = (), third_party: bool = False, password: str | None = None,
) -> tuple[User, str]:
    """Create a user; returns the user and their first password (given, or random to hand over once)."""
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
                session_epoch=0, failed_logins=0, created_at=stamp, updated_at=stamp)
    session.add(user)
    session.flush()
    _event(session, actor, "user_added", user=username, role=user.role, third_party=third_party)
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
        user.updated_at = now()
        _event(session, actor, "user_updated", user=user.username, changes=changes)
    return user


def set_disabled(session: Session, username: str, disabled: bool, *, actor: Actor) -> User:
    """Disable (or re-enable) an account: every session and API token of a disabled user stops working."""
    user = get_user(session, username)
    if actor.name == user.username and disabled:
        raise InvalidState("you cannot disable your own account", code="own_account")
    user.disabled, user.updated_at = disabled, now()
    user.session_epoch += 1
    _event(session, actor, "user_disabled" if disabled else "user_enabled", user=user.username)
    return user


def reset_password(session: Session, username: str, *, actor: Actor, password: str | None = None) -> str:
    """Set a new password (random unless given), end every session and lift a lockout."""
    user = get_user(session, username)
    password = password or new_password()
    check_password_strength(password)
    user.password_hash = hash_password(password)
    user.session_epoch += 1
    user.failed_logins, user.locked_until, user.updated_at = 0, None, now()
    _event(session, actor, "password_reset", user=user.username)
    return password


def change_own_password(session: Session, user_id: int, old: str, new: str) -> None:
    user = session.get(User, user_id)
    if user is None or not password_matches(user.password_hash, old):
        raise SignInFailed("the current password is not right")
    check_password_strength(new)
    user.password_hash = hash_password(new)
    user.updated_at = now()
    _event(session, Actor(kind="user", name=user.username), "password_changed", user=user.username)


_NOT_RECOGNISED = "user name or password not recognised, or the account is disabled"


def sign_in(session: Session, username: str, password: str, *, max_failures: int,
            lockout_minutes: float) -> tuple[User | None, str]:
    """Check a password; a run of failures locks the account for a while. Each attempt is an event.

    Returns (user, "") or (None, why): the caller commits either way (so failures count) and
    then refuses with the message.
    """
    name = (username or "").strip().lower()[:128]
    user = session.scalars(select(User).where(User.username == name)).first()
    actor = Actor(kind="user", name=name or "-")
    stamp = now()
    if user is None or user.disabled:
        password_matches(_DUMMY_HASH, password)  # the same work either way: no user-name probing by timing
        _event(session, actor, "sign_in", kind=Kind.SIGN_IN, outcome="refused")
        return None, _NOT_RECOGNISED
    locked = _utc(user.locked_until)
    if locked is not None and locked > stamp:
        _event(session, actor, "sign_in", kind=Kind.SIGN_IN, outcome="locked")
        return None, "the account is locked after repeated failed sign-ins; try later or ask an administrator"
    if not password_matches(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= max_failures:
            user.locked_until, user.failed_logins = stamp + timedelta(minutes=lockout_minutes), 0
        _event(session, actor, "sign_in", kind=Kind.SIGN_IN, outcome="failed")
        return None, _NOT_RECOGNISED
    if _hasher.check_needs_rehash(user.password_hash or ""):
        user.password_hash = hash_password(password)
    user.failed_logins, user.locked_until, user.last_login_at = 0, None, stamp
    _event(session, actor, "sign_in", kind=Kind.SIGN_IN)
    return user, ""


_DUMMY_HASH = _hasher.hash("not a password of anyone")


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
    row = session.get(WebSession, token_digest(sid))
    if row is None or row.ended_at is not None:
        return None
    stamp = now()
    user = session.get(User, row.user_id)
    why = ("expired" if stamp - _utc(row.started_at) > lifetime  # type: ignore[operator]
           else "idle" if stamp - _utc(row.last_seen_at) > idle  # type: ignore[operator]
           else "rights_changed" if user is None or user.disabled or user.session_epoch != row.epoch
           else None)
    if why is not None:
        row.ended_at, row.end_reason = stamp, why
        return None
    if stamp - _utc(row.last_seen_at) >= _SEEN_EVERY:  # type: ignore[operator]
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


def create_token(session: Session, user: User, name: str, *, actor: Actor, days: int | None = None) -> NewToken:
    if user.disabled:
        raise InvalidState(f"user {user.username} is disabled", code="user_disabled")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    stamp = now()
    token = ApiToken(user_id=user.id, name=(name or "API token").strip()[:128], token_sha256=token_digest(secret),
                     prefix=secret[: len(TOKEN_PREFIX) + 6], created_at=stamp,
                     expires_at=stamp + timedelta(days=days) if days else None)
    session.add(token)
    session.flush()
    _event(session, actor, "token_created", user=user.username, token_id=token.id, prefix=token.prefix)
    return NewToken(token, secret)


def revoke_token(session: Session, token_id: int, *, actor: Actor, owner_id: int | None = None) -> ApiToken:
    """Revoke a token; with `owner_id`, only that user's own token (self-service)."""
    token = session.get(ApiToken, token_id)
    if token is None or (owner_id is not None and token.user_id != owner_id):
        raise NotFound(f"no API token {token_id}")
    if token.revoked_at is None:
        token.revoked_at = now()
        _event(session, actor, "token_revoked", token_id=token.id, prefix=token.prefix)
    return token


def user_for_token(session: Session, secret: str) -> User | None:
    """The enabled user a live token belongs to, or None (unknown, revoked, expired or disabled)."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = session.scalars(select(ApiToken).where(ApiToken.token_sha256 == token_digest(secret))).first()
    stamp = now()
    if token is None or token.revoked_at is not None:
        return None
    expires = _utc(token.expires_at)
    if expires is not None and expires <= stamp:
        return None
    user = session.get(User, token.user_id)
    if user is None or user.disabled:
        return None
    last = _utc(token.last_used_at)
    if last is None or stamp - last > timedelta(minutes=1):
        token.last_used_at = stamp
    return user


def tokens_of(session: Session, user_id: int) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)))


# --- Teams and allocation -----------------------------------------------------------------


def add_team(session: Session, code: str, *, actor: Actor, name: str | None = None) -> Team:
    code = code.strip()
    if not TEAM_CODE.match(code):
        raise ValidationFailed("a team code is 1-64 letters, digits, '.', '_' or '-' (as in the child index's team column)")
    if session.get(Team, code) is not None:
        raise InvalidState(f"team {code} already exists", code="already_exists")
    team = Team(code=code, name=(name or code).strip()[:200], created_at=now())
    session.add(team)
    _event(session, actor, "team_added", team=code)
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
    _event(session, actor, "member_added", team=team.code, user=user.username)


def remove_member(session: Session, team_code: str, username: str, *, actor: Actor) -> None:
    user = get_user(session, username)
    membership = session.get(TeamMembership, (user.id, team_code))
    if membership is None:
        raise NotFound(f"{username} is not a member of team {team_code}")
    session.delete(membership)
    user.session_epoch += 1
    session.flush()
    session.expire(user, ["memberships"])
    _event(session, actor, "member_removed", team=team_code, user=user.username)


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
            _event(session, actor, "child_unallocated", child_id=child_id)
        return None
    user = get_user(session, username)
    if Role(user.role) not in (Role.CASEWORKER, Role.TEAM_MANAGER):
        raise ValidationFailed(f"children are allocated to caseworkers or team managers, not to a {user.role}")
    if current is None:
        current = ChildAllocation(child_id=child_id, user_id=user.id, allocated_by=actor.name, allocated_at=now())
        session.add(current)
    else:
        current.user_id, current.allocated_by, current.allocated_at = user.id, actor.name, now()
    _event(session, actor, "child_allocated", child_id=child_id, user=user.username)
    return current


def allocated_worker(session: Session, child_id: str) -> User | None:
    allocation = session.get(ChildAllocation, child_id)
    return None if allocation is None else session.get(User, allocation.user_id)


def count_users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0
