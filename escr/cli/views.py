"""`escr views`: your saved views of a chronology (escr.app.saved_views); open one with
`escr documents --child ID --view NAME`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from escr.app.saved_views import SavedViews, ViewFilters
from escr.cli.common import JsonOpt, UserOpt, _date, _print_json, app, handles_errors, operations, out

views_app = typer.Typer(help="Your saved views: named filters of a child's chronology.", no_args_is_help=True)
app.add_typer(views_app, name="views")


def _views(command: str, user: str | None) -> SavedViews:
    o = operations(command, user)
    return SavedViews(o.services, o.p)


@views_app.command("list")
@handles_errors
def views_list(user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Your saved views, by name, with what each shows."""
    rows = _views("views list", user).list()
    if as_json:
        _print_json(rows)
        return
    if not rows:
        out.print("You have no saved views.")
        return
    table = Table("view", "child", "shows", title="Your saved views")
    for v in rows:
        shows = "; ".join([", ".join(v["filters"]["types"]) or "all types", *v["described"]])
        table.add_row(escape(v["name"]), v["child_id"] or "-", escape(shows))
    out.print(table)


@views_app.command("save")
@handles_errors
def views_save(
    name: str,
    child: Annotated[str | None, typer.Option("--child", help="The child it opens on from your home page.")] = None,
    doc_type: Annotated[list[str] | None, typer.Option("--type", help="Document type; repeat for more.")] = None,
    since: Annotated[str | None, typer.Option(help="DD/MM/YYYY")] = None,
    until: Annotated[str | None, typer.Option(help="DD/MM/YYYY")] = None,
    state: Annotated[str, typer.Option(help="verified, all (not yet verified marked) or pending.")] = "verified",
    third_party: Annotated[str, typer.Option("--third-party", help="any, only or without.")] = "any",
    text: Annotated[str, typer.Option(help="Only documents containing these words.")] = "",
    sort: Annotated[str, typer.Option(help="oldest or newest first.")] = "oldest",
    user: UserOpt = None, as_json: JsonOpt = False,
) -> None:
    """Save a view under NAME (replacing yours of that name): filters only, never access."""
    filters = ViewFilters.parse(types=doc_type, since=_date(since), until=_date(until), state=state, third_party=third_party,
                                text=text, sort=sort)
    saved = _views("views save", user).save(name, filters, child_id=child)
    if as_json:
        _print_json(saved)
        return
    out.print(f"view {escape(saved['name'])} {'saved' if saved['created'] else 'replaced'}")


@views_app.command("remove")
@handles_errors
def views_remove(name: str, user: UserOpt = None) -> None:
    """Remove one of your saved views."""
    _views("views remove", user).remove(name)
    out.print(f"view {escape(name)} removed")
