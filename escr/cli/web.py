"""Commands for the web app and the people who use it: `escr serve`, `escr run`, `escr users`,
`escr teams`, and `escr quarantine discard`.

Account commands run on the server by an administrator; each change is a protocol event with
the administrator (`--user`, else ESCR_USER, else the login name) as its actor. A password or
API token is printed once and never stored in clear.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from datetime import date, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from escr.app import accounts
from escr.app.access import Role
from escr.cli.common import UserOpt, _print_json, _services, _settings, _user, app, err, handles_errors, out, quarantine_app
from escr.errors import ConfigError
from escr.record.events import Actor
from escr.services import Services, configure_logging

log = logging.getLogger("escr.web")

users_app = typer.Typer(help="People who sign in to the web app and API.", no_args_is_help=True)
teams_app = typer.Typer(help="Teams, their members, and allocation of children to workers.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(teams_app, name="teams")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
ROLES = ", ".join(r.value for r in Role)


def _actor(services: Services, user: str | None) -> Actor:
    return Actor(kind="user", name=_user(services.settings, user))


def _read_password(from_stdin: bool) -> str | None:
    return sys.stdin.readline().rstrip("\n") if from_stdin else None


# --- serving ------------------------------------------------------------------------------


def _uvicorn_config(services: Services, host: str | None, port: int | None) -> Any:
    import uvicorn

    from escr.web import create_app

    web = services.settings.web
    return uvicorn.Config(create_app(services), host=host or web.host, port=port or web.port,
                          access_log=False,  # its lines hold query strings: escr logs requests itself
                          # The peer address must stay the proxy's own, which the SSO header is trusted from.
                          proxy_headers=False, log_config=None)


def _listening_socket(host: str, port: int) -> socket.socket:
    """The web app's socket, bound before anything else starts, so a port already in use is one
    clear error (and `escr run` starts no watcher) instead of uvicorn's exit after start-up."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)  # as uvicorn binds
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        hint = (" (is another `escr run` or `escr serve` still running?): stop it, or choose another port "
                "with --port or ESCR_WEB__PORT") if exc.errno == errno.EADDRINUSE else ""
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from exc
    return sock


def _first_run_hint(services: Services) -> None:
    with services.db.session() as session:
        if accounts.count_users(session) == 0:
            err.print("No users yet. Create an administrator first:\n"
                      "    escr users add admin --role administrator\n"
                      "(it prints a first password once), then add people on the Users page.")


@app.command()
@handles_errors
def serve(host: Annotated[str | None, typer.Option(help="Address to listen on (default web.host).")] = None,
          port: Annotated[int | None, typer.Option(help="Port (default web.port).")] = None) -> None:
    """Run the web app and REST API (OpenAPI at /api/v1/openapi.json)."""
    import uvicorn

    configure_logging()
    services = _services()
    _first_run_hint(services)
    config = _uvicorn_config(services, host, port)
    sock = _listening_socket(config.host, config.port)
    out.print(f"escr web app on http://{config.host}:{config.port}/")
    uvicorn.Server(config).run(sockets=[sock])


def _bootstrap_admin(services: Services) -> None:
    """On the very first run there is nobody to sign in: make an administrator, password shown once."""
    with services.db.session() as session:
        if accounts.count_users(session) > 0:
            return
        _, password = accounts.add_user(session, "admin", role=Role.ADMINISTRATOR.value,
                                        actor=Actor.system(), display_name="Administrator")
    out.print("[bold]First run: an administrator was created.[/bold]\n"
              f"    user name: admin\n    password:  {password}\n"
              "This is shown once. Sign in, add people on the Users page (or `escr users add`), and change "
              "this password on the My account page.")


