"""The command line as business support, caseworkers and auditors use it; every read is logged."""

from __future__ import annotations

import json
import subprocess

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from escr.cli.main import app
from escr.record.models import Event
from tests.support.cli import cli_env, home_env
from tests.support.scans import degrade, text_page, write_pdf

pytestmark = pytest.mark.ocr

LETTER = ["Letter from the school", "Date: 9 March 2026", "Pupil AB123456 attended every day this term.",
          "Her reading has improved a great deal."]


# Who runs the commands below: escr accounts, each signed in by an API token (tests.support.cli).
# (A school's report holds third-party information: the caseworker, the auditor and bs.jones have the
# permission, so what refuses bs.jones's own verification is four-eyes, not the permission.)
PEOPLE = {"cw.ahmed": ("caseworker", ("north",), True), "auditor.li": ("auditor", (), True),
          "bs.jones": ("business_support", (), True), "bs.patel": ("business_support", (), False),
          "tm.okafor": ("team_manager", ("north",), False), "tm.other": ("team_manager", ("north",), False)}


@pytest.fixture
def cli(with_children):
    """`escr ARGS` as the host operator, or `--as NAME` to run it signed in as one of PEOPLE."""
    runner = CliRunner()
    envs: dict[str | None, dict[str, str]] = {None: home_env(with_children)}

    def run(*args: str, ok: bool = True, as_: str | None = None):
        if as_ not in envs:
            role, teams, third_party = PEOPLE[as_]
            envs[as_] = cli_env(with_children, as_, role, teams=teams, third_party=third_party)
        result = runner.invoke(app, list(args), env=envs[as_], catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return run


def test_ingest_then_read_the_record_with_every_read_logged(cli, with_children, tmp_path):
    scan = write_pdf([degrade(text_page(LETTER, dpi=300, size_inches=(5.83, 8.27)), noise=0.0005)], tmp_path / "s.pdf")
    ingested = json.loads(cli("ingest", str(scan), "--operator", "bs.jones", "--device", "mfd-1", "--json").output)
    assert scan.exists()  # `escr ingest` takes a copy; the person's file is left alone
    (doc,) = ingested[0]["documents"]
    assert doc["children"] == ["AB123456"] and doc["doc_type"] == "school_report"
    # Before verification a caseworker who is not allocated the child cannot open it (issue 16).
    unverified = cli("get", doc["id"], "-o", str(tmp_path / "early.pdf"), ok=False, as_="cw.ahmed")
    assert unverified.exit_code != 0 and "not yet verified" in unverified.output
    cli("qc", "verify", doc["id"], as_="tm.okafor")  # the child's team manager: four eyes

    listing = json.loads(cli("documents", "--child", "AB123456", "--json", as_="cw.ahmed").output)
    assert [d["id"] for d in listing] == [doc["id"]]
    shown = json.loads(cli("show", doc["id"], "--json", as_="cw.ahmed").output)
    assert shown["operator"] == "bs.jones" and {q["check"] for q in shown["qc"]} >= {"resolution", "legibility"}
    out = tmp_path / "copy.pdf"
    cli("get", doc["id"], "-o", str(out), as_="cw.ahmed")
    text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True).stdout
    assert "reading" in text
    original = tmp_path / "original.pdf"
    no_purpose = cli("get", doc["id"], "-o", str(original), "--original", ok=False, as_="auditor.li")
    assert no_purpose.exit_code != 0 and "purpose_required" in no_purpose.output  # the web's rule too
    cli("purpose", "--doc", doc["id"], "--reason", "complaint investigation C-123", as_="auditor.li")
    cli("get", doc["id"], "-o", str(original), "--original", as_="auditor.li")
    assert original.read_bytes() == scan.read_bytes()
    hits = json.loads(cli("search", "reading improved", "--json", as_="cw.ahmed").output)
    assert [h["id"] for h in hits] == [doc["id"]]
    prov = json.loads(cli("provenance", doc["id"], "--json", as_="auditor.li").output)
    assert prov["original"]["sha256"] == ingested[0]["sha256"]
    assert [e["kind"] for e in prov["events"]][0] == "received"

    with with_children.db.session() as session:
        access = [(e.actor, e.detail.get("action")) for e in session.scalars(
            select(Event).where(Event.category == "access").order_by(Event.id))]
    # The refused early download is logged too; a search is logged once, and once more for the
    # child whose document it showed (with the grounds).
    assert access == [("cw.ahmed", "download"), ("cw.ahmed", "list"), ("cw.ahmed", "view"), ("cw.ahmed", "download"),
                      ("auditor.li", "download"), ("auditor.li", "download"), ("cw.ahmed", "search"),
                      ("cw.ahmed", "search"), ("auditor.li", "provenance")]


