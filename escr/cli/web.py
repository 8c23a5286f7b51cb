"""Commands for the web app and the people who use it: `escr serve`, `escr run`, `escr users`,
`escr teams`, and `escr quarantine discard`.

Account commands act as a signed-in administrator (ESCR_TOKEN, or a password on a terminal);
each change is a protocol event with that administrator as its actor. The one exception is the
very first administrator, whom the host operator adds while escr has no account at all. A
password or API token is printed once and never stored in clear.
"""

from __future__ import annotations

import errno
import gc
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from typing import Annotated, Any

import typer
from rich.table import Table

from escr.app import access, maintenance
from escr.app.operations import Operations
from escr.cli.common import (
    UserOpt,
    _print_json,
    _services,
    app,
    err,
    handles_errors,
    host_operator,
    moment,
    operations,
    out,
    quarantine_app,
    signed_in,
)
from escr.errors import ConfigError
from escr.services import Services, configure_logging

log = logging.getLogger("escr.web")

users_app = typer.Typer(help="People who sign in to the web app and API.", no_args_is_help=True)
teams_app = typer.Typer(help="Teams, their members, and allocation of children to workers.", no_args_is_help=True)
tokens_app = typer.Typer(help="Your own API tokens (for ESCR_TOKEN and the REST API).", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(teams_app, name="teams")
app.add_typer(tokens_app, name="tokens")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
ROLES = ", ".join(access.roles())
EVERYTHING = 10**9


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
                          proxy_headers=False, log_config=None,
                          server_header=False)  # no "server: uvicorn" to tell an attacker what to try


def _listening_socket(host: str, port: int) -> socket.socket:
    """The web app's socket, bound before anything else starts, so a port already in use is one
    clear error (and `escr run` starts no watcher) instead of uvicorn's exit after start-up.

    Made from getaddrinfo's answer, so its protocol is IPPROTO_TCP (IPv4, IPv6 or a host name):
    asyncio switches Nagle off (TCP_NODELAY) only on sockets whose protocol says TCP, and with it
    on every kept-alive request waited ~40 ms for a delayed acknowledgement. The listener gets
    TCP_NODELAY too, which accepted connections inherit whatever event loop serves them."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                                             proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        hint = (" (is another `escr run` or `escr serve` still running?): stop it, or choose another port "
                "with --port or ESCR_WEB__PORT") if exc.errno == errno.EADDRINUSE else ""
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from exc
    return sock


def _web_server(services: Services, host: str | None, port: int | None) -> tuple[Any, socket.socket]:
    """The uvicorn server and its bound socket: the one way `escr serve` and `escr run` serve HTTP."""
    import uvicorn

    config = _uvicorn_config(services, host, port)
    return uvicorn.Server(config), _listening_socket(config.host, config.port)


def _serve_until_stopped(server: Any, sock: socket.socket) -> None:
    """This process is the web server from here on: the app's routes, models and templates live as
    long as it does, so they are frozen first and no collection during a request walks them."""
    gc.freeze()
    server.run(sockets=[sock])


def _first_run_hint(services: Services) -> None:
    if not maintenance.has_users(services):
        err.print("No users yet. Create an administrator first:\n"
                      "    escr users add admin --role administrator\n"
                      "(it prints a first password once), then add people on the Users page.")


@app.command()
@handles_errors
def serve(host: Annotated[str | None, typer.Option(help="Address to listen on (default web.host).")] = None,
          port: Annotated[int | None, typer.Option(help="Port (default web.port).")] = None) -> None:
    """Run the web app and REST API (OpenAPI at /api/v1/openapi.json)."""
    configure_logging()
    host_operator("serve")
    services = _services()
    _first_run_hint(services)
    server, sock = _web_server(services, host, port)
    out.print(f"escr web app on http://{server.config.host}:{server.config.port}/")
    _serve_until_stopped(server, sock)


def _bootstrap_admin(services: Services) -> None:
    """On the very first run there is nobody to sign in: make an administrator, password shown once."""
    created = maintenance.bootstrap_administrator(services, host_operator("run"))
    if created is None:
        return
    password = created.password
    out.print("[bold]First run: an administrator was created.[/bold]\n"
              f"    user name: admin\n    password:  {password}\n"
              "This is shown once. Sign in: you will choose a password of your own first. Then add people "
              "on the Users page (or `escr users add`).")


@app.command("run")
@handles_errors
def run_all(host: Annotated[str | None, typer.Option(help="Address to listen on (default web.host).")] = None,
            port: Annotated[int | None, typer.Option(help="Port (default web.port).")] = None) -> None:
    """Watch the intake folder and serve the web app, together, until stopped (what `make run` runs)."""
    configure_logging()
    services = _services()
    server, sock = _web_server(services, host, port)
    _bootstrap_admin(services)
    watcher = subprocess.Popen([sys.executable, "-m", "escr", "watch"], env=os.environ.copy())

    def watch_the_watcher() -> None:
        code = watcher.wait()
        if not server.should_exit:
            log.error("the intake watcher stopped (exit %s); stopping the web app too", code)
            server.should_exit = True

    threading.Thread(target=watch_the_watcher, name="watcher-monitor", daemon=True).start()
    out.print(f"escr: watching {services.settings.intake_dir} and serving "
              f"http://{server.config.host}:{server.config.port}/ (Ctrl-C stops both)")
    # uvicorn re-raises the signal it stopped on once it has stopped; SIGTERM's default action
    # would end this process there, before the watcher is stopped (left running as an orphan).
    signal.signal(signal.SIGTERM, lambda _sig, _frame: None)
    try:
        _serve_until_stopped(server, sock)
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
    """Add a user; prints a random first password once (unless given on stdin).

    While escr has no user at all, this runs on the server as the host operator and adds the first
    administrator; after that an administrator signs in to add people."""
    services = _services()
    given = _read_password(password_stdin)
    if not maintenance.has_users(services):
        if role != access.Role.ADMINISTRATOR.value or team or third_party:
            raise access.AccessDenied("escr has no users yet: the first one is an administrator "
                                      f"(escr users add {username} --role administrator)", code="role_forbidden")
        password = maintenance.add_first_administrator(services, host_operator("users add"), username,
                                                       display_name=name, password=given)
    else:
        ops = Operations(services, signed_in(services, "users add", user))
        password = ops.add_user(username, role=role, display_name=name, teams=team or [], third_party=third_party,
                                password=given)
    out.print(f"user {username.strip().lower()} added ({role})")
    if given is None:
        out.print(f"first password (shown once): {password}")


@users_app.command("list")
@handles_errors
def users_list(user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Users, their roles, teams and status."""
    rows = operations("users list", user).users(0, EVERYTHING).items
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
    operations("users disable", user).update_user(username, disabled=True)
    out.print(f"user {username} disabled")


