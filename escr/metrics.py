"""Prometheus metrics of the pipeline and the workers, the record gauges, and the health check.

Counters and histograms are per process by nature (Prometheus sums them over the watcher and
every worker), so they live on one registry of this module, `PROCESS`, and are served by
`start_metrics_server` on `metrics.port`. The pipeline touches them in one place:
`observe_intake`, called once per file from `pipelines.intake.run`; a worker in one place too:
`observe_worker_page`. What the record holds (documents by state, files waiting, pages queued on
the broker) is not counted but read from the database, the folders and the broker when scraped,
by `RecordCollector`, so any process that can reach them (the watcher, the web app) can serve
the same numbers. Labels are states, codes, checks and stages: never ids or personal data.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from escr.errors import ConfigError, EscrError
from escr.settings import Settings

if TYPE_CHECKING:
    from escr.database import Database
    from escr.ocr import OcrPage
    from escr.services import Services

log = logging.getLogger("escr.metrics")

PROCESS = CollectorRegistry(auto_describe=True)

_STAGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)

FILES = Counter("escr_files", "Scanned files taken through the intake pipeline, by outcome "
                "(filed, quarantined, deferred).", ["status"], registry=PROCESS)
DOCUMENTS_FILED = Counter("escr_documents_filed", "Documents filed, by the state they were filed in.",
                          ["state"], registry=PROCESS)
QUARANTINED = Counter("escr_quarantined", "Files quarantined, by reason code.", ["code"], registry=PROCESS)
PAGES_OCRED = Counter("escr_pages_ocred", "Pages OCRed for intake (blank pages excluded), by who OCRed them "
                      "(local thread pool or celery workers).", ["executor"], registry=PROCESS)
PAGES_BLANK = Counter("escr_pages_blank", "Blank pages found (measured, not OCRed).", registry=PROCESS)
TESSERACT_RUNS = Counter("escr_tesseract_runs", "Tesseract processes run for intake pages.", registry=PROCESS)
QC_CHECKS = Counter("escr_qc_checks", "Automated QC check results of filed documents; the failure rate of a "
                    "check is its status=\"fail\" rate over all.", ["check", "status"], registry=PROCESS)
STAGE_SECONDS = Histogram("escr_stage_seconds", "Time per pipeline stage per file.", ["stage"],
                          buckets=_STAGE_BUCKETS, registry=PROCESS)
STORE_SECONDS = Histogram("escr_storage_store_seconds", "Storage latency: time to store one file's objects "
                          "(original, reading copies, manifests), each read back and hash-checked.",
                          buckets=_STAGE_BUCKETS, registry=PROCESS)
WORKER_PAGES = Counter("escr_worker_pages", "Page tasks answered by this worker, by status (ok, error).",
                       ["status"], registry=PROCESS)
WORKER_PAGE_SECONDS = Histogram("escr_worker_page_seconds", "Time for this worker to render, measure and OCR "
                                "one page.", buckets=_STAGE_BUCKETS, registry=PROCESS)
WORKER_TESSERACT_RUNS = Counter("escr_worker_tesseract_runs", "Tesseract processes run by this worker.",
                                registry=PROCESS)


def observe_intake(result: Any, *, timings: dict[str, float], pages: Iterable[OcrPage], executor: str) -> None:
    """Count one file's outcome: its documents' states and QC results, pages, stage times."""
    FILES.labels(result.status).inc()
    if result.status == "filed":
        for doc in result.documents:
            DOCUMENTS_FILED.labels(doc["state"]).inc()
            for check, status in doc.get("qc", {}).items():
                QC_CHECKS.labels(check, status).inc()
    elif result.status == "quarantined" and result.quarantine:
        QUARANTINED.labels(result.quarantine["code"]).inc()
    for page in pages:
        if page.blank:
            PAGES_BLANK.inc()
        else:
            PAGES_OCRED.labels(executor).inc()
        TESSERACT_RUNS.inc(page.tesseract_runs)
    for stage, seconds in timings.items():
        STAGE_SECONDS.labels(stage).observe(seconds)
    if "store_objects" in timings:
        STORE_SECONDS.observe(timings["store_objects"])


def observe_worker_page(status: str, seconds: float, page: dict[str, Any] | None) -> None:
    """Count one page task answered by this worker (`page` is the page as sent back, if any)."""
    WORKER_PAGES.labels(status).inc()
    WORKER_PAGE_SECONDS.observe(seconds)
    if page is not None:
        WORKER_TESSERACT_RUNS.inc(int(page.get("tesseract_runs", 0)))


# --- what the record holds, read when scraped ---------------------------------------------------


class RecordCollector(Collector):
    """Documents by state, files waiting in each folder and pages queued on the broker, read on scrape.

    A source that cannot be read is left out of that scrape and `escr_scrape_source_up` says so:
    a scrape never fails because the database is down.
    """

    def __init__(self, settings: Settings, db: Database, *, folders: bool = True) -> None:
        self.settings = settings
        self.db = db
        self.folders = folders

    def describe(self) -> Iterable[Metric]:
        return []  # read on scrape only: registering must not query the database

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("escr_scrape_source_up", "1 when this source could be read for this scrape.",
                               labels=["source"])
        sources: list[tuple[str, Callable[[], Metric]]] = [("database", self._documents)]
        if self.folders:
            sources.append(("folders", self._folders))
        if self.settings.celery.broker_url:
            sources.append(("broker", self._queue))
        for name, read in sources:
            try:
                yield read()
                up.add_metric([name], 1)
            except Exception as exc:  # noqa: BLE001 - one unreadable source must not fail the scrape
                log.warning("metrics: %s unreadable (%s)", name, type(exc).__name__)
                up.add_metric([name], 0)
        yield up

    def _documents(self) -> Metric:
        from sqlalchemy import func, select

        from escr.models import Document

        family = GaugeMetricFamily("escr_documents", "Documents in the record, by state (the human work "
                                   "queues are needs_indexing, qc_failed and awaiting_verification).",
                                   labels=["state"])
        with self.db.session() as session:
            rows = session.execute(select(Document.state, func.count()).group_by(Document.state)).all()
        for state, count in rows:
            family.add_metric([state], count)
        return family

    def _folders(self) -> Metric:
        family = GaugeMetricFamily("escr_intake_files", "Files waiting in the intake folder, claims being "
                                   "processed, and quarantined files.", labels=["folder"])
        family.add_metric(["intake"], _count_files(self.settings.intake_dir))
        family.add_metric(["processing"], _count_entries(self.settings.processing_dir))
        family.add_metric(["quarantine"], _count_entries(self.settings.quarantine_dir))
        return family

    def _queue(self) -> Metric:
        from escr.distributed import queue_depth

        depth = queue_depth(self.settings)
        if depth is None:
            raise ConnectionError("broker did not answer")
        family = GaugeMetricFamily("escr_ocr_queue_depth", "Pages waiting on the broker for a worker.",
                                   labels=["queue"])
        family.add_metric([self.settings.celery.queue], depth)
        return family


def _count_files(folder: Path, limit: int = 100_000) -> int:
    """Files under the intake folder, skipping names still being written; bounded."""
    from escr.watcher import is_in_progress_name

    count = 0
    for _root, _dirs, files in os.walk(folder):
        count += sum(1 for name in files if not is_in_progress_name(Path(name)))
        if count >= limit:
            break
    return count


def _count_entries(folder: Path) -> int:
    """One entry per claim: processing/<claim id>/ and quarantine/<claim id>/."""
    try:
        return sum(1 for entry in os.scandir(folder) if not entry.name.startswith("."))
    except FileNotFoundError:
        return 0


def record_registry(settings: Settings, db: Database, *, folders: bool = True) -> CollectorRegistry:
    """A registry with the record gauges only: what the web app's `/metrics` adds to its own."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RecordCollector(settings, db, folders=folders))
    return registry


