"""Background OCR yields the machine to people: the processes that read scans (the intake watcher
and Celery workers) run at a lower CPU and I/O priority than the web app, so a caseworker's page or
search is served first while every core is busy with Tesseract. An idle machine gives OCR every
cycle either way: priority decides who waits, not how much work gets done."""

from __future__ import annotations

import logging
import os

import psutil

from escr.settings import OcrSettings

log = logging.getLogger(__name__)


def lower_priority(settings: OcrSettings) -> None:
    """Lower this process's priority (inherited by its tesseract and pdftoppm children) by the
    configured niceness, and put its disk reads and writes in the lowest best-effort class."""
    if settings.niceness:
        current = os.getpriority(os.PRIO_PROCESS, 0)
        os.setpriority(os.PRIO_PROCESS, 0, min(19, max(current, settings.niceness)))
    if settings.low_io_priority and hasattr(psutil, "IOPRIO_CLASS_BE"):  # Linux only
        try:
            psutil.Process().ionice(psutil.IOPRIO_CLASS_BE, 7)
        except (psutil.Error, OSError) as exc:  # a container without the right: CPU priority still holds
            log.warning("could not lower the I/O priority: %s", type(exc).__name__)
