"""The watched intake folder.

Files arrive from scan-to-folder profiles over SMB, often written slowly. A file is taken only
once its size and modification time have been still for `stable_seconds`; watchdog events make
that quick, and a periodic rescan catches anything the events missed. Files left in
`processing/` by a stopped process are taken up again first.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from escr.intake.receipt import Claim, claim_from_intake, is_in_progress_name, pending_claims
from escr.settings import Settings

log = logging.getLogger("escr.intake.watcher")

MAX_BACKOFF_S = 300.0


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    since: float


class _Events(FileSystemEventHandler):
    def __init__(self, notice: Callable[[Path], None]) -> None:
        self._notice = notice

    def on_any_event(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self._notice(Path(os.fsdecode(event.dest_path or event.src_path)))


class IntakeWatcher:
    def __init__(self, settings: Settings, process: Callable[[Claim], object],
                 housekeeping: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self.process = process
        self.housekeeping = housekeeping  # periodic jobs (chain anchors, fixity runs); must return quickly
        self._lock = threading.Lock()
        self._candidates: set[Path] = set()
        self._seen: dict[Path, _Seen] = {}
        self._retry_at: dict[str, tuple[float, float, Claim]] = {}  # claim id -> (when, backoff, claim)
        self._in_flight: dict[str, tuple[Future[object], Claim]] = {}

    def notice(self, path: Path) -> None:
        with self._lock:
            self._candidates.add(path)

    def rescan(self) -> None:
        intake = self.settings.intake_dir
        for root, dirs, files in os.walk(intake, followlinks=False):
            base = Path(root)
            links = [d for d in dirs if (base / d).is_symlink()]  # a linked folder is taken as a link
            for name in [*files, *links]:
                self.notice(base / name)

    def ready_files(self, now: float) -> list[Path]:
        """Candidates whose size and mtime have not changed for `stable_seconds`."""
        with self._lock:
            candidates = list(self._candidates)
        ready = []
        for path in candidates:
            try:
                st = path.lstat()
            except FileNotFoundError:
                self._forget(path)
                continue
            if is_in_progress_name(path) or path == self.settings.intake_dir:
                self._forget(path)
                continue
            seen = self._seen.get(path)
            if seen is None or (seen.size, seen.mtime_ns) != (st.st_size, st.st_mtime_ns):
                self._seen[path] = _Seen(st.st_size, st.st_mtime_ns, now)
            elif now - seen.since >= self.settings.stable_seconds:
                ready.append(path)
                self._forget(path)
        return ready

    def _forget(self, path: Path) -> None:
        with self._lock:
            self._candidates.discard(path)
        self._seen.pop(path, None)

    def _submit(self, pool: ThreadPoolExecutor, claim: Claim) -> None:
        self._in_flight[claim.claim_id] = (pool.submit(self.process, claim), claim)

    def _collect(self, now: float) -> None:
        for claim_id, (future, claim) in list(self._in_flight.items()):
            if not future.done():
                continue
            del self._in_flight[claim_id]
            try:
                result = future.result()
            except Exception as exc:  # process() quarantines on its own; this is a last resort
                log.error("claim=%s failed outside the pipeline: %s", claim_id, type(exc).__name__)
                continue
            if getattr(result, "status", None) == "deferred":
                backoff = min(self._retry_at.get(claim_id, (0.0, 2.5, claim))[1] * 2, MAX_BACKOFF_S)
                self._retry_at[claim_id] = (now + backoff, backoff, claim)
                log.warning("claim=%s deferred; retrying in %.0f s", claim_id, backoff)
            else:
                self._retry_at.pop(claim_id, None)

    def run(self, stop: threading.Event, *, poll_s: float = 0.5) -> None:
        intake = self.settings.intake_dir
        intake.mkdir(parents=True, exist_ok=True)
        observer = Observer()
        observer.schedule(_Events(self.notice), str(intake), recursive=True)
        observer.start()
        log.info("watching intake folder %s", intake)
        pool = ThreadPoolExecutor(self.settings.batches_in_flight, thread_name_prefix="intake")
        stop_metrics = self._start_metrics()
        try:
            for claim in pending_claims(self.settings.processing_dir):
                log.info("resuming claim=%s left by an earlier run", claim.claim_id)
                self._submit(pool, claim)
            self.rescan()
            next_rescan = time.monotonic() + self.settings.rescan_seconds
            while not stop.is_set():
                now = time.monotonic()
                try:
                    if now >= next_rescan:
                        self.rescan()
                        next_rescan = now + self.settings.rescan_seconds
                    self._collect(now)
                    for claim_id, (when, _, claim) in list(self._retry_at.items()):
                        if when <= now and claim_id not in self._in_flight:
                            self._submit(pool, claim)
                    for path in self.ready_files(now):
                        claim = claim_from_intake(path, intake, self.settings.processing_dir)
                        if claim is not None:
                            log.info("claimed claim=%s operator=%s", claim.claim_id, claim.operator)
                            self._submit(pool, claim)
                    if self.housekeeping is not None:
                        self.housekeeping()
                except Exception as exc:  # keep watching whatever happens to one file
                    log.error("watcher loop error: %s", type(exc).__name__)
                stop.wait(poll_s)
        finally:
            observer.stop()
            observer.join()
            pool.shutdown(wait=True)
            if stop_metrics is not None:
                stop_metrics()
            log.info("watcher stopped")

    def _start_metrics(self) -> Callable[[], None] | None:
        """Prometheus metrics of this process, plus the record gauges read from the database."""
        if self.settings.metrics.port is None:
            return None
        from escr.record.database import Database
        from escr.runtime.health import start_metrics_server

        return start_metrics_server(self.settings, db=Database(self.settings.resolved_database_url))
