"""The S3 / MinIO object store against real S3 server processes on loopback (see tests/support/s3server.py).

Store-level tests run against every local server (SeaweedFS and moto), or only against the one
named by ESCR_TEST_S3_ENDPOINT (a real MinIO). A test of a rule the server itself enforces runs
only where the server enforces it. The end-to-end and outage tests run against SeaweedFS, which
keeps its data across a crash, or the external server through a cut-able loopback proxy.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from minio.commonconfig import COMPLIANCE as MINIO_COMPLIANCE
from minio.commonconfig import GOVERNANCE as MINIO_GOVERNANCE
from minio.error import S3Error
from minio.retention import Retention as MinioRetention
from sqlalchemy import func, select
from typer.testing import CliRunner

from escr.app.verification import verify_document
from escr.cli.main import app
from escr.errors import ConfigError, NotFound, ProtocolViolation, StorageError
from escr.pages.coversheet import CoverSheet
from escr.record.events import Kind
from escr.record.models import Batch, Document, Event
from escr.services import open_services
from escr.settings import StoreSettings, load_settings
from escr.storage import open_store
from escr.storage.objectstore import COMPLIANCE, GOVERNANCE, FilesystemStore, Retention, content_key, today_utc
from escr.storage.s3store import S3Store, _lock_datetime
from tests.support import s3server
from tests.support.cli import cli_env
from tests.support.intake import ingest
from tests.support.s3server import S3TestServer, external_server_configured, start_server
from tests.support.scans import coversheet_page, degrade, text_page, write_pdf

KINDS = ["external"] if external_server_configured() else ["seaweedfs", "moto"]
TODAY = today_utc()
NEXT_YEAR = TODAY + timedelta(days=365)


@pytest.fixture(scope="session", params=KINDS)
def s3_server(request, tmp_path_factory) -> Iterator[S3TestServer]:
    server = start_server(request.param, tmp_path_factory.mktemp(f"s3-{request.param}"))
    yield server
    if server.argv:
        server.close()


@pytest.fixture(scope="module")
def seaweedfs(tmp_path_factory) -> Iterator[S3TestServer]:
    """A server of this module's own, for tests that stop it (or the external server)."""
    server = start_server("seaweedfs", tmp_path_factory.mktemp("s3-own"))
    yield server
    if server.argv:
        server.close()


def make_store(server: S3TestServer, **overrides) -> S3Store:  # type: ignore[no-untyped-def]
    return S3Store.from_settings(server.new_bucket_name(), StoreSettings(**server.store_settings(**overrides)))


def requires(server: S3TestServer, capability: str) -> None:
    if capability not in server.capabilities:
        pytest.skip(f"{server.name} does not enforce {capability}, or is not known to (see tests/support/s3server.py)")


def head(store: S3Store, key: str) -> dict[str, str]:
    """The object's headers as the server returns them, without escr in between."""
    stat = store.client.stat_object(store.bucket, key)
    return {k.lower(): v for k, v in stat.metadata.items()}


def checksum_headers(data: bytes) -> dict[str, str]:
    import base64

    return {"x-amz-checksum-sha256": base64.b64encode(hashlib.sha256(data).digest()).decode(),
            "x-amz-sdk-checksum-algorithm": "SHA256"}


# --- the store ----------------------------------------------------------------------------------


def test_put_is_content_addressed_read_back_and_versioned(s3_server):
    store = make_store(s3_server)
    data = b"%PDF-1.4 an untouched scan"
    sha = hashlib.sha256(data).hexdigest()
    key = content_key("originals", sha, ".pdf")

    first = store.put_bytes(key, data, content_type="application/pdf", retain_until=NEXT_YEAR)
    again = store.put_bytes(key, data, content_type="application/pdf", retain_until=NEXT_YEAR)

    assert first.sha256 == again.sha256 == sha and first.size == len(data)
    assert first.version and again.version == first.version  # a retry writes no second version
    assert store.versions(key) == [first.version]
    assert first.location == f"s3://{store.bucket}/{key}?versionId={first.version}"
    with store.open(key) as fh:
        assert fh.read() == data
    assert list(store.iter_keys("originals/")) == [key]
    assert store.stat("originals/00/none.pdf") is None
    with pytest.raises(NotFound):
        store.open("originals/00/none.pdf")
    # The bucket was created with object lock, which keeps every version.
    assert store.client.get_bucket_versioning(store.bucket).status == "Enabled"
    store.client.get_object_lock_config(store.bucket)  # raises when the bucket has no object lock


