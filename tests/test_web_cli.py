"""`escr users`, `escr teams`, `escr quarantine discard`, and `escr serve` / `escr run` as real
processes answering on a loopback port (the README's `make run` runs `escr run`)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from unittest.mock import patch

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from escr.app import accounts
from escr.app.access import PasswordChangeRequired
from escr.cli.main import app as cli_app
from escr.intake.receipt import claim_copy
from escr.pipelines import intake
from escr.record.events import Actor
from escr.record.models import Event
from escr.web import create_app
from tests.support.cli import cli_env, home_env
from tests.support.intake import free_port
from tests.support.web import csrf_from


@pytest.fixture
def cli(with_children):
    """`escr` run by the administrator it.admin, signed in by an API token (`as_=` another environment)."""
    runner = CliRunner()
    admin: dict[str, str] = {}

    def run(*args: str, ok: bool = True, stdin: str | None = None, as_: dict[str, str] | None = None):
        if as_ is None and not admin:
            admin.update(cli_env(with_children, "it.admin", "administrator"))
        result = runner.invoke(cli_app, list(args), input=stdin, env=as_ or admin, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return run


def password_in(output: str) -> str:
    match = re.search(r"password \(shown once\): (\S+)", output)
    assert match, output
    return match.group(1)


def signs_in(app, username: str, password: str) -> bool:
    return signed_in_client(app, username, password) is not None


def signed_in_client(app, username: str, password: str) -> TestClient | None:
    client = TestClient(app)
    token = csrf_from(client.get("/login").text)
    resp = client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                       follow_redirects=False)
    return client if resp.status_code == 303 else None


def sent_to_choose_a_password(client: TestClient) -> bool:
    """Every page but My account sends a person whose password someone else set to choose their own."""
    page = client.get("/", follow_redirects=False)
    return page.status_code == 303 and page.headers["location"] == "/account"


def test_the_host_operator_adds_the_first_administrator_only(cli, with_children):
    host = home_env(with_children)
    first = cli("users", "add", "it.admin", "--role", "administrator", "--password-stdin",
                stdin="the first administrator's password\n", as_=host)
    assert "it.admin added" in first.output
    it_admin = signed_in_client(create_app(with_children), "it.admin", "the first administrator's password")
    assert it_admin is not None and not sent_to_choose_a_password(it_admin)  # typed by that person: their own
    again = cli("users", "add", "someone.else", "--role", "administrator", ok=False, as_=host)
    assert again.exit_code != 0 and "ESCR_TOKEN" in again.output  # now an administrator must sign in
    with with_children.db.session() as session:
        (added,) = session.scalars(select(Event).where(Event.kind == "account")).all()
    assert added.actor.startswith("host-operator:") and added.actor_kind == "system"


def test_users_and_teams_from_the_command_line(cli, with_children):
    cli("teams", "add", "north", "--name", "North team")
    added = cli("users", "add", "cw.ali", "--role", "caseworker", "--name", "Ali Khan", "--team", "north")
    password = password_in(added.output)
    app = create_app(with_children)
    ali = signed_in_client(app, "cw.ali", password)
    assert ali is not None and sent_to_choose_a_password(ali)  # the administrator knows this one
    assert not signs_in(app, "cw.ali", "not-the-password")
    # Nor does the command line take it: the same rule as the web's.
    from escr.cli.common import signed_in

    with pytest.raises(PasswordChangeRequired, match="My account"):
        with patch("sys.stdin.isatty", return_value=True), patch("getpass.getpass", return_value=password):
            signed_in(with_children, "documents", "cw.ali")

    listed = cli("users", "list").output
    assert "cw.ali" in listed and "caseworker" in listed and "north" in listed
    assert "cw.ali" in cli("teams", "list").output

    refused = cli("users", "add", "cw.ali", "--role", "caseworker", ok=False)
    assert refused.exit_code != 0 and "already exists" in refused.output
    bad_role = cli("users", "add", "x.y", "--role", "wizard", ok=False)
    assert bad_role.exit_code != 0 and "unknown role" in bad_role.output

    cli("users", "disable", "cw.ali")
    assert not signs_in(app, "cw.ali", password)
    cli("users", "enable", "cw.ali")
    new = password_in(cli("users", "reset", "cw.ali").output)
    assert new != password and signs_in(app, "cw.ali", new) and not signs_in(app, "cw.ali", password)
    cli("users", "reset", "cw.ali", "--password-stdin", stdin="a chosen long password\n")
    assert signs_in(app, "cw.ali", "a chosen long password")

    # Signed in by a token, even an administrator cannot mint tokens (issue 20); a password sign-in can.
    refused = cli("users", "token", "cw.ali", "--name", "script", ok=False)
    assert refused.exit_code != 0 and "token_cannot_create_tokens" in refused.output
    # Signed in by password (as on a terminal), the administrator chooses the token's scope.
    from escr.app import identity

    def by_password(services, command, user=None):  # what the terminal's password prompt gives
        return identity.principal_for_password(services, "it.admin", "a password for the tests", command=command)

    with patch("escr.cli.common.signed_in", by_password):
        made = cli("users", "token", "cw.ali", "--name", "reader", "--scope", "read")
    assert "scope read" in made.output
    listed = cli("tokens", "list", "cw.ali")
    assert "reader" in listed.output and "read" in listed.output
    with with_children.db.session() as session:
        token = accounts.create_token(session, accounts.get_user(session, "cw.ali"), "script",
                                      actor=Actor(kind="user", name="setup")).secret
    api = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    assert api.get("/api/v1/children/AB123456/documents").status_code == 200  # AB123456 is in team north
    assert api.get("/api/v1/children/CD654321/documents").status_code == 403  # south
    cli("teams", "allocate", "CD654321", "--worker", "cw.ali")
    assert api.get("/api/v1/children/CD654321/documents").status_code == 200
    cli("teams", "allocate", "CD654321", "--clear")
    cli("teams", "remove-member", "north", "cw.ali")
    assert api.get("/api/v1/children/AB123456/documents").status_code == 403
    token_id = next(t["id"] for t in api.get("/api/v1/tokens").json() if t["name"] == "script")
    cli("users", "revoke-token", str(token_id))
    assert api.get("/api/v1/me").status_code == 401

    with with_children.db.session() as session:
        actions = [e.detail["parameters"]["action"] for e in
                   session.scalars(select(Event).where(Event.kind == "account").order_by(Event.id))]
        actors = {e.actor for e in session.scalars(select(Event).where(Event.kind == "account"))}
    assert actions[:5] == ["user_added", "token_created", "team_added", "user_added", "member_added"]
    assert {"user_disabled", "user_enabled", "password_reset", "token_created", "child_allocated",
            "child_unallocated", "member_removed", "token_revoked"} <= set(actions)
    assert actors == {"setup", "it.admin"}  # setup: the test's own administrator and token


def test_quarantine_discard_from_the_command_line(cli, with_children, tmp_path):
    bad = tmp_path / "scan.pdf"
    bad.write_bytes(b"%PDF-1.4 broken")
    claim = claim_copy(bad, with_children.settings.processing_dir, operator="bs.jones", device="mfd")
    assert intake.run(claim, with_children).status == "quarantined"
    bs = cli_env(with_children, "bs.patel", "business_support")
    not_intake = cli("quarantine", "discard", claim.claim_id, "--reason", "test scan of a blank page", ok=False)
    assert not_intake.exit_code != 0 and "role_forbidden" in not_intake.output  # the administrator
    refused = cli("quarantine", "discard", claim.claim_id, "--reason", "no", ok=False, as_=bs)
    assert refused.exit_code != 0 and "say why" in refused.output
    done = cli("quarantine", "discard", claim.claim_id, "--reason", "test scan of a blank page", as_=bs)
    assert "kept under discarded/" in done.output
    assert (with_children.settings.home / "discarded" / claim.claim_id / "scan.pdf").read_bytes() == bad.read_bytes()
    assert claim.claim_id not in cli("quarantine", "list", as_=bs).output


# --- the servers as processes ------------------------------------------------------------------


def server_env(home: Path) -> dict[str, str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ESCR_") or k.startswith("ESCR_TEST_")},
           "ESCR_HOME": str(home), "ESCR_STABLE_SECONDS": "0.5", "ESCR_RESCAN_SECONDS": "1"}
    if os.environ.get("ESCR_TEST_DATABASE_URL"):
        env["ESCR_DATABASE_URL"] = os.environ["ESCR_TEST_DATABASE_URL"]
    return env


def wait_for(condition: Callable[[], bool], what: str, limit_s: float = 60.0) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def stop(process: subprocess.Popen) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.stdout.read() if process.stdout else ""


def test_escr_serve_starts_on_the_embedded_defaults_and_says_how_to_make_the_first_user(settings, tmp_path):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "escr", "serve", "--port", str(port)],
                               env=server_env(settings.home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/healthz") or process.poll() is not None, "escr serve")
        assert process.poll() is None
        login = httpx.get(f"http://127.0.0.1:{port}/login")
        assert login.status_code == 200 and "Sign in to escr" in login.text
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/openapi.json").status_code == 401  # sign in first
        secret = settings.home / "web-secret.key"
        assert secret.exists() and (secret.stat().st_mode & 0o777) == 0o600
    finally:
        output = stop(process)
    assert process.returncode in (0, 130, -signal.SIGINT)  # Ctrl-C: uvicorn re-raises it after a clean stop
    assert "Finished server process" in output
    assert "escr users add admin --role administrator" in output
    assert "Whitfield" not in output


def watchers_in_session(session_id: int) -> list[int]:
    """`escr watch` processes in the session `escr run` leads (read from /proc, no pgrep needed)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(fields[3]) == session_id and fields[0] != "Z" and b"watch" in cmdline:
            found.append(int(stat.parent.name))
    return found


