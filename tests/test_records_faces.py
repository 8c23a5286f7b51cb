"""Issue 19 on the web app and the CLI: status history, paper volumes and losses, file examinations,
arrival dates and the timeliness report, disposal with category holds, the batch manifest and the
scanner check page, each done as a person would, through the pages' forms and `escr` commands.
The rules themselves are tested in test_paper_volumes, test_status_history, test_disposal, etc."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from escr.app import accounts
from escr.cli.main import app as cli_app
from escr.record.events import Actor
from escr.web import create_app
from tests.support.cli import cli_env
from tests.support.records import file_document
from tests.support.web import PASSWORD, csrf_from, sign_in

SETUP = Actor(kind="user", name="setup")
PEOPLE = [("bs.jones", "business_support", []), ("tm.smith", "team_manager", ["north"]),
          ("aud.one", "auditor", []), ("aud.two", "auditor", []), ("sw.ahmed", "caseworker", ["north"])]


@pytest.fixture
def app(with_children):
    services = with_children
    with services.db.session() as session:
        accounts.add_team(session, "north", actor=SETUP)
        for name, role, teams in PEOPLE:
            accounts.add_user(session, name, role=role, actor=SETUP, teams=teams, password=PASSWORD)
    return create_app(services)


def browser(app, name: str) -> TestClient:
    client = TestClient(app)
    sign_in(client, name)
    return client


def post(client: TestClient, path: str, data: dict[str, object], *, page: str = "/account") -> object:
    token = csrf_from(client.get(page).text)
    return client.post(path, data={**data, "csrf_token": token}, follow_redirects=True)


def test_status_history_paper_file_and_examinations_on_the_childs_record(app):
    tm, bs, sw = browser(app, "tm.smith"), browser(app, "bs.jones"), browser(app, "sw.ahmed")
    record = tm.get("/children/AB123456").text
    assert "Status history" in record and "Add to the status history" in record
    assert "Add to the status history" not in sw.get("/children/AB123456").text  # a caseworker reads it only

    page = post(tm, "/children/AB123456/statuses", {"status": "adoption", "on_date": "2024-05-01"})
    assert page.status_code == 200 and "Status added to AB123456" in page.text
    assert "Adopted" in page.text and "1 May 2024" in page.text and "(order)" in page.text

    page = post(tm, "/children/AB123456/examinations",
                {"kind": "supervision", "purpose": "Monthly supervision of the plan", "notes": "Visits on time"})
    assert "Monthly supervision of the plan" in page.text and "Supervision" in page.text
    assert "Monthly supervision of the plan" in sw.get("/children/AB123456").text  # shown on the child's record

    page = post(bs, "/children/AB123456/volumes",
                {"volume_id": "AB123456-V1", "kind": "volume", "title": "Volume 1", "location": "Records store, bay 4",
                 "covers_from": "2015-07-01", "covers_to": "2019-12-31"})
    assert "Records store, bay 4" in page.text and "1 July 2015" in page.text

    due = (date.today() + timedelta(days=7)).isoformat()
    refused = post(bs, "/paper/volumes/AB123456-V1/book-out",
                   {"recipient": "Family court", "authorised_by": "bs.jones", "due_back": due})
    assert refused.status_code == 409 and "not a manager" in refused.text  # a named manager's authority first
    page = post(bs, "/paper/volumes/AB123456-V1/book-out",
                {"recipient": "Family court", "authorised_by": "tm.smith", "due_back": due})
    assert "Waiting for the receiver to confirm" in page.text  # the sender gets no confirm button
    assert "arrival not confirmed" in bs.get("/paper/files").text.lower()
    assert "Paper out of place (1)" in tm.get("/").text  # on the team manager's home
    assert "Paper out of place" not in sw.get("/").text
    page = tm.get("/paper/volumes/AB123456-V1").text
    assert "Confirm it arrived" in page
    move_id = page.split('action="/paper/moves/')[1].split("/")[0]
    page = post(tm, f"/paper/moves/{move_id}/confirm", {}, page="/paper/volumes/AB123456-V1")
    assert "Confirmed by tm.smith" in page.text
    assert "Family court" in tm.get("/children/AB123456").text  # where it is now
    api = tm.get("/api/v1/paper/volumes/AB123456-V1").json()  # the same on the REST API
    assert (api["location"], api["moves"][0]["confirmed_by"]) == ("Family court", "tm.smith")

    page = post(sw, "/paper/volumes/AB123456-V1/loss", {"kind": "missing", "description": "Not returned by court"})
    assert "Incident" in page.text and "Nobody could be told automatically" in page.text
    alert = tm.get("/children/AB123456").text
    assert "Paper reported missing or stolen" in alert and "AB123456-V1" in alert
    incident_id = alert.split("(incident ")[1].split(",")[0]
    post(tm, f"/paper/incidents/{incident_id}/close", {"outcome": "found", "location": "Records store, bay 4"})
    assert "Paper reported missing or stolen" not in tm.get("/children/AB123456").text


def test_arrival_date_timeliness_report_chart_and_csv(app, with_children):
    services = with_children
    arrived = datetime(2026, 3, 2, 9, tzinfo=UTC)  # a Monday
    doc_id = file_document(services, ["AB123456"], received_at=arrived + timedelta(days=1),
                           verified_at=arrived + timedelta(days=9), coversheet_batch_id="B-ARRIVE1")
    bs, tm = browser(app, "bs.jones"), browser(app, "tm.smith")
    assert "Record arrival" not in tm.get("/paper/files").text  # business support record arrivals
    page = post(bs, "/paper/arrivals", {"ref": "B-ARRIVE1", "arrived_on": "2026-03-02", "source": "cover_stamp"})
    assert "Arrival of B-ARRIVE1 recorded" in page.text and "Date stamp on the cover sheet" in page.text
    bad = post(bs, "/paper/arrivals", {"ref": "B-ARRIVE1", "arrived_on": "02/03/2026"})
    assert bad.status_code == 422 and "not a date" in bad.text

    report = tm.get("/timeliness?month=2026-03").text
    assert "March 2026" in report and "<svg" in report and "north" in report
    assert 'aria-labelledby="timeliness-title"' in report and "Target: 5" in report  # drawn by the one charting library
    csv = tm.get("/timeliness.csv?month=2026-03")
    assert csv.headers["content-type"].startswith("text/csv")
    header, row = csv.text.splitlines()[:2]
    assert header.startswith("team,month,items") and row.startswith("north,2026-03,1,1,7,7,1")  # 7 working days: over 5
    assert doc_id not in report  # verified: not among the items waiting


def test_disposal_with_a_category_hold_and_two_people(app, with_children):
    services = with_children
    doc_id = file_document(services, ["AB123457"], doc_type="correspondence",
                           retention_until=date.today() - timedelta(days=1), locked=False,
                           verified_at=datetime(2000, 1, 5, tzinfo=UTC))
    one, two = browser(app, "aud.one"), browser(app, "aud.two")
    assert doc_id in one.get("/disposal").text
    page = post(one, "/disposal/holds", {"class": "doc_type:correspondence",
                                         "reason": "Inquiry destruction freeze"})
    assert "Inquiry destruction freeze" in page.text and doc_id not in page.text.split('id="review"')[1]
    assert [h["reason"] for h in one.get("/api/v1/disposal/holds").json()["items"]] == ["Inquiry destruction freeze"]
    hold_id = page.text.split('action="/disposal/holds/')[1].split("/")[0]
    page = post(one, f"/disposal/holds/{hold_id}/release", {"reason": "Inquiry over"})
    assert doc_id in page.text.split('id="review"')[1]

    page = post(one, "/disposal/proposals", {"items": f"document:{doc_id}", "reason": "Retention passed"})
    assert "Waiting for a second person" in page.text and "Approve disposal" not in page.text  # not the proposer
    proposal_id = page.text.split("Disposal proposal ")[1].split(" ")[0]
    page = post(two, f"/disposal/proposals/{proposal_id}/decision", {"decision": "approve", "note": "Checked"})
    assert "Approved: to be carried out" in page.text
    page = post(one, f"/disposal/proposals/{proposal_id}/carry-out", {}, page="/disposal")
    assert "1 record(s) disposed of" in page.text and "Destruction certificate" in page.text


def test_manifest_and_scanner_check_pages(app):
    bs = browser(app, "bs.jones")
    assert bs.get("/coversheets/B-NOSUCH").status_code == 200  # not registered: says so, lists nothing
    assert "not in the cover-sheet register" in bs.get("/coversheets/B-NOSUCH").text
    page = bs.get("/scanner-checks").text
    assert "Check the scanner" in page and "No scanner has been checked yet" in page
    target = bs.get("/scanner-checks/target.pdf")
    assert target.status_code == 200 and target.content.startswith(b"%PDF")
    sw = browser(app, "sw.ahmed")
    assert sw.get("/paper/files").status_code == 403 and sw.get("/disposal").status_code == 403


def test_the_cli_keeps_the_same_record(with_children, tmp_path):
    services = with_children
    runner = CliRunner()
    tm = cli_env(services, "tm.smith", "team_manager", teams=["north"])
    bs = cli_env(services, "bs.jones", "business_support")

    def escr(env, *args):  # type: ignore[no-untyped-def]
        return runner.invoke(cli_app, list(args), env=env)

    result = escr(tm, "status", "add", "AB123456", "--status", "died", "--on", "2024-02-01")
    assert result.exit_code == 0, result.output
    assert "died" in escr(tm, "status", "list", "AB123456").output
    assert escr(bs, "status", "add", "AB123456", "--status", "wizard").exit_code != 0
    result = escr(tm, "examination", "add", "AB123456", "--kind", "review", "--purpose", "Annual file review")
    assert result.exit_code == 0 and "Annual file review" in escr(tm, "examination", "list", "AB123456").output

    assert escr(bs, "volume", "register", "AB123456-O1", "--child", "AB123456", "--kind", "original",
                "--title", "Adoption order", "--location", "Safe, room 2").exit_code == 0
    due = (date.today() + timedelta(days=3)).isoformat()
    result = escr(bs, "volume", "out", "AB123456-O1", "--to", "Legal", "--authorised-by", "tm.smith",
                  "--due-back", due)
    assert result.exit_code == 0, result.output
    move_id = result.output.split("move ")[1].split(":")[0]
    refused = escr(bs, "volume", "confirm", move_id)
    assert refused.exit_code != 0 and "cannot confirm" in refused.output
    overdue = escr(tm, "volume", "overdue")
    assert overdue.exit_code == 1 and "arrival not confirmed" in overdue.output
    assert escr(tm, "volume", "confirm", move_id).exit_code == 0
    assert "Legal" in escr(tm, "volume", "list", "AB123456").output

    assert escr(bs, "arrival", "B-CLI1", "--on", "2026-03-02").exit_code == 0
    out = tmp_path / "t.csv"
    assert escr(tm, "timeliness", "--month", "2026-03", "--csv", str(out)).exit_code == 0
    assert out.read_text().startswith("team,month")
    assert escr(bs, "coversheets", "unscanned", "--days", "0").exit_code == 0
    assert escr(bs, "scanner-check", "target", "-o", str(tmp_path / "t.pdf")).exit_code == 0
    assert (tmp_path / "t.pdf").read_bytes().startswith(b"%PDF")
    aud = cli_env(services, "aud.one", "auditor")
    result = escr(aud, "disposal", "hold", "--scope", "status", "--value", "cla", "--reason", "Inquiry freeze")
    assert result.exit_code == 0 and "Inquiry freeze" in escr(aud, "disposal", "holds").output