@app.command("run")
@handles_errors
def run_all(host: Annotated[str | None, typer.Option(help="Address to listen on (default web.host).")] = None,
            port: Annotated[int | None, typer.Option(help="Port (default web.port).")] = None) -> None:
    """Watch the intake folder and serve the web app, together, until stopped (what `make run` runs)."""
    import uvicorn

    configure_logging()
    services = _services()
    config = _uvicorn_config(services, host, port)
    sock = _listening_socket(config.host, config.port)
    _bootstrap_admin(services)
    watcher = subprocess.Popen([sys.executable, "-m", "escr", "watch"], env=os.environ.copy())
    server = uvicorn.Server(config)

    def watch_the_watcher() -> None:
        code = watcher.wait()
        if not server.should_exit:
            log.error("the intake watcher stopped (exit %s); stopping the web app too", code)
            server.should_exit = True

    threading.Thread(target=watch_the_watcher, name="watcher-monitor", daemon=True).start()
    out.print(f"escr: watching {services.settings.intake_dir} and serving "
              f"http://{server.config.host}:{server.config.port}/ (Ctrl-C stops both)")
    try:
        server.run(sockets=[sock])
    finally:
        server.should_exit = True
        if watcher.poll() is None:
            watcher.send_signal(signal.SIGTERM)  # the watcher finishes the files in hand first
            try:
                watcher.wait(timeout=600)
            except subprocess.TimeoutExpired:
                watcher.kill()
    if watcher.returncode not in (0, -signal.SIGTERM, None):
        raise typer.Exit(1)


# --- users --------------------------------------------------------------------------------


@users_app.command("add")
@handles_errors
def users_add(
    username: str,
    role: Annotated[str, typer.Option(help=f"One of: {ROLES}.")],
    name: Annotated[str | None, typer.Option(help="Full name shown in the app.")] = None,
    team: Annotated[list[str] | None, typer.Option("--team", help="Team code; repeat for several.")] = None,
    third_party: Annotated[bool, typer.Option("--third-party", help="May open third-party documents.")] = False,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    user: UserOpt = None,
) -> None:
    """Add a user; prints a random first password once (unless given on stdin)."""
    services = _services()
    given = _read_password(password_stdin)
    with services.db.session() as session:
        created, password = accounts.add_user(session, username, role=role, actor=_actor(services, user),
                                              display_name=name, teams=team or [], third_party=third_party,
                                              password=given)
    out.print(f"user {created.username} added ({created.role})")
    if given is None:
        out.print(f"first password (shown once): {password}")


@users_app.command("list")
@handles_errors
def users_list(as_json: JsonOpt = False) -> None:
    """Users, their roles, teams and status."""
    from escr.app.operations import user_dict

    services = _services()
    from sqlalchemy import select

    from escr.record.models import User

    with services.db.session() as session:
        rows = [user_dict(u) for u in session.scalars(select(User).order_by(User.username))]
    if as_json:
        _print_json(rows)
        return
    table = Table("user", "name", "role", "teams", "third-party", "status")
    for u in rows:
        table.add_row(u["username"], u["display_name"], u["role"], ",".join(u["teams"]) or "-",
                      "yes" if u["third_party_access"] else "", "disabled" if u["disabled"] else
                      "locked" if u["locked"] else "active")
    out.print(table)


@users_app.command("disable")
@handles_errors
def users_disable(username: str, user: UserOpt = None) -> None:
    """Disable a user: their sessions and API tokens stop working at once."""
    services = _services()
    with services.db.session() as session:
        accounts.set_disabled(session, username, True, actor=_actor(services, user))
    out.print(f"user {username} disabled")


@users_app.command("enable")
@handles_errors
def users_enable(username: str, user: UserOpt = None) -> None:
    """Enable a disabled user again."""
    services = _services()
    with services.db.session() as session:
        accounts.set_disabled(session, username, False, actor=_actor(services, user))
    out.print(f"user {username} enabled")


@users_app.command("reset")
@handles_errors
def users_reset(
    username: str,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    user: UserOpt = None,
) -> None:
    """Set a new password (random, printed once), end every session and lift a lockout."""
    services = _services()
    given = _read_password(password_stdin)
    with services.db.session() as session:
        password = accounts.reset_password(session, username, actor=_actor(services, user), password=given)
    out.print(f"password of {username} reset; every session ended")
    if given is None:
        out.print(f"new password (shown once): {password}")


@users_app.command("update")
@handles_errors
def users_update(
    username: str,
    role: Annotated[str | None, typer.Option(help=f"One of: {ROLES}.")] = None,
    name: Annotated[str | None, typer.Option(help="Full name.")] = None,
    third_party: Annotated[bool | None, typer.Option("--third-party/--no-third-party",
                                                     help="May open third-party documents.")] = None,
    user: UserOpt = None,
) -> None:
    """Change a user's role, name or third-party permission (their sessions end)."""
    services = _services()
    with services.db.session() as session:
        accounts.update_user(session, username, actor=_actor(services, user), role=role, display_name=name,
                             third_party=third_party)
    out.print(f"user {username} updated")


