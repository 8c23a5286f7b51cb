"""`escr db`: bring the database schema to the newest migration, and say where it stands.

Run `escr db upgrade` as the database owner (PostgreSQL) after installing a new escr version;
`--app-role` then gives the application's own role exactly the grants it needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import make_url

from escr.cli.common import JsonOpt, _print_json, _settings, app, handles_errors, out
from escr.record.database import Database, grant_app_role, head_revision
from escr.settings import Settings

db_app = typer.Typer(help="The database schema (Alembic migrations) and the application role.",
                     no_args_is_help=True)
app.add_typer(db_app, name="db")  # registered when escr.cli.main imports this module


def _open(settings: Settings) -> Database:
    if settings.database_url is None:
        settings.home.mkdir(parents=True, exist_ok=True)  # the embedded SQLite file lives there
    return Database(settings.resolved_database_url)


def _no_database_yet(settings: Settings) -> bool:
    """The embedded SQLite file does not exist: asking must not create it."""
    db_file = make_url(settings.resolved_database_url).database
    return settings.database_url is None and db_file is not None and not Path(db_file).exists()


def _where(db: Database) -> str:
    return make_url(db.url).render_as_string(hide_password=True)


@db_app.command("upgrade")
@handles_errors
def upgrade(
    app_role: Annotated[str | None, typer.Option(
        "--app-role", help="PostgreSQL role escr runs as: grant it what it needs, nothing more.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Apply every migration not yet applied (nothing happens when the schema is up to date)."""
    db = _open(_settings())
    try:
        before, head = db.revisions()
        db.create_schema()
        grants = grant_app_role(db.engine, app_role) if app_role else None
    finally:
        db.dispose()
    result = {"database": _where(db), "was": before, "now": head, "app_role": app_role, "grants": grants}
    if as_json:
        _print_json(result)
        return
    out.print(f"{result['database']}: schema at {head}" + ("" if before == head else f" (was {before or 'empty'})"))
    for table, privileges in (grants or {}).items():
        out.print(f"  {app_role}: {', '.join(privileges)} on {table}")


@db_app.command("current")
@handles_errors
def current(as_json: JsonOpt = False) -> None:
    """The schema's migration and the newest one; exit code 1 when an upgrade is due."""
    settings = _settings()
    if _no_database_yet(settings):
        _report_current(settings.resolved_database_url, None, head_revision(), as_json)
        return
    db = _open(settings)
    try:
        now, head = db.revisions()
    finally:
        db.dispose()
    _report_current(db.url, now, head, as_json)


def _report_current(url: str, now: str | None, head: str, as_json: bool) -> None:
    where = make_url(url).render_as_string(hide_password=True)
    if as_json:
        _print_json({"database": where, "current": now, "head": head, "up_to_date": now == head})
    else:
        state = "up to date" if now == head else "behind: run `escr db upgrade`"
        out.print(f"{where}: {now or 'empty'} (newest {head}), {state}")
    if now != head:
        raise typer.Exit(1)
