"""Event payloads are typed: what the intake and the people write is what the certificate reads.

A field renamed on the writing side, or on the reading side, must fail loudly rather than leave
a line of a provenance certificate blank.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from escr.app.verification import accept_qc_failure, index_document, reject_document, verify_document
from escr.provenance.certificate import build_report
from escr.record import payloads
from escr.record.events import Actor, Kind, ProtocolEvent
from escr.record.models import Event
from tests.support.intake import ingest
from tests.support.scans import degrade, text_page, write_pdf

pytestmark = pytest.mark.ocr

MINUTES = ["Core group minutes", "Date: 5 May 2026", "Present for AB123456 and CD654321.", "Actions agreed."]
NHS_LETTER = ["Health visitor report", "Date: 20 February 2026", "Re: Amelia Whitfield  NHS number 943 476 5919",
              "Weight and growth are on track and the home was warm."]


def _page(lines):
    return degrade(text_page(lines, dpi=300, size_inches=(5.83, 8.27), font_pt=12), noise=0.0005, seed=1)


@pytest.fixture
def logged(with_children, tmp_path):
    """A record with every kind the intake and the people write: filed, indexed, verified, a
    QC failure accepted, a rejection, and a quarantined file."""
    services = with_children
    indexed = ingest(services, write_pdf([_page(MINUTES)], tmp_path / "minutes.pdf")).documents[0]["id"]
    with services.db.session() as session:
        index_document(session, indexed, user="bs.patel", child_ids=["AB123456"], doc_type="core_group_minutes",
                       known_types=list(services.doctypes.types))
    with services.db.session() as session:
        verify_document(session, indexed, user="tm.okafor")
    faint = ingest(services, write_pdf([_page(NHS_LETTER)], tmp_path / "letter.pdf", dpi=100)).documents[0]
    with services.db.session() as session:
        if faint["state"] == "qc_failed":
            accept_qc_failure(session, faint["id"], user="tm.okafor", reason="faint original, readable")
        reject_document(session, faint["id"], user="tm.okafor", reason="rescan at 300 dpi please")
    (tmp_path / "empty.pdf").write_bytes(b"")
    ingest(services, tmp_path / "empty.pdf")
    return services, indexed


def test_every_payload_the_pipeline_and_people_write_round_trips_through_its_model(logged):
    services, _ = logged
    with services.db.session() as session:
        rows = list(session.scalars(select(Event).where(Event.category == "protocol")))
    seen = set()
    for row in rows:
        if row.kind not in payloads.SCHEMAS:
            continue
        seen.add(row.kind)
        params, inputs, outputs = payloads.SCHEMAS[row.kind]
        assert payloads.parameters(params, row.detail).model_dump(mode="json") == row.detail["parameters"], row.kind
        if inputs is not None:
            assert payloads.inputs(inputs, row.detail).model_dump(mode="json") == row.detail["inputs"]
        if outputs is not None:
            assert payloads.outputs(outputs, row.detail).model_dump(mode="json") == row.detail["outputs"]
    assert seen >= {"received", "preflight", "split", "ocr", "tagged", "linked", "needs_indexing", "qc", "stored",
                    "filed", "indexed", "verified", "rejected", "quarantined", "qc_accepted"}


def test_a_payload_with_a_renamed_field_is_refused_when_written():
    fields = {"operator": "bs.jones", "device": "mfd-2", "intake_path": "bs.jones/mfd-2/a.pdf", "size_bytes": 3,
              "claim_id": "c1", "received_at": "2026-03-03T10:00:00+00:00"}
    ProtocolEvent(kind=Kind.RECEIVED, actor=Actor.system(), parameters=fields, inputs={"original": "ab"})
    renamed = {**fields, "intake_file": fields.pop("intake_path")}
    with pytest.raises(ValidationError):
        ProtocolEvent(kind=Kind.RECEIVED, actor=Actor.system(), parameters=renamed, inputs={"original": "ab"})


def test_the_certificate_reads_what_the_log_holds_and_a_renamed_field_fails_loudly(logged):
    services, doc_id = logged
    report = build_report(services, actor=Actor(kind="user", name="auditor"), document_id=doc_id)
    (scan,) = report["scans"]
    settings = scan["settings"]
    assert settings["media_type"] == "application/pdf" and settings["pages"][0]["dpi"] == [300, 300]
    assert scan["documents"][0]["ocr"].startswith("eng; page 1: ")
    with services.db.session() as session:
        preflight = session.scalars(select(Event).where(Event.kind == "preflight")).first()
        ocr = session.scalars(select(Event).where(Event.kind == "ocr")).first()
        stored = session.scalars(select(Event).where(Event.kind == "stored")).first()
    for model, detail, old, new in [
        (payloads.Preflight, preflight.detail, "media_type", "mime_type"),
        (payloads.Ocr, ocr.detail, "language", "lang"),
    ]:
        params = dict(detail["parameters"])
        params[new] = params.pop(old)
        with pytest.raises(ValidationError):
            payloads.parameters(model, {**detail, "parameters": params})
    outputs = dict(stored.detail["outputs"])
    outputs["reading_copy_sha256"] = outputs.pop("searchable_sha256")
    with pytest.raises(ValidationError):
        payloads.outputs(payloads.StoredOutputs, {**stored.detail, "outputs": outputs})


def test_every_protocol_kind_written_has_a_model():
    assert set(Kind) - {Kind.ACCESSED, Kind.DUPLICATE} <= set(payloads.SCHEMAS)


def test_a_payload_whose_numbers_would_read_back_differently_is_refused():
    with pytest.raises(ValidationError):  # a page count of 2.5 is not the int the model reads back
        ProtocolEvent(kind=Kind.PREFLIGHT, actor=Actor.system(), inputs={"original": "ab"}, parameters={
            "media_type": "application/pdf", "page_count": 2.5, "producer": None, "notes": [], "pages": []})
