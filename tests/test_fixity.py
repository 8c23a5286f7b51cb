"""`escr fixity` and the fixity pipeline: tamper with each thing an auditor relies on, and see it reported.

Scans go through the real intake pipeline. Tampering is done as an attacker with database access
would: raw SQL on a separate connection, past escr's guards (the append-only triggers are
dropped or switched off first), and by changing files in the store directly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import func, make_url, select, text
from typer.testing import CliRunner

from escr.app.verification import verify_document
from escr.cli.main import app
from escr.pages.coversheet import CoverSheet
from escr.pipelines import fixity
from escr.provenance import anchors
from escr.provenance.checks import Code, Scope
from escr.record import payloads
from escr.record.events import Actor, Kind, ProtocolEvent, event_hash, payload_of, record
from escr.record.models import Batch, ChainAnchor, Document, Event, FixityRun
from escr.services import Services
from tests.support.cli import home_env
from tests.support.intake import ingest
from tests.support.scans import coversheet_page, degrade, text_page, write_pdf

pytestmark = pytest.mark.ocr

A6 = (4.13, 5.83)
REFERRAL = ["Referral to Children's Social Care", "Date: 3 March 2026", "The school is worried.", "Please call."]
LETTER = ["Letter to the family", "Date: 12 January 2026", "Thank you for meeting us.", "We will visit again."]
AUDITOR = Actor(kind="user", name="auditor.li")


def page(lines: list[str]):
    return degrade(text_page(lines, dpi=300, size_inches=A6, font_pt=11), noise=0.0003, seed=3)


@dataclass
class Filed:
    services: Services
    scans: list[str]
    docs: list[str]  # docs[0] belongs to AB123456, docs[1] to CD654321; both verified


def file_scans(services: Services, tmp_path: Path, *, verify: bool = True) -> Filed:
    sheets = [(CoverSheet("B-VERIFY01", ("AB123456",), "referral", 1), REFERRAL),
              (CoverSheet("B-VERIFY02", ("CD654321",), "correspondence", 1), LETTER)]
    scans, docs = [], []
    for n, (sheet, lines) in enumerate(sheets):
        result = ingest(services, write_pdf([coversheet_page(sheet, dpi=300), page(lines)], tmp_path / f"scan{n}.pdf"))
        assert result.status == "filed", result
        (doc,) = result.documents
        assert doc["state"] == "awaiting_verification", doc
        scans.append(result.scan_id)
        docs.append(doc["id"])
    if verify:
        with services.db.session() as session:
            for doc_id in docs:
                verify_document(session, doc_id, user="tm.okafor")
    return Filed(services, scans, docs)


@pytest.fixture
def filed(with_children, tmp_path) -> Filed:
    return file_scans(with_children, tmp_path)


def check(services: Services, scope: Scope | None = None, **kw) -> fixity.FixityResult:
    return fixity.run(services, scope, actor=AUDITOR, **kw)


def found(result: fixity.FixityResult, code: Code) -> list:
    return [f for f in result.findings if f.code == code]


def raw_sql(services: Services, *statements: tuple[str, dict]) -> None:
    """Write straight to the database, as someone with database access could, past the append-only guards."""
    if services.db.dialect == "sqlite":
        con = sqlite3.connect(make_url(services.db.url).database)
        guards = [n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                            "AND name NOT LIKE 'pages_fts%'")]
        for name in guards:
            con.execute(f'DROP TRIGGER "{name}"')
        for sql, params in statements:
            con.execute(sql, params)
        con.commit()
        con.close()
        return
    with services.db.engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")  # triggers off (superuser)
        for sql, params in statements:
            conn.execute(text(sql), params)


def rehash_chain(services: Services) -> None:
    """Recompute every event's prev_hash and hash, and the head: a rewrite that leaves a valid chain."""
    with services.db.session() as session:
        rows = session.scalars(select(Event).order_by(Event.id)).all()
        updates, prev = [], "0" * 64
        for row in rows:
            row_hash = event_hash(prev, payload_of(row))
            updates.append(("UPDATE events SET prev_hash = :p, hash = :h WHERE id = :id",
                            {"p": prev, "h": row_hash, "id": row.id}))
            prev = row_hash
        session.expunge_all()
    raw_sql(services, ("UPDATE events SET hash = 'x' || id", {}), *updates,
            ("UPDATE chain_head SET last_event_id = :i, last_hash = :h", {"i": rows[-1].id, "h": prev}))


