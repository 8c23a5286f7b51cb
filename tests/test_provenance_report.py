"""The certificate of scanning: JSON, HTML and PDF render, and every number in them is the database's."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from escr.app.verification import verify_document
from escr.cli.main import app
from escr.intake.receipt import claim_copy
from escr.pages.coversheet import CoverSheet
from escr.pipelines import intake
from escr.provenance import anchors, paper
from escr.provenance.certificate import build_report, render_html, render_pdf
from escr.record.events import Actor
from escr.record.models import Batch, Document, Event, QcResult
from escr.services import Services
from tests.support.cli import cli_env
from tests.support.scans import coversheet_page, degrade, text_page, write_pdf

pytestmark = pytest.mark.ocr

A6 = (4.13, 5.83)
AUDITOR = Actor(kind="user", name="auditor.li")


def filed_document(services: Services, tmp_path: Path, sheet: CoverSheet, lines: list[str], name: str) -> str:
    page = degrade(text_page(lines, dpi=300, size_inches=A6, font_pt=11), noise=0.0003, seed=3)
    pdf = write_pdf([coversheet_page(sheet, dpi=300), page], tmp_path / f"{name}.pdf")
    result = intake.run(claim_copy(pdf, services.settings.processing_dir, operator="bs.jones", device="mfd-2"), services)
    (doc,) = result.documents
    with services.db.session() as session:
        verify_document(session, doc["id"], user="tm.okafor")
    return doc["id"]


@pytest.fixture
def certified(with_children, tmp_path):
    """Two verified documents of AB123456, a move of their paper, and an anchor over all of it."""
    services = with_children
    first = filed_document(services, tmp_path, CoverSheet("B-CERT0001", ("AB123456",), "referral", 1),
                           ["Referral to Children's Social Care", "Date: 3 March 2026", "The school is worried."], "a")
    second = filed_document(services, tmp_path, CoverSheet("B-CERT0002", ("AB123456",), "correspondence", 1),
                            ["Letter to the family", "Date: 12 January 2026", "Thank you for meeting us."], "b")
    with services.db.session() as session:
        paper.move(session, "B-CERT0001", sender="scanning.room", recipient="archive.store", purpose="to_archive",
                   recorded_by="bs.jones")
    anchors.write_anchor(services, force=True)
    return services, first, second


def sha256sum(path: Path) -> str:
    """The standard tool an auditor would use."""
    return subprocess.run(["sha256sum", str(path)], capture_output=True, text=True, check=True).stdout.split()[0]


def test_the_json_certificate_matches_the_database_and_verifies_with_sha256sum(certified, tmp_path):
    services, doc_id, _ = certified

    report = build_report(services, actor=AUDITOR, document_id=doc_id)

    assert report["verification"]["ok"] is True and report["summary"] == {"scans": 1, "documents": 1, "pages": 1}
    (scan,) = report["scans"]
    (doc,) = scan["documents"]
    with services.db.session() as session:
        row = session.get(Document, doc_id)
        batch = session.get(Batch, row.batch_id)
        qc = session.scalars(select(QcResult).where(QcResult.document_id == doc_id).order_by(QcResult.id)).all()
        events = session.scalars(select(Event).where(Event.category == "protocol").where(
            (Event.document_id == doc_id) | ((Event.batch_id == row.batch_id) & Event.document_id.is_(None)))
            .order_by(Event.id)).all()
        assert (scan["sha256"], scan["size_bytes"], scan["page_count"]) == (batch.sha256, batch.size_bytes, batch.page_count)
        assert (scan["operator"], scan["device"]) == ("bs.jones", "mfd-2")
        assert doc["storage"]["searchable"]["sha256"] == row.searchable_sha256
        assert doc["verifier"]["by"] == "tm.okafor" and doc["indexer"]["by"] is None
        assert doc["ocr"].startswith("eng; page 2: 300 dpi")  # page 2 of the scan: the cover sheet is page 1
        assert f"mean confidence {round(row.pages[0].mean_conf, 1)}" in doc["ocr"]
        assert doc["retention_until"] == (row.retention_until.isoformat() if row.retention_until else None)
        assert doc["qc"] == [{"check": q.check, "status": q.status, "numbers": q.numbers, "message": q.message} for q in qc]
        assert [e["id"] for e in doc["events"]] == [e.id for e in events]
        assert [e["hash"] for e in doc["events"]] == [e.hash for e in events]
    assert [p["dpi"] for p in scan["settings"]["pages"]] == [[300.0, 300.0], [300.0, 300.0]]
    assert scan["software"]["escr"] and "tesseract" in scan["software"]
    assert [m["recipient"] for m in scan["paper_custody"]] == ["archive.store"]
    assert doc["paper"]["status"] == "in_qa_hold"

    # Independently, with sha256sum: the original file, an event's hash, the anchor's digest.
    original = tmp_path / "original.pdf"
    with services.store.open(scan["original"]["key"]) as fh:
        original.write_bytes(fh.read())
    assert sha256sum(original) == scan["sha256"]
    for event in doc["events"]:
        assert hashlib.sha256(event["hash_input"].encode()).hexdigest() == event["hash"]
    received = tmp_path / "event.txt"
    received.write_bytes(doc["events"][0]["hash_input"].encode())
    assert sha256sum(received) == doc["events"][0]["hash"]
    anchor = report["anchor"]
    verified = next(e for e in doc["events"] if e["kind"] == "verified")
    assert anchor["event_id"] > verified["id"] and anchor["seal"] == "holds" and verified["anchored"]
    assert not doc["events"][-1]["anchored"]  # this report's own fixity check came after the anchor
    sealed = tmp_path / "anchor.txt"
    sealed.write_bytes(anchor["hash_input"].encode())
    key = anchors.anchor_key(services.settings)  # sealed by default, with the key kept apart from the database
    assert anchor["method"] == "hmac-sha256" and key is not None
    assert hmac.new(key.get_secret_value().encode(), sealed.read_bytes(), hashlib.sha256).hexdigest() == anchor["digest"]
    assert any("sha256sum" in step for step in report["how_to_verify"])
    with services.db.session() as session:
        looked = session.scalars(select(Event).where(Event.kind == "accessed", Event.actor == "auditor.li")).all()
    assert any(e.detail["action"] == "provenance" and e.child_id == "AB123456" for e in looked)


def test_html_and_pdf_show_the_same_numbers(certified, tmp_path):
    services, doc_id, _ = certified
    report = build_report(services, actor=AUDITOR, document_id=doc_id)
    (scan,) = report["scans"]
    (doc,) = scan["documents"]
    resolution = next(q for q in doc["qc"] if q["check"] == "resolution")

    html = render_html(report)
    pdf = tmp_path / "certificate.pdf"
    pdf.write_bytes(render_pdf(report))
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout

    for rendered in (html, text):
        assert scan["sha256"] in rendered
        assert doc["storage"]["searchable"]["sha256"] in rendered
        assert "bs.jones" in rendered and "mfd-2" in rendered and "tm.okafor" in rendered
        assert f"min_dpi={resolution['numbers']['min_dpi']}" in rendered
        assert all(e["hash"] in rendered for e in doc["events"])
        assert report["anchor"]["head_hash"] in rendered
        assert "sha256sum" in rendered and "passed: no findings" in rendered
    assert "Whitfield" not in html and "Whitfield" not in text  # ids, not names


def test_a_report_over_a_damaged_record_says_so(certified, tmp_path):
    services, doc_id, other = certified
    with services.db.session() as session:
        key = session.get(Document, other).searchable_key
    os.remove(services.settings.store_dir / key)
    runner = CliRunner(env=cli_env(services, "aud.one", "auditor"))

    ok = runner.invoke(app, ["report", "--doc", doc_id, "--format", "pdf", "-o", str(tmp_path / "a.pdf")])
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "a.pdf").read_bytes().startswith(b"%PDF")
    damaged = runner.invoke(app, ["report", "--child", "AB123456", "--format", "json", "-o", str(tmp_path / "c.json")])
    assert damaged.exit_code == 1
    report = json.loads((tmp_path / "c.json").read_text())
    assert report["summary"]["documents"] == 2 and report["verification"]["ok"] is False
    assert [(f["code"], f["object_key"]) for f in report["verification"]["findings"]] == [("object_missing", key)]
    batch = runner.invoke(app, ["report", "--batch", "B-CERT0001", "--format", "html", "-o", str(tmp_path / "b.html")])
    assert batch.exit_code == 0 and doc_id in (tmp_path / "b.html").read_text()
    assert runner.invoke(app, ["report", "--doc", "D-nosuch", "-o", str(tmp_path / "x.html")]).exit_code == 1
