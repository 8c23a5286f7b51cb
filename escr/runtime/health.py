"""What a process and the record look like from outside: the record gauges, the metrics server, /healthz.

Apart from the counters in escr.runtime.metrics, which every process (workers included) touches, so
that reading the record, the folders and the broker never sits on a page task's import path.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from escr.errors import ConfigError, EscrError
from escr.intake.receipt import is_in_progress_name
from escr.runtime.metrics import PROCESS
from escr.settings import Settings

if TYPE_CHECKING:
    from escr.record.database import Database
    from escr.services import Services

log = logging.getLogger("escr.runtime.health")


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

        from escr.record.models import Document

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
        from escr.runtime.distributed import queue_depth

        depth = queue_depth(self.settings)
        if depth is None:
            raise ConnectionError("broker did not answer")
        family = GaugeMetricFamily("escr_ocr_queue_depth", "Pages waiting on the broker for a worker.",
                                   labels=["queue"])
        family.add_metric([self.settings.celery.queue], depth)
        return family


def _count_files(folder: Path, limit: int = 100_000) -> int:
    """Files under the intake folder, skipping names still being written; bounded."""

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
    from escr.runtime.distributed import broker_reachable

    if not broker_reachable(settings):
        raise ConnectionError("broker unreachable")
