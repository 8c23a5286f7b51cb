"""The Celery side of scale-out: the app, the sender of a file's pages, the page-OCR task run by
`escr worker`, and the JSON they exchange.

`CeleryPageOcr` is the `escr.runtime.distributed.PageOcr` the pipeline gets when a broker is configured.
It sends a file's pages as Celery groups of at most `celery.pages_in_flight` pages and gathers
the answers. Task ids are deterministic (claim id, page index, hash of the message), so a caller
that restarts on the same claim picks up pages already done, and a page delivered twice writes
the same result. Once gathered (or given up), each result is replaced by a small "collected"
marker: OCR text does not stay in Redis, and a stale copy of a collected page (one sent before
the marker was written) is acknowledged by the worker without being done again.

A worker shares nothing with the process that sent it a page: no intake folder, no database, no
object store. So a page task carries the single page as a one-page PDF (copied out of the scan
with pikepdf, images not re-encoded) and the OCR settings to use, and returns the OcrPage as
JSON. Only JSON crosses the broker (never pickle), and OCR text never goes into a log line: the
worker logs task ids, attempts and timings only.

A worker can die at any moment. Messages are acknowledged only after the page is done
(`acks_late`), so a page whose worker died is delivered again to another worker; a page is a
pure function of its bytes and settings, so doing it twice gives the same result. Each delivery
counts itself in the result backend, and a page that has already been started `max_attempts`
times (a page that kills its worker every time) is answered with an error instead of looping.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import io
import json
import logging
import socket
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import celery.exceptions
import kombu.exceptions
import pikepdf
import redis.exceptions
from celery import Celery, Task, group
from celery.result import AsyncResult

from escr.errors import BrokerUnavailable, ConfigError, EscrError, InputRejected, OcrError
from escr.pages.coversheet import CoverSheet, decode_payload, encode_payload
from escr.pages.imaging import PageMetrics
from escr.pages.ocr import OcrPage, OcrWord, PageJob
from escr.pages.slots import read_page
from escr.runtime.page_ocr import LocalPageOcr
from escr.settings import OcrSettings, Settings

log = logging.getLogger("escr.worker")

OCR_TASK = "escr.ocr_page"
# Bumped when a message or result changes shape, so a worker of another version refuses the
# page loudly instead of misreading it.
WIRE_VERSION = 2  # 2: pages carry the cover-sheet check (find_cover, cover)
PDF = "application/pdf"
# What the message headers show of a task's arguments (monitoring tools display them): the
# page itself is personal data and stays in the body.
ARGS_REPR = "(page)"


# --- the app ------------------------------------------------------------------------------------


def celery_app(settings: Settings) -> Celery:
    """The Celery app for these settings, with the page task registered; one per process or run."""
    cfg = settings.celery
    if not cfg.broker_url:
        raise ConfigError("no broker configured: set ESCR_CELERY__BROKER_URL (redis://... or amqp://...)")
    backend = cfg.result_backend or (cfg.broker_url if cfg.broker_url.startswith(("redis://", "rediss://")) else None)
    if backend is None:
        raise ConfigError("an AMQP broker needs a result backend: set ESCR_CELERY__RESULT_BACKEND (redis://...)")
    app = Celery("escr", broker=cfg.broker_url, backend=backend, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,  # a page is acknowledged once done: a dead worker's page is redelivered
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # a worker holds only the pages it is working on
        worker_cancel_long_running_tasks_on_connection_loss=True,  # they are redelivered anyway
        task_default_queue=cfg.queue,
        task_track_started=False,  # the task records its own start, with the attempt number
        result_expires=cfg.result_expires_s,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=10,
        task_publish_retry_policy={"max_retries": 3, "interval_start": 0.5, "interval_step": 1.0, "interval_max": 3.0},
        broker_transport_options={
            # Redis only: an unacknowledged page goes back on the queue after this long.
            "visibility_timeout": cfg.visibility_timeout_s,
            "unacked_restore_interval": max(1, min(10, cfg.visibility_timeout_s // 3)),
            "unacked_restore_throttle": 1,
        },
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        # No remote control (`celery inspect/control`): nothing uses it, and its per-worker
        # exclusive queue makes a worker restarted under the same name fail on RabbitMQ until the
        # broker has dropped the old one.
        worker_enable_remote_control=False,
    )
    max_attempts, max_bytes = cfg.max_attempts, cfg.max_page_message_bytes

    @app.task(name=OCR_TASK, bind=True, shared=False, acks_late=True, reject_on_worker_lost=True,
              autoretry_for=(OSError,), max_retries=max_attempts - 1, retry_backoff=2, retry_jitter=True)
    def ocr_page_task(task: Task, message: dict[str, Any]) -> dict[str, Any]:
        return run_page_task(task, message, max_attempts=max_attempts, max_bytes=max_bytes)

    return app


# --- the sending side: one file's pages fanned out and gathered -------------------------------

# What a lost broker or result backend looks like from the sending side.
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    kombu.exceptions.OperationalError,
    celery.exceptions.BackendError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,
    TimeoutError,
)


class CeleryPageOcr:
    """Pages fanned out to `escr worker` processes as Celery groups; answers gathered here."""

    name = "celery"

    def __init__(self, app: Celery, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.local = LocalPageOcr(settings.ocr, settings.ocr_workers)

    def __call__(self, jobs: Sequence[PageJob], *, scope: str) -> Iterator[tuple[PageJob, OcrPage]]:
        step = self.settings.celery.pages_in_flight
        for start in range(0, len(jobs), step):
            yield from self._group(list(jobs[start:start + step]), scope)

    def _group(self, jobs: list[PageJob], scope: str) -> Iterator[tuple[PageJob, OcrPage]]:
        """One group: send the pages not already done, wait for all, then forget the results."""
        remote, oversized = self._messages(jobs, scope)
        results = [(job, AsyncResult(task_id, app=self.app)) for job, task_id, _ in remote]
        try:
            self._send([(task_id, message) for _, task_id, message in remote])
            answers = self._gather(results)
        except BROKER_ERRORS as exc:
            raise BrokerUnavailable(f"the OCR broker failed ({type(exc).__name__}); the file will be retried") from exc
        finally:
            self._forget(results)
        yield from answers
        if oversized:
            log.info("ocr %d pages locally: too large to send scope=%s", len(oversized), scope)
            yield from self.local(oversized, scope=scope)

    def _messages(self, jobs: list[PageJob], scope: str) -> tuple[list[tuple[PageJob, str, dict[str, Any]]],
                                                                   list[PageJob]]:
        """Each job's message and deterministic task id; pages over the size limit stay here."""
        remote, oversized = [], []
        limit = self.settings.celery.max_page_message_bytes
        by_path: dict[Any, list[PageJob]] = {}
        for job in jobs:
            if job.media_type != "application/pdf":
                raise OcrError("only PDF pages can be sent to workers", code="ocr_not_pdf")
            by_path.setdefault(job.path, []).append(job)
        for path, path_jobs in by_path.items():
            try:
                with pikepdf.open(path) as source:
                    for job in path_jobs:
                        pdf = extract_page(source, job.index)
                        if len(pdf) > limit:
                            oversized.append(job)
                            continue
                        message = page_message(pdf, dpi=job.dpi, settings=self.settings.ocr,
                                               find_cover=job.find_cover)
                        remote.append((job, task_id(scope, job, message), message))
            except pikepdf.PdfError as exc:
                raise InputRejected("unreadable_pdf", "the PDF could not be read",
                                    "Rescan the document and put the new file in the intake folder.") from exc
        return remote, oversized

    def _send(self, messages: list[tuple[str, dict[str, Any]]]) -> None:
        """Publish, as one group, the pages whose answer is not already in the backend."""
        todo = []
        for tid, message in messages:
            meta = self.app.backend.get_task_meta(tid, cache=False)
            if meta.get("status") == "SUCCESS" and not _collected_at(meta):
                continue  # done before a restart of this claim, and not collected yet
            if _collected_at(meta):
                self.app.backend.forget(tid)  # this claim is being retried: the marker must not answer it
            todo.append((tid, {**message, "sent_at": time.time()}))
        if not todo:
            return
        # No `expires`: a worker remembers an expired task id as revoked and would refuse the
        # same id when the file is retried. A page sent while no worker ran is done when one
        # starts, and the retry finds its result waiting.
        group(self.app.signature(OCR_TASK, args=(msg,), task_id=tid, queue=self.settings.celery.queue,
                                 argsrepr=ARGS_REPR, kwargsrepr="{}")
              for tid, msg in todo).apply_async()

    def _gather(self, results: list[tuple[PageJob, AsyncResult]]) -> list[tuple[PageJob, OcrPage]]:
        deadline = time.monotonic() + self.settings.celery.wait_timeout_s
        pages = []
        for job, result in results:
            try:
                value = result.get(timeout=max(0.1, deadline - time.monotonic()), propagate=False, interval=0.2)
            except celery.exceptions.TimeoutError as exc:
                raise BrokerUnavailable(f"pages not OCRed within {self.settings.celery.wait_timeout_s:.0f} s: "
                                        "are workers running on the queue?") from exc
            if result.state != "SUCCESS":
                raise OcrError(f"OCR of page {job.index + 1} failed on a worker: {type(value).__name__}")
            pages.append((job, _answer(value, job)))
        return pages

    def _forget(self, results: list[tuple[PageJob, AsyncResult]]) -> None:
        """OCR text is personal data: once here, it is replaced in the backend by a marker without it."""
        collected = {"v": WIRE_VERSION, "collected_at": time.time()}
        for _, result in results:
            try:
                self.app.backend.forget(result.id)  # a stored success is never overwritten in place
                self.app.backend.store_result(result.id, collected, "SUCCESS")
            except BROKER_ERRORS:  # result_expires deletes it later
                log.warning("could not replace result task=%s; it expires on its own", result.id)