def event_id(services: Services, kind: str, doc_id: str | None = None) -> int:
    with services.db.session() as session:
        stmt = select(Event.id).where(Event.kind == kind)
        if doc_id is not None:
            stmt = stmt.where(Event.document_id == doc_id)
        return session.scalars(stmt.order_by(Event.id)).first()


def object_path(services: Services, key: str) -> Path:
    path = services.settings.store_dir / key
    assert path.is_file(), key
    return path


def doc_row(services: Services, doc_id: str) -> Document:
    with services.db.session() as session:
        doc = session.get(Document, doc_id)
        session.expunge(doc)
        return doc


@pytest.fixture
def cli(filed):
    """`escr ARGS` on the server: fixity checks run as the host operator, with no account."""
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args), env=home_env(filed.services), catch_exceptions=False)


# --- a clean record ------------------------------------------------------------------------------


def test_an_untouched_record_verifies_clean_reading_each_object_once(filed, cli):
    services = filed.services
    small_pages = services.settings.model_copy(update={"provenance": services.settings.provenance.model_copy(
        update={"chunk_size": 3})})  # pages of 3 rows: the paging boundaries are crossed many times
    with services.db.session() as session:
        events = session.scalar(select(func.count(Event.id)))
    result = check(Services(small_pages, services.db, services.store))
    assert result.ok, [f.as_dict() for f in result.findings]
    assert result.tally.documents_checked == 2
    assert result.tally.objects_checked == 6  # per scan: the original, the reading copy, the manifest
    assert result.tally.bytes_read == sum(object_path(services, k).stat().st_size for k in _keys(services))
    assert result.tally.events_checked == events
    with services.db.session() as session:
        run = session.get(FixityRun, result.run_id)
        assert run.findings_count == 0 and run.objects_checked == 6
        logged = session.scalars(select(Event).where(Event.kind == "fixity_checked")).one()
        assert logged.actor == "auditor.li" and logged.outcome == "ok"

    shown = cli("fixity", "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["ok"] is True


def test_the_integrity_check_is_escr_fixity_and_verify_is_not_one(filed, cli):
    """`verify` is the second person's four-eyes check only; the integrity check is `escr fixity`."""
    assert cli("verify", "--json").exit_code == 2  # no such command
    assert "four-eyes" not in cli("fixity", "--help").output
    on_demand = cli("fixity", "--json")
    scheduled = cli("fixity", "--scheduled", "--json")
    assert on_demand.exit_code == scheduled.exit_code == 0, scheduled.output
    assert json.loads(on_demand.output)["trigger"] == "server" and json.loads(scheduled.output)["trigger"] == "schedule"
    assert cli("fixity", "--scheduled", "--child", "AB123456").exit_code == 2  # the scheduled run is whole-store
    with filed.services.db.session() as session:
        assert sorted(session.scalars(select(FixityRun.trigger))) == ["schedule", "server"]


def _keys(services: Services) -> list[str]:
    with services.db.session() as session:
        keys = [b.original_key for b in session.scalars(select(Batch))]
        for d in session.scalars(select(Document)):
            keys += [d.searchable_key, d.manifest_key]
    return keys


# --- the objects -------------------------------------------------------------------------------


def test_changed_bytes_of_a_stored_object_are_reported_with_where_and_since(filed, cli):
    services, doc = filed.services, doc_row(filed.services, filed.docs[0])
    path = object_path(services, doc.searchable_key)
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes().replace(b"%%EOF", b"%%EOF\n% edited"))

    result = check(services)

    (altered,) = result.findings
    assert altered.code == Code.OBJECT_ALTERED
    assert altered.document_id == doc.id and altered.object_key == doc.searchable_key
    assert doc.searchable_key in altered.where and doc.id in altered.where
    with services.db.session() as session:
        assert altered.since == session.get(Batch, doc.batch_id).filed_at and altered.since_basis == "stored at"
    shown = cli("fixity", "--json")
    assert shown.exit_code == 1
    assert [f["code"] for f in json.loads(shown.output)["findings"]] == ["object_altered"]
    human = cli("fixity")
    assert human.exit_code == 1 and "object_altered" in human.output and doc.searchable_key in human.output


