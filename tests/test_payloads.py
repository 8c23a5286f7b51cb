"""Typed event payloads (escr/record/payloads.py): the intake writes, and the certificate and the
fixity checks read, the same models; a field renamed on either side fails here, not in a blank
line of a certificate years later."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from escr import __version__
from escr.provenance.certificate import active_content, build_report
from escr.record import payloads
from escr.record.database import GENESIS_HASH
from escr.record.events import Actor, Kind, ProtocolEvent, _detail, event_hash
from escr.record.models import Event
from tests.support.intake import ingest
from tests.support.scans import degrade, text_page, write_pdf

GOLDEN_VERIFIED_HASH = "23be04e2a6df03e1447899d6815727e8a0d65546f244ab2ec7dd66cd4307e884"
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
    (Kind.SPLIT, "parameters"): {"cover_pages": [0], "cover_batches": ["B-0001"], "empty_cover_pages": [],
                                 "documents": [{"id": "D-1", "pages": [1, 2], "cover_page": 0, "declared_pages": 2}]},
    (Kind.TAGGED, "parameters"): {"tags": [{"name": "child_id", "source": "text", "confidence": 0.9}],
                                  "doc_type": "referral", "doc_date": "2026-03-09", "third_party": False},
    (Kind.LINKED, "parameters"): {"children": {"AB123456": "coversheet"}, "text_match": "matched",
                                  "candidates": ["AB123456"]},
    (Kind.NEEDS_INDEXING, "parameters"): {"children": {}, "text_match": "none", "candidates": []},
    (Kind.QC, "parameters"): {"checks": [{"check": "resolution", "status": "pass", "numbers": {"dpi": 300}}]},
    (Kind.FILED, "parameters"): {"state": "awaiting_verification", "reasons": [], "children": ["AB123456"]},
    (Kind.QUARANTINED, "parameters"): {"reason": "the file is empty"},
    (Kind.PAPER_ARRIVAL, "parameters"): {"ref": "B-0001", "arrived_on": "2026-03-06", "old": None},
    (Kind.INDEXED, "parameters"): {"before": {"children": [], "doc_type": None, "doc_date": None},  # before 4 Dec
                                   "after": {"children": ["AB123456"], "doc_type": "referral", "doc_date": None}},
    (Kind.QC_ACCEPTED, "parameters"): {"reason": "legible", "new_state": "needs_indexing"},
    (Kind.VERIFIED, "parameters"): {"children": ["AB123456"], "doc_type": "referral", "third_party": False},
    (Kind.REJECTED, "parameters"): {"reason": "page cut off"},  # before the unlinked children were logged
    (Kind.WITHDRAWN, "parameters"): {"reason": "wrong file", "unlinked": ["AB123456"]},
    (Kind.ANCHORED, "parameters"): {"event_id": 41, "event_count": 41, "method": "hmac-sha256", "head_hash": "cd" * 32},
    (Kind.ANCHORED, "outputs"): {"anchor": "anchors/20260309T101500Z-41.json", "anchor_sha256": "ef" * 32},
    (Kind.FIXITY_CHECKED, "parameters"): {"run_id": 3, "trigger": "verify", "scope": {
        "child_id": None, "document_id": None, "scan_id": None, "since": None}, "events": 41, "documents": 2,
        "objects": 6, "bytes": 20480, "findings": 1, "by_code": {"object_missing": 1}},
    (Kind.FIXITY_ALERT, "parameters"): {"code": "object_missing", "what": "the manifest is gone", "where": "D-1",
                                        "since": None, "since_basis": "stored at", "document_id": "D-1"},
    (Kind.QUARANTINE_RELEASED, "parameters"): {"claim_id": "20260309T101500-1a2b3c4d"},
    (Kind.QUARANTINE_RELEASED, "inputs"): {"original": "ab" * 32},
    (Kind.QUARANTINE_DISCARDED, "parameters"): {"claim_id": "20260309T101500-1a2b3c4d", "reason": "blank test scan",
                                                "keep_until": "2026-06-09", "code": "empty"},
    (Kind.COVERSHEET_PRINTED, "parameters"): {"cover_batch_id": "B-0001", "children": ["AB123456"],
                                              "doc_type": "referral", "declared_pages": None},
    (Kind.MANIFEST_MISSING, "parameters"): {"cover_batch_id": "B-0001", "pages": 3},
    (Kind.SCANNER_CHECKED, "parameters"): {"check_id": 7, "device": "mfd-2", "day": "2026-03-09", "measures": {
        "declared_dpi": 300, "effective_dpi": 299.2, "skew_deg": 0.1, "paper_white": 247, "tones": [20, 60, 250],
        "tone_steps": 7, "cer": 0.004}, "failures": []},
    (Kind.SCANNER_CHECKED, "inputs"): {"target_scan": "ab" * 32},
    (Kind.ACCOUNT, "parameters"): {"action": "user_updated", "user": "bs.jones",
                                   "changes": {"role": ["caseworker", "team_manager"], "display_name": True}},
    (Kind.SIGN_IN, "parameters"): {"action": "sign_in", "via": "cli-token", "command": "ingest"},
    (Kind.BREAK_GLASS, "parameters"): {"break_glass_id": 4, "reason": "a child in hospital tonight",
                                       "expires_at": "2026-03-09T11:15:00+00:00"},
    (Kind.BREAK_GLASS_REVIEWED, "parameters"): {"break_glass_id": 4, "note": None},
    (Kind.AUDIT_PURPOSE, "parameters"): {"purpose_id": 2, "purpose": "complaint 41 review",
                                         "expires_at": "2026-03-09T11:15:00+00:00"},
    (Kind.ACCESSED, "parameters"): {"basis": "team", "object": "access_log", "since": "2026-03-01"},
    (Kind.CHILDREN_IMPORTED, "parameters"): {"added": 3, "updated": 1, "unchanged": 40, "retention_fields_changed": 1},
    (Kind.CHILD_STATUS, "parameters"): {"before": [], "after": [
        {"status": "looked_after", "from": "2025-01-02", "to": None, "on": None}]},
    (Kind.VOLUME_REGISTERED, "parameters"): {"volume_id": "V-1", "kind": "volume", "location": "archive room",
                                             "covers_from": None, "covers_to": None, "doc_type": None},
    (Kind.VOLUME_LINKED, "parameters"): {"volume_id": "V-1"},
    (Kind.PAPER_MOVED, "parameters"): {"move_id": 5, "paper_ref": "B-0001", "purpose": "scanning",
                                       "sender": "post room", "recipient": "scanning room", "authorised_by": None,
                                       "due_back": None},
    (Kind.PAPER_ARRIVED, "parameters"): {"move_id": 5, "paper_ref": "B-0001", "recipient": "scanning room"},
    (Kind.PAPER_DESTROYED, "parameters"): {"on": "2026-04-09", "by": "shred co", "method": "cross-cut",
                                           "certificate_ref": "SC-1", "returned_to": None, "doc_type": "referral"},
    (Kind.PAPER_RETURNED, "parameters"): {"on": "2026-04-09", "by": "bs.jones", "method": None,
                                          "certificate_ref": None, "returned_to": "the school", "doc_type": None},
    (Kind.PAPER_INCIDENT_CLOSED, "parameters"): {"volume_id": "V-1", "kind": "volume", "incident_id": 2},
    (Kind.PAPER_INCIDENT, "parameters"): {"volume_id": "V-1", "kind": "volume", "incident_id": 2},
    (Kind.PAPER_INCIDENT_FOLLOW_UP, "parameters"): {"incident_id": 2, "command": "not_configured",
                                                    "email": "ok", "recipients": 2},
    (Kind.RETENTION_CHANGED, "parameters"): {"old": None, "new": "2101-03-09", "schedule": "2101-03-09",
                                             "reason": "child index import", "children": ["AB123456"],
                                             "lock_mode": None, "objects": {}},
    (Kind.RETENTION_NOT_SHORTENED, "parameters"): {"old": "2101-03-09", "new": None, "schedule": "2090-01-01",
                                                   "reason": "child index import", "children": ["AB123456"],
                                                   "lock_mode": "governance", "objects": {}},
    (Kind.LEGAL_HOLD_RELEASED, "parameters"): {"reason": "order lifted", "objects": {}},
    (Kind.CATEGORY_HOLD_RELEASED, "parameters"): {"hold_id": 1, "scope": "status", "value": "adopted",
                                                  "reason": "inquiry over"},
    (Kind.LEGAL_HOLD_SET, "parameters"): {"reason": "court order 12", "objects": {"original/ab": "held"}},
    (Kind.CATEGORY_HOLD_SET, "parameters"): {"hold_id": 1, "scope": "status", "value": "adopted",
                                             "reason": "inquiry"},
    (Kind.DISPOSAL_PROPOSED, "parameters"): {"proposal_id": 1, "reason": "retention passed", "items": [
        {"kind": "document", "id": "D-1", "child_ids": ["AB123456"], "doc_type": None,
         "retention_until": "2026-01-01"}]},
    (Kind.DISPOSAL_DECIDED, "parameters"): {"proposal_id": 1, "note": "checked"},
    (Kind.DISPOSED, "parameters"): {"proposal_id": 1, "item": "D-1", "hashes": {"original": "ab" * 32}},
    (Kind.FILE_EXAMINED, "parameters"): {"examination_id": 3, "examined_on": "2026-03-09"},
    (Kind.AUDIT_SAMPLED, "parameters"): {"month": "2026-03", "worker": "sw.patel", "candidates": 4, "allocated": 6,
                                         "gap_months": None},
    (Kind.CASEFILE_AUDITED, "parameters"): {"audit_id": 1, "month": "2026-03", "revises": None,
                                            "judgements": {"met": 5, "not_met": 1}, "follow_up": False,
                                            "examination_id": 3},
    (Kind.SUPERSEDED, "parameters"): {"replaced_by": "D-2", "how": "coversheet"},
    (Kind.THIRD_PARTY_CHANGED, "parameters"): {"third_party": True, "reason": "a letter about the mother"},
    (Kind.CORRECTION_REQUESTED, "parameters"): {"correction_id": 1, "reason": "wrong child picked", "changes": {
        "children": ["CD654321"]}, "before": {"children": ["AB123456"], "doc_type": "referral", "doc_date": None,
                                              "third_party": False}},
    (Kind.CORRECTION_APPROVED, "parameters"): {"correction_id": 1, "requested_by": "bs.jones",
                                               "reason": "wrong child picked",
                                               "before": {"children": ["AB123456"], "doc_type": "referral",
                                                          "doc_date": None, "third_party": False},
                                               "after": {"children": ["CD654321"], "doc_type": "referral",
                                                         "doc_date": None, "third_party": False},
                                               "removed": ["AB123456"], "added": ["CD654321"], "identity_qc": "pass"},
    (Kind.CORRECTION_REFUSED, "parameters"): {"correction_id": 1, "note": "the paper names this child"},
    (Kind.MISFILING_RECORDED, "parameters"): {"correction_id": 1, "opened_by": ["sw.patel"]},
    (Kind.DISCLOSURE_OPENED, "parameters"): {"request_id": 1, "basis": "subject_access", "children": ["AB123456"],
                                             "documents": 4, "due_on": "2026-04-09"},
    (Kind.REDACTION_CHANGED, "parameters"): {"request_id": 1, "redaction_id": 9, "page": 2, "redactions": [9],
                                             "count": 1, "before": [0.1, 0.1, 0.5, 0.2],
                                             "after": [0.1, 0.12, 0.5, 0.22]},
    (Kind.DISCLOSURE_CHANGED, "parameters"): {"request_id": 1, "change": "due_date_extended",
                                              "before": "2026-04-09", "after": "2026-06-09"},
    (Kind.REDACTIONS_PROPOSED, "parameters"): {"request_id": 1, "proposed": {"search": 2}, "total": 2},
    (Kind.DISCLOSURE_SUBMITTED, "parameters"): {"request_id": 1, "reviewer": "tm.okafor", "version": 5},
    (Kind.DISCLOSURE_PAGES_REVIEWED, "parameters"): {"request_id": 1, "pages": 3, "version": 5},
    (Kind.DISCLOSURE_APPROVED, "parameters"): {"request_id": 1, "version": 5, "documents": 4},
    (Kind.DISCLOSURE_RETURNED, "parameters"): {"request_id": 1, "version": 5},
    (Kind.BUNDLE_EXPORTED, "parameters"): {"request_id": 1, "bundle_sha256": "ab" * 32, "pages": 12, "documents": 4,
                                           "redactions": 3},
    (Kind.COPY_GIVEN, "parameters"): {"copy_id": 1, "request_id": 1, "method": "post", "basis": "subject_access",
                                      "documents": 4, "redacted": True, "bundle_sha256": "ab" * 32},
}


@pytest.mark.parametrize(("kind", "part"), list(STORED_ROWS))
def test_rows_already_in_the_log_read_back_exactly(kind, part):
    model = getattr(payloads.SHAPES[kind], part)
    row = STORED_ROWS[(kind, part)]
    assert payloads.read(model, row).as_json() == row
    payloads.check(kind, part, row)  # and would be accepted as written today


def test_every_modelled_kind_has_a_stored_row_here():
    """Each kind's model is pinned by a row as its writer stores it (but `duplicate`, never written)."""
    assert {kind for kind, _ in STORED_ROWS} == set(payloads.SHAPES) - {Kind.DUPLICATE}


