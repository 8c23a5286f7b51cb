"""Case-file audit support: the 14 standards' evidence column from the record, and the monthly sample."""

from __future__ import annotations

import json
import random
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from escr.app import accounts
from escr.app.verification import verify_document
from escr.cli.main import app
from escr.errors import ConfigError, InvalidState
from escr.intake.receipt import claim_copy
from escr.pages.coversheet import CoverSheet
from escr.pipelines import intake
from escr.provenance.casefile_audit import casefile_audit, excluded, load_config, sample
from escr.record.events import Actor
from escr.record.models import AuditSelection, Event
from escr.services import Services
from tests.support.cli import cli_env
from tests.support.scans import coversheet_page, degrade, text_page, write_pdf

A6 = (4.13, 5.83)
ADMIN = Actor(kind="user", name="admin")
SEED_004_STANDARD_3 = ("Does the assessment adequately reflect all areas of risk to the service user, staff members "
                       "and the public?")


def config(services: Services):
    return load_config(services.settings.config_file("casefile_audit.yaml"), services.doctypes)


def file_document(services: Services, tmp_path: Path, doc_type: str, lines: list[str], *, verify: bool = True) -> str:
    sheet = CoverSheet(f"B-AUDIT-{doc_type[:10].upper()}", ("AB123456",), doc_type, 1)
    page = degrade(text_page(lines, dpi=300, size_inches=A6, font_pt=11), noise=0.0003, seed=3)
    pdf = write_pdf([coversheet_page(sheet, dpi=300), page], tmp_path / f"{doc_type}.pdf")
    result = intake.run(claim_copy(pdf, services.settings.processing_dir, operator="bs.jones", device="mfd-2"), services)
    (doc,) = result.documents
    if verify:
        with services.db.session() as session:
            verify_document(session, doc["id"], user="tm.okafor")
    return doc["id"]


def test_the_configuration_holds_the_14_standards_of_seed_004(services):
    cfg = config(services)
    assert [s.number for s in cfg.standards] == list(range(1, 15))
    assert cfg.standards[2].question == SEED_004_STANDARD_3
    assert cfg.standards[13].applies_when_status == ["closed", "transferred"]
    bad = services.settings.home / "bad.yaml"
    bad.write_text((services.settings.config_file("casefile_audit.yaml")).read_text().replace(
        "[risk_assessment, assessment, strategy_discussion]", "[risk_assesment]"))
    with pytest.raises(ConfigError, match="risk_assesment"):
        load_config(bad, services.doctypes)


@pytest.mark.ocr
def test_the_evidence_column_is_filled_from_the_verified_record(with_children, tmp_path):
    services = with_children
    referral = file_document(services, tmp_path, "referral",
                             ["Referral to Children's Social Care", "Date: 3 March 2026", "The school is worried."])
    risk = file_document(services, tmp_path, "risk_assessment", ["Risk assessment", "Date: 14 June 2025", "Risks noted."])
    chronology = file_document(services, tmp_path, "chronology", ["Chronology", "Date: 1 April 2026", "Events."])
    file_document(services, tmp_path, "child_protection_plan", ["Child protection plan", "Date: 2 April 2026"],
                  verify=False)  # not on the record until verified

    with services.db.session() as session:
        audit = casefile_audit(session, "AB123456", config=config(services), catalogue=services.doctypes,
                               actor=Actor(kind="user", name="sm.patel"), today=date(2026, 5, 1))

    assert (audit.verified_documents, audit.awaiting_verification) == (3, 1)
    by_number = {s.number: s for s in audit.standards}
    assert by_number[1].column == [f"Referral - 03/03/2026 - escr {referral} (scanned)"]
    assert by_number[3].column == [f"Risk assessment - 14/06/2025 - escr {risk} (scanned)"]
    assert by_number[6].column == ["No scanned evidence on the record"]  # the plan is not verified yet
    assert not by_number[14].applicable and by_number[14].column[0].startswith("N/A")  # the case is open
    keys = {k.name: k for k in audit.key_documents}
    assert (keys["Chronology"].document_id, keys["Chronology"].age_days, keys["Chronology"].up_to_date) == (
        chronology, 30, True)
    assert (keys["Risk assessment"].age_days, keys["Risk assessment"].up_to_date) == (321, True)
    assert not keys["Plan"].present and not keys["Plan"].up_to_date
    assert all(s.as_dict()["judgement"] is None for s in audit.standards)  # the auditor's column stays empty
    with services.db.session() as session:
        looked = session.scalars(select(Event).where(Event.kind == "accessed", Event.actor == "sm.patel")).one()
    assert looked.child_id == "AB123456" and looked.detail["parameters"]["purpose"] == "casefile_audit"