def test_a_row_edited_to_match_changed_bytes_is_still_caught_by_the_log(filed):
    services, doc = filed.services, doc_row(filed.services, filed.docs[1])
    path = object_path(services, doc.manifest_key)
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes() + b" ")
    raw_sql(services, ("UPDATE documents SET manifest_sha256 = :s WHERE id = :id",
                       {"s": hashlib.sha256(path.read_bytes()).hexdigest(), "id": doc.id}))

    codes = {f.code for f in check(services).findings}

    assert codes == {Code.OBJECT_ALTERED, Code.RECORD_DISAGREES}


def test_a_missing_object_is_reported_and_the_scheduled_run_alerts_at_once(filed, tmp_path, caplog):
    services, doc = filed.services, doc_row(filed.services, filed.docs[0])
    alerts = tmp_path / "alerts.jsonl"
    settings = services.settings.model_copy(update={"provenance": services.settings.provenance.model_copy(
        update={"alert_command": ["sh", "-c", f"cat >> {alerts}; echo >> {alerts}"]})})
    scheduled = Services(settings, services.db, services.store)
    with services.db.session() as session:
        original = session.get(Batch, doc.batch_id).original_key
    os.remove(object_path(services, original))

    with caplog.at_level(logging.ERROR, logger="escr.provenance.checks"):
        result = fixity.run(scheduled, trigger="schedule", alert=fixity.Alerter(scheduled))

    (missing,) = result.findings
    assert missing.code == Code.OBJECT_MISSING and missing.object_key == original and missing.batch_id == doc.batch_id
    alert_lines = [r.getMessage() for r in caplog.records if "FIXITY ALERT" in r.getMessage()]
    assert len(alert_lines) == 1 and "object_missing" in alert_lines[0] and original in alert_lines[0]
    assert "Amelia" not in caplog.text and "Whitfield" not in caplog.text  # ids only in logs
    assert json.loads(alerts.read_text().splitlines()[0])["object_key"] == original
    with services.db.session() as session:
        alert = session.scalars(select(Event).where(Event.kind == "fixity_alert")).one()
        summary = session.scalars(select(Event).where(Event.kind == "fixity_checked")).one()
    assert alert.outcome == "object_missing" and alert.batch_id == doc.batch_id
    assert alert.id < summary.id  # raised when found, before the run ended


def test_a_row_without_its_objects_is_reported(filed):
    services, doc = filed.services, doc_row(filed.services, filed.docs[0])
    raw_sql(services, (
        "INSERT INTO documents (id, batch_id, seq, first_page, last_page, page_count, third_party, state, "
        "state_reasons, searchable_key, searchable_sha256, manifest_key, manifest_sha256, created_at, updated_at) "
        "VALUES ('D-planted0000001', :b, 9, 1, 1, 1, false, 'verified', '[]', 'searchable/00/planted.pdf', :h, "
        "'manifests/00/planted.json', :h, :t, :t)", {"b": doc.batch_id, "h": "0" * 64, "t": "2026-01-01 00:00:00"}))

    result = check(services)

    planted = [f for f in result.findings if f.document_id == "D-planted0000001"]
    assert {f.code for f in planted} == {Code.OBJECT_MISSING, Code.STEP_MISSING}
    assert sorted(f.object_key for f in planted if f.code == Code.OBJECT_MISSING) == [
        "manifests/00/planted.json", "searchable/00/planted.pdf"]
    assert all(f.document_id == "D-planted0000001" for f in result.findings)