def test_a_third_party_correction_before_verification_logs_a_partial_indexing():
    row = {"before": {"third_party": False, "indexed_by": "bs.jones"}, "after": {"third_party": True},
           "reason": "a letter from the GP about the mother"}
    event = ProtocolEvent(kind=Kind.INDEXED, actor=Actor(kind="user", name="tm.okafor"), document_id="D-1",
                          parameters=row)
    assert event.parameters == row and payloads.read(payloads.Indexed, row).as_json() == row


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


def test_typing_the_payloads_leaves_the_hash_chain_as_it_was():
    """The chain hashes the stored JSON: a payload model stores exactly the dict it was built from,
    so an event hashes as it did before its kind had a model (this hash was taken before)."""
    at = datetime(2026, 3, 9, 10, 15, tzinfo=UTC)
    as_dict = ProtocolEvent(kind=Kind.VERIFIED, actor=Actor(kind="user", name="tm.okafor"), at=at, batch_id="S-1",
                            document_id="D-1", parameters=STORED_ROWS[(Kind.VERIFIED, "parameters")])
    as_model = as_dict.model_copy(update={"parameters": payloads.Verified(
        children=["AB123456"], doc_type="referral", third_party=False).as_json()})
    for event in (as_dict, as_model):
        payload = {"at": at.isoformat(), "category": "protocol", "kind": "verified", "actor_kind": "user",
                   "actor": "tm.okafor", "batch_id": "S-1", "document_id": "D-1", "child_id": None, "outcome": "ok",
                   "detail": _detail(event)}
        assert event_hash(GENESIS_HASH, payload) == GOLDEN_VERIFIED_HASH


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
        assert {r.kind for r in rows} >= {"received", "preflight", "split", "ocr", "tagged", "qc", "stored", "filed"}
        assert {r.kind for r in rows} & {"linked", "needs_indexing"}
        for row in rows:  # each part written by the intake reads back through its model exactly
            for part in ("parameters", "inputs", "outputs"):
                model = getattr(payloads.SHAPES[row.kind], part)
                assert (payloads.read(model, row.detail[part]).as_json() if model else {}) == row.detail[part]
    report = build_report(services, actor=Actor(kind="user", name="auditor.li"), document_id=doc["id"])
    assert report["verification"]["ok"], report["verification"]["findings"]  # fixity read the stored hashes
    (section,) = report["scans"]
    assert section["settings"]["media_type"] == "application/pdf" and section["settings"]["pages"][0]["dpi"]
    assert section["settings"]["active_content_removed"] == []
    assert section["software"]["escr"] == __version__ and "tesseract" in section["software"]  # read through Software
    (document,) = section["documents"]
    assert document["ocr"].startswith("eng; page 1: ") and " words" in document["ocr"]


