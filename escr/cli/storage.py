"""`escr hold ...` and `escr retention ...`: legal holds and retention of the stored objects.

A legal hold keeps every object of a document (its untouched scan, reading copy and manifest)
whatever its retention date says, until a person releases it; both need a reason, which is kept
in the protocol event (the access-controlled database), never in a log line.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from escr.app import maintenance, stewardship
from escr.cli.common import JsonOpt, UserOpt, _print_json, _services, app, handles_errors, host_operator, out, signed_in

hold_app = typer.Typer(help="Legal holds: keep a document's stored objects until a person releases them.",
                       no_args_is_help=True)
retention_app = typer.Typer(help="Retention dates of the stored objects.", no_args_is_help=True)
app.add_typer(hold_app, name="hold")  # registered when escr.cli.main imports this module
app.add_typer(retention_app, name="retention")

ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (kept in the protocol event).")]


def _hold(document: str, on: bool, reason: str, user: str | None, as_json: bool) -> None:
    services = _services()
    result = stewardship.set_legal_hold(services, signed_in(services, f"hold {'set' if on else 'release'}", user),
                                        document, on=on, reason=reason)
    if as_json:
        _print_json(result)
        return
    out.print(f"{document}: legal hold [bold]{'set' if on else 'released'}[/bold]")
    _print_objects(result["objects"])


@hold_app.command("set")
@handles_errors
def hold_set(document: str, reason: ReasonOpt, user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Put a document's objects under a legal hold (e.g. needed in court)."""
    _hold(document, True, reason, user, as_json)


@hold_app.command("release")
@handles_errors
def hold_release(document: str, reason: ReasonOpt, user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Release a person's legal hold (objects whose retention date is unknown stay held)."""
    _hold(document, False, reason, user, as_json)


@retention_app.command("show")
@handles_errors
def retention_show(document: str, user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """A document's retention date and how each of its objects is locked in the store."""
    services = _services()
    result = stewardship.retention(services, signed_in(services, "retention show", user), document)
    if as_json:
        _print_json(result)
        return
    out.print(f"{result['document']}: keep until [bold]{result['retention_until'] or 'not yet known (kept)'}[/bold]"
              f"{'  legal hold' if result['legal_hold'] else ''}")
    for name, obj in result["objects"].items():
        out.print(f"  {name:10} {obj['key']}  {obj['mode'] or '-'} until {obj['until'] or '-'}"
                  f"{'  held' if obj['legal_hold'] else ''}")


@retention_app.command("recompute")
@handles_errors
def retention_recompute(
    child: Annotated[list[str] | None, typer.Option("--child", help="Child id; repeat. Default: every child.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Recompute retention dates from the schedule (after config/retention.yaml changed); never shortens.
    Run on the server."""
    rows = maintenance.recompute_retention(_services(), host_operator("retention recompute"), child)
    if as_json:
        _print_json(rows)
        return
    out.print(f"{sum(r['applied'] for r in rows)} documents changed, "
              f"{sum(not r['applied'] for r in rows)} earlier dates not applied")
    for r in rows:
        note = "" if r["applied"] else f"  (the schedule says {r['schedule'] or 'keep'}: not shortened)"
        out.print(f"  {r['document']}: {r['old'] or 'keep'} -> {r['new'] or 'keep'}{note}")


def _print_objects(objects: dict[str, Any]) -> None:
    for key, change in objects.items():
        after = change["after"]
        held = "  held" if after["legal_hold"] else ""
        out.print(f"  {key}  {after['mode'] or '-'} until {after['until'] or '-'}{held}")