def test_an_object_without_a_row_is_reported(filed):
    services, doc = filed.services, doc_row(filed.services, filed.docs[1])
    stray = services.store.put_bytes("searchable/ab/stray.pdf", b"%PDF-1.4 not filed", content_type="application/pdf")
    raw_sql(services, *[(f"DELETE FROM {t} WHERE document_id = :id", {"id": doc.id})
                        for t in ("document_children", "pages", "tags", "qc_results", "link_candidates")],
            ("DELETE FROM documents WHERE id = :id", {"id": doc.id}))

    result = check(services)

    unreferenced = sorted(f.object_key for f in found(result, Code.OBJECT_UNREFERENCED))
    assert unreferenced == sorted([stray.key, doc.searchable_key, doc.manifest_key])
    (gone,) = found(result, Code.DOCUMENT_MISSING)
    assert gone.document_id == doc.id
    assert {f.code for f in result.findings} == {Code.OBJECT_UNREFERENCED, Code.DOCUMENT_MISSING}


# --- the log -------------------------------------------------------------------------------------


def test_an_edited_event_field_is_reported(filed, cli):
    services = filed.services
    target = event_id(services, "received")
    raw_sql(services, ("UPDATE events SET actor = 'someone.else' WHERE id = :id", {"id": target}))

    result = check(services)

    (edited,) = found(result, Code.EVENT_ALTERED)
    assert edited.where == f"event {target}" and edited.event_id == target
    assert {f.code for f in result.findings} == {Code.EVENT_ALTERED}
    assert "event_altered" in cli("fixity").output


def test_a_deleted_event_leaves_a_gap_and_a_missing_step(filed):
    services, doc = filed.services, filed.docs[0]
    target = event_id(services, "qc", doc)
    raw_sql(services, ("DELETE FROM events WHERE id = :id", {"id": target}))

    result = check(services)

    (gap,) = found(result, Code.EVENTS_MISSING)
    assert gap.where == f"events {target}"
    (step,) = found(result, Code.STEP_MISSING)
    assert step.document_id == doc and "qc" in step.what


def test_events_cut_from_the_end_are_reported_against_the_chain_head(filed):
    services = filed.services
    with services.db.session() as session:
        last = session.scalar(select(func.max(Event.id)))
    raw_sql(services, ("DELETE FROM events WHERE id = :id", {"id": last}))

    result = check(services)

    (head,) = found(result, Code.CHAIN_HEAD_MISMATCH)
    assert head.event_id == last
    (step,) = found(result, Code.STEP_MISSING)  # the last event was the second document's verification
    assert step.document_id == filed.docs[1] and "verified" in step.what


def test_a_rewritten_events_table_with_a_fresh_valid_chain_is_caught_by_the_anchors(filed):
    services, doc = filed.services, filed.docs[0]
    anchor = anchors.write_anchor(services, actor=AUDITOR, force=True)
    assert re.fullmatch(rf"anchors/\d{{8}}T\d{{12}}Z-{anchor.event_id}\.json", anchor.key)
    verified = event_id(services, "verified", doc)
    raw_sql(services, ("UPDATE events SET actor = 'bs.jones' WHERE id = :id", {"id": verified}),
            ("DELETE FROM chain_anchors", {}))  # the attacker also empties the database's list of anchors
    rehash_chain(services)

    result = check(services)

    codes = {f.code for f in result.findings}
    assert Code.EVENT_ALTERED not in codes and Code.CHAIN_BROKEN not in codes  # the chain itself is valid again
    (mismatch,) = found(result, Code.ANCHOR_MISMATCH)
    assert mismatch.event_id == anchor.event_id and mismatch.object_key == anchor.key
    assert mismatch.since == anchor.created_at and mismatch.since_basis == "anchored at"
    assert Code.FOUR_EYES in codes  # and the rewrite made the scanner the verifier: the record shows it