@users_app.command("token")
@handles_errors
def users_token(
    username: str,
    name: Annotated[str, typer.Option(help="What the token is for.")] = "API token",
    days: Annotated[int | None, typer.Option(help="Expires after this many days (default: web.token_days).")] = None,
    user: UserOpt = None,
) -> None:
    """Create an API token for a user; printed once (send it as `Authorization: Bearer <token>`)."""
    services = _services()
    with services.db.session() as session:
        owner = accounts.get_user(session, username)
        new = accounts.create_token(session, owner, name, actor=_actor(services, user), days=days, via="cli",
                                    limits=services.settings.web)
    out.print(f"API token {new.token.id} for {username} (shown once):")
    sys.stdout.write(new.secret + "\n")


@users_app.command("revoke-token")
@handles_errors
def users_revoke_token(token_id: int, user: UserOpt = None) -> None:
    """Revoke an API token by its id."""
    services = _services()
    with services.db.session() as session:
        accounts.revoke_token(session, token_id, actor=_actor(services, user))
    out.print(f"API token {token_id} revoked")


# --- teams --------------------------------------------------------------------------------


@teams_app.command("add")
@handles_errors
def teams_add(code: str, name: Annotated[str | None, typer.Option(help="Team name.")] = None,
              user: UserOpt = None) -> None:
    """Add a team; its code is the value of the child index's team column."""
    services = _services()
    with services.db.session() as session:
        accounts.add_team(session, code, actor=_actor(services, user), name=name)
    out.print(f"team {code} added")


@teams_app.command("list")
@handles_errors
def teams_list(as_json: JsonOpt = False) -> None:
    """Teams, their members and how many children each has."""
    from sqlalchemy import func, select

    from escr.record.models import Child, Team

    services = _services()
    with services.db.session() as session:
        counts = dict(session.execute(select(Child.team, func.count()).group_by(Child.team)).all())
        rows = [{"code": t.code, "name": t.name, "children": counts.get(t.code, 0),
                 "members": [u.username for u in accounts.team_members(session, t.code)]}
                for t in session.scalars(select(Team).order_by(Team.code))]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table("team", "name", "children", "members")
    for t in rows:
        table.add_row(t["code"], t["name"], str(t["children"]), ", ".join(t["members"]) or "-")
    out.print(table)


@teams_app.command("add-member")
@handles_errors
def teams_add_member(team: str, username: str, user: UserOpt = None) -> None:
    """Add a user to a team: they see the team's children (caseworkers, team managers)."""
    services = _services()
    with services.db.session() as session:
        accounts.add_member(session, team, username, actor=_actor(services, user))
    out.print(f"{username} added to team {team}")


@teams_app.command("remove-member")
@handles_errors
def teams_remove_member(team: str, username: str, user: UserOpt = None) -> None:
    """Remove a user from a team."""
    services = _services()
    with services.db.session() as session:
        accounts.remove_member(session, team, username, actor=_actor(services, user))
    out.print(f"{username} removed from team {team}")


@teams_app.command("allocate")
@handles_errors
def teams_allocate(
    child_id: str,
    worker: Annotated[str | None, typer.Option(help="The caseworker or team manager to allocate to.")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the allocation.")] = False,
    user: UserOpt = None,
) -> None:
    """Allocate a child to a worker (who then sees the record even outside their teams)."""
    if (worker is None) == (not clear):
        raise typer.BadParameter("give --worker USER or --clear")
    services = _services()
    with services.db.session() as session:
        accounts.allocate(session, child_id, None if clear else worker, actor=_actor(services, user))
    out.print(f"{child_id} {'unallocated' if clear else f'allocated to {worker}'}")


# --- quarantine discard ---------------------------------------------------------------------


@quarantine_app.command("discard")
@handles_errors
def quarantine_discard(claim_id: str, reason: Annotated[str, typer.Option(help="Why it is discarded.")],
                       user: UserOpt = None) -> None:
    """Discard a quarantined file: off the list, logged, bytes kept under discarded/ until retention allows."""
    from escr.intake.quarantine import discard

    settings = _settings()
    services = _services()
    keep_until = date.today() + timedelta(days=settings.web.discarded_keep_days)
    target = discard(claim_id, quarantine_dir=settings.quarantine_dir, discarded_dir=settings.home / "discarded",
                     db=services.db, actor=_actor(services, user), reason=reason, keep_until=keep_until)
    out.print(f"discarded; kept in {target} until at least {keep_until.isoformat()}")