def test_verification_refuses_the_scanner_then_accepts_another_person(cli, tmp_path):
    scan = write_pdf([degrade(text_page(LETTER, dpi=300, size_inches=(5.83, 8.27)), noise=0.0005)], tmp_path / "s.pdf")
    doc_id = json.loads(cli("ingest", str(scan), "--operator", "bs.jones", "--json").output)[0]["documents"][0]["id"]
    refused = cli("qc", "verify", doc_id, ok=False, as_="bs.jones")
    assert refused.exit_code == 2 and "four-eyes" in refused.output
    cli("qc", "verify", doc_id, as_="tm.okafor")
    shown = json.loads(cli("show", doc_id, "--json", as_="tm.okafor").output)
    assert shown["state"] == "verified" and shown["verified_by"] == "tm.okafor"
    again = cli("qc", "reject", doc_id, "--reason", "late", ok=False, as_="tm.other")
    assert again.exit_code == 2
    # Dates read as the web app shows them, and are typed the same way.
    listed = cli("documents", "--child", "AB123456", "--since", "01/03/2026", as_="tm.okafor").output
    assert "09/03/2026" in listed and doc_id in listed and "2026-03-09" not in listed
    assert doc_id not in cli("documents", "--child", "AB123456", "--since", "10/03/2026", as_="tm.okafor").output
    assert "doc_date: 09/03/2026" in cli("show", doc_id, as_="tm.okafor").output
    wrong = cli("documents", "--child", "AB123456", "--since", "31/02/2026", ok=False, as_="tm.okafor")
    assert wrong.exit_code != 0 and "DD/MM/YYYY" in wrong.output


def test_coversheet_command_prints_a_sheet_the_pipeline_reads(cli, tmp_path):
    from pdf2image import convert_from_path

    from escr.pages.coversheet import find_coversheet

    out = tmp_path / "sheet.pdf"
    cli("coversheet", "--child", "AB123456", "--child", "AB123457", "--doc-type", "lac_review", "--pages", "3", "-o", str(out),
        as_="bs.jones")
    (image,) = convert_from_path(out, dpi=200, grayscale=True)
    sheet = find_coversheet(image)
    assert sheet is not None and sheet.child_ids == ("AB123456", "AB123457") and sheet.declared_pages == 3
    unknown = cli("coversheet", "--child", "ZZ000000", "--doc-type", "lac_review", "-o", str(out), ok=False,
                  as_="bs.jones")
    assert unknown.exit_code == 1 and "not in the child index" in unknown.output


def test_children_import_rejects_a_bad_file_whole(cli, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("child_id,given_names,family_name,date_of_birth,nhs_number,category,status,team\n"
                   "ZZ000001,Ann,Smith,2015-01-01,1234567890,cin,open,north\n")
    result = cli("children", "import", str(bad), ok=False)
    assert result.exit_code == 1 and "line 2" in result.output and "Ann" not in result.output


def test_quarantined_file_can_be_sent_back_for_another_try_and_that_is_logged(cli, with_children, tmp_path):
    bad = tmp_path / "scan.pdf"
    bad.write_bytes(b"")
    result = json.loads(cli("ingest", str(bad), "--operator", "bs.jones", "--json", ok=False).output)
    assert result[0]["status"] == "quarantined"
    (entry,) = json.loads(cli("quarantine", "list", "--json", as_="bs.patel").output)
    cli("quarantine", "retry", entry["claim_id"], as_="bs.patel")
    assert (with_children.settings.intake_dir / "bs.jones" / "unspecified" / "scan.pdf").exists()
    assert json.loads(cli("quarantine", "list", "--json", as_="bs.patel").output) == []
    with with_children.db.session() as session:
        released = session.scalars(select(Event).where(Event.kind == "quarantine_released")).one()
    assert released.actor == "bs.patel" and released.detail["parameters"]["claim_id"] == entry["claim_id"]


def test_several_quarantined_files_go_back_with_one_command_and_a_missing_one_is_named(cli, with_children,
                                                                                       tmp_path):
    for name in ("one.pdf", "two.pdf"):
        (tmp_path / name).write_bytes(b"")
        cli("ingest", str(tmp_path / name), "--operator", "bs.jones", "--json", ok=False)
    claims = [e["claim_id"] for e in json.loads(cli("quarantine", "list", "--json", as_="bs.patel").output)]
    assert len(claims) == 2
    result = cli("quarantine", "retry", *claims, "no-such-claim", ok=False, as_="bs.patel")
    assert result.exit_code == 1  # one was not retried: said, after the others went back
    assert "returned to intake: bs.jones/unspecified/one.pdf" in result.output
    assert "returned to intake: bs.jones/unspecified/two.pdf" in result.output
    assert "not retried: no-such-claim: it is not in quarantine" in result.output
    assert json.loads(cli("quarantine", "list", "--json", as_="bs.patel").output) == []
    with with_children.db.session() as session:
        released = session.scalars(select(Event).where(Event.kind == "quarantine_released")).all()
    assert sorted(e.detail["parameters"]["claim_id"] for e in released) == sorted(claims)
    refused = cli("quarantine", "retry", *[f"c{i}" for i in range(101)], ok=False, as_="bs.patel")
    assert refused.exit_code == 1 and "choose at most 100 quarantined files at once" in refused.output
