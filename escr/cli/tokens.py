"""`escr tokens`: an administrator at the server lists, creates and revokes anyone's API tokens.

The same use cases as the *API tokens* page of a user and `/api/v1/users/NAME/tokens`; each
change is a protocol event with the administrator (`--user`, else ESCR_USER, else the login
name) as its actor. A token is printed once and never stored in clear.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from escr.app import accounts
from escr.cli.common import UserOpt, _print_json, _services, _user, app, handles_errors, out
from escr.record.events import Actor

tokens_app = typer.Typer(help="Anyone's API tokens: list, create, revoke.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


@tokens_app.command("list")
@handles_errors
def tokens_list(username: str, as_json: JsonOpt = False) -> None:
    """A user's API tokens (never the tokens themselves): scope, expiry, last use, why revoked."""
    services = _services()
    with services.db.session() as session:
        owner = accounts.get_user(session, username)
        rows = [accounts.token_dict(t, owner.username) for t in accounts.tokens_of(session, owner.id)]
    if as_json:
        _print_json(rows)
        return
    table = Table("id", "name", "scope", "starts with", "expires", "last used", "status")
    for r in rows:
        status = f"revoked ({r['revoked_reason']})" if r["revoked"] else "live"
        table.add_row(str(r["id"]), r["name"], r["scope"], r["prefix"], r["expires_at"] or "never",
                      r["last_used_at"] or "-", status)
    out.print(table)


@tokens_app.command("create")
@handles_errors
def tokens_create(
    username: str,
    name: Annotated[str, typer.Option(help="What the token is for.")] = "API token",
    scope: Annotated[str, typer.Option(help="read, write or admin (administrators only).")] = "write",
    days: Annotated[int | None, typer.Option(help="Expires after this many days (default: web.token_days).")] = None,
    user: UserOpt = None,
) -> None:
    """Create an API token for a user; printed once (send it as `Authorization: Bearer <token>`)."""
    services = _services()
    with services.db.session() as session:
        owner = accounts.get_user(session, username)
        new = accounts.create_token(session, owner, name, actor=Actor(kind="user", name=_user(services.settings, user)),
                                    days=days, scope=scope, via="cli", limits=services.settings.web)
    out.print(f"API token {new.token.id} for {username}, scope {new.token.scope} (shown once):")
    sys.stdout.write(new.secret + "\n")


@tokens_app.command("revoke")
@handles_errors
def tokens_revoke(token_id: int, user: UserOpt = None) -> None:
    """Revoke one API token by its id, whoever it belongs to."""
    services = _services()
    with services.db.session() as session:
        accounts.revoke_token(session, token_id, actor=Actor(kind="user", name=_user(services.settings, user)),
                              reason="by_administrator")
    out.print(f"API token {token_id} revoked")


@tokens_app.command("revoke-all")
@handles_errors
def tokens_revoke_all(username: str, user: UserOpt = None) -> None:
    """Revoke every live API token of a user (a lost laptop, a leaver)."""
    services = _services()
    with services.db.session() as session:
        count = accounts.revoke_all_tokens(session, accounts.get_user(session, username),
                                           actor=Actor(kind="user", name=_user(services.settings, user)),
                                           reason="by_administrator")
    out.print(f"{count} API token(s) of {username} revoked")