def test_same_key_with_other_bytes_is_refused(s3_server):
    store = make_store(s3_server)
    store.put_bytes("originals/aa/x.pdf", b"one", content_type="application/pdf", retain_until=NEXT_YEAR)
    with pytest.raises(StorageError):
        store.put_bytes("originals/aa/x.pdf", b"two", content_type="application/pdf", retain_until=NEXT_YEAR)
    with store.open("originals/aa/x.pdf") as fh:
        assert fh.read() == b"one"
    assert len(store.versions("originals/aa/x.pdf")) == 1


def test_every_object_gets_its_retention_date_or_a_hold_on_the_server(s3_server):
    store = make_store(s3_server, lock_mode="COMPLIANCE")
    dated = store.put_bytes("searchable/aa/dated.pdf", b"dated", content_type="application/pdf",
                            retain_until=date(2090, 6, 14))
    unknown = store.put_bytes("searchable/aa/unknown.pdf", b"unknown", content_type="application/pdf")

    headers = head(store, dated.key)  # what the server itself says
    assert headers["x-amz-object-lock-mode"] == "COMPLIANCE"
    assert headers["x-amz-object-lock-retain-until-date"].startswith("2090-06-14T00:00:00")
    assert store.get_retention(dated.key) == Retention(COMPLIANCE, date(2090, 6, 14), False)
    # No date known yet ("keep"): a legal hold until there is one.
    assert store.client.is_object_legal_hold_enabled(store.bucket, unknown.key)
    assert store.get_retention(unknown.key) == Retention(None, None, True)


def test_a_date_already_past_still_locks_the_new_object_for_a_day(s3_server):
    store = make_store(s3_server)
    obj = store.put_bytes("manifests/aa/old.json", b"{}", content_type="application/json",
                          retain_until=date(2001, 1, 1))
    assert store.get_retention(obj.key).until == today_utc() + timedelta(days=1)


def test_compliance_retention_is_extended_but_never_shortened(s3_server):
    store = make_store(s3_server, lock_mode="COMPLIANCE")
    obj = store.put_bytes("searchable/bb/c.pdf", b"c", content_type="application/pdf", retain_until=NEXT_YEAR)

    later = store.extend_retention(obj.key, NEXT_YEAR + timedelta(days=30))
    assert later.until == NEXT_YEAR + timedelta(days=30) and later.mode == COMPLIANCE
    for bypass in (False, True):
        with pytest.raises(ProtocolViolation):
            store.extend_retention(obj.key, NEXT_YEAR, bypass_governance=bypass)
    assert store.get_retention(obj.key) == Retention(COMPLIANCE, NEXT_YEAR + timedelta(days=30), False)


def test_compliance_weakening_keeps_compliance(s3_server):
    store = make_store(s3_server, lock_mode="COMPLIANCE")
    obj = store.put_bytes("searchable/bb/w.pdf", b"w", content_type="application/pdf", retain_until=NEXT_YEAR)
    after = store.extend_retention(obj.key, NEXT_YEAR + timedelta(days=1), GOVERNANCE)
    assert after == Retention(COMPLIANCE, NEXT_YEAR + timedelta(days=1), False)


def test_the_server_itself_refuses_to_shorten_compliance(s3_server):
    requires(s3_server, s3server.COMPLIANCE_NOT_SHORTENED)
    store = make_store(s3_server, lock_mode="COMPLIANCE")
    obj = store.put_bytes("searchable/bb/s.pdf", b"s", content_type="application/pdf", retain_until=NEXT_YEAR)
    with pytest.raises(S3Error):  # escr bypassed: straight to the server
        store.client.set_object_retention(store.bucket, obj.key,
                                          MinioRetention(MINIO_COMPLIANCE, _lock_datetime(TODAY + timedelta(days=2))))
    assert store.get_retention(obj.key).until == NEXT_YEAR


def test_governance_shortening_needs_an_explicit_bypass_and_is_logged(s3_server, caplog):
    store = make_store(s3_server, lock_mode="GOVERNANCE")
    obj = store.put_bytes("searchable/cc/g.pdf", b"g", content_type="application/pdf", retain_until=NEXT_YEAR)
    with pytest.raises(ProtocolViolation):
        store.extend_retention(obj.key, TODAY + timedelta(days=10))
    assert store.get_retention(obj.key).until == NEXT_YEAR

    with caplog.at_level(logging.WARNING, logger="escr.storage.objectstore"):
        shorter = store.extend_retention(obj.key, TODAY + timedelta(days=10), bypass_governance=True)
    assert shorter == Retention(GOVERNANCE, TODAY + timedelta(days=10), False)
    assert any("shortened under GOVERNANCE bypass" in r.getMessage() and obj.key in r.getMessage()
               for r in caplog.records)


