"""Set-up and maintenance on the server, done by the host operator: the database schema, the
first administrator, the child index import, retention recomputes, fixity runs and anchors.

Each function takes the acting principal and refuses anyone who may not maintain escr; none of
them returns record content (only ids, counts and findings).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, make_url, select, text

from escr.app import accounts
from escr.app.access import Can, Principal, Role, require
from escr.clock import iso
from escr.errors import EscrError, InvalidState
from escr.record.database import Database, grant_app_role, head_revision
from escr.record.models import Child, Document
from escr.services import Services
from escr.settings import Settings

# --- the schema -----------------------------------------------------------------------------------


def _open(settings: Settings) -> Database:
    if settings.database_url is None:
        settings.home.mkdir(parents=True, exist_ok=True)  # the embedded SQLite file lives there
    return Database(settings.resolved_database_url)


def _where(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def upgrade_schema(settings: Settings, principal: Principal, *, app_role: str | None) -> dict[str, Any]:
    """Apply every migration not yet applied; optionally grant the application's PostgreSQL role."""
    require(principal, Can.MAINTAIN)
    db = _open(settings)
    try:
        before, head = db.revisions()
        db.create_schema()
        grants = grant_app_role(db.engine, app_role) if app_role else None
    finally:
        db.dispose()
    return {"database": _where(db.url), "was": before, "now": head, "app_role": app_role, "grants": grants}


def schema_state(settings: Settings, principal: Principal) -> dict[str, Any]:
    """Where the schema stands against the newest migration (asking never creates the SQLite file)."""
    require(principal, Can.MAINTAIN)
    db_file = make_url(settings.resolved_database_url).database
    if settings.database_url is None and db_file is not None and not Path(db_file).exists():
        now, head, url = None, head_revision(), settings.resolved_database_url
    else:
        db = _open(settings)
        try:
            now, head = db.revisions()
        finally:
            db.dispose()
        url = db.url
    return {"database": _where(url), "current": now, "head": head, "up_to_date": now == head}


# --- the first administrator ------------------------------------------------------------------------


def has_users(services: Services) -> bool:
    with services.db.session() as session:
        return accounts.count_users(session) > 0


def add_first_administrator(services: Services, principal: Principal, username: str, *,
                            display_name: str | None = None, password: str | None = None) -> str:
    """Only while escr has no account at all may the host operator create one: an administrator.
    Returns the first password (given, or random to show once: then it must be changed at the
    first sign-in, since it was printed where others may see it)."""
    require(principal, Can.MAINTAIN)
    with services.db.session() as session:
        if accounts.count_users(session) > 0:
            raise InvalidState("escr already has users: an administrator adds people (sign in first)",
                               code="already_exists")
        _, password = accounts.add_user(session, username, role=Role.ADMINISTRATOR.value, actor=principal.actor,
                                        display_name=display_name or "Administrator", password=password,
                                        must_change_password=password is None)
    return password


@dataclass(frozen=True)
class NewUser:
    username: str
    role: str
    password: str


def bootstrap_administrator(services: Services, principal: Principal) -> NewUser | None:
    """On the very first run there is nobody to sign in: make `admin`, password shown once."""
    if has_users(services):
        return None
    return NewUser("admin", Role.ADMINISTRATOR.value, add_first_administrator(services, principal, "admin"))


# --- the child index and retention --------------------------------------------------------------------


def import_children(services: Services, principal: Principal, file: Path) -> dict[str, int]:
    """Load or update the child index from a CSV export (a bad row imports nothing)."""
    require(principal, Can.MAINTAIN)
    from escr.record.children import import_children as load
    from escr.record.children import read_children_csv
    from escr.record.retention_updates import retention_hook

    rows = read_children_csv(file)
    with services.db.session() as session:
        summary = load(session, rows, actor=principal.actor,
                       on_retention_change=retention_hook(services.store, services.retention, principal.actor))
    return {"added": summary.added, "updated": summary.updated, "unchanged": summary.unchanged}


def recompute_retention(services: Services, principal: Principal, child_ids: list[str] | None) -> list[dict[str, Any]]:
    """Recompute retention dates from the schedule (after it changed); never shortens."""
    require(principal, Can.MAINTAIN)
    from escr.record.retention_updates import recompute_retention as recompute

    with services.db.session() as session:
        ids = child_ids or list(session.scalars(select(Child.child_id)))
        changes = recompute(session, services.store, services.retention, ids, actor=principal.actor,
                            reason="retention recompute")
    return [{"document": c.document_id, "old": iso(c.old), "new": iso(c.new), "schedule": iso(c.schedule),
             "applied": c.applied} for c in changes]



# --- fixity and anchors ------------------------------------------------------------------------------


def fixity_check(services: Services, principal: Principal, *, child_id: str | None = None,
                 document_id: str | None = None, since: Any = None, until: Any = None, scheduled: bool = False,
                 on_progress: Any = None) -> Any:
    """A fixity run (the log chain, anchors, every object's hash, the protocol steps); findings hold
    ids. `on_progress(done, total, stage, tally)` is told each stage, for a terminal's progress bar."""
    require(principal, Can.MAINTAIN)
    from escr.app.auditing import refuse_backwards_period
    from escr.pipelines import fixity
    from escr.provenance.checks import Scope

    if scheduled:
        return fixity.run(services, actor=principal.actor, trigger="schedule", alert=fixity.Alerter(services),
                          on_progress=on_progress)
    refuse_backwards_period(since, until)
    return fixity.run(services, Scope(child_id=child_id, document_id=document_id, since=since, until=until),
                      actor=principal.actor, trigger="server", on_progress=on_progress)


def anchor_now(services: Services, principal: Principal) -> Any:
    """Anchor the event chain's head to the object store now."""
    require(principal, Can.MAINTAIN)
    from escr.provenance.anchors import write_anchor

    written = write_anchor(services, actor=principal.actor, force=True)
    if written is None:
        raise InvalidState("the event log is empty: nothing to anchor")
    return written


# --- health, for the web app's fallbacks -----------------------------------------------------------------


def database_health(services: Services) -> dict[str, Any]:
    try:
        with services.db.session() as session:
            session.execute(text("SELECT 1"))
        return {"status": "ok", "checks": {"database": {"ok": True}}}
    except EscrError as exc:
        return {"status": "failing", "checks": {"database": {"ok": False, "error": exc.code}}}


def document_counts(services: Services) -> list[tuple[str, int]]:
    """How many documents are in each state (counts only: no principal needed, nothing personal)."""
    with services.db.session() as session:
        return [(state, count) for state, count in
                session.execute(select(Document.state, func.count()).group_by(Document.state)).all()]
