"""`escr db`: bring the database schema to the newest migration, and say where it stands.

Run `escr db upgrade` as the database owner (PostgreSQL) after installing a new escr version;
`--app-role` then gives the application's own role exactly the grants it needs.
"""

from __future__ import annotations

from typing import Annotated

import typer

from escr.app import maintenance
from escr.cli.common import JsonOpt, _print_json, _settings, app, handles_errors, host_operator, out

db_app = typer.Typer(help="The database schema (Alembic migrations) and the application role.",
                     no_args_is_help=True)
app.add_typer(db_app, name="db")  # registered when escr.cli.main imports this module


@db_app.command("upgrade")
@handles_errors
def upgrade(
    app_role: Annotated[str | None, typer.Option(
        "--app-role", help="PostgreSQL role escr runs as: grant it what it needs, nothing more.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Apply every migration not yet applied (nothing happens when the schema is up to date)."""
    result = maintenance.upgrade_schema(_settings(), host_operator("db upgrade"), app_role=app_role)
    if as_json:
        _print_json(result)
        return
    before, head = result["was"], result["now"]
    out.print(f"{result['database']}: schema at {head}" + ("" if before == head else f" (was {before or 'empty'})"))
    for table, privileges in (result["grants"] or {}).items():
        out.print(f"  {app_role}: {', '.join(privileges)} on {table}")


@db_app.command("current")
@handles_errors
def current(as_json: JsonOpt = False) -> None:
    """The schema's migration and the newest one; exit code 1 when an upgrade is due."""
    result = maintenance.schema_state(_settings(), host_operator("db current"))
    if as_json:
        _print_json(result)
    else:
        state = "up to date" if result["up_to_date"] else "behind: run `escr db upgrade`"
        out.print(f"{result['database']}: {result['current'] or 'empty'} (newest {result['head']}), {state}")
    if not result["up_to_date"]:
        raise typer.Exit(1)