def test_steps_reordered_in_a_rehashed_log_are_reported(filed):
    services, doc = filed.services, filed.docs[0]
    ocr, tagged = event_id(services, "ocr", doc), event_id(services, "tagged", doc)
    raw_sql(services, ("UPDATE events SET kind = 'tagged' WHERE id = :id", {"id": ocr}),
            ("UPDATE events SET kind = 'ocr' WHERE id = :id", {"id": tagged}))
    rehash_chain(services)

    (disordered,) = check(services).findings
    assert disordered.code == Code.STEPS_OUT_OF_ORDER and disordered.document_id == doc


def test_a_verification_by_the_scanner_is_reported_from_the_log(with_children, tmp_path):
    services = with_children
    filed = file_scans(services, tmp_path, verify=False)
    doc = filed.docs[0]
    with services.db.session() as session:  # a verification that went around escr.app.verification
        d = session.get(Document, doc)
        d.state, d.verified_by, d.verified_at = "verified", "bs.jones", d.updated_at
        record(session, ProtocolEvent(kind=Kind.VERIFIED, actor=Actor(kind="user", name="bs.jones"),
                                      batch_id=d.batch_id, document_id=doc,
                                      parameters=payloads.Verified(children=["AB123456"], doc_type=d.doc_type, third_party=False)))

    (four_eyes,) = check(services).findings
    assert four_eyes.code == Code.FOUR_EYES and four_eyes.document_id == doc and "scanned" in four_eyes.what


# --- anchors -------------------------------------------------------------------------------------


def test_anchors_are_sealed_with_the_configured_key(filed, monkeypatch):
    services = filed.services
    keyed = services.settings.model_copy(update={"anchor": services.settings.anchor.model_copy(
        update={"key": SecretStr("test-anchor-key")})})
    with_key = Services(keyed, services.db, services.store)
    anchor = anchors.write_anchor(with_key, force=True)
    assert anchor.method == "hmac-sha256"

    assert check(with_key).ok
    (no_key,) = check(services).findings  # neither ESCR_ANCHOR__KEY nor a key file to check the seal
    assert no_key.code == Code.ANCHOR_KEY_MISSING

    forged = json.loads(anchor.encode())
    forged["event_count"] += 1
    body = {k: forged[k] for k in ("version", "event_id", "head_hash", "event_count", "created_at")}
    forged["digest"] = anchors.seal(body, SecretStr("a-guessed-key"))[1]
    path = object_path(services, anchor.key)
    os.chmod(path, 0o644)
    path.write_bytes(json.dumps(forged).encode())

    (invalid,) = check(with_key).findings
    assert invalid.code == Code.ANCHOR_INVALID and invalid.object_key == anchor.key

    os.remove(path)
    (missing,) = check(with_key).findings
    assert missing.code == Code.ANCHOR_MISSING and missing.object_key == anchor.key


def test_an_anchor_is_written_at_most_once_per_interval(filed):
    daily = filed.services.settings.model_copy(update={"anchor": filed.services.settings.anchor.model_copy(
        update={"interval_minutes": 24 * 60, "after_each_batch": False})})
    services = Services(daily, filed.services.db, filed.services.store)
    with services.db.session() as session:
        first = session.scalar(select(Event.at).order_by(Event.id).limit(1))
    assert filed.services.settings.anchor.interval_minutes == 5.0  # the default: often
    assert anchors.write_anchor(services, at=first + timedelta(hours=23, minutes=59)) is None
    written = anchors.write_anchor(services, at=first + timedelta(hours=24))
    assert written is not None
    assert anchors.write_anchor(services, at=first + timedelta(hours=47)) is None  # 23 h after the last
    assert anchors.write_anchor(services, at=first + timedelta(hours=48)) is not None
    assert anchors.write_anchor(services, force=True) is not None  # `escr anchor`: on demand
    with services.db.session() as session:
        assert session.scalar(select(func.count(ChainAnchor.id))) == 3
        logged = session.scalars(select(Event).where(Event.kind == "anchored").order_by(Event.id)).all()
    assert [e.detail["outputs"]["anchor"] for e in logged][0] == written.key
    assert sorted(services.store.iter_keys("anchors/")) == sorted(r.detail["outputs"]["anchor"] for r in logged)
    assert check(services).ok


