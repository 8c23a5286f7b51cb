"""The error taxonomy (escr/errors.py) as people meet it: the REST API answers each class with its
HTTP status, the CLI exits with its class's code, and a file escr could not read is kept for a
retry, not quarantined as if it were bad."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from escr.app import accounts
from escr.cli.main import app as cli_app
from escr.errors import FileUnreadable, InputRejected
from escr.intake.preflight import preflight
from escr.intake.quarantine import list_quarantine
from escr.intake.receipt import claim_copy
from escr.pipelines import intake
from escr.record.events import Actor
from escr.services import Services
from escr.web.app import create_app
from tests.support.cli import cli_env

SETUP = Actor(kind="user", name="setup")
PASSWORD = "a password for the tests"


@pytest.fixture
def tokens(services: Services) -> dict[str, str]:
    """An administrator's and a caseworker's API tokens on an otherwise empty record."""
    out = {}
    with services.db.session() as session:
        accounts.add_team(session, "north", actor=SETUP)
        for name, role, teams in (("admin.one", "administrator", ()), ("cw.one", "caseworker", ("north",))):
            user, _ = accounts.add_user(session, name, role=role, actor=SETUP, teams=teams, password=PASSWORD)
            out[name] = accounts.create_token(session, user, "tests", actor=SETUP,
                                              scope="admin" if role == "administrator" else "write").secret
    return out


def test_each_class_of_error_has_its_own_http_status_on_the_api(services, tokens):
    client = TestClient(create_app(services))

    def call(method: str, path: str, who: str | None, **kwargs):  # type: ignore[no-untyped-def]
        headers = {"Authorization": f"Bearer {tokens[who]}"} if who else {}
        answer = client.request(method, f"/api/v1{path}", headers=headers, **kwargs)
        return answer.status_code, answer.json()["error"]["code"]

    assert call("GET", "/me", None) == (401, "unauthenticated")  # Unauthenticated
    assert call("GET", "/users", "cw.one") == (403, "role_forbidden")  # Forbidden (AccessDenied)
    assert call("GET", "/documents/D-NOSUCH", "cw.one") == (404, "not_found")  # NotFound
    assert call("POST", "/teams", "admin.one", json={"code": "not a code"}) == (422, "validation_failed")
    assert call("POST", "/teams", "admin.one", json={"code": "north"}) == (409, "already_exists")  # Conflict


def _break_the_database(services: Services) -> None:
    """An outage: the SQLite file is gone and a folder stands in its place, so nothing can open it."""
    database = Path(services.db.engine.url.database or "")
    services.db.dispose()
    database.unlink()
    database.mkdir()


def test_an_outage_is_503_on_the_api_and_exit_75_from_the_cli(services, tokens):
    if services.settings.database_url:
        pytest.skip("the outage is made by replacing the SQLite file")
    env = cli_env(services, "admin.two", "administrator")
    _break_the_database(services)
    answer = TestClient(create_app(services)).get("/api/v1/me", headers={"Authorization": f"Bearer {tokens['cw.one']}"})
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "database_failed"
    listed = CliRunner().invoke(cli_app, ["users", "list"], env=env)
    assert listed.exit_code == 75 and "database_failed" in listed.output  # EX_TEMPFAIL: try again later


def test_the_cli_exits_by_class_2_for_a_conflict_1_for_bad_input_or_not_found(services, tokens):
    runner = CliRunner()
    env = cli_env(services, "admin.two", "administrator")
    assert runner.invoke(cli_app, ["teams", "add", "south"], env=env).exit_code == 0
    again = runner.invoke(cli_app, ["teams", "add", "south"], env=env)
    assert again.exit_code == 2 and "already_exists" in again.output  # Conflict
    bad = runner.invoke(cli_app, ["teams", "add", "not a code"], env=env)
    assert bad.exit_code == 1 and "validation_failed" in bad.output  # ValidationFailed
    missing = runner.invoke(cli_app, ["users", "disable", "nobody.here"], env=env)
    assert missing.exit_code == 1 and "not_found" in missing.output  # NotFound
    refused = runner.invoke(cli_app, ["users", "list"], env=cli_env(services, "cw.one"))
    assert refused.exit_code == 1 and "role_forbidden" in refused.output  # Forbidden


def test_preflight_says_a_file_it_cannot_read_is_an_outage_not_bad_input(services, tmp_path):
    with pytest.raises(FileUnreadable) as caught:
        preflight(tmp_path / "gone.pdf", limits=services.settings.preflight)
    assert caught.value.transient and not isinstance(caught.value, InputRejected)


def test_a_scan_that_cannot_be_read_is_kept_for_a_retry_not_quarantined(services, tmp_path):
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(b"%PDF-1.4\n")
    claim = claim_copy(scan, services.settings.processing_dir, operator="bs.jones", device="mfd-1")
    claim.path.unlink()  # gone from under escr after it was claimed (a disk fault, a person's slip)
    result = intake.run(claim, services)
    assert result.status == "deferred" and result.quarantine is None
    assert list_quarantine(services.settings.quarantine_dir) == []
    shutil.rmtree(claim.claim_dir, ignore_errors=True)


def test_a_retry_the_log_cannot_record_leaves_the_file_in_quarantine(services, tmp_path, monkeypatch):
    """Putting a quarantined scan back and logging who did it succeed or fail together: a commit
    that fails after the move puts the file back beside its reason, with nothing left in intake."""
    from sqlalchemy.orm import Session

    from escr.errors import DatabaseError
    from escr.intake.quarantine import retry

    bad = tmp_path / "scan.pdf"
    bad.write_bytes(b"%PDF-1.4 broken")
    claim = claim_copy(bad, services.settings.processing_dir, operator="bs.jones", device="mfd")
    assert intake.run(claim, services).status == "quarantined"

    def commit_fails(self: Session) -> None:
        raise DatabaseError("the database went away at commit")

    monkeypatch.setattr(Session, "commit", commit_fails)
    with pytest.raises(DatabaseError):
        retry(claim.claim_id, quarantine_dir=services.settings.quarantine_dir,
              intake_dir=services.settings.intake_dir, db=services.db, actor=Actor(kind="user", name="bs.patel"))
    monkeypatch.undo()
    [entry] = list_quarantine(services.settings.quarantine_dir)
    assert entry.claim_id == claim.claim_id and entry.path.read_bytes() == bad.read_bytes()
    assert not [p for p in services.settings.intake_dir.rglob("*") if p.is_file()]