def task_id(scope: str, job: PageJob, message: dict[str, Any]) -> str:
    """Same claim, page and content: same id, so a redelivery or a restart writes the same result.

    The page's base64 PDF (a megabyte for a colour scan) is hashed as it is, not JSON-encoded a
    second time: the sender's CPU is taken from the OCR workers when they share its machine."""
    settings = {k: v for k, v in message.items() if k not in ("sent_at", "pdf")}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    digest.update(b"\0pdf\0")
    digest.update(str(message.get("pdf", "")).encode("ascii", "replace"))
    return f"escr-ocr-{scope}-p{job.index}-{digest.hexdigest()[:16]}"


def _collected_at(meta: dict[str, Any]) -> float | None:
    """When the sender gathered this page, if it did: then the backend holds a marker, not text."""
    result = meta.get("result")
    return float(result["collected_at"]) if isinstance(result, dict) and "collected_at" in result else None


def _stale(meta: dict[str, Any], sent_at: Any) -> bool:
    """This copy was sent before the sender collected the page: its answer is no longer wanted."""
    collected = _collected_at(meta)
    return collected is not None and isinstance(sent_at, (int, float)) and sent_at < collected


def _answer(value: Any, job: PageJob) -> OcrPage:
    if not isinstance(value, dict) or value.get("v") != WIRE_VERSION:
        raise OcrError("a worker of another escr version answered; run the same version everywhere",
                       code="wire_version")
    if "error" in value:
        raise decode_error(value["error"], page_number=job.index + 1)
    return decode_page(value["page"])


