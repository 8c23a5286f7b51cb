"""The auditor's tools in the browser (issue 17): provenance with a verdict, certificates of
scanning, integrity checks, the case-file audit with its quarterly collation, paper custody and
the access log's activity chart - through the real app, on documents filed by the real pipeline."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from escr.app import accounts, paper, records
from escr.record.events import Actor
from escr.web import create_app
from tests.support.web import World, csrf_from, open_world, sign_in


@pytest.fixture(scope="module")
def world(tmp_path_factory, pytestconfig, postgres_server) -> World:
    yield from open_world(tmp_path_factory, pytestconfig, postgres_server, "audit_tools")


@pytest.fixture(scope="module")
def app(world):
    return create_app(world.services)


@pytest.fixture(scope="module")
def auditor(app) -> TestClient:
    client = TestClient(app)
    sign_in(client, "aud.one")
    return client


def post(client: TestClient, url: str, data: dict, page: str = "/") -> object:
    token = csrf_from(client.get(page).text)
    return client.post(url, data={**data, "csrf_token": token}, follow_redirects=False)


def test_provenance_leads_with_a_verdict_and_tells_the_steps_in_words(auditor, world):
    ref = world.docs["referral"]
    html = auditor.get(f"/documents/{ref}/provenance").text
    assert "Hashes recomputed now" in html and "carries the hash of the event before it" in html
    assert "Not verified yet" in html  # four-eyes still to come
    assert "No fixity run has checked its stored files yet" in html
    assert "The scanned file arrived and its SHA-256 fingerprint was taken" in html  # a step in words
    assert "Details of event" in html and "&#34;" not in html and '{"' not in html  # no raw JSON
    assert f"/documents/{ref}/certificate?format=pdf" in html

    done = post(auditor, "/integrity", {"what": "document", "document": ref}, f"/documents/{ref}/provenance")
    assert done.status_code == 303 and "/integrity/runs/" in done.headers["location"]
    run_page = auditor.get(done.headers["location"]).text
    assert "Nothing wrong found." in run_page and f"Document {ref}" in run_page
    again = auditor.get(f"/documents/{ref}/provenance").text
    assert "Stored files checked" in again and "they matched" in again
    assert re.search(r"<dt>Received at</dt><dd>\d+ \w+ \d{4}, \d\d:\d\d (GMT|BST) \(", again)  # a time in words
    run_id = done.headers["location"].rsplit("/", 1)[1]
    covered = auditor.get(f"/integrity?document={ref}").text
    assert f"Checks that covered document {ref}" in covered and f"Run {run_id}</a>" in covered
    assert f"Run {run_id}</a>" not in auditor.get(f"/integrity?document={world.docs['south']}").text


def test_the_certificate_of_scanning_downloads_as_html_pdf_and_json(app, auditor, world):
    ref = world.docs["referral"]
    as_json = auditor.get(f"/documents/{ref}/certificate?format=json")
    assert as_json.status_code == 200 and "attachment" in as_json.headers["content-disposition"]
    report = json.loads(as_json.text)
    assert report["summary"]["documents"] == 1 and report["verification"]["ok"] is True
    assert auditor.get(f"/documents/{ref}/certificate?format=pdf").content.startswith(b"%PDF")
    assert "Certificate" in auditor.get(f"/documents/{ref}/certificate?format=html").text
    assert auditor.get(f"/documents/{ref}/certificate?format=doc").status_code == 422
    caseworker = TestClient(app)
    sign_in(caseworker, "cw.north")
    assert caseworker.get(f"/documents/{ref}/certificate?format=json").status_code == 403


def test_an_integrity_check_keeps_what_was_typed_when_it_cannot_run(auditor):
    answer = post(auditor, "/integrity", {"what": "child", "child": "ZZ999999"}, "/integrity")
    assert answer.status_code == 422
    assert "no child ZZ999999" in answer.text and 'value="ZZ999999"' in answer.text
    empty = post(auditor, "/integrity", {"what": "period", "since": ""}, "/integrity")
    assert empty.status_code == 422 and "choose one" in empty.text
    period = post(auditor, "/integrity", {"what": "period", "since": "2020-01-01"}, "/integrity")
    assert period.status_code == 303
    assert "Received since 1 January 2020" in auditor.get("/integrity").text


def test_an_integrity_check_of_a_period_has_an_end_date_after_its_start(auditor):
    page = auditor.get("/integrity").text
    assert '<label for="since">Received from' in page and '<label for="until">Received to' in page
    backwards = post(auditor, "/integrity", {"what": "period", "since": "2026-03-31", "until": "2026-03-01"},
                     "/integrity")
    assert backwards.status_code == 422
    assert "the period ends (1 March 2026) before it starts (31 March 2026)" in backwards.text
    assert 'value="2026-03-31"' in backwards.text and 'value="2026-03-01"' in backwards.text  # kept as typed
    assert 'value="period" checked' in backwards.text
    bad = post(auditor, "/integrity", {"what": "period", "since": "2026-03-01", "until": "31/03/2026"}, "/integrity")
    assert bad.status_code == 422 and "to is not a date" in bad.text and 'value="31/03/2026"' in bad.text
    done = post(auditor, "/integrity", {"what": "period", "since": "2020-01-01", "until": "2020-12-31"}, "/integrity")
    assert done.status_code == 303
    assert "Received 1 January 2020 to 31 December 2020" in auditor.get(done.headers["location"]).text
    assert "Received 1 January 2020 to 31 December 2020" in auditor.get("/integrity").text
    open_start = post(auditor, "/integrity", {"what": "period", "until": "2020-12-31"}, "/integrity")
    assert open_start.status_code == 303
    assert "Received up to 31 December 2020" in auditor.get("/integrity").text


def test_a_case_file_audit_is_recorded_noted_on_the_file_and_collated_per_team(auditor, world):
    with world.services.db.session() as session:
        accounts.allocate(session, "AB123456", "cw.north", actor=Actor(kind="user", name="setup"))
    month = datetime.now(UTC).strftime("%Y-%m")
    picked = post(auditor, "/audit/sample", {"month": month}, "/audit/casefiles")
    assert picked.status_code == 303
    assert "Audit AB123456" in auditor.get("/").text  # due, on the auditor's home

    assert 'href="/audit/casefiles/AB123456">Case-file audit of this file' in auditor.get("/children/AB123456").text
    form = auditor.get("/audit/casefiles/AB123456").text
    assert form.count('name="judgement_') == 14 * 3 and "Is standard 14 met?" in form
    assert "Prepared for case-file audit" in form  # the note on the child's file

    answers = {f"judgement_{n}": "yes" for n in range(1, 14)}
    half = post(auditor, "/audit/casefiles/AB123456", {**answers, "comment_3": "Risk analysis is thin",
                                                       "grading": "good"}, "/audit/casefiles/AB123456")
    assert half.status_code == 422 and "not judged: 14" in half.text and "Risk analysis is thin" in half.text

    answers["judgement_14"] = "na"
    answers["judgement_4"] = "no"
    done = post(auditor, "/audit/casefiles/AB123456",
                {**answers, "grading": "inadequate", "comments": "Child not seen alone.", "follow_up": "yes"},
                "/audit/casefiles/AB123456")
    assert done.status_code == 303
    page = auditor.get("/audit/casefiles/AB123456").text
    assert "Inadequate" in page and "Immediate follow-up" in page
    audit_id = int(done.headers["location"].rsplit("audit-", 1)[1])
    assert "Audit AB123456" not in auditor.get("/").text  # no longer due

    revised = post(auditor, "/audit/casefiles/AB123456",
                   {**answers, "grading": "requires_improvement", "revises": str(audit_id),
                    "manager_comments": "The child was seen alone on 3 March; the note was on paper."},
                   "/audit/casefiles/AB123456")
    assert revised.status_code == 303

    with world.services.db.session() as session:
        notes = [n["purpose"] for n in records.examinations(session, principal_of_auditor(session), "AB123456")]
    assert any(n.startswith("Prepared for case-file audit") for n in notes)
    assert "Case-file audit (Quality Practice Standards): Inadequate" in notes
    assert any(n.startswith("Case-file audit (Quality Practice Standards): Requires improvement, revising") for n in notes)

    collation = auditor.get("/audit/collation").text
    assert "Team: north" in collation
    assert "1 audit completed of 1 file selected: a completion rate of 100%" in collation
    assert "right to reply: 1." in collation, collation[collation.find("right to reply"):][:80]
    assert "standard 4 (1)" in collation
    assert "write the quarter as 2026-Q1" in auditor.get("/audit/collation?quarter=spring").text


def principal_of_auditor(session):  # type: ignore[no-untyped-def]
    return accounts.principal_for(accounts.get_user(session, "aud.one"))


def test_paper_custody_shows_where_each_volume_is_and_when_it_is_due_back(auditor, world):
    with world.services.db.session() as session:
        keeper = accounts.principal_for(accounts.get_user(session, "bs.jones"))
        paper.register(session, keeper, volume_id="AB123456-V1", child_id="AB123456", kind="volume",
                       title="Paper file volume 1", location="Records store, shelf 4")
        paper.book_out(session, keeper, "AB123456-V1", recipient="Family court", authorised_by="tm.north",
                       due_back=date.today() + timedelta(days=7))
    html = auditor.get("/paper").text
    assert "Volume AB123456-V1" in html and "With Family court" in html and "Booked out" in html
    assert "arrival not confirmed" in html
    assert "authorised by tm.north" in html
    assert "Volume AB123456-V1" in auditor.get("/paper?child=AB123456").text


def test_the_access_log_activity_is_a_chart_with_its_numbers_in_a_table(auditor):
    html = auditor.get("/access-log/activity?days=7").text
    assert '<svg class="chart wide" role="img" aria-labelledby="chart-title"' in html and "<?xml" not in html
    assert "The numbers in the chart" in html and "Allowed" in html
    today = date.today()
    assert f"{today.day} {today:%B %Y}" in html


def test_the_api_gives_the_same_verdict_runs_and_audits(app, world):
    from tests.support.web import token_clients

    api = token_clients(app, world)("aud.one")
    ref = world.docs["referral"]
    verdict = api.get(f"/api/v1/documents/{ref}/verdict").json()
    assert verdict["verdict"]["chain"]["ok"] is True and verdict["steps"][0]["title"] == "Received"
    run = api.post("/api/v1/integrity/checks", json={"child_id": "CD654321"})
    assert run.status_code == 201 and run.json()["scope"] == "Child CD654321" and run.json()["ok"] is True
    assert api.get("/api/v1/integrity/runs").json()["items"][0]["id"] == run.json()["id"]
    period = api.post("/api/v1/integrity/checks", json={"since": "2020-01-01", "until": "2020-01-31"})
    assert period.status_code == 201 and period.json()["scope"] == "Received 1 January 2020 to 31 January 2020"
    backwards = api.post("/api/v1/integrity/checks", json={"since": "2020-01-31", "until": "2020-01-01"})
    assert backwards.status_code == 422 and backwards.json()["error"]["message"].startswith(
        "the period ends (1 January 2020) before it starts (31 January 2020)")
    refused = api.post("/api/v1/children/CD654321/casefile-audit", json={"standards": [], "grading": "good"})
    assert refused.status_code == 422 and "not judged" in refused.json()["error"]["message"]
    body = {"standards": [{"number": n, "judgement": "yes"} for n in range(1, 15)], "grading": "good"}
    done = api.post("/api/v1/children/CD654321/casefile-audit", json=body)
    assert done.status_code == 201 and done.json()["grading_label"] == "Good"
    teams = {t["team"]: t for t in api.get("/api/v1/casefile-audits/collation").json()["teams"]}
    assert teams["south"]["completed"] == 1
    assert api.get("/api/v1/access-log/activity?days=7").json()["total"] > 0


def test_an_audit_is_recorded_from_the_command_line_and_the_quarter_exports_as_csv(app, auditor, world):
    import csv
    import io

    from typer.testing import CliRunner

    from escr.cli.main import app as cli_app
    from tests.support.cli import cli_env

    quarter = f"{date.today().year}-Q{(date.today().month - 1) // 3 + 1}"

    def south() -> dict[str, str]:
        sheet = csv.DictReader(io.StringIO(auditor.get(f"/audit/collation.csv?quarter={quarter}").text))
        return next((r for r in sheet if r["team"] == "south"), {"completed": "0", "good": "0"})

    before = south()
    env = cli_env(world.services, "aud.one", role="auditor")
    judged = [f"--judge={n}=yes" for n in range(1, 14)]
    runner = CliRunner()
    refused = runner.invoke(cli_app, ["audit", "record", "--child", "CD654321", *judged, "--grading", "good"], env=env)
    assert refused.exit_code == 1 and "not judged: 14" in refused.output  # every standard, or nothing recorded
    done = runner.invoke(cli_app, ["audit", "record", "--child", "CD654321", *judged, "--judge", "14=NA",
                                   "--comment", "14=No plan yet", "--grading", "Good", "--overall", "A clear file."],
                         env=env)
    assert done.exit_code == 0, done.output
    assert "of CD654321 recorded: Good" in done.output
    assert "Good" in auditor.get("/audit/casefiles/CD654321").text  # the same record the browser shows

    page = auditor.get(f"/audit/collation?quarter={quarter}").text
    assert f'href="/audit/collation.csv?quarter={quarter}"' in page
    web = auditor.get(f"/audit/collation.csv?quarter={quarter}")
    assert web.headers["content-disposition"] == f'attachment; filename="casefile-audits-{quarter}.csv"'
    rows = {r["team"]: r for r in csv.DictReader(io.StringIO(web.text))}
    after = south()
    assert (int(after["completed"]), int(after["good"])) == (int(before["completed"]) + 1, int(before["good"]) + 1)
    assert rows["All teams"]["quarter"] == quarter
    cli = runner.invoke(cli_app, ["audit", "collation", "--quarter", quarter, "--csv"], env=env)
    assert cli.exit_code == 0 and cli.output.splitlines() == web.text.splitlines()  # one collation, every face
    token = env["ESCR_TOKEN"]
    api = TestClient(app).get(f"/api/v1/casefile-audits/collation.csv?quarter={quarter}",
                              headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 200 and api.text == web.text