def test_the_server_itself_refuses_governance_shortening_without_bypass(s3_server):
    requires(s3_server, s3server.GOVERNANCE_NEEDS_BYPASS)
    store = make_store(s3_server)
    obj = store.put_bytes("searchable/cc/h.pdf", b"h", content_type="application/pdf", retain_until=NEXT_YEAR)
    with pytest.raises(S3Error):
        store.client.set_object_retention(store.bucket, obj.key,
                                          MinioRetention(MINIO_GOVERNANCE, _lock_datetime(TODAY + timedelta(days=2))))
    assert store.get_retention(obj.key).until == NEXT_YEAR


def test_legal_hold_on_and_off(s3_server):
    store = make_store(s3_server)
    obj = store.put_bytes("searchable/dd/h.pdf", b"held", content_type="application/pdf", retain_until=NEXT_YEAR)
    assert store.set_legal_hold(obj.key, True).legal_hold
    assert store.client.is_object_legal_hold_enabled(store.bucket, obj.key)
    assert not store.set_legal_hold(obj.key, False).legal_hold
    assert not store.client.is_object_legal_hold_enabled(store.bucket, obj.key)
    assert store.get_retention(obj.key).until == NEXT_YEAR  # the retention date is not touched


def test_deletion_is_refused_while_retained_or_held(s3_server):
    store = make_store(s3_server)
    retained = store.put_bytes("originals/ee/r.pdf", b"r", content_type="application/pdf", retain_until=NEXT_YEAR)
    held = store.put_bytes("originals/ee/h.pdf", b"h", content_type="application/pdf")  # unknown date: held
    for obj in (retained, held):
        with pytest.raises(ProtocolViolation):
            store.delete(obj.key)
    if s3server.DELETION_REFUSED in s3_server.capabilities:  # and the server refuses it by itself
        for obj in (retained, held):
            with pytest.raises(S3Error) as refused:
                store.client.remove_object(store.bucket, obj.key, version_id=obj.version)
            assert refused.value.code == "AccessDenied"
    for obj in (retained, held):
        with store.open(obj.key) as fh:
            assert fh.read() in (b"r", b"h")


def test_upload_with_lock_parameters_needs_a_checksum_where_the_server_says_so(s3_server):
    requires(s3_server, s3server.LOCK_UPLOAD_NEEDS_CHECKSUM)
    store = make_store(s3_server)
    store.ensure_bucket()
    lock = MinioRetention(MINIO_GOVERNANCE, _lock_datetime(NEXT_YEAR))
    with pytest.raises(S3Error) as refused:  # the plain minio call, as AWS would refuse it
        store.client.put_object(store.bucket, "plain", io.BytesIO(b"x"), 1, retention=lock)
    assert refused.value.code == "MissingUploadObjectWithObjectLockHeaders"
    store.client.put_object(store.bucket, "with-checksum", io.BytesIO(b"x"), 1, retention=lock,
                            metadata=checksum_headers(b"x"))
    assert store.put_bytes("escr", b"x", content_type="text/plain", retain_until=NEXT_YEAR).version


def test_bytes_that_do_not_match_the_receipt_hash_are_never_reported_durable(s3_server, tmp_path):
    store = make_store(s3_server)
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(b"the bytes as they are now")
    receipt = hashlib.sha256(b"the bytes as they were received").hexdigest()
    key = content_key("originals", receipt, ".pdf")
    with pytest.raises(StorageError):
        store.put_file(key, scan, sha256=receipt, content_type="application/pdf", retain_until=NEXT_YEAR)
    if s3server.CHECKSUM_VALIDATED in s3_server.capabilities:
        assert store.stat(key) is None  # the server refused the upload itself


def test_open_refuses_an_object_that_no_longer_matches_its_hash(s3_server):
    store = make_store(s3_server)
    store.ensure_bucket()
    # An object whose recorded SHA-256 is not that of its bytes (written around escr).
    store.client.put_object(store.bucket, "originals/ff/bad.pdf", io.BytesIO(b"changed"), 7,
                            metadata={"sha256": hashlib.sha256(b"original").hexdigest()})
    with pytest.raises(StorageError):
        store.open("originals/ff/bad.pdf")