# --- the task -----------------------------------------------------------------------------------


def run_page_task(task: Task, message: dict[str, Any], *, max_attempts: int, max_bytes: int) -> dict[str, Any]:
    """One delivery of a page: count it, OCR the page, answer with the page or a plain error."""
    from escr.runtime import metrics

    task_id = task.request.id
    worker = task.request.hostname or socket.gethostname()
    previous = task.backend.get_task_meta(task_id, cache=False)
    collected = _collected_at(previous)
    sent_at = message.get("sent_at") if isinstance(message, dict) else None
    if _stale(previous, sent_at):
        log.info("ocr page skipped task=%s: already collected", task_id)
        raise celery.exceptions.Ignore()  # a stale copy: acknowledged, nothing stored, the text is not written again
    if previous.get("status") == "SUCCESS" and collected is None:
        log.info("ocr page skipped task=%s: already done", task_id)
        raise celery.exceptions.Ignore()  # another copy's answer waits for the sender: do not write it twice
    attempt = _count_attempt(task, worker, previous)
    log.info("ocr page started task=%s attempt=%d", task_id, attempt)
    started = time.perf_counter()
    if attempt > max_attempts:
        outcome: dict[str, Any] = {"error": {"kind": "ocr", "code": "ocr_worker_lost",
                                             "message": f"the page stopped its worker {attempt - 1} times"}}
    else:
        try:
            outcome = {"page": encode_page(ocr_message(message, max_bytes=max_bytes))}
        except EscrError as exc:
            outcome = {"error": encode_error(exc)}
    seconds = time.perf_counter() - started
    if _stale(task.backend.get_task_meta(task_id, cache=False), sent_at):
        # The sender collected another copy's answer while this one ran: storing now would put
        # the text back over the marker, and nobody would come for it.
        log.info("ocr page skipped task=%s: collected while it ran", task_id)
        raise celery.exceptions.Ignore()
    status = "error" if "error" in outcome else "ok"
    metrics.observe_worker_page(status, seconds, outcome.get("page"))
    log.info("ocr page done task=%s attempt=%d status=%s seconds=%.2f", task_id, attempt, status, seconds)
    return {"v": WIRE_VERSION, "worker": worker, "attempt": attempt, **outcome}


def _count_attempt(task: Task, worker: str, previous: dict[str, Any]) -> int:
    """This delivery's number, kept in the result backend so any worker sees the earlier ones."""
    info = previous.get("result") if previous.get("status") == "STARTED" else None
    attempt = (int(info.get("attempt", 0)) if isinstance(info, dict) else 0) + 1
    task.update_state(state="STARTED", meta={"attempt": attempt, "worker": worker})
    return attempt


