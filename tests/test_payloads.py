"""Typed event payloads (escr/record/payloads.py): the intake writes, and the certificate and the
fixity checks read, the same models; a field renamed on either side fails here, not in a blank
line of a certificate years later."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from escr.provenance.certificate import active_content, build_report
from escr.record import payloads
from escr.record.events import Actor, Kind, ProtocolEvent
from escr.record.models import Event
from tests.support.intake import ingest
from tests.support.scans import degrade, text_page, write_pdf

LETTER = ["Letter from the school", "Date: 9 March 2026", "Pupil AB123456 attended every day this term."]

# Rows as the intake has written them (one of each modelled kind): every stored row must go on
# reading. Renaming or removing a field of a model makes its row here fail to read.
STORED_ROWS = {
    (Kind.RECEIVED, "parameters"): {"operator": "bs.jones", "device": "mfd-2", "intake_path": "bs.jones/mfd-2/s.pdf",
                                    "size_bytes": 5120, "claim_id": "20260309T101500-1a2b3c4d",
                                    "received_at": "2026-03-09T10:15:00+00:00"},
    (Kind.RECEIVED, "inputs"): {"original": "ab" * 32},
    (Kind.PREFLIGHT, "parameters"): {"media_type": "application/pdf", "page_count": 1, "producer": None, "notes": [],
                                     "pages": [{"index": 0, "dpi": [300, 300], "colour": "grey", "encoding": "flate",
                                                "size_pt": [419.8, 595.4]}]},  # filed before active content was listed
    (Kind.OCR, "parameters"): {"language": "eng", "pages": [{"index": 0, "dpi": 300, "rotation": 0, "blank": False,
                                                            "mean_conf": 91.5, "words": 14, "tesseract_runs": 1}]},
    (Kind.STORED, "parameters"): {"store": "filesystem", "retention_until": "2101-03-09"},  # before locks were logged
    (Kind.STORED, "outputs"): {"original": "original/ab", "searchable": "searchable/cd", "searchable_sha256": "cd" * 32,
                               "manifest": "manifests/ef", "manifest_sha256": "ef" * 32},
}


@pytest.mark.parametrize(("kind", "part"), list(STORED_ROWS))
def test_rows_already_in_the_log_read_back_exactly(kind, part):
    model = getattr(payloads.SHAPES[kind], part)
    row = STORED_ROWS[(kind, part)]
    assert payloads.read(model, row).as_json() == row


def test_a_renamed_field_is_refused_on_writing_and_fails_on_reading():
    row = dict(STORED_ROWS[(Kind.PREFLIGHT, "parameters")])
    row["mediatype"] = row.pop("media_type")
    with pytest.raises(ValueError, match="media_type"):
        ProtocolEvent(kind=Kind.PREFLIGHT, actor=Actor.system(), parameters=row, inputs={"original": ""})
    with pytest.raises(payloads.PayloadMismatch, match="media_type"):
        payloads.read(payloads.Preflight, row)
    with pytest.raises(ValueError, match="mean_conf"):  # a page's field as well, and no value in the message
        ProtocolEvent(kind=Kind.OCR, actor=Actor.system(), document_id="D-1", parameters={
            "language": "eng", "pages": [{"index": 0, "dpi": 300, "rotation": 0, "blank": False, "confidence": 91.5,
                                          "words": 14, "tesseract_runs": 1}]})


def test_an_old_row_without_a_later_field_still_makes_a_certificate_line():
    old = payloads.read(payloads.Preflight, STORED_ROWS[(Kind.PREFLIGHT, "parameters")])
    assert old is not None and old.active_content_removed is None
    assert active_content(old.active_content_removed) == "not recorded (filed before preflight listed it)"


def test_what_the_intake_logs_is_what_the_certificate_and_the_fixity_check_read(with_children, tmp_path):
    services = with_children
    scan = write_pdf([degrade(text_page(LETTER, dpi=300, size_inches=(5.83, 8.27)), noise=0.0005)], tmp_path / "s.pdf")
    result = ingest(services, scan)
    assert result.status == "filed", result
    (doc,) = result.documents
    with services.db.session() as session:
        rows = session.scalars(select(Event).where(Event.kind.in_(list(payloads.SHAPES)))).all()
        assert {r.kind for r in rows} == set(payloads.SHAPES)
        for row in rows:  # each part written by the intake reads back through its model exactly
            for part in ("parameters", "inputs", "outputs"):
                model = getattr(payloads.SHAPES[row.kind], part)
                assert (payloads.read(model, row.detail[part]).as_json() if model else {}) == row.detail[part]
    report = build_report(services, actor=Actor(kind="user", name="auditor.li"), document_id=doc["id"])
    assert report["verification"]["ok"], report["verification"]["findings"]  # fixity read the stored hashes
    (section,) = report["scans"]
    assert section["settings"]["media_type"] == "application/pdf" and section["settings"]["pages"][0]["dpi"]
    assert section["settings"]["active_content_removed"] == []
    (document,) = section["documents"]
    assert document["ocr"].startswith("eng; page 1: ") and " words" in document["ocr"]