def test_escr_run_serves_the_app_beside_the_watcher_and_stops_both(settings, tmp_path):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "escr", "run", "--port", str(port)],
                               env=server_env(settings.home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/healthz") or process.poll() is not None, "escr run")
        assert process.poll() is None
        # The watcher beside it takes files from the intake folder: a broken one lands in quarantine.
        (settings.intake_dir / "bs.jones").mkdir(parents=True, exist_ok=True)
        (settings.intake_dir / "bs.jones" / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
        wait_for(lambda: any(settings.quarantine_dir.glob("*/broken.pdf")), "the watcher to quarantine a file")
        children = watchers_in_session(process.pid)
        assert children, "the watcher runs as its own process"
        # OCR waits for people: the watcher (and the tesseract it starts) runs at a lower CPU and
        # I/O priority than the web app, so pages stay fast while every core reads scans.
        import psutil

        web, watcher = psutil.Process(process.pid), psutil.Process(children[0])
        assert watcher.nice() == settings.ocr.niceness > web.nice()
        assert watcher.ionice().ioclass == psutil.IOPRIO_CLASS_BE and watcher.ionice().value == 7
        # Its OCR slots, the child processes that read the pages, are started ready and as low.
        slots = watcher.children(recursive=True)
        assert slots, "the watcher keeps its OCR slots ready"
        assert all(slot.nice() >= settings.ocr.niceness for slot in slots)
    finally:
        output = stop(process)
    assert "First run: an administrator was created." in output
    password = re.search(r"password:\s+(\S+)", output).group(1)
    # The printed password is the administrator's (checked against the database, not a server).
    from escr.services import open_services

    services = open_services(settings)
    admin = signed_in_client(create_app(services), "admin", password)
    assert admin is not None
    # It was printed where others may see it: the administrator chooses their own first.
    assert re.search(r"you will choose\s+a\s+password\s+of\s+your\s+own\s+first", output)
    assert sent_to_choose_a_password(admin)
    assert watchers_in_session(process.pid) == []  # the watcher stopped with it


def test_escr_run_stopped_by_sigterm_stops_its_watcher_too(settings):
    """`kill -TERM` (systemd, docker stop) on `escr run` used to leave the watcher as an orphan."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "escr", "run", "--port", str(port)],
                               env=server_env(settings.home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/healthz") or process.poll() is not None, "escr run")
        wait_for(lambda: watchers_in_session(process.pid) or process.poll() is not None, "the watcher")
        assert watchers_in_session(process.pid)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    finally:
        stop(process)
    assert watchers_in_session(process.pid) == []  # no orphan left behind
    assert process.returncode in (0, -signal.SIGTERM)


@pytest.mark.parametrize("command", ["run", "serve"])
def test_a_port_in_use_is_one_clear_error_before_anything_starts(settings, command):
    """`make run` with an earlier run still serving: say so and start no watcher, rather than
    starting one and stopping it again when the web app cannot listen."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "escr", command, "--port", str(port)],
                              env=server_env(settings.home), capture_output=True, text=True, timeout=120,
                              start_new_session=True)
    assert done.returncode == 1
    message = " ".join((done.stderr + done.stdout).split())
    assert f"cannot listen on 127.0.0.1:{port}" in message and "ESCR_WEB__PORT" in message
    assert "watching" not in done.stdout
    assert "First run" not in done.stdout  # nothing was set up either


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost",
                                  pytest.param("::1", marks=pytest.mark.skipif(not _has_ipv6_loopback(),
                                                                               reason="no IPv6 loopback"))])
def test_the_served_connections_send_at_once_without_waiting_for_nagle(services, host):
    """Issue 22: every kept-alive request waited ~40 ms because the socket escr binds (for `escr
    serve`, `escr run` and the compose image alike) left Nagle's algorithm on. The server's end of
    an accepted connection must have TCP_NODELAY set."""
    from escr.cli.web import _web_server

    server, sock = _web_server(services, host, free_port())
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, "the web app to start")
        address = sock.getsockname()
        base = f"http://[{address[0]}]:{address[1]}" if sock.family == socket.AF_INET6 else \
            f"http://{address[0]}:{address[1]}"
        with httpx.Client(base_url=base) as client:  # one kept-alive connection
            assert client.get("/healthz").status_code == 200
            answer = client.get("/healthz")
            assert answer.status_code == 200 and "server" not in answer.headers  # no "uvicorn" announced
            connections = list(server.server_state.connections)
            assert len(connections) == 1
            accepted = connections[0].transport.get_extra_info("socket")
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        server.should_exit = True
        thread.join(timeout=30)
