"""Page readings held while a file goes through the pipeline: light in memory, heavy on disk.

A page's OCR is small except for its words (text, confidence and box of each) and its text-layer
PDF. A 300-page file held them all until it was filed, so the intake process grew with the
file. `PageShelf` writes each page's full `OcrPage` to the file's work folder as it arrives and
hands back a `PageReading`: the same attributes, with `words` and `text_pdf` read back from disk
only when a stage asks for them (the reading copy, the page rows), one page at a time.

The work folder is the claim's own (`work/<claim id>/`, removed when the file leaves the
pipeline), so OCR text on disk is no more exposed than the scan beside it in `processing/`.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from escr.errors import OcrError, StorageError
from escr.pages.coversheet import CoverSheet
from escr.pages.imaging import PageMetrics
from escr.pages.ocr import OcrPage, OcrWord


@dataclass(frozen=True)
class PageReading:
    """An `OcrPage` whose words and text layer wait on disk until asked for."""

    text: str
    mean_conf: float | None
    rotation: int
    skew_deg: float | None
    dpi: int
    tesseract_runs: int
    blank: bool
    metrics: PageMetrics
    cover: CoverSheet | None
    word_count: int
    path: Path
    stamp: date | None = None  # a cover sheet's received-date stamp, as read

    @property
    def words(self) -> tuple[OcrWord, ...]:
        return self._load().words

    @property
    def text_pdf(self) -> bytes:
        return self._load().text_pdf

    def _load(self) -> OcrPage:
        try:
            page = pickle.loads(self.path.read_bytes())  # escr's own file, written by PageShelf.keep
        except (OSError, pickle.UnpicklingError, EOFError) as exc:
            raise OcrError("a page's OCR could not be read back from the work folder", code="page_lost") from exc
        if not isinstance(page, OcrPage):
            raise OcrError("a page's OCR in the work folder is not escr's", code="page_lost")
        return page


class PageShelf:
    """Where one file's page readings wait: `<work dir>/pages/<index>.ocr`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def keep(self, index: int, page: OcrPage) -> PageReading:
        path = self.folder / f"{index:05d}.ocr"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            path.write_bytes(pickle.dumps(page, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError as exc:  # a full or failing disk: the file waits in processing/ for a retry
            raise StorageError("the work folder could not hold a page's OCR", code="work_folder_failed") from exc
        return PageReading(text=page.text, mean_conf=page.mean_conf, rotation=page.rotation, skew_deg=page.skew_deg,
                           dpi=page.dpi, tesseract_runs=page.tesseract_runs, blank=page.blank, metrics=page.metrics,
                           cover=page.cover, word_count=len(page.words), path=path, stamp=page.stamp)
