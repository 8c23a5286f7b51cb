"""The page-OCR seam: what the pipeline calls to OCR a file's pages, and the in-process default.

Apart from escr.runtime.distributed (which chooses one) so that the Celery side can use it
without importing the chooser back.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from escr.pages.ocr import OcrPage, PageJob
from escr.pages.slots import ocr_pages
from escr.settings import OcrSettings


class PageOcr(Protocol):
    """OCR the pages of one file; results in any order, each with the job it answers."""

    name: str

    def __call__(self, jobs: Sequence[PageJob], *, scope: str) -> Iterator[tuple[PageJob, OcrPage]]: ...


@dataclass(frozen=True)
class LocalPageOcr:
    """This process's OCR slots, one single-threaded tesseract per core; `pool`, when given, is
    shared by every file read at once (see `shared_page_ocr`)."""

    settings: OcrSettings
    workers: int
    name: str = "local"
    pool: ThreadPoolExecutor | None = None

    def __call__(self, jobs: Sequence[PageJob], *, scope: str = "") -> Iterator[tuple[PageJob, OcrPage]]:
        return ocr_pages(jobs, settings=self.settings, workers=self.workers, pool=self.pool)
