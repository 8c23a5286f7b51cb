"""Pages are read in child processes, one per OCR slot, each keeping Tesseract loaded.

Tesseract is C++ that can abort on a strange image, and a page can take far too long. Before,
every page had its own `tesseract` process, so a crash or a hang ended only that page. A slot
keeps that promise with the engine kept loaded: the child renders, measures and OCRs the page
(`escr.pages.ocr.ocr_job`), and the parent only waits. A child that dies fails its one page
(`ocr_crashed`) and is replaced; one that overruns is killed (`ocr_timeout`). A page's own
work leaves the parent's interpreter, so the intake's threads never queue behind it.

Slots start ahead of the first page (`OcrSlots.warm`), each importing the page code once (under
a second), while the intake is still checking the file.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import signal
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import ExitStack
from multiprocessing.connection import Connection
from typing import Any

from escr.errors import EscrError, OcrError, OcrTimeout
from escr.pages.ocr import OcrPage, PageJob, ocr_job
from escr.settings import OcrSettings

# Past the page's own limit (each tesseract run stops at ocr.page_timeout_s), a slot that has not
# answered is hung outside tesseract's own deadline check: killed after this many times the limit.
HUNG_AFTER_TIMEOUTS = 3
# A child is replaced after this many pages, so that memory a long-lived engine fragments is given back.
PAGES_PER_CHILD = 500

# Spawned, not forked: a child never inherits the parent's threads, locks or database connections,
# and its CPU time is counted to the process that started it (`time escr ingest` tells the truth).
_context = multiprocessing.get_context("spawn")


def ocr_pages(
    jobs: Iterable[PageJob], *, settings: OcrSettings, workers: int, pool: ThreadPoolExecutor | None = None
) -> Iterator[tuple[PageJob, OcrPage]]:
    """OCR many pages with `workers` tesseract processes busy at once; results in any order.

    Each worker's slot renders, measures and OCRs its page, and a page is taken from `jobs` only
    when a worker is free, so at most `workers` page images are in memory. Blank pages are measured
    but not OCRed. The first page that fails raises its EscrError after the running ones stop.
    `pool` is a process-wide one of `workers` threads shared by files read at the same time: the
    cores stay busy across the end of one file and the start of the next, and never run more
    tesseracts than there are slots.
    """
    workers = max(1, workers)
    process_slots().warm(workers, settings)
    job_iter = iter(jobs)
    with ExitStack() as stack:
        if pool is None:
            pool = stack.enter_context(ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ocr"))
        running: dict[Future[OcrPage], PageJob] = {}
        try:
            _fill(pool, running, job_iter, workers, settings)
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    job = running.pop(future)
                    yield job, _result(future, job)
                _fill(pool, running, job_iter, workers, settings)
        finally:
            for future in running:
                future.cancel()


def _fill(
    pool: ThreadPoolExecutor,
    running: dict[Future[OcrPage], PageJob],
    jobs: Iterator[PageJob],
    workers: int,
    settings: OcrSettings,
) -> None:
    """Top the pool up to one page per worker."""
    while len(running) < workers:
        job = next(jobs, None)
        if job is None:
            return
        running[pool.submit(read_page, job, settings)] = job


def _result(future: Future[OcrPage], job: PageJob) -> OcrPage:
    """The page's OcrPage; anything unexpected becomes an OcrError naming the page number only."""
    try:
        return future.result()
    except EscrError:
        raise
    except Exception as exc:
        raise OcrError(f"OCR of page {job.index + 1} failed: {type(exc).__name__}") from exc


