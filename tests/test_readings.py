"""Page readings kept on disk while a file is in the pipeline: what comes back is what OCR gave."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from escr.errors import OcrError, StorageError
from escr.pages.imaging import PageMetrics
from escr.pages.ocr import OcrPage, OcrWord
from escr.pages.readings import PageShelf

METRICS = PageMetrics(mean=240.0, dark_fraction=0.02, ink_fraction=0.03, p1=20, p99=250, blank=False)
PAGE = OcrPage(text="Visit note, page 2", words=(OcrWord("Visit", 96.5, (10, 10, 80, 30)),
                                                  OcrWord("note,", 91.0, (90, 10, 150, 30))),
               mean_conf=93.75, rotation=90, skew_deg=0.4, text_pdf=b"%PDF-1.5 text layer", dpi=300,
               tesseract_runs=2, blank=False, metrics=METRICS)


def test_a_kept_page_reads_back_as_the_page_ocr_gave(tmp_path: Path) -> None:
    reading = PageShelf(tmp_path / "pages").keep(4, PAGE)
    for f in fields(OcrPage):
        assert getattr(reading, f.name) == getattr(PAGE, f.name), f.name
    assert reading.word_count == 2


def test_a_page_whose_file_went_missing_is_an_error_not_an_empty_page(tmp_path: Path) -> None:
    reading = PageShelf(tmp_path / "pages").keep(0, PAGE)
    reading.path.unlink()
    with pytest.raises(OcrError) as lost:
        _ = reading.words
    assert lost.value.code == "page_lost"


def test_a_work_folder_that_cannot_be_written_defers_the_file(tmp_path: Path) -> None:
    blocked = tmp_path / "pages"
    blocked.write_text("a file where the folder should be")
    with pytest.raises(StorageError):
        PageShelf(blocked).keep(0, PAGE)