def test_every_kind_has_a_payload_model():
    assert set(payloads.SHAPES) == set(Kind)  # a new kind comes with its model; none for a kind nobody writes


# Payloads built the way their writers build them now, for kinds typed after their rows were first
# written (nested models, an aliased field, numbers of both types): stored as the dicts were before.
BUILT = {
    Kind.ACCOUNT: payloads.Account(action="user_updated", user="bs.jones", changes=payloads.AccountChanges(
        role=["caseworker", "team_manager"], display_name=True)),
    Kind.CHILD_STATUS: payloads.ChildStatus(before=[], after=[payloads.StatusPeriod(
        status="looked_after", from_="2025-01-02", to=None, on=None)]),
    Kind.SCANNER_CHECKED: payloads.ScannerChecked(check_id=7, device="mfd-2", day="2026-03-09", measures=payloads.ScannerMeasures(
        declared_dpi=300, effective_dpi=299.2, skew_deg=0.1, paper_white=247, tones=[20, 60, 250], tone_steps=7,
        cer=0.004), failures=[]),
    Kind.CORRECTION_APPROVED: payloads.CorrectionApproved(
        correction_id=1, requested_by="bs.jones", reason="wrong child picked",
        before=payloads.DocumentFacts(children=["AB123456"], doc_type="referral", doc_date=None, third_party=False),
        after=payloads.DocumentFacts(children=["CD654321"], doc_type="referral", doc_date=None, third_party=False),
        removed=["AB123456"], added=["CD654321"], identity_qc="pass"),
    Kind.PAPER_MOVED: payloads.PaperMoved(move_id=5, paper_ref="B-0001", purpose="scanning", sender="post room",
                                          recipient="scanning room", authorised_by=None, due_back=None),
    Kind.REDACTION_CHANGED: payloads.RedactionChanged(request_id=1, redaction_id=9, page=2, redactions=[9], count=1,
                                                      before=[0.1, 0.1, 0.5, 0.2], after=[0.1, 0.12, 0.5, 0.22]),
}
GOLDEN_BUILT_HASH = "75231d3c05437705a06fa53f5926b3036985bcbfd083a5e28daf737236db6973"