def test_checksum_verification_mode(s3_server):
    store = make_store(s3_server, verify="checksum")
    obj = store.put_bytes("searchable/gg/k.pdf", b"checksummed", content_type="application/pdf",
                          retain_until=NEXT_YEAR)
    assert obj.sha256 == hashlib.sha256(b"checksummed").hexdigest()
    with store.open(obj.key) as fh:
        assert fh.read() == b"checksummed"


def test_server_side_encryption(s3_server):
    requires(s3_server, s3server.SSE_S3)
    store = make_store(s3_server, sse=True)
    obj = store.put_bytes("searchable/hh/e.pdf", b"encrypted at rest", content_type="application/pdf",
                          retain_until=NEXT_YEAR)
    assert head(store, obj.key).get("x-amz-server-side-encryption") == "AES256"
    with store.open(obj.key) as fh:
        assert fh.read() == b"encrypted at rest"


def test_a_large_object_goes_up_in_parts_and_is_locked_after(s3_server, tmp_path):
    store = make_store(s3_server)
    store.single_put_max_bytes = 5 * 1024**2  # smaller than the file: multipart
    scan = tmp_path / "large.tif"
    data = os.urandom(6 * 1024**2)
    scan.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    obj = store.put_file(content_key("originals", sha, ".tif"), scan, sha256=sha, content_type="image/tiff",
                         retain_until=NEXT_YEAR)
    assert obj.size == len(data) and store.get_retention(obj.key).until == NEXT_YEAR
    with store.open(obj.key) as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == sha


def test_a_bucket_without_object_lock_is_refused(s3_server):
    store = make_store(s3_server)
    store.client.make_bucket(store.bucket)  # made by hand, without object lock
    with pytest.raises(StorageError) as refused:
        store.put_bytes("x", b"x", content_type="text/plain", retain_until=NEXT_YEAR)
    assert refused.value.code == "bucket_not_locked"


def test_store_settings_are_checked(tmp_path):
    with pytest.raises(ConfigError):
        open_store(load_settings(home=tmp_path, store_url="s3://bucket"))  # no endpoint
    settings = load_settings(home=tmp_path, store_url="s3://records",
                             store={"endpoint": "127.0.0.1:9", "access_key": "key-id", "secret_key": "s3cr3t-value"})
    assert "s3cr3t-value" not in repr(settings) and "key-id" not in repr(settings)  # secrets are never printed
    store = open_store(settings)  # nothing is contacted until the first use
    assert isinstance(store, S3Store) and store.bucket == "records"


def test_an_unreachable_store_is_a_storage_error_within_seconds(tmp_path):
    store = S3Store.from_settings("records", StoreSettings(endpoint=f"127.0.0.1:{s3server.free_port()}",
                                                           secure=False, connect_timeout_s=1, retries=1))
    started = time.monotonic()
    with pytest.raises(StorageError) as failed:
        store.put_bytes("x", b"x", content_type="text/plain")
    assert "unreachable" in failed.value.message
    assert time.monotonic() - started < 30  # bounded: the pipeline defers the file instead of hanging


def test_a_paused_server_fails_puts_quickly_and_they_succeed_once_it_answers(s3_server):
    if not s3_server.argv:
        pytest.skip("the external server is not paused by the tests")
    store = make_store(s3_server, connect_timeout_s=1.0, read_timeout_s=2.0, retries=1)
    store.ensure_bucket()
    s3_server.pause()
    try:
        with pytest.raises(StorageError):
            store.put_bytes("searchable/ii/p.pdf", b"paused", content_type="application/pdf", retain_until=NEXT_YEAR)
    finally:
        s3_server.resume()
    obj = store.put_bytes("searchable/ii/p.pdf", b"paused", content_type="application/pdf", retain_until=NEXT_YEAR)
    assert len(store.versions(obj.key)) == 1  # the failed attempt left no second version
    assert store.get_retention(obj.key).until == NEXT_YEAR


# --- the filesystem store keeps the same rules in its sidecars -----------------------------------