class OcrSlots:
    """Child processes that read pages, one per caller reading at the same time.

    A thread calling `read` takes an idle slot, or starts one when none is idle, so there are as
    many children as pages read at once: the OCR threads of `ocr_pages`, or a Celery worker's.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[_Slot] = []
        self._all: set[_Slot] = set()

    def warm(self, count: int, settings: OcrSettings) -> None:
        """Start slots ahead of the first page, while the caller gets on with checking the file."""
        with self._lock:
            missing = max(0, count - len(self._all))
            for _ in range(missing):
                slot = _Slot(settings)
                self._all.add(slot)
                self._idle.append(slot)

    def read(self, job: PageJob, settings: OcrSettings) -> OcrPage:
        with self._lock:
            slot = self._idle.pop() if self._idle else None
            if slot is None:
                slot = _Slot(settings)
                self._all.add(slot)
        try:
            return slot.read(job, settings)
        finally:
            with self._lock:
                if slot.alive:
                    self._idle.append(slot)
                else:
                    self._all.discard(slot)

    def pids(self) -> list[int]:
        """The children's process ids (for health checks and tests)."""
        with self._lock:
            return [slot.pid for slot in self._all if slot.pid is not None]

    def close(self) -> None:
        with self._lock:
            slots, self._idle, self._all = list(self._all), [], set()
        for slot in slots:
            slot.stop()


_process_slots: OcrSlots | None = None
_process_lock = threading.Lock()


def process_slots() -> OcrSlots:
    """This process's slots, shared by every file and every worker thread that reads pages."""
    global _process_slots
    with _process_lock:
        if _process_slots is None:
            _process_slots = OcrSlots()
            atexit.register(_process_slots.close)
        return _process_slots


def read_page(job: PageJob, settings: OcrSettings) -> OcrPage:
    """Read one page in one of this process's slots: what an OCR thread or a Celery task calls."""
    return process_slots().read(job, settings)


class _Slot:
    """One child process and the pipe to it."""

    def __init__(self, settings: OcrSettings) -> None:
        self._conn: Connection | None = None
        self._process: Any = None
        self._pages = 0
        self._start(settings)

    def _start(self, settings: OcrSettings) -> None:
        parent, child = _context.Pipe()
        process = _context.Process(target=_serve, args=(child, settings), name="escr-ocr-slot", daemon=True)
        process.start()
        child.close()
        self._conn, self._process, self._pages = parent, process, 0

    def read(self, job: PageJob, settings: OcrSettings) -> OcrPage:
        if self._conn is None or not self._process.is_alive() or self._pages >= PAGES_PER_CHILD:
            self.stop()
            self._start(settings)
        assert self._conn is not None
        self._pages += 1
        try:
            self._conn.send((job, settings))
            if not self._conn.poll(HUNG_AFTER_TIMEOUTS * settings.page_timeout_s + 2):
                self.stop()
                raise OcrTimeout(f"page {job.index + 1} took longer than {settings.page_timeout_s} s")
            outcome, value = self._conn.recv()
        except (EOFError, OSError) as exc:
            self.stop()
            raise OcrError(f"the OCR process stopped unexpectedly on page {job.index + 1}",
                           code="ocr_crashed") from exc
        if outcome == "error":
            raise value
        page: OcrPage = value
        return page

    @property
    def alive(self) -> bool:
        """Not stopped (after a crash or a hang): the slot may take another page."""
        return self._process is not None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def stop(self) -> None:
        """End the child (at once: it holds nothing that needs saving)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._process is not None:
            if self._process.is_alive():
                self._process.kill()
            self._process.join(timeout=5)
            self._process = None


def _serve(conn: Connection, settings: OcrSettings) -> None:
    """A slot's child: read pages until the parent closes the pipe.

    Its parent alone ends it. Ctrl-C at a terminal, or a service manager's SIGTERM to every
    process of the service, asks the watcher to finish the files in hand: were the child to die
    of it, the page in hand would fail and its file be quarantined for no fault of its own."""
    from escr.runtime.priority import lower_priority

    os.setpgid(0, 0)  # out of the terminal's process group, with the pdftoppm it starts
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    lower_priority(settings)
    while True:
        try:
            job, page_settings = conn.recv()
        except (EOFError, OSError):
            return
        try:
            answer: tuple[str, object] = ("page", ocr_job(job, page_settings))
        except EscrError as exc:
            answer = ("error", exc)
        except Exception as exc:  # noqa: BLE001 - any other failure is this page's, named by number only
            answer = ("error", OcrError(f"OCR of page {job.index + 1} failed: {type(exc).__name__}"))
        conn.send(answer)
