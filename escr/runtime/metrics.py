"""Prometheus metrics of the pipeline and the workers, the record gauges, and the health check.

Counters and histograms are per process by nature (Prometheus sums them over the watcher and
every worker), so they live on one registry of this module, `PROCESS`, and are served by
`start_metrics_server` on `metrics.port`. The pipeline touches them in one place:
`observe_intake`, called once per file from `escr.pipelines.intake.run`; a worker in one place too:
`observe_worker_page`. What the record holds (documents by state, files waiting, pages queued on
the broker) is not counted but read from the database, the folders and the broker when scraped,
by `RecordCollector`, so any process that can reach them (the watcher, the web app) can serve
the same numbers. Labels are states, codes, checks and stages: never ids or personal data.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram

log = logging.getLogger("escr.runtime.metrics")

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


class CountedPage(Protocol):
    """What a page's count needs: an `OcrPage`, or the `PageReading` the intake keeps of one."""

    @property
    def blank(self) -> bool: ...

    @property
    def tesseract_runs(self) -> int: ...


def observe_intake(result: Any, *, timings: dict[str, float], pages: Iterable[CountedPage], executor: str) -> None:
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