def ocr_message(message: dict[str, Any], *, max_bytes: int) -> OcrPage:
    """Render, measure and OCR the one-page PDF a message carries, as `ocr_pages` would."""
    if not isinstance(message, dict) or message.get("v") != WIRE_VERSION:
        raise OcrError("page message of another escr version; run the same version everywhere", code="wire_version")
    try:
        pdf = base64.b64decode(message["pdf"], validate=True)
        dpi = int(message["dpi"])
        find_cover = bool(message["find_cover"])
        settings = OcrSettings.model_validate(message["ocr"])
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise OcrError("malformed page message", code="wire_malformed") from exc
    if len(pdf) > max_bytes:
        raise OcrError(f"page message of {len(pdf)} bytes is over this worker's limit", code="page_too_large")
    with tempfile.TemporaryDirectory(prefix="escr-page-") as tmp:
        path = Path(tmp) / "page.pdf"
        path.write_bytes(pdf)
        return read_page(PageJob(path=path, media_type=PDF, index=0, dpi=dpi, find_cover=find_cover), settings)


# --- the wire format ----------------------------------------------------------------------------


def extract_page(source: pikepdf.Pdf, index: int) -> bytes:
    """Page `index` alone as a PDF: its images copied as they are, unused resources dropped.

    pikepdf pushes inherited attributes (MediaBox, Rotate, Resources) down to the copied page,
    so the page renders exactly as it does inside the scan.
    """
    one = pikepdf.new()
    one.pages.append(source.pages[index])
    one.remove_unreferenced_resources()
    buffer = io.BytesIO()
    one.save(buffer, deterministic_id=True)
    return buffer.getvalue()


def page_message(page_pdf: bytes, *, dpi: int, settings: OcrSettings, find_cover: bool = False) -> dict[str, Any]:
    """The JSON body of a page task."""
    return {"v": WIRE_VERSION, "pdf": base64.b64encode(page_pdf).decode("ascii"), "dpi": dpi,
            "find_cover": find_cover, "ocr": settings.model_dump(mode="json")}


def encode_page(page: OcrPage) -> dict[str, Any]:
    return {
        "text": page.text,
        "words": [[w.text, w.conf, *w.bbox] for w in page.words],
        "mean_conf": page.mean_conf,
        "rotation": page.rotation,
        "skew_deg": page.skew_deg,
        "text_pdf": base64.b64encode(page.text_pdf).decode("ascii"),
        "dpi": page.dpi,
        "tesseract_runs": page.tesseract_runs,
        "blank": page.blank,
        "metrics": dataclasses.asdict(page.metrics),
        "cover": encode_payload(page.cover) if page.cover is not None else None,
        "stamp": page.stamp.isoformat() if page.stamp is not None else None,
    }


def decode_page(data: dict[str, Any]) -> OcrPage:
    """The OcrPage a worker sent back; a malformed answer is an OcrError, not a KeyError."""
    try:
        return OcrPage(
            text=str(data["text"]),
            words=tuple(OcrWord(text=str(t), conf=float(c), bbox=(int(x0), int(y0), int(x1), int(y1)))
                        for t, c, x0, y0, x1, y1 in data["words"]),
            mean_conf=None if data["mean_conf"] is None else float(data["mean_conf"]),
            rotation=int(data["rotation"]),
            skew_deg=None if data["skew_deg"] is None else float(data["skew_deg"]),
            text_pdf=base64.b64decode(data["text_pdf"], validate=True),
            dpi=int(data["dpi"]),
            tesseract_runs=int(data["tesseract_runs"]),
            blank=bool(data["blank"]),
            metrics=PageMetrics(**data["metrics"]),
            cover=None if data["cover"] is None else _cover(str(data["cover"])),
            stamp=None if data.get("stamp") is None else date.fromisoformat(str(data["stamp"])),
        )
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise OcrError("a worker sent back a malformed page", code="wire_malformed") from exc


def _cover(payload: str) -> CoverSheet:
    try:
        sheet = decode_payload(payload)
    except InputRejected as exc:
        raise ValueError("unreadable cover-sheet payload") from exc
    if sheet is None:
        raise ValueError("not an escr cover-sheet payload")
    return sheet


def encode_error(exc: EscrError) -> dict[str, Any]:
    """An escr error as JSON; its message is already free of personal data."""
    if isinstance(exc, InputRejected):
        return {"kind": "input_rejected", "code": exc.code, "message": exc.message, "action": exc.action}
    return {"kind": "ocr", "code": exc.code, "message": exc.message}


def decode_error(data: dict[str, Any], *, page_number: int) -> EscrError:
    if data.get("kind") == "input_rejected":
        return InputRejected(str(data["code"]), str(data["message"]), str(data["action"]))
    return OcrError(f"OCR of page {page_number} failed on a worker: {data.get('message', 'unknown error')}",
                    code=str(data.get("code") or "ocr_failed"))
