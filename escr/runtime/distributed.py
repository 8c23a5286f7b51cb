"""Who OCRs the pages of a file: this process's own thread pool, or Celery workers on N machines.

The intake pipeline asks a `PageOcr` for the pages of a file and gets `(job, OcrPage)` pairs
back; it does not know which kind it was given. `open_page_ocr(settings)` picks one: with no
broker configured the local OCR slots of `escr.pages.slots.ocr_pages` (one tesseract per core, as
before); with a broker, `escr.runtime.tasks.CeleryPageOcr`, which sends the file's pages to `escr worker`
processes as Celery groups and gathers the answers. Storage and database writes stay with the
caller either way.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

# Celery, kombu and the broker clients are imported only when a broker is configured: the
# in-process default does not load them.
from escr.pages.slots import process_slots
from escr.runtime.page_ocr import LocalPageOcr, PageOcr  # noqa: F401  (re-exported)
from escr.settings import Settings


@contextmanager
def open_page_ocr(settings: Settings) -> Iterator[PageOcr]:
    """The page OCR these settings ask for, for the duration of one file (or one process)."""
    if not settings.celery.broker_url:
        # The slots start now, importing while this process claims and checks the first file.
        process_slots().warm(settings.ocr_workers, settings.ocr)
        with ThreadPoolExecutor(settings.ocr_workers, thread_name_prefix="ocr") as pool:
            yield LocalPageOcr(settings.ocr, settings.ocr_workers, pool=pool)
        return
    from escr.runtime.tasks import CeleryPageOcr, celery_app

    app = celery_app(settings)
    try:
        yield CeleryPageOcr(app, settings)
    finally:
        app.close()


@contextmanager
def shared_page_ocr(settings: Settings) -> Iterator[PageOcr | None]:
    """One page OCR for every file this process reads at once, or None: each file opens its own.

    Local OCR is shared, so files in flight together share the cores' tesseract slots. With a
    broker each file keeps its own Celery app (as `intake.run` opens it): Celery's result
    consumer is not made to be shared between threads, and the workers' queue already keeps
    them busy across files.
    """
    if settings.celery.broker_url:
        yield None
        return
    with open_page_ocr(settings) as page_ocr:
        yield page_ocr


def broker_reachable(settings: Settings, *, timeout_s: float = 3.0) -> bool:
    """Whether the configured broker accepts a connection now."""
    import kombu

    from escr.runtime.tasks import BROKER_ERRORS

    if not settings.celery.broker_url:
        return False
    try:
        with kombu.Connection(settings.celery.broker_url, connect_timeout=timeout_s) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout_s)
        return True
    except (*BROKER_ERRORS, OSError):
        return False


def queue_depth(settings: Settings, *, timeout_s: float = 3.0) -> int | None:
    """Pages waiting on the broker for a worker; None without a broker or when it cannot be asked."""
    import amqp.exceptions
    import kombu
    import kombu.exceptions

    from escr.runtime.tasks import BROKER_ERRORS

    if not settings.celery.broker_url:
        return None
    try:
        with kombu.Connection(settings.celery.broker_url, connect_timeout=timeout_s) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout_s)
            with conn.channel() as channel:
                return int(channel.queue_declare(settings.celery.queue, passive=True).message_count)
    except (amqp.exceptions.NotFound, kombu.exceptions.ChannelError):
        return 0  # no such queue yet: nothing was ever sent
    except (*BROKER_ERRORS, OSError, kombu.exceptions.KombuError, amqp.exceptions.AMQPError):
        return None