def _chain_of(parameters_by_kind):
    at, head = datetime(2026, 3, 9, 10, 15, tzinfo=UTC), GENESIS_HASH
    for kind, parameters in parameters_by_kind.items():
        inputs = STORED_ROWS.get((kind, "inputs"), {})
        event = ProtocolEvent(kind=kind, actor=Actor(kind="user", name="tm.okafor"), at=at, document_id="D-1",
                              parameters=parameters, inputs=inputs)
        head = event_hash(head, {"at": at.isoformat(), "category": "protocol", "kind": str(kind), "actor_kind": "user",
                                 "actor": "tm.okafor", "batch_id": None, "document_id": "D-1", "child_id": None,
                                 "outcome": "ok", "detail": _detail(event)})
    return head


def test_payloads_built_by_their_writers_hash_as_the_dicts_did():
    assert {k: m.as_json() for k, m in BUILT.items()} == {k: STORED_ROWS[(k, "parameters")] for k in BUILT}
    assert _chain_of(BUILT) == _chain_of({k: STORED_ROWS[(k, "parameters")] for k in BUILT}) == GOLDEN_BUILT_HASH


def test_the_auditors_provenance_steps_read_each_part_through_its_model():
    from escr.app.auditing import _event_fields

    detail = {"parameters": STORED_ROWS[(Kind.RECEIVED, "parameters")], "inputs": STORED_ROWS[(Kind.RECEIVED, "inputs")],
              "outputs": {}, "software": {"escr": "0.9", "tesseract": "5.3.0", "zxing-cpp": "2.2"}}
    shown = dict(_event_fields("received", detail))
    assert shown["Software"] == "escr 0.9, tesseract 5.3.0, zxing-cpp 2.2"
    assert shown["Size bytes"] == "5120" and shown["Inputs / Original"] == "ab" * 32
    altered = {**detail, "parameters": {k: v for k, v in detail["parameters"].items() if k != "device"}}
    assert "Operator" in dict(_event_fields("received", altered))  # a row that no longer fits: shown as stored