class _Registries(Collector):
    def __init__(self, registries: Sequence[CollectorRegistry]) -> None:
        self.registries = registries

    def collect(self) -> Iterator[Metric]:
        for registry in self.registries:
            yield from registry.collect()


def start_metrics_server(settings: Settings, *, db: Database | None = None) -> Callable[[], None] | None:
    """Serve this process's metrics (plus the record gauges when `db` is given) on `metrics.port`.

    Returns a function that stops the server, or None when no port is configured.
    """
    if settings.metrics.port is None:
        return None
    registries = [PROCESS] + ([record_registry(settings, db)] if db is not None else [])
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Registries(registries))
    try:
        server, thread = start_http_server(settings.metrics.port, addr=settings.metrics.address, registry=registry)
    except OSError as exc:
        raise ConfigError(f"cannot serve metrics on port {settings.metrics.port}: {exc.strerror}") from exc
    log.info("metrics on %s:%d", settings.metrics.address, settings.metrics.port)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop


# --- health -------------------------------------------------------------------------------------


def health(services: Services) -> dict[str, Any]:
    """Can this process do its job now? Database, object store, intake folder, and broker if any.

    Each check gives ok, its time in seconds and, when it failed, an error code or type name
    (never a message: a URL in it could carry a password). The web app serves this as /healthz
    with 200 when `status` is "ok", else 503.
    """
    settings = services.settings
    checks = {
        "database": _check(lambda: _ping_database(services.db)),
        "store": _check(lambda: services.store.stat("healthz/probe")),
        "intake": _check(lambda: _probe_folder(settings.intake_dir)),
    }
    if settings.celery.broker_url:
        checks["broker"] = _check(lambda: _ping_broker(settings))
    return {"status": "ok" if all(c["ok"] for c in checks.values()) else "failing", "checks": checks}


def _check(probe: Callable[[], object]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        probe()
        outcome: dict[str, Any] = {"ok": True}
    except EscrError as exc:
        outcome = {"ok": False, "error": exc.code}
    except Exception as exc:  # noqa: BLE001 - a health check reports, it does not raise
        outcome = {"ok": False, "error": type(exc).__name__}
    outcome["seconds"] = round(time.perf_counter() - started, 4)
    return outcome


def _ping_database(db: Database) -> None:
    from sqlalchemy import text

    with db.session() as session:
        session.execute(text("SELECT 1"))


def _probe_folder(folder: Path) -> None:
    """Write and remove a dot-file: the watcher ignores dot-files, so the probe is never claimed."""
    probe = folder / f".escr-health-{uuid.uuid4().hex}"
    probe.write_bytes(b"")
    probe.unlink()


def _ping_broker(settings: Settings) -> None:
    from escr.distributed import broker_reachable

    if not broker_reachable(settings):
        raise ConnectionError("broker unreachable")