def test_the_watchers_housekeeping_anchors_and_runs_fixity_when_due(filed):
    services = filed.services
    due = services.settings.model_copy(update={
        "anchor": services.settings.anchor.model_copy(update={"interval_minutes": 1e-9}),
        "provenance": services.settings.provenance.model_copy(update={"fixity_interval_hours": 1e-9})})
    housekeeping = fixity.Housekeeping(Services(due, services.db, services.store))

    housekeeping()
    housekeeping._fixity.join(timeout=120)

    with services.db.session() as session:
        assert session.scalar(select(func.count(ChainAnchor.id))) == 1
        run = session.scalars(select(FixityRun)).one()
    assert run.trigger == "schedule" and run.findings_count == 0


def test_anchors_are_sealed_by_default_with_a_key_made_owner_only_apart_from_the_database(filed):
    services = filed.services
    key_file = services.settings.anchor_key_file
    assert services.settings.anchor.key is None and not key_file.exists()
    anchor = anchors.write_anchor(services, force=True)
    assert anchor.method == "hmac-sha256"
    assert key_file == services.settings.home / "keys" / "anchor.key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600" and oct(key_file.parent.stat().st_mode & 0o777) == "0o700"
    assert anchors.anchor_key(services.settings) is not None
    assert check(services).ok

    os.chmod(key_file, 0o644)
    assert [f.code for f in check(services).findings] == [Code.ANCHOR_KEY_EXPOSED]
    os.remove(key_file)
    assert {f.code for f in check(services).findings} == {Code.ANCHOR_KEY_MISSING}


def test_an_event_deleted_the_chain_rehashed_and_the_anchor_remade_without_the_key_is_found(filed):
    """The attack of issue 20: an earlier event deleted, the chain rehashed, the anchor re-made."""
    services = filed.services
    anchor = anchors.write_anchor(services, force=True)
    victim = event_id(services, "verified", filed.docs[0])
    raw_sql(services, ("DELETE FROM events WHERE id = :id", {"id": victim}), ("DELETE FROM chain_anchors", {}))
    rehash_chain(services)
    os.chmod(object_path(services, anchor.key), 0o644)
    os.remove(object_path(services, anchor.key))
    unkeyed = services.settings.model_copy(update={"anchor": services.settings.anchor.model_copy(
        update={"key_file": services.settings.home / "attacker" / "none.key"})})
    attacker = Services(unkeyed, services.db, services.store)
    with services.db.session() as session:  # without the key file the attacker can seal only with SHA-256
        head = session.scalars(select(Event).order_by(Event.id.desc())).first()
        count = session.scalar(select(func.count(Event.id)))
    body = anchors.anchor_body(head.id, head.hash, count, anchor.created_at)
    method, digest = anchors.seal(body, None)
    remade = anchors.Anchor(anchor.key, head.id, head.hash, count, anchor.created_at, method, digest)
    attacker.store.put_bytes(remade.key, remade.encode(), content_type="application/json", retain_until=None)

    codes = {f.code for f in check(services).findings}
    assert Code.ANCHOR_UNSEALED in codes


def test_a_tail_cut_back_past_the_last_anchor_is_found(filed):
    services = filed.services
    anchor = anchors.write_anchor(services, force=True)
    with services.db.session() as session:
        anchored = session.scalar(select(Event.id).where(Event.kind == "anchored"))
        before = session.scalars(select(Event).where(Event.id < anchored).order_by(Event.id.desc())).first()
        last_id, last_hash = before.id, before.hash
    # Cut the `anchored` event and everything after it, and put the head back: the chain is whole again.
    raw_sql(services, ("DELETE FROM events WHERE id >= :id", {"id": anchored}),
            ("UPDATE chain_head SET last_event_id = :i, last_hash = :h", {"i": last_id, "h": last_hash}))

    (cut,) = check(services).findings
    assert cut.code == Code.CHAIN_TAIL_CUT and cut.object_key == anchor.key and cut.event_id == anchor.event_id