@users_app.command("enable")
@handles_errors
def users_enable(username: str, user: UserOpt = None) -> None:
    """Enable a disabled user again."""
    operations("users enable", user).update_user(username, disabled=False)
    out.print(f"user {username} enabled")


@users_app.command("reset")
@handles_errors
def users_reset(
    username: str,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    user: UserOpt = None,
) -> None:
    """Set a new password (random, printed once), end every session and lift a lockout."""
    given = _read_password(password_stdin)
    password = operations("users reset", user).reset_password(username, given)
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
    operations("users update", user).update_user(username, role=role, display_name=name, third_party=third_party)
    out.print(f"user {username} updated")


@users_app.command("token")
@handles_errors
def users_token(
    username: str,
    name: Annotated[str, typer.Option(help="What the token is for.")] = "API token",
    days: Annotated[int | None, typer.Option(help="Expires after this many days (default: web.token_days).")] = None,
    scope: Annotated[str, typer.Option(help="read, write or admin (an administrator's account only).")] = "write",
    user: UserOpt = None,
) -> None:
    """Create an API token for a user; printed once (send it as `Authorization: Bearer <token>`)."""
    new = operations("users token", user).create_token_for(username, name, days, scope)
    out.print(f"API token {new['id']} for {username}, scope {new['scope']} (shown once):")
    sys.stdout.write(new["token"] + "\n")


@users_app.command("revoke-token")
@handles_errors
def users_revoke_token(token_id: int, user: UserOpt = None) -> None:
    """Revoke anyone's API token by its id."""
    operations("users revoke-token", user).revoke_any_token(token_id)
    out.print(f"API token {token_id} revoked")


# --- your own tokens ----------------------------------------------------------------------


