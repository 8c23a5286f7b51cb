"""`escr worker`: a Celery worker that OCRs pages for every intake pipeline sharing its broker.

A worker needs the broker settings and Tesseract, nothing else: no database, no object store,
no intake folder. Run as many as there are machines; each takes one page per core at a time.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Annotated

import typer
from rich.console import Console

from escr.cli.common import app, host_operator
from escr.errors import EscrError
from escr.settings import load_settings


@app.command()  # registered when escr.cli.main imports this module
def worker(
    concurrency: Annotated[int | None, typer.Option(
        help="Pages at once (default: celery.worker_concurrency, 0 = one per core).")] = None,
    hostname: Annotated[str | None, typer.Option(help="This worker's name (default: escr@<host name>).")] = None,
    metrics_port: Annotated[int | None, typer.Option(
        help="Serve Prometheus metrics on this port (default: metrics.port).")] = None,
    loglevel: Annotated[str, typer.Option(help="Log level.")] = "INFO",
) -> None:
    """OCR pages sent through the broker (ESCR_CELERY__BROKER_URL) until stopped."""
    from escr.pages.slots import process_slots
    from escr.runtime.health import start_metrics_server
    from escr.runtime.priority import lower_priority
    from escr.runtime.tasks import celery_app
    from escr.services import configure_logging

    try:
        settings = load_settings()
        if metrics_port is not None:
            metrics = settings.metrics.model_copy(update={"port": metrics_port})
            settings = settings.model_copy(update={"metrics": metrics})
        app = celery_app(settings)
        configure_logging(loglevel.upper())
        host_operator("worker")
        # Celery logs each task's return value on success: here, OCR text. Task ids, attempts
        # and timings are logged by the task itself instead.
        logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
        stop_metrics = start_metrics_server(settings)
        lower_priority(settings.ocr)  # OCR waits for people: a web app on this machine answers first
    except EscrError as exc:
        Console(stderr=True).print(f"[red]error[/red] ({exc.code}): {exc.message}")
        raise typer.Exit(exc.exit_code) from None
    slots = concurrency or settings.celery.worker_concurrency or os.cpu_count() or 1
    # One OCR slot per thread, started now: the first pages do not wait for a child to import.
    process_slots().warm(slots, settings.ocr)
    # Threads, not forked processes: each thread's page is read in an OCR slot, a child process
    # keeping Tesseract loaded (single-threaded, bounded by ocr.page_timeout_s; escr.pages.slots),
    # so one thread per core keeps every core busy, and the metrics live in this one process.
    argv = ["worker", "--pool=threads", f"--concurrency={slots}", f"--queues={settings.celery.queue}",
            f"--hostname={hostname or 'escr@' + socket.gethostname()}", f"--loglevel={loglevel.upper()}",
            "--without-gossip", "--without-mingle"]
    try:
        app.worker_main(argv)
    finally:
        if stop_metrics is not None:
            stop_metrics()
