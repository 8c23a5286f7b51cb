"""Issue 19 wiring: every printed cover sheet lands in the register, whatever face printed it, and a
document's QC and certificate of scanning carry the device's scanner check for the day (DOMAIN
protocol steps 1 and 2)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from escr.app import coversheets
from escr.app.accounts import add_user, principal_for
from escr.app.operations import Operations
from escr.cli.main import app
from escr.errors import InvalidState
from escr.intake.receipt import claim_copy
from escr.pages.coversheet import CoverSheet
from escr.pipelines import intake
from escr.provenance.certificate import build_report, render_html
from escr.record.events import Actor
from escr.record.models import ScannerCheck
from escr.services import open_services
from escr.settings import load_settings
from tests.support.cli import cli_env
from tests.support.scans import coversheet_page, text_page, write_pdf

ADMIN = Actor(kind="user", name="admin")


def _bs(services, name="bs.jones"):
    with services.db.session() as session:
        user, _ = add_user(session, name, role="business_support", actor=ADMIN)
        session.flush()
        return principal_for(user)


def test_a_sheet_printed_on_any_face_is_in_the_register_and_a_reprint_adds_no_second(with_children, tmp_path):
    services = with_children
    ops = Operations(services, _bs(services))
    batch_id, pdf = ops.cover_sheet(["AB123456"], "referral", 2, print_names=False)
    assert pdf.startswith(b"%PDF")
    ops.cover_sheet(["AB123456"], "referral", 2, print_names=False, batch_id=batch_id)  # a lost sheet reprinted
    with pytest.raises(InvalidState):
        ops.cover_sheet(["CD654321"], "referral", 1, print_names=False, batch_id=batch_id)
    env = cli_env(services, "bs.patel")
    result = CliRunner().invoke(app, ["coversheet", "--child", "CD654321", "--doc-type", "referral",
                                      "-o", str(tmp_path / "s.pdf"), "--batch", "B-CLI00001"], env=env)
    assert result.exit_code == 0, result.output
    with services.db.session() as session:
        listed = coversheets.unscanned(session, ops.p, days=0)
    assert [(s["cover_batch_id"], s["children"], s["printed_by"]) for s in listed] == \
        [(batch_id, ["AB123456"], "bs.jones"), ("B-CLI00001", ["CD654321"], "bs.patel")]


def _scan(services, tmp_path, device: str, batch: str) -> dict:
    sheet = CoverSheet(batch, ("AB123456",), "referral", 1)
    pdf = write_pdf([coversheet_page(sheet, dpi=300),
                     text_page(["Referral to Children's Social Care", "Date: 3 March 2026"], dpi=300)],
                    tmp_path / f"{batch}.pdf")
    (doc,) = intake.run(claim_copy(pdf, services.settings.processing_dir, operator="bs.jones", device=device),
                        services).documents
    return doc


@pytest.mark.ocr
def test_documents_carry_the_days_scanner_check_in_qc_and_the_certificate_cites_it(with_children, tmp_path):
    services = with_children
    with services.db.session() as session:
        session.add(ScannerCheck(device="mfd-2", day=datetime.now(UTC).date(), passed=True,
                                 measures={"effective_dpi": 300.4, "skew_deg": 0.1, "cer": 0.004},
                                 failures=[], scan_key="scanner-checks/x.png", scan_sha256="ab" * 32,
                                 checked_by="bs.jones", checked_at=datetime.now(UTC)))
    checked = _scan(services, tmp_path, "mfd-2", "B-SCAN0001")
    unchecked = _scan(services, tmp_path, "mfd-7", "B-SCAN0002")
    assert checked["qc"]["scanner_check"] == "pass"
    assert unchecked["qc"]["scanner_check"] == "warn" and unchecked["state"] != "qc_failed"

    report = build_report(services, actor=Actor(kind="user", name="auditor.li"), document_id=checked["id"])
    cited = report["scans"][0]["scanner_check"]
    assert cited["device"] == "mfd-2" and cited["check_id"] and cited["target_scan_sha256"] == "ab" * 32
    assert f"check {cited['check_id']} of mfd-2" in render_html(report)
    other = build_report(services, actor=Actor(kind="user", name="auditor.li"), document_id=unchecked["id"])
    assert other["scans"][0]["scanner_check"]["check_id"] is None
    assert "no passing scanner check" in render_html(other)


@pytest.mark.ocr
def test_a_council_that_makes_the_check_a_failure_gets_a_rescan_queue_entry(with_children, tmp_path):
    strict = load_settings(**{**with_children.settings.model_dump(), "records": {"scanner_check_qc": "fail"}})
    services = open_services(strict)
    try:
        doc = _scan(services, tmp_path, "mfd-7", "B-SCAN0003")
    finally:
        services.db.dispose()
    assert doc["qc"]["scanner_check"] == "fail" and doc["state"] == "qc_failed"
    assert any("no passing scanner check for mfd-7" in r for r in doc["reasons"])