def test_filesystem_store_retention_hold_and_deletion(tmp_path):
    store = FilesystemStore(tmp_path / "store", lock_mode="COMPLIANCE")
    dated = store.put_bytes("searchable/aa/d.pdf", b"d", content_type="application/pdf", retain_until=NEXT_YEAR)
    unknown = store.put_bytes("searchable/aa/u.pdf", b"u", content_type="application/pdf")
    assert store.get_retention(dated.key) == Retention(COMPLIANCE, NEXT_YEAR, False)
    assert store.get_retention(unknown.key).legal_hold
    with pytest.raises(ProtocolViolation):
        store.extend_retention(dated.key, TODAY + timedelta(days=3), bypass_governance=True)
    for key in (dated.key, unknown.key):
        with pytest.raises(ProtocolViolation):
            store.delete(key)
    with pytest.raises(StorageError):  # nor overwritten
        store.put_bytes(dated.key, b"other", content_type="application/pdf", retain_until=NEXT_YEAR)
    assert sorted(store.iter_keys()) == [dated.key, unknown.key]  # the sidecars are not objects

    governance = FilesystemStore(tmp_path / "gov")
    obj = governance.put_bytes("x/y.pdf", b"y", content_type="application/pdf", retain_until=NEXT_YEAR)
    with pytest.raises(ProtocolViolation):
        governance.extend_retention(obj.key, TODAY + timedelta(days=3))
    governance.extend_retention(obj.key, TODAY + timedelta(days=3), bypass_governance=True)
    assert governance.get_retention(obj.key).until == TODAY + timedelta(days=3)
    with pytest.raises(StorageError):
        governance.get_retention("../escape")


# --- end to end: the intake pipeline, the child index and legal holds on S3 -----------------------

A6 = (4.13, 5.83)
CHILDREN_HEADER = "child_id,given_names,family_name,date_of_birth,nhs_number,category,status,team,final_contact\n"


def small_page(lines: list[str]):  # type: ignore[no-untyped-def]
    return degrade(text_page(lines, dpi=300, size_inches=A6, font_pt=11), noise=0.0003, seed=3)


def cover_scan(path: Path, child_id: str, note: str) -> Path:
    """One cover sheet and one small page: OCR-light, but the whole pipeline."""
    sheet = CoverSheet(f"B-{hashlib.sha256(note.encode()).hexdigest()[:8].upper()}", (child_id,), "correspondence", 1)
    letter = small_page(["Letter to the family", "Date: 2 April 2026", note])
    return write_pdf([coversheet_page(sheet, dpi=300), letter], path)


def s3_settings(server: S3TestServer, home: Path, database_url: str | None, **store):  # type: ignore[no-untyped-def]
    return load_settings(home=home, stable_seconds=0.5, rescan_seconds=1.0, database_url=database_url,
                         store_url=f"s3://{server.new_bucket_name()}", store=server.store_settings(**store))


def escr_env(settings) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The same settings as environment variables, for the `escr` command line."""
    store = settings.store
    env = {"ESCR_HOME": str(settings.home)}
    if settings.store_url:
        env |= {"ESCR_STORE_URL": settings.store_url, "ESCR_STORE__ENDPOINT": store.endpoint,
                "ESCR_STORE__SECURE": str(store.secure).lower(),
                "ESCR_STORE__ACCESS_KEY": store.access_key.get_secret_value(),
                "ESCR_STORE__SECRET_KEY": store.secret_key.get_secret_value(), "ESCR_STORE__LOCK_MODE": store.lock_mode,
                "ESCR_STORE__CONNECT_TIMEOUT_S": "2", "ESCR_STORE__READ_TIMEOUT_S": "10", "ESCR_STORE__RETRIES": "1"}
    if settings.database_url:
        env["ESCR_DATABASE_URL"] = settings.database_url
    return env


def escr(args: list[str], settings, signed_in: dict[str, str] | None = None) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """Exit code and standard output; errors go to standard error, which is added when there are any.

    `signed_in` is tests.support.cli.cli_env's answer for the account to act as (none: the host operator)."""
    env = escr_env(settings) | {"ESCR_TOKEN": (signed_in or {}).get("ESCR_TOKEN", "")}
    result = CliRunner().invoke(app, args, env=env)
    return result.exit_code, result.stdout if result.exit_code == 0 else result.output


