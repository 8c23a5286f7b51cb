"""The intake pipeline end to end, in-process, on scans the tests make and on the real corpus."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, select

from escr.app.verification import index_document, verify_document
from escr.errors import ProtocolViolation
from escr.intake.receipt import claim_copy
from escr.pages.coversheet import CoverSheet
from escr.pipelines import intake
from escr.record.models import Batch, Document, Event
from tests.conftest import CORPUS
from tests.support.intake import ingest
from tests.support.scans import coversheet_page, degrade, text_page, write_pdf, write_tiff

pytestmark = pytest.mark.ocr

A5 = (5.83, 8.27)

REFERRAL = [
    "Referral to Children's Social Care",
    "Date: 3 March 2026",
    "Child: Amelia Whitfield",
    "The school is worried about bruising seen today.",
    "Please contact the designated safeguarding lead.",
]
LETTER_BOTH = [
    "Dear Ms Whitfield,",
    "Letter dated 12/01/2026",
    "Thank you for meeting us about Amelia and Oliver.",
    "We will visit again next week with the family support worker.",
]
NHS_LETTER = [
    "Health visitor report",
    "Date: 20 February 2026",
    "Re: Amelia Whitfield  NHS number 943 476 5919",
    "Weight and growth are on track and the home was warm.",
]


def page(lines, **kw):
    return degrade(text_page(lines, dpi=300, size_inches=A5, font_pt=12), noise=0.0005, seed=1, **kw)


def pdftotext(data: bytes, tmp_path: Path) -> str:
    pdf = tmp_path / "out.pdf"
    pdf.write_bytes(data)
    return subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def stored_bytes(services, key: str) -> bytes:
    with services.store.open(key) as fh:
        return fh.read()


def test_batch_with_cover_sheets_is_split_and_filed_to_each_child(with_children, tmp_path):
    services = with_children
    sheet_a = CoverSheet("B-TEST0001", ("AB123456",), "referral", 1)
    sheet_b = CoverSheet("B-TEST0002", ("AB123456", "AB123457"), "correspondence", 1)
    scan = write_pdf([coversheet_page(sheet_a, dpi=300), page(REFERRAL),
                      coversheet_page(sheet_b, dpi=300), page(LETTER_BOTH)], tmp_path / "batch.pdf")

    result = ingest(services, scan)

    assert result.status == "filed", result
    docs = result.documents
    assert [d["children"] for d in docs] == [["AB123456"], ["AB123456", "AB123457"]]
    assert [d["doc_type"] for d in docs] == ["referral", "correspondence"]
    assert [d["pages"] for d in docs] == [1, 1]
    assert [d["doc_date"] for d in docs] == ["2026-03-03", "2026-01-12"]
    assert all(d["state"] == "awaiting_verification" for d in docs), docs
    assert all(d["qc"]["page_count"] == "pass" for d in docs)

    with services.db.session() as session:
        batch = session.scalars(select(Batch)).one()
        assert batch.operator == "bs.jones" and batch.device == "mfd-2" and batch.page_count == 4
        # The untouched scan, byte for byte, cover sheets included.
        assert stored_bytes(services, batch.original_key) == scan.read_bytes()
        doc = session.get(Document, docs[0]["id"])
        reading = stored_bytes(services, doc.searchable_key)
        text = pdftotext(reading, tmp_path)
        assert "bruising" in text and "B-TEST0001" not in text  # the cover sheet is not in the document
        assert doc.pages[0].mean_conf and doc.pages[0].mean_conf > 70
        kinds = [e.kind for e in session.scalars(select(Event).where(Event.batch_id == batch.id).order_by(Event.id))]
    for step in ["received", "preflight", "split", "ocr", "tagged", "linked", "qc", "stored", "filed"]:
        assert step in kinds, step
    assert kinds.index("received") < kinds.index("preflight") < kinds.index("split") < kinds.index("ocr") < kinds.index("filed")
    assert not any((services.settings.processing_dir).iterdir())  # nothing left waiting


def test_third_party_follows_the_type_the_cover_sheet_names_not_what_the_prose_resembles(with_children, tmp_path):
    plan = CoverSheet("B-TEST0003", ("AB123456",), "child_in_need_plan", 1)
    police = CoverSheet("B-TEST0004", ("AB123456",), "police_report", 1)
    scan = write_pdf([coversheet_page(plan, dpi=300), page(NHS_LETTER[:2] + NHS_LETTER[3:]),
                      coversheet_page(police, dpi=300), page(LETTER_BOTH)], tmp_path / "typed.pdf")

    result = ingest(with_children, scan)

    assert result.status == "filed", result
    assert [d["doc_type"] for d in result.documents] == ["child_in_need_plan", "police_report"]
    with with_children.db.session() as session:
        flags = [session.get(Document, d["id"]).third_party for d in result.documents]
    assert flags == [False, True]  # only the police report is kept from those without third-party access


def test_scan_without_cover_sheet_is_linked_by_nhs_number_in_its_text(with_children, tmp_path):
    result = ingest(with_children, write_pdf([page(NHS_LETTER)], tmp_path / "letter.pdf"))
    (doc,) = result.documents
    assert doc["children"] == ["AB123456"]
    assert doc["doc_type"] == "health_report"
    with with_children.db.session() as session:
        links = session.get(Document, doc["id"]).children
        assert [(link.child_id, link.basis) for link in links] == [("AB123456", "nhs_number")]


def test_ambiguous_scan_waits_for_indexing_then_four_eyes_verification(with_children, tmp_path):
    services = with_children
    lines = ["Core group minutes", "Date: 5 May 2026", "Present for AB123456 and CD654321.", "Actions agreed."]
    result = ingest(services, write_pdf([page(lines)], tmp_path / "minutes.pdf"), operator="bs.jones")
    (doc,) = result.documents
    assert doc["state"] == "needs_indexing" and doc["children"] == []
    with services.db.session() as session:
        candidates = {c.child_id for c in session.get(Document, doc["id"]).candidates}
    assert candidates == {"AB123456", "CD654321"}

    with services.db.session() as session:
        index_document(session, doc["id"], user="bs.patel", child_ids=["AB123456"], doc_type="core_group_minutes",
                       known_types=list(services.doctypes.types))
    for person in ("bs.jones", "BS.Patel"):  # the scanner, then the indexer
        with pytest.raises(ProtocolViolation), services.db.session() as session:
            verify_document(session, doc["id"], user=person)
    with services.db.session() as session:
        verified = verify_document(session, doc["id"], user="tm.okafor")
        assert verified.state == "verified" and [c.child_id for c in verified.children] == ["AB123456"]


def test_identical_file_is_recognised_and_not_filed_twice(with_children, tmp_path):
    scan = write_pdf([page(NHS_LETTER)], tmp_path / "letter.pdf")
    first = ingest(with_children, scan)
    second = ingest(with_children, scan, operator="bs.other")
    assert first.status == "filed"
    assert second.status == "quarantined" and second.quarantine["code"] == "duplicate"
    assert first.scan_id in second.quarantine["reason"]
    quarantined = Path(second.quarantine["path"])
    assert quarantined.read_bytes() == scan.read_bytes()
    with with_children.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Batch)) == 1


def test_files_taken_together_are_each_filed_and_a_copy_among_them_is_a_duplicate(with_children, tmp_path):
    """`escr ingest A B A'` reads the files side by side on shared OCR slots; each still lands on
    its own child, in the order given, and the second copy of a scan is not filed twice."""
    letter = write_pdf([page(NHS_LETTER)], tmp_path / "letter.pdf")
    minutes = write_pdf([page(["Core group minutes", "Date: 5 May 2026", "Present for CD654321.", "Actions agreed."]),
                         page(["Core group minutes, page 2", "Review in six weeks."])], tmp_path / "minutes.pdf")
    again = tmp_path / "letter-again.pdf"
    again.write_bytes(letter.read_bytes())
    claims = [claim_copy(p, with_children.settings.processing_dir, operator="bs.jones", device="mfd-2")
              for p in (letter, minutes, again)]

    first, second, third = intake.run_all(claims, with_children)

    assert first.status == "filed" and first.documents[0]["children"] == ["AB123456"]
    assert second.status == "filed" and second.documents[0]["children"] == ["CD654321"]
    assert second.documents[0]["pages"] == 2
    assert third.status == "quarantined" and third.quarantine["code"] == "duplicate"
    assert first.window is not None and first.window[0] <= first.window[1]
    with with_children.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Batch)) == 2


def test_multipage_tiff_from_an_office_scanner_is_filed(with_children, tmp_path):
    tiff = write_tiff([page(REFERRAL), page(NHS_LETTER)], tmp_path / "scan.tif")
    result = ingest(with_children, tiff)
    (doc,) = result.documents
    assert doc["pages"] == 2 and doc["children"] == ["AB123456"]
    with with_children.db.session() as session:
        d = session.get(Document, doc["id"])
        assert stored_bytes(with_children, d.batch.original_key) == tiff.read_bytes()
        assert "bruising" in pdftotext(stored_bytes(with_children, d.searchable_key), tmp_path)


@pytest.mark.parametrize("content,name,code", [
    (b"", "empty.pdf", "empty"),
    (b"%PDF-1.7\n%%EOF\n", "invalid.pdf", "truncated"),
    (b"PK\x03\x04 not really a document", "letter.docx", "unsupported_type"),
])
def test_bad_files_go_to_quarantine_with_reason_and_bytes(services, tmp_path, content, name, code):
    bad = tmp_path / name
    bad.write_bytes(content)
    result = ingest(services, bad)
    assert result.status == "quarantined" and result.quarantine["code"] == code
    kept = Path(result.quarantine["path"])
    assert kept.read_bytes() == content
    reason = json.loads(kept.with_name(kept.name + ".reason.json").read_text())
    assert reason["code"] == code and reason["what_to_do"] and reason["operator"] == "bs.jones"
    with services.db.session() as session:
        assert "quarantined" in [e.kind for e in session.scalars(select(Event))]


@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS.exists(), reason="shared corpus not present")
@pytest.mark.parametrize("name,expect", [
    ("ccitt.pdf", "filed"), ("jbig2.pdf", "filed"), ("kcs.pdf", "filed"), ("epson.pdf", "filed"),
    ("typewriter.png", "filed"), ("cardinal.pdf", "filed"),
    ("invalid.pdf", "quarantined"), ("hugemono.pdf", "quarantined"),
])
def test_real_scanner_files(services, name, expect, tmp_path):
    result = ingest(services, CORPUS / name)
    assert result.status == expect, result
    if expect == "filed":
        with services.db.session() as session:
            for d in result.documents:
                doc = session.get(Document, d["id"])
                assert stored_bytes(services, doc.batch.original_key) == (CORPUS / name).read_bytes()
                assert doc.page_count == len(doc.pages) >= 1
    else:
        assert Path(result.quarantine["path"]).read_bytes() == (CORPUS / name).read_bytes()


def test_an_overlong_operator_folder_is_quarantined_not_retried_for_ever(services, tmp_path):
    scan = write_pdf([page(NHS_LETTER)], tmp_path / "letter.pdf")
    result = ingest(services, scan, operator="x" * 200)
    assert result.status == "quarantined" and result.quarantine["code"] == "path_too_long"
    assert Path(result.quarantine["path"]).read_bytes() == scan.read_bytes()


def test_a_file_that_cannot_be_read_is_deferred_for_a_retry_not_quarantined(services, tmp_path):
    scan = write_pdf([page(NHS_LETTER)], tmp_path / "letter.pdf")
    claim = claim_copy(scan, services.settings.processing_dir, operator="bs.jones", device="mfd-2")
    claim.path.unlink()  # gone between the claim and its receipt (a network share dropped, say)
    result = intake.run(claim, services)
    assert result.status == "deferred" and result.quarantine is None
    assert not (services.settings.quarantine_dir / claim.claim_id).exists()
