"""`escr hold ...` and `escr retention ...`: legal holds and retention of the stored objects.

A legal hold keeps every object of a document (its untouched scan, reading copy and manifest)
whatever its retention date says, until a person releases it; both need a reason, which is kept
in the protocol event (the access-controlled database), never in a log line.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy import select

from escr.cli.common import JsonOpt, UserOpt, _actor, _print_json, _services, app, handles_errors, out
from escr.errors import NotFound
from escr.record.events import AccessEvent, record
from escr.record.models import Child, Document

hold_app = typer.Typer(help="Legal holds: keep a document's stored objects until a person releases them.",
                       no_args_is_help=True)
retention_app = typer.Typer(help="Retention dates of the stored objects.", no_args_is_help=True)
app.add_typer(hold_app, name="hold")  # registered when escr.cli.main imports this module
app.add_typer(retention_app, name="retention")

ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (kept in the protocol event).")]


def _hold(document: str, on: bool, reason: str, user: str | None, as_json: bool) -> None:
    from escr.record.retention_updates import set_legal_hold

    services = _services()
    with services.db.session() as session:
        result = set_legal_hold(session, services.store, document, on=on, reason=reason,
                                actor=_actor(services, user))
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
    actor = _actor(services, user)
    with services.db.session() as session:
        doc = session.get(Document, document)
        if doc is None:
            raise NotFound(f"document {document} not found")
        keys = {"original": doc.batch.original_key, "searchable": doc.searchable_key, "manifest": doc.manifest_key}
        result: dict[str, Any] = {
            "document": doc.id, "retention_until": doc.retention_until.isoformat() if doc.retention_until else None,
            "legal_hold": doc.legal_hold,
            "objects": {name: {"key": key, **services.store.get_retention(key).as_dict()}
                        for name, key in keys.items()}}
        record(session, AccessEvent(actor=actor, action="provenance", document_id=doc.id,
                                    parameters={"command": "retention show"}))
    if as_json:
        _print_json(result)
        return
    out.print(f"{doc.id}: keep until [bold]{result['retention_until'] or 'not yet known (kept)'}[/bold]"
              f"{'  legal hold' if result['legal_hold'] else ''}")
    for name, obj in result["objects"].items():
        out.print(f"  {name:10} {obj['key']}  {obj['mode'] or '-'} until {obj['until'] or '-'}"
                  f"{'  held' if obj['legal_hold'] else ''}")


@retention_app.command("recompute")
@handles_errors
def retention_recompute(
    child: Annotated[list[str] | None, typer.Option("--child", help="Child id; repeat. Default: every child.")] = None,
    user: UserOpt = None, as_json: JsonOpt = False,
) -> None:
    """Recompute retention dates from the schedule (after config/retention.yaml changed); never shortens."""
    from escr.record.retention_updates import recompute_retention

    services = _services()
    with services.db.session() as session:
        ids = child or list(session.scalars(select(Child.child_id)))
        changes = recompute_retention(session, services.store, services.retention, ids,
                                      actor=_actor(services, user), reason="retention recompute")
    rows = [{"document": c.document_id, "old": _iso(c.old), "new": _iso(c.new), "schedule": _iso(c.schedule),
             "applied": c.applied} for c in changes]
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


def _iso(day: Any) -> str | None:
    return day.isoformat() if day else None