def import_children(services, csv_text: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "children.csv"
    path.write_text(csv_text)
    code, out = escr(["children", "import", str(path)], services.settings)  # on the server: the host operator
    assert code == 0, out


def events(services, kind: Kind, document_id: str | None = None) -> list[Event]:  # type: ignore[no-untyped-def]
    with services.db.session() as session:
        query = select(Event).where(Event.kind == str(kind)).order_by(Event.id)
        if document_id:
            query = query.where(Event.document_id == document_id)
        return list(session.scalars(query))


def objects_of(services, document_id: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    with services.db.session() as session:
        doc = session.get(Document, document_id)
        return {"original": doc.batch.original_key, "searchable": doc.searchable_key, "manifest": doc.manifest_key}


@pytest.mark.ocr
def test_a_scan_is_filed_into_s3_with_every_object_locked(seaweedfs, tmp_path, database_url, children_csv):
    services = open_services(s3_settings(seaweedfs, tmp_path / "home", database_url, lock_mode="COMPLIANCE"))
    import_children(services, children_csv.read_text(), tmp_path)
    scan = write_pdf([coversheet_page(CoverSheet("B-S3E2E001", ("AB123456",), "correspondence", 1), dpi=300),
                      small_page(["Letter to the family", "Date: 2 April 2026", "About the visit."]),
                      coversheet_page(CoverSheet("B-S3E2E002", ("EF111222",), "correspondence", 1), dpi=300),
                      small_page(["Letter to the family", "Date: 3 April 2026", "About the school."])],
                     tmp_path / "batch.pdf")

    result = ingest(services, scan)

    assert result.status == "filed", result
    cp_doc, cin_doc = (d["id"] for d in result.documents)
    store = services.store
    assert isinstance(store, S3Store)
    # AB123456 is on a CP plan: kept to the 75th birthday, locked in COMPLIANCE on the server itself.
    for key in (objects_of(services, cp_doc)["searchable"], objects_of(services, cp_doc)["manifest"]):
        assert head(store, key)["x-amz-object-lock-mode"] == "COMPLIANCE"
        assert store.get_retention(key) == Retention(COMPLIANCE, date(2090, 6, 14), False)
    # EF111222's case closed without a known final contact: no date yet, so kept under a hold;
    # the original is shared by both documents, so it is kept as long as the longer: held too.
    for key in (objects_of(services, cin_doc)["searchable"], objects_of(services, cin_doc)["original"]):
        assert store.get_retention(key).legal_hold
    with services.db.session() as session:
        assert session.get(Document, cp_doc).retention_until == date(2090, 6, 14)
        assert session.get(Document, cin_doc).retention_until is None
    # Each object once, read back intact; the STORED event names the versions.
    for doc_id in (cp_doc, cin_doc):
        for key in objects_of(services, doc_id).values():
            assert len(store.versions(key)) == 1
        [stored] = events(services, Kind.STORED, doc_id)
        outputs = stored.detail["outputs"]
        assert outputs["searchable_version"] == store.stat(outputs["searchable"]).version
    with services.db.session() as session:  # a caseworker reads verified documents (issue 16)
        verify_document(session, cp_doc, user="tm.verifier")
    code, out = escr(["get", cp_doc, "-o", str(tmp_path / "copy.pdf")], services.settings,
                     cli_env(services, "sw.ahmed", "caseworker", teams=("north",)))
    assert code == 0, out
    with store.open(objects_of(services, cp_doc)["searchable"]) as fh:
        assert (tmp_path / "copy.pdf").read_bytes() == fh.read()


@pytest.mark.ocr
def test_a_childs_category_or_closure_changing_extends_retention_and_never_shortens_it(
        seaweedfs, tmp_path, database_url, children_csv):
    services = open_services(s3_settings(seaweedfs, tmp_path / "home", database_url, lock_mode="COMPLIANCE"))
    import_children(services, children_csv.read_text(), tmp_path)
    result = ingest(services, cover_scan(tmp_path / "cin.pdf", "EF111222", "About the school."))
    [doc_id] = [d["id"] for d in result.documents]
    keys = objects_of(services, doc_id)
    store = services.store
    assert all(store.get_retention(k).legal_hold for k in keys.values())  # no date known yet

    def reimport(category: str, final_contact: str) -> None:
        import_children(services, CHILDREN_HEADER + f"EF111222,Sophie,Marsh,2009-01-09,,{category},closed,north,"
                        f"{final_contact}\n", tmp_path)

    reimport("cin", "2025-01-10")  # closure recorded: children in need are kept 2 years after it
    assert {k: store.get_retention(key) for k, key in keys.items()} == {
        k: Retention(COMPLIANCE, date(2027, 1, 10), False) for k in keys}
    reimport("cp", "2025-01-10")  # now on a CP plan: to the 75th birthday
    assert store.get_retention(keys["searchable"]) == Retention(COMPLIANCE, date(2084, 1, 9), False)
    reimport("cin", "2025-01-10")  # back to in need: the CP plan stays in the history, so the 75th birthday
    assert {k: store.get_retention(key).until for k, key in keys.items()} == {k: date(2084, 1, 9) for k in keys}

    with services.db.session() as session:
        assert session.get(Document, doc_id).retention_until == date(2084, 1, 9)
    changed = events(services, Kind.RETENTION_CHANGED, doc_id)
    assert [(e.detail["parameters"]["old"], e.detail["parameters"]["new"]) for e in changed] == [
        (None, "2027-01-10"), ("2027-01-10", "2084-01-09")]
    assert [e.outcome for e in changed] == ["dated", "extended"] and changed[0].actor.startswith("host-operator:")
    objects = changed[1].detail["parameters"]["objects"]
    assert objects[keys["searchable"]]["before"]["until"] == "2027-01-10"
    assert objects[keys["searchable"]]["after"] == {"mode": "COMPLIANCE", "until": "2084-01-09", "legal_hold": False}
    # The schedule never asked for less (a refused shortening: tests/test_status_history.py).
    assert events(services, Kind.RETENTION_NOT_SHORTENED, doc_id) == []


@pytest.mark.ocr
def test_a_legal_hold_is_set_and_released_with_a_logged_reason(seaweedfs, tmp_path, database_url, children_csv):
    services = open_services(s3_settings(seaweedfs, tmp_path / "home", database_url))
    import_children(services, children_csv.read_text(), tmp_path)
    [doc] = ingest(services, cover_scan(tmp_path / "cp.pdf", "AB123456", "Needed in court.")).documents
    keys = objects_of(services, doc["id"])
    store = services.store

    records_manager = cli_env(services, "rm.patel", "auditor")
    code, out = escr(["hold", "set", doc["id"], "--reason", "Care proceedings: court bundle"], services.settings,
                     records_manager)
    assert code == 0, out
    assert all(store.client.is_object_legal_hold_enabled(store.bucket, k) for k in keys.values())
    with pytest.raises(ProtocolViolation):
        store.delete(keys["searchable"])
    code, out = escr(["hold", "set", doc["id"], "--reason", "again"], services.settings, records_manager)
    assert code == 2 and "already" in out  # nothing changes twice

    code, out = escr(["hold", "release", doc["id"], "--reason", "Proceedings concluded", "--json"], services.settings,
                     records_manager)
    assert code == 0, out
    assert not any(store.get_retention(k).legal_hold for k in keys.values())
    assert store.get_retention(keys["searchable"]).until == date(2090, 6, 14)  # the date still protects it

    logged = events(services, Kind.LEGAL_HOLD_SET, doc["id"]) + events(services, Kind.LEGAL_HOLD_RELEASED, doc["id"])
    assert [(e.actor, e.detail["parameters"]["reason"]) for e in logged] == [
        ("rm.patel", "Care proceedings: court bundle"), ("rm.patel", "Proceedings concluded")]
    code, out = escr(["hold", "set", doc["id"], "--reason", "  "], services.settings, records_manager)
    assert code == 2  # a hold needs a reason
    code, out = escr(["retention", "show", doc["id"], "--json"], services.settings,
                     cli_env(services, "auditor.lee", "auditor"))
    assert code == 0 and json.loads(out)["objects"]["manifest"]["until"] == "2090-06-14"


# --- outages: the store or the database goes away mid-batch and comes back ------------------------


def wait_for(condition: Callable[[], bool], what: str, limit_s: float = 240.0) -> None:
    """A bounded wait, so a broken watcher fails the test instead of hanging it."""
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        time.sleep(0.5)


def drop(settings, scan: Path, name: str) -> Path:  # type: ignore[no-untyped-def]
    """A scan arriving in the intake folder (written under a temporary name, then renamed)."""
    target = settings.intake_dir / "bs.jones" / "mfd-2" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(name + ".part")
    part.write_bytes(scan.read_bytes())
    part.rename(target)
    return target


def deferred_claims(log: Path) -> set[str]:
    import re

    return set(re.findall(r"deferred claim=(\S+):", log.read_text(errors="replace")))


def count(services, model) -> int:  # type: ignore[no-untyped-def]
    with services.db.session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def files_in(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def outage_mid_batch(services, tmp_path: Path, go_down: Callable[[], None], come_back: Callable[[], None], *,  # type: ignore[no-untyped-def]
                     database_reachable: bool = True) -> Path:
    """`escr watch` as a real process: two scans arrive while a service is down; it comes back."""
    settings = services.settings
    scans = [cover_scan(tmp_path / f"{name}.pdf", "AB123456", f"Outage letter {name}.") for name in ("first", "second")]
    log = tmp_path / "watch.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCR_")}
    env |= escr_env(settings) | {"ESCR_STABLE_SECONDS": "1.0", "ESCR_RESCAN_SECONDS": "2"}
    with open(log, "w") as stderr:
        watcher = subprocess.Popen([sys.executable, "-m", "escr", "watch"], env=env, stdout=subprocess.DEVNULL,
                                   stderr=stderr)
    try:
        wait_for(lambda: "watching intake folder" in log.read_text(), "the watcher to start", 60)
        go_down()
        first = drop(settings, scans[0], "first.pdf")
        wait_for(lambda: len(deferred_claims(log)) == 1, "the first scan to be deferred")
        assert not first.exists() and len(files_in(settings.processing_dir)) == 1  # it waits in processing/
        second = drop(settings, scans[1], "second.pdf")  # the watcher still takes new files
        wait_for(lambda: len(deferred_claims(log)) == 2, "the second scan to be deferred")
        assert not second.exists() and len(files_in(settings.processing_dir)) == 2
        if database_reachable:
            assert count(services, Batch) == 0
        come_back()
        wait_for(lambda: not files_in(settings.processing_dir), "both scans to be filed once the service is back", 300)
    finally:
        watcher.send_signal(2)
        try:
            watcher.wait(timeout=60)
        except subprocess.TimeoutExpired:
            watcher.kill()
    assert count(services, Batch) == 2 and count(services, Document) == 2
    assert not files_in(settings.quarantine_dir)  # an outage is not the scan's fault
    assert "retrying in" in log.read_text()  # waited with back-off
    for kind in (Kind.STORED, Kind.FILED):  # each document filed exactly once
        assert len(events(services, kind)) == 2
    return log


@pytest.mark.ocr
def test_the_store_going_down_mid_batch_loses_nothing_and_files_nothing_twice(
        seaweedfs, tmp_path, database_url, children_csv):
    proxy, overrides = None, {}
    if not seaweedfs.argv:  # an external server: cut a loopback relay in front of it instead
        host, port = seaweedfs.endpoint.rsplit(":", 1)
        proxy = s3server.LoopbackProxy((host, int(port)))
        proxy.start()
        overrides = {"endpoint": proxy.address}
    services = open_services(s3_settings(seaweedfs, tmp_path / "home", database_url, **overrides))
    import_children(services, children_csv.read_text(), tmp_path)
    store = services.store
    store.ensure_bucket()

    def store_down() -> None:
        if proxy:
            proxy.stop()
        else:
            seaweedfs.kill()  # a crash: SIGKILL

    def store_back() -> None:
        if proxy:
            proxy.start()
        else:
            seaweedfs.start()  # the same data directory and ports

    try:
        outage_mid_batch(services, tmp_path, store_down, store_back)
    finally:
        if seaweedfs.argv and seaweedfs.process is None:
            seaweedfs.start()
        if proxy:
            proxy.stop()
            proxy.start()
    with services.db.session() as session:
        docs = session.scalars(select(Document)).all()
        keys = [k for d in docs for k in (d.batch.original_key, d.searchable_key, d.manifest_key)]
    assert len(set(keys)) == 6
    for key in keys:  # every object once, locked to the CP child's 75th birthday
        assert len(store.versions(key)) == 1
        assert store.get_retention(key).until == date(2090, 6, 14)


@pytest.mark.ocr
def test_the_database_going_down_mid_batch_loses_nothing_and_files_nothing_twice(tmp_path, database_url, children_csv):
    if database_url is None:
        pytest.skip("needs PostgreSQL (ESCR_TEST_DATABASE_URL): the embedded SQLite file has no outage to cut")
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    socket_dir = url.query.get("host")
    if socket_dir:  # peer authentication over PostgreSQL's Unix socket (as .ci/services sets it up)
        port = int(url.query.get("port") or url.port or 5432)
        relay_dir = tmp_path / "pg"
        relay_dir.mkdir()
        proxy = s3server.LoopbackProxy(f"{socket_dir}/.s.PGSQL.{port}", listen=str(relay_dir / f".s.PGSQL.{port}"))
        proxied = url.update_query_dict({"host": str(relay_dir)}).render_as_string(hide_password=False)
    else:
        proxy = s3server.LoopbackProxy((url.host or "127.0.0.1", url.port or 5432))
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    proxy.start()
    services = open_services(load_settings(home=tmp_path / "home", database_url=proxied))
    import_children(services, children_csv.read_text(), tmp_path)

    try:
        outage_mid_batch(services, tmp_path, proxy.stop, proxy.start, database_reachable=False)
    finally:
        proxy.stop()
        proxy.start()
    with services.db.session() as session:
        referenced = {k for d in session.scalars(select(Document))
                      for k in (d.batch.original_key, d.searchable_key, d.manifest_key)}
    assert set(services.store.iter_keys()) == referenced  # nothing stored twice, nothing missing