def allocate(services: Services, allocations: dict[str, list[str]], disabled: tuple[str, ...] = ()) -> None:
    with services.db.session() as session:
        for worker, children in allocations.items():
            accounts.add_user(session, worker, role="caseworker", actor=ADMIN)
            for child_id in children:
                accounts.allocate(session, child_id, worker, actor=ADMIN)
        for worker in disabled:
            accounts.set_disabled(session, worker, True, actor=ADMIN)


def pick(services: Services, month: str, seed: int = 7):
    with services.db.session() as session:
        return sample(session, month, selected_by="sm.patel", rng=random.Random(seed),
                      gap_months=services.settings.provenance.audit_sample_gap_months)


def test_one_file_per_worker_and_none_prepared_in_the_previous_12_months(with_children):
    services = with_children
    allocate(services, {"sw.amir": ["AB123456", "AB123457"], "sw.bea": ["CD654321"], "sw.cole": ["EF111222"]},
             disabled=("sw.cole",))

    june = pick(services, "2025-06")
    assert sorted(s["worker"] for s in june.selected) == ["sw.amir", "sw.bea"]  # a disabled worker has no sample
    first = next(s["child_id"] for s in june.selected if s["worker"] == "sw.amir")
    other = ({"AB123456", "AB123457"} - {first}).pop()
    again = pick(services, "2025-06")  # the month's picks stand: asking again picks nothing new
    assert not again.selected
    assert again.already == [{"worker": s["worker"], "child_id": s["child_id"]} for s in june.selected]

    july = pick(services, "2025-07")
    assert {s["worker"]: s["child_id"] for s in july.selected} == {"sw.amir": other}
    assert july.no_eligible_file == ["sw.bea"]  # her only file was prepared last month
    assert pick(services, "2025-08").no_eligible_file == ["sw.amir", "sw.bea"]

    # Boundary: prepared in June 2025, so not in May 2026 (11 months on) but again in June 2026 (12 months on).
    assert pick(services, "2026-05").no_eligible_file == ["sw.amir", "sw.bea"]
    june_next = pick(services, "2026-06")
    assert {s["worker"]: s["child_id"] for s in june_next.selected} == {"sw.amir": first, "sw.bea": "CD654321"}
    with services.db.session() as session:
        rows = session.scalars(select(AuditSelection).order_by(AuditSelection.id)).all()
        events = session.scalars(select(Event).where(Event.kind == "audit_sampled")).all()
    assert [(r.month, r.worker, r.child_id) for r in rows] == [
        ("2025-06", "sw.amir", first), ("2025-06", "sw.bea", "CD654321"), ("2025-07", "sw.amir", other),
        ("2026-06", "sw.amir", first), ("2026-06", "sw.bea", "CD654321")]
    assert len(events) == 5 and all(e.actor == "sm.patel" for e in events)


def test_the_gap_rule_at_its_boundary_and_bad_months():
    assert excluded("2025-03", "2026-02", 12) and not excluded("2025-03", "2026-03", 12)
    assert excluded("2025-12", "2026-01", 12) and excluded("2026-03", "2026-03", 12)
    with pytest.raises(InvalidState, match="YYYY-MM"):
        excluded("2025-13", "2026-01", 12)


@pytest.mark.ocr
def test_audit_commands(with_children, tmp_path):
    services = with_children
    file_document(services, tmp_path, "referral", ["Referral to Children's Social Care", "Date: 3 March 2026"])
    allocate(services, {"sw.amir": ["AB123456"]})
    runner = CliRunner(env=cli_env(services, "sm.patel", "auditor"))  # a service manager audits case files
    not_an_auditor = runner.invoke(app, ["audit", "casefile", "--child", "AB123456"],
                                   env=cli_env(services, "bs.jones", "business_support"))
    assert not_an_auditor.exit_code != 0 and "role_forbidden" in not_an_auditor.output

    shown = runner.invoke(app, ["audit", "casefile", "--child", "AB123456", "--json"])
    assert shown.exit_code == 0, shown.output
    audit = json.loads(shown.output)
    assert audit["allocated_worker"] == "sw.amir" and len(audit["standards"]) == 14
    assert audit["standards"][0]["evidence_column"][0].startswith("Referral - 03/03/2026 - escr D-")
    human = runner.invoke(app, ["audit", "casefile", "--child", "AB123456"])
    assert "1. Is there enough information collected" in human.output
    sampled = json.loads(runner.invoke(app, ["audit", "sample", "--month", "2026-03", "--json"]).output)
    assert sampled["selected"] == [{"worker": "sw.amir", "child_id": "AB123456", "candidates": 1}]
    assert runner.invoke(app, ["audit", "sample", "--month", "March"]).exit_code == 2
