"""The paper original: QA hold at its boundaries, keep-the-original types, disposition, custody moves."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from escr.app.verification import verify_document
from escr.cli.main import app
from escr.errors import InvalidState, ProtocolViolation
from escr.intake.receipt import claim_copy
from escr.pages.coversheet import CoverSheet
from escr.pipelines import intake
from escr.provenance import paper
from escr.record.models import Document, Event, PaperDisposition
from escr.services import Services
from tests.support.cli import cli_env
from tests.support.scans import coversheet_page, degrade, text_page, write_pdf

pytestmark = pytest.mark.ocr

A6 = (4.13, 5.83)
SCANS = {
    "referral": (CoverSheet("B-PAPER001", ("AB123456",), "referral", 1),
                 ["Referral to Children's Social Care", "Date: 3 March 2026", "The school is worried."]),
    "court_order": (CoverSheet("B-PAPER002", ("AB123456",), "court_order", 1),
                    ["In the Family Court", "Date: 4 March 2026", "An order is made."]),
    "correspondence": (CoverSheet("B-PAPER003", ("CD654321",), "correspondence", 1),
                       ["Letter to the family", "Date: 12 January 2026", "Thank you for meeting us."]),
}


def file_scans(services: Services, tmp_path: Path, names: list[str], *, verify: bool = True) -> dict[str, str]:
    """Each named scan filed through the real pipeline (and verified by a second person); name -> doc id."""
    docs = {}
    for name in names:
        sheet, lines = SCANS[name]
        page = degrade(text_page(lines, dpi=300, size_inches=A6, font_pt=11), noise=0.0003, seed=3)
        pdf = write_pdf([coversheet_page(sheet, dpi=300), page], tmp_path / f"{name}.pdf")
        result = intake.run(claim_copy(pdf, services.settings.processing_dir, operator="bs.jones", device="mfd-2"),
                            services)
        (doc,) = result.documents
        assert doc["doc_type"] == name and doc["state"] == "awaiting_verification", doc
        docs[name] = doc["id"]
    if verify:
        with services.db.session() as session:
            for doc_id in docs.values():
                verify_document(session, doc_id, user="tm.okafor")
    return docs


def verified_on(services: Services, doc_id: str) -> date:
    with services.db.session() as session:
        return session.get(Document, doc_id).verified_at.astimezone(UTC).date()


def status(services: Services, doc_id: str, today: date) -> str:
    with services.db.session() as session:
        return paper.status_of(session, doc_id, catalogue=services.doctypes, settings=services.settings.provenance,
                               today=today).status


def destroy(services: Services, doc_ids: list[str], on: date):
    with services.db.session() as session:
        return paper.destroy(session, doc_ids, by="shred.co", method="cross-cut shredding", certificate_ref="CERT-77",
                             recorded_by="bs.clark", catalogue=services.doctypes,
                             settings=services.settings.provenance, today=on)


@pytest.fixture
def cli(with_children):
    """`escr ARGS` signed in as a business-support account (bs.clark unless `as_=` names another)."""
    runner = CliRunner()

    def run(*args: str, as_: str = "bs.clark"):
        env = cli_env(with_children, as_, "business_support")
        return runner.invoke(app, list(args), env=env, catch_exceptions=False)

    return run


def test_paper_is_held_for_28_days_after_verification_then_due(with_children, tmp_path):
    services = with_children
    docs = file_scans(services, tmp_path, ["referral"])
    doc = docs["referral"]
    day0 = verified_on(services, doc)
    assert services.settings.provenance.qa_hold_days == 28

    assert status(services, doc, day0 + timedelta(days=27)) == paper.IN_QA_HOLD
    assert status(services, doc, day0 + timedelta(days=28)) == paper.DUE
    assert status(services, doc, day0 + timedelta(days=29)) == paper.DUE
    with services.db.session() as session:
        due = paper.due(session, catalogue=services.doctypes, settings=services.settings.provenance,
                        today=day0 + timedelta(days=28))
    assert [d.document_id for d in due] == [doc] and due[0].eligible_from == day0 + timedelta(days=28)

    with pytest.raises(InvalidState, match="quality-assurance hold"):
        destroy(services, [doc], day0 + timedelta(days=27))
    (row,) = destroy(services, [doc], day0 + timedelta(days=28))
    assert (row.action, row.method, row.certificate_ref, row.by) == (
        "destroyed", "cross-cut shredding", "CERT-77", "shred.co")
    assert status(services, doc, day0 + timedelta(days=60)) == paper.DESTROYED
    with pytest.raises(InvalidState, match="destroyed"):
        destroy(services, [doc], day0 + timedelta(days=60))
    with services.db.session() as session:
        (event,) = session.scalars(select(Event).where(Event.kind == "paper_destroyed")).all()
    assert event.document_id == doc and event.actor == "bs.clark"
    assert event.detail["parameters"]["certificate_ref"] == "CERT-77"


def test_keep_the_original_types_are_never_due_and_unverified_paper_is_kept(with_children, tmp_path):
    services = with_children
    docs = file_scans(services, tmp_path, ["court_order", "referral"])
    court, referral = docs["court_order"], docs["referral"]
    assert services.doctypes.types["court_order"].keep_original
    far = verified_on(services, court) + timedelta(days=36500)

    assert status(services, court, far) == paper.KEEP
    with services.db.session() as session:
        due = paper.due(session, catalogue=services.doctypes, settings=services.settings.provenance, today=far)
    assert [d.document_id for d in due] == [referral]
    with pytest.raises(InvalidState, match="keep original"):
        destroy(services, [referral, court], far)  # all or nothing
    with services.db.session() as session:
        assert session.scalars(select(PaperDisposition)).all() == []
        returned = paper.return_paper(session, [court], returned_to="Family Court", by="bs.clark",
                                      recorded_by="bs.clark", catalogue=services.doctypes,
                                      settings=services.settings.provenance, today=far)
    assert returned[0].action == "returned" and status(services, court, far) == paper.RETURNED

    also_kept = services.settings.model_copy(update={"provenance": services.settings.provenance.model_copy(
        update={"keep_original_types": ["referral"]})})
    assert status(Services(also_kept, services.db, services.store), referral, far) == paper.KEEP


def test_paper_of_an_unverified_scan_is_not_due(with_children, tmp_path):
    services = with_children
    docs = file_scans(services, tmp_path, ["referral"], verify=False)
    assert status(services, docs["referral"], date(2099, 1, 1)) == paper.NOT_VERIFIED
    with pytest.raises(InvalidState, match="not verified"):
        destroy(services, [docs["referral"]], date.today())


def test_batches_of_paper_are_tracked_and_arrival_is_confirmed_by_someone_else(with_children):
    services = with_children
    start = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    with services.db.session() as session:
        out = paper.move(session, "B-PAPER001", sender="team.north", recipient="scanning.room",
                         purpose="to_scanning", recorded_by="sw.ahmed", authorised_by="tm.okafor", moved_at=start)
    with services.db.session() as session:
        (open_move,) = paper.open_moves(session, at=start + timedelta(days=2))
        assert (open_move.move.id, open_move.problem, open_move.days) == (out.id, "unconfirmed", 2)
        with pytest.raises(InvalidState, match="not yet confirmed"):
            paper.move(session, "B-PAPER001", sender="scanning.room", recipient="archive.store",
                       purpose="to_archive", recorded_by="bs.jones")
    with services.db.session() as session, pytest.raises(ProtocolViolation, match="cannot confirm"):
        paper.confirm(session, out.id, by="team.north")
    with services.db.session() as session:
        paper.confirm(session, out.id, by="scanning.room", at=start + timedelta(hours=3))
    with services.db.session() as session:
        assert paper.open_moves(session, at=start + timedelta(days=2)) == []
        with pytest.raises(InvalidState, match="last received by scanning.room"):
            paper.move(session, "B-PAPER001", sender="team.north", recipient="archive.store",
                       purpose="to_archive", recorded_by="bs.jones")
        loan = paper.move(session, "B-PAPER001", sender="scanning.room", recipient="court.team", purpose="other",
                          recorded_by="bs.jones", due_back=date(2026, 3, 20), moved_at=start + timedelta(days=1))
        paper.confirm(session, loan.id, by="court.clerk", at=start + timedelta(days=1, hours=2))
    with services.db.session() as session:
        assert paper.open_moves(session, at=datetime(2026, 3, 20, 12, tzinfo=UTC)) == []
        (overdue,) = paper.open_moves(session, at=datetime(2026, 3, 21, 12, tzinfo=UTC))
        assert (overdue.move.id, overdue.problem, overdue.days) == (loan.id, "overdue_return", 1)
        kinds = [e.kind for e in session.scalars(select(Event).where(Event.kind.like("paper_%")).order_by(Event.id))]
    assert kinds == ["paper_moved", "paper_arrived", "paper_moved", "paper_arrived"]


def test_paper_commands(with_children, tmp_path, cli):
    docs = file_scans(with_children, tmp_path, ["referral", "court_order"])
    due = cli("paper", "due", "--json", "--today", "2099-01-01")
    assert [d["document_id"] for d in json.loads(due.output)] == [docs["referral"]]
    everything = json.loads(cli("paper", "due", "--all", "--json", "--today", "2099-01-01").output)
    assert {d["document_id"]: d["status"] for d in everything} == {docs["referral"]: "due",
                                                                   docs["court_order"]: "keep_original"}
    refused = cli("paper", "destroy", docs["referral"], "--method", "shredding", "--certificate", "C-1",
                  as_="bs.clark")
    assert refused.exit_code == 2 and "hold" in refused.output  # verified today: still in its QA hold

    moved = json.loads(cli("paper", "move", "B-PAPER001", "--from", "team.north", "--to", "archive.store",
                           "--purpose", "to_archive", "--json", as_="sw.ahmed").output)
    listed = cli("paper", "unconfirmed")
    assert listed.exit_code == 1 and "B-PAPER001" in listed.output and "not confirmed" in listed.output
    assert cli("paper", "confirm", str(moved["move_id"]), as_="team.north").exit_code == 2  # the sender
    assert cli("paper", "confirm", str(moved["move_id"]), as_="archive.clerk").exit_code == 0
    assert cli("paper", "unconfirmed").exit_code == 0