@tokens_app.command("create")
@handles_errors
def tokens_create(
    name: Annotated[str, typer.Option(help="What the token is for.")] = "command line",
    scope: Annotated[str, typer.Option(help="read, write or admin (administrators only).")] = "write",
    days: Annotated[int | None, typer.Option(help="Expires after this many days (default: web.token_days).")] = None,
    user: UserOpt = None,
) -> None:
    """Create an API token for yourself (sign in with your password on a terminal); printed once.

    Then `export ESCR_TOKEN=<token>` and escr commands act as you without asking again. A token
    cannot make another token."""
    new = operations("tokens create", user).create_token(name, days, scope)
    out.print(f"API token {new['id']}, scope {new['scope']} (shown once; keep it like a password):")
    sys.stdout.write(new["token"] + "\n")


@tokens_app.command("list")
@handles_errors
def tokens_list(
    username: Annotated[str | None, typer.Argument(help="Administrators: another user's tokens.")] = None,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Your API tokens, or (administrators) another user's: never the secrets."""
    ops = operations("tokens list", user)
    rows = ops.user_tokens(username) if username else ops.tokens()
    if as_json:
        _print_json(rows)
        return
    table = Table("id", "name", "scope", "prefix", "created", "expires", "last used", "status")
    for t in rows:
        status = f"revoked ({t.get('revoked_reason') or 'revoked'})" if t["revoked"] else "active"
        table.add_row(str(t["id"]), t["name"], t.get("scope") or "-", t["prefix"], moment(ops, t["created_at"]),
                      moment(ops, t["expires_at"], "never"), moment(ops, t["last_used_at"]), status)
    out.print(table)


@tokens_app.command("revoke")
@handles_errors
def tokens_revoke(
    token_id: int,
    any_user: Annotated[bool, typer.Option("--any", help="Administrators: a token of anyone's.")] = False,
    user: UserOpt = None,
) -> None:
    """Revoke one of your API tokens (administrators: anyone's, with --any)."""
    ops = operations("tokens revoke", user)
    ops.admin_revoke_token(token_id) if any_user else ops.revoke_token(token_id)
    out.print(f"API token {token_id} revoked")


@tokens_app.command("revoke-all")
@handles_errors
def tokens_revoke_all(username: str, user: UserOpt = None) -> None:
    """Administrators: revoke every live API token of a user (a lost laptop, a leaver)."""
    count = operations("tokens revoke-all", user).revoke_all_tokens_of(username)
    out.print(f"{count} API token(s) of {username} revoked")


# --- teams --------------------------------------------------------------------------------


@teams_app.command("add")
@handles_errors
def teams_add(code: str, name: Annotated[str | None, typer.Option(help="Team name.")] = None,
              user: UserOpt = None) -> None:
    """Add a team; its code is the value of the child index's team column."""
    operations("teams add", user).add_team(code, name)
    out.print(f"team {code} added")


@teams_app.command("list")
@handles_errors
def teams_list(user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Teams, their members and how many children each has."""
    rows = operations("teams list", user).teams()
    if as_json:
        _print_json(rows)
        return
    table = Table("team", "name", "children", "members")
    for t in rows:
        table.add_row(t["code"], t["name"], str(t["children"]), ", ".join(t["members"]) or "-")
    out.print(table)


@teams_app.command("add-member")
@handles_errors
def teams_add_member(team: str, username: str, user: UserOpt = None) -> None:
    """Add a user to a team: they see the team's children (caseworkers, team managers)."""
    operations("teams add-member", user).set_membership(team, username, True)
    out.print(f"{username} added to team {team}")


@teams_app.command("remove-member")
@handles_errors
def teams_remove_member(team: str, username: str, user: UserOpt = None) -> None:
    """Remove a user from a team."""
    operations("teams remove-member", user).set_membership(team, username, False)
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
    operations("teams allocate", user).allocate(child_id, None if clear else worker)
    out.print(f"{child_id} {'unallocated' if clear else f'allocated to {worker}'}")


# --- quarantine discard ---------------------------------------------------------------------


@quarantine_app.command("discard")
@handles_errors
def quarantine_discard(claim_id: str, reason: Annotated[str, typer.Option(help="Why it is discarded.")],
                       user: UserOpt = None) -> None:
    """Discard a quarantined file: off the list, logged, bytes kept under discarded/ until retention allows."""
    keep_until = operations("quarantine discard", user).discard_quarantined(claim_id, reason)
    out.print(f"discarded; kept under discarded/ until at least {keep_until}")
