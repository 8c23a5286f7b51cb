"""Prometheus metrics and the health check, as an operator's dashboard and load balancer see them."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

from escr.intake.watcher import IntakeWatcher
from escr.record.database import Database
from escr.runtime import health, metrics
from escr.services import open_services
from escr.settings import CelerySettings
from tests.support.intake import free_port, ingest
from tests.support.scans import degrade, text_page, write_pdf

LETTER = ["Health visitor report", "Date: 20 February 2026", "Re: Amelia Whitfield  NHS number 943 476 5919",
          "Weight and growth are on track and the home was warm."]


def counted(name: str, **labels: str) -> float:
    return metrics.PROCESS.get_sample_value(name, labels) or 0.0


@pytest.mark.ocr
def test_a_filed_scan_is_counted_and_the_record_gauges_show_it(with_children, tmp_path):
    services = with_children
    page = degrade(text_page(LETTER, dpi=300, size_inches=(5.83, 8.27)), noise=0.0005, seed=1)
    blank = text_page([], dpi=300, size_inches=(5.83, 8.27))
    names = [("escr_files_total", {"status": "filed"}), ("escr_pages_ocred_total", {"executor": "local"}),
             ("escr_pages_blank_total", {}), ("escr_qc_checks_total", {"check": "resolution", "status": "pass"}),
             ("escr_stage_seconds_count", {"stage": "read_pages"}), ("escr_storage_store_seconds_count", {})]
    before = {name: counted(name, **labels) for name, labels in names}

    result = ingest(services, write_pdf([page, blank], tmp_path / "report.pdf"))

    assert result.status == "filed"
    (doc,) = result.documents
    after = {name: counted(name, **labels) for name, labels in names}
    assert after["escr_files_total"] == before["escr_files_total"] + 1
    assert after["escr_pages_ocred_total"] == before["escr_pages_ocred_total"] + 1
    assert after["escr_pages_blank_total"] == before["escr_pages_blank_total"] + 1
    assert after["escr_qc_checks_total"] == before["escr_qc_checks_total"] + 1
    assert after["escr_stage_seconds_count"] == before["escr_stage_seconds_count"] + 1
    assert after["escr_storage_store_seconds_count"] == before["escr_storage_store_seconds_count"] + 1
    assert counted("escr_documents_filed_total", state=doc["state"]) >= 1

    (services.settings.intake_dir / "bs.jones").mkdir()
    (services.settings.intake_dir / "bs.jones" / "next.pdf").write_bytes(b"%PDF-")
    (services.settings.intake_dir / "bs.jones" / "still-coming.pdf.part").write_bytes(b"%PDF-")
    record = health.record_registry(services.settings, services.db)
    assert record.get_sample_value("escr_documents", {"state": doc["state"]}) == 1
    assert record.get_sample_value("escr_intake_files", {"folder": "intake"}) == 1
    assert record.get_sample_value("escr_intake_files", {"folder": "processing"}) == 0
    assert record.get_sample_value("escr_scrape_source_up", {"source": "database"}) == 1


def test_a_quarantined_file_is_counted_by_its_reason(services, tmp_path):
    junk = tmp_path / "scan.pdf"
    junk.write_bytes(b"this is not a PDF at all")
    before_files = counted("escr_files_total", status="quarantined")

    result = ingest(services, junk)

    assert result.status == "quarantined"
    code = result.quarantine["code"]
    assert counted("escr_files_total", status="quarantined") == before_files + 1
    assert counted("escr_quarantined_total", code=code) >= 1
    record = health.record_registry(services.settings, services.db)
    assert record.get_sample_value("escr_intake_files", {"folder": "quarantine"}) == 1


def test_a_database_that_cannot_be_read_leaves_the_scrape_working(settings, tmp_path):
    broken = Database(f"sqlite:///{tmp_path / 'no-such-folder' / 'escr.sqlite3'}")
    record = health.record_registry(settings, broken)
    assert record.get_sample_value("escr_scrape_source_up", {"source": "database"}) == 0
    assert record.get_sample_value("escr_scrape_source_up", {"source": "folders"}) == 1


def test_health_is_ok_when_database_store_and_intake_folder_work(services):
    report = health.health(services)
    assert report["status"] == "ok"
    assert set(report["checks"]) == {"database", "store", "intake"}  # no broker configured: not checked
    assert all(check["ok"] for check in report["checks"].values())
    assert not any(services.settings.intake_dir.iterdir())  # the write probe cleaned up after itself


def test_health_names_what_is_failing_without_leaking_the_broker_password(settings):
    settings = settings.model_copy(update={"celery": CelerySettings(broker_url="redis://:s3cret-pw@127.0.0.1:1/0")})
    services = open_services(settings)
    settings.intake_dir.rmdir()
    settings.intake_dir.write_text("a file where the intake folder should be")

    report = health.health(services)

    assert report["status"] == "failing"
    assert report["checks"]["database"]["ok"] and report["checks"]["store"]["ok"]
    assert not report["checks"]["intake"]["ok"]
    assert not report["checks"]["broker"]["ok"]
    assert "s3cret-pw" not in json.dumps(report)


def test_the_watcher_serves_its_metrics_and_the_record_gauges_on_its_port(settings):
    port = free_port()
    watched = settings.model_copy(update={"metrics": settings.metrics.model_copy(update={"port": port})})
    open_services(watched)
    stop = threading.Event()
    watcher = threading.Thread(target=IntakeWatcher(watched, lambda claim: None).run, args=(stop,))
    watcher.start()
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        body = ""
        for _ in range(100):
            try:
                body = urllib.request.urlopen(url, timeout=5).read().decode()
                break
            except urllib.error.URLError:
                stop.wait(0.1)
        assert "escr_pages_blank_total" in body  # this process's pipeline counters
        assert 'escr_scrape_source_up{source="database"} 1.0' in body  # the record gauges
        assert 'escr_intake_files{folder="intake"} 0.0' in body
    finally:
        stop.set()
        watcher.join(timeout=30)
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=5)  # the server stopped with the watcher