def test_an_anchor_is_due_as_soon_as_a_scan_is_filed(filed, tmp_path):
    services = filed.services
    assert anchors.write_anchor(services) is not None  # scans were filed and never anchored
    assert anchors.write_anchor(services) is None  # nothing filed since, interval not over
    ingest(services, write_pdf([coversheet_page(CoverSheet("B-VERIFY03", ("AB123456",), "referral", 1), dpi=300),
                                page(REFERRAL)], tmp_path / "another.pdf"))
    assert anchors.write_anchor(services) is not None


# --- scope and "since when" ----------------------------------------------------------------------


def test_a_scoped_check_covers_only_its_child_or_document(filed, cli):
    services = filed.services
    other = doc_row(services, filed.docs[1])
    os.remove(object_path(services, other.searchable_key))

    assert check(services, Scope(document_id=filed.docs[0])).ok
    assert check(services, Scope(child_id="AB123456")).ok
    assert [f.code for f in check(services, Scope(child_id="CD654321")).findings] == [Code.OBJECT_MISSING]
    assert cli("fixity", "--doc", filed.docs[0]).exit_code == 0
    assert cli("fixity", "--child", "CD654321").exit_code == 1
    assert cli("fixity", "--since", "2000-01-01").exit_code == 1
    with services.db.session() as session:
        looked = session.scalars(select(Event).where(Event.kind == "accessed", Event.child_id == "CD654321")).all()
    assert any(e.detail.get("action") == "provenance" and e.actor == "auditor.li" for e in looked)


def test_a_period_check_covers_scans_received_from_its_first_to_its_last_day(filed, cli):
    services = filed.services
    os.remove(object_path(services, doc_row(services, filed.docs[1]).searchable_key))
    today = datetime.now(UTC).date()
    week_ago, yesterday_but_one, tomorrow = today - timedelta(days=7), today - timedelta(days=2), today + timedelta(days=1)

    covering = check(services, Scope(since=week_ago, until=tomorrow))
    assert [f.code for f in covering.findings] == [Code.OBJECT_MISSING] and covering.tally.documents_checked == 2
    assert [f.code for f in check(services, Scope(until=tomorrow)).findings] == [Code.OBJECT_MISSING]
    before = check(services, Scope(since=week_ago, until=yesterday_but_one))
    assert before.ok and before.tally.documents_checked == 0  # both scans arrived after the period
    with services.db.session() as session:
        run = session.get(FixityRun, before.run_id)
        assert run.scope["until"] == yesterday_but_one.isoformat() and not run.scope["whole"]
        logged = session.scalars(select(Event).where(Event.kind == "fixity_checked").order_by(Event.id.desc())).first()
    assert payloads.read(payloads.FixityChecked, logged.detail["parameters"]).scope.until == yesterday_but_one.isoformat()

    assert cli("fixity", "--since", week_ago.isoformat(), "--until", tomorrow.isoformat()).exit_code == 1
    assert cli("fixity", "--since", week_ago.isoformat(), "--until", yesterday_but_one.isoformat()).exit_code == 0
    backwards = cli("fixity", "--since", "2026-03-31", "--until", "2026-03-01")
    assert backwards.exit_code == 1
    assert "the period ends (1 March 2026) before it starts (31 March 2026)" in " ".join(backwards.output.split())
    both = cli("fixity", "--child", "AB123456", "--until", "2026-03-01")
    assert both.exit_code == 2 and "give at most one of --child, --doc, or a period" in both.output


def test_since_when_is_narrowed_by_earlier_runs(filed):
    services, doc = filed.services, doc_row(filed.services, filed.docs[0])
    clean = check(services, trigger="schedule")
    assert clean.ok
    os.remove(object_path(services, doc.manifest_key))

    (first,) = check(services, trigger="schedule").findings
    assert first.since == clean.started_at and f"fixity run {clean.run_id}" in first.since_basis
    second_run = check(services, trigger="schedule")
    (again,) = second_run.findings
    assert again.since == clean.started_at and again.first_reported is not None
