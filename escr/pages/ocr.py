"""OCR of page images with Tesseract (escr.pages.engine), single-threaded, one page at a time.

OCR is the cost of the whole system, so each page costs one tesseract read that gives text and
word confidences, boxes and line baselines (hOCR) together; the invisible text layer is drawn
from the hOCR in escr.pages.text_layer. Upright pages never pay for orientation detection: it
runs only when the first pass reads badly. `escr.pages.slots.ocr_pages` keeps one read per core
busy, each in its own child process, which is faster overall than one read using several threads.

OCR text is personal data: it never goes into an exception message or a log line.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Hashable
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from PIL import Image

from escr.errors import OcrError
from escr.pages.coversheet import STAMP_LABEL, CoverSheet, find_coversheet, read_stamp_box
from escr.pages.engine import detect_orientation, engine_version, read_page_text, tesseract_ready
from escr.pages.hocr import OcrWord, read_hocr
from escr.pages.imaging import CLOCKWISE_TURN, PageMetrics, page_metrics, render_for_ocr
from escr.pages.text_layer import text_layer_pdf
from escr.settings import OcrSettings

# psm 3 (automatic layout, no OSD): measured on a 300 dpi A4 text page, psm 1 (layout + OSD)
# costs ~35 % more CPU on every page, while psm 3 + OSD only on badly-read pages costs nothing
# extra on upright pages.
PSM = "3"
# OSD is run on a copy reduced to about this resolution: ~40 % cheaper than at 300 dpi and as
# accurate; at 100 dpi it starts to misjudge sideways pages.
OSD_DPI = 150
# OSD orientation confidence below which its answer is not worth a second OCR run.
OSD_MIN_CONFIDENCE = 2.0
# Words of this confidence or more count towards a run's quality.
CONFIDENT_WORD = 60.0
# A page whose first pass finds fewer words than this per square inch of ink (as page_metrics
# measures it) is re-checked for orientation even if the words it found scored well: a turned
# page can read as a few confident fragments. Printed pages measure 30-90, a typewritten one 10.
MIN_WORDS_PER_INK_SQ_INCH = 4.0
# An image this much wider than tall is checked for orientation before it is read (see
# _landscape_page); A4 turned sideways measures 1.41.
LANDSCAPE_RATIO = 1.2
# Fewer measured lines than this and the skew is not reported.
MIN_SKEW_LINES = 3



@dataclass(frozen=True)
class OcrPage:
    text: str  # the page's text, lines in reading order
    words: tuple[OcrWord, ...]
    mean_conf: float | None  # mean word confidence 0..100, None if no words
    rotation: int  # clockwise degrees (0/90/180/270) the page image had to be turned upright
    skew_deg: float | None  # text-line angle, counter-clockwise positive; None if too few lines
    text_pdf: bytes  # the one-page invisible text PDF for the upright image (escr.pages.text_layer); b"" if blank
    dpi: int
    tesseract_runs: int  # processes started: 1 upright; +1 for OSD; +1 for the re-run turned
    blank: bool  # the page had nothing on it and was not OCRed
    metrics: PageMetrics
    cover: CoverSheet | None = None  # the page is this escr cover sheet, so it was not OCRed
    stamp: date | None = None  # on a cover sheet: the date stamped in its "received" box, if read


@dataclass(frozen=True)
class PageJob:
    """One page to OCR; `key` is the caller's, handed back untouched to route the result."""

    path: Path
    media_type: str
    index: int
    dpi: int
    key: Hashable = None
    find_cover: bool = False  # look for an escr cover sheet on the same render first


def tesseract_version(settings: OcrSettings | None = None) -> str:
    """The tesseract version, recorded with every document's provenance."""
    return engine_version(settings or OcrSettings())


def ocr_page(
    image: Image.Image,
    *,
    dpi: int,
    settings: OcrSettings,
    metrics: PageMetrics | None = None,
) -> OcrPage:
    """OCR one page image, turning it upright first when it was scanned sideways or upside down.

    The first pass takes the page as it is. Only if it reads badly (low mean confidence, text
    running vertically, or few words for the ink on the page) does OSD look at the orientation;
    if OSD says the page is turned, the turned image is OCRed again and the better run is kept.
    `metrics` saves measuring the page again when the caller already has them.
    """
    if metrics is None:
        metrics = page_metrics(image)
    image = tesseract_ready(image)
    if settings.detect_orientation and image.width > image.height * LANDSCAPE_RATIO:
        return _landscape_page(image, dpi=dpi, settings=settings, metrics=metrics)
    first = _recognise(image, dpi=dpi, settings=settings, metrics=metrics)
    if not settings.detect_orientation or not _reads_badly(first, image, dpi, settings):
        return first
    turn = _detect_rotation(image, dpi=dpi, settings=settings)
    runs = first.tesseract_runs + 1
    if not turn:
        return replace(first, tesseract_runs=runs)
    second = _recognise(
        image.transpose(CLOCKWISE_TURN[turn]), dpi=dpi, settings=settings, metrics=metrics, rotation=turn
    )
    runs += 1
    best = second if _quality(second) > _quality(first) else first
    return replace(best, tesseract_runs=runs)


def _landscape_page(image: Image.Image, *, dpi: int, settings: OcrSettings, metrics: PageMetrics) -> OcrPage:
    """A landscape image is most often a portrait page fed sideways: OSD first saves the wasted
    first pass. A page OSD leaves as it is is read once; a turned one that reads badly is read
    as it is too, and the better run kept, so a wrong OSD answer costs time, never text."""
    turn = _detect_rotation(image, dpi=dpi, settings=settings)
    if not turn:
        return replace(_recognise(image, dpi=dpi, settings=settings, metrics=metrics), tesseract_runs=2)
    turned = _recognise(image.transpose(CLOCKWISE_TURN[turn]), dpi=dpi, settings=settings, metrics=metrics, rotation=turn)
    if not _reads_badly(turned, image, dpi, settings):
        return replace(turned, tesseract_runs=2)
    as_is = _recognise(image, dpi=dpi, settings=settings, metrics=metrics)
    best = turned if _quality(turned) >= _quality(as_is) else as_is
    return replace(best, tesseract_runs=3)


def blank_page(*, dpi: int, metrics: PageMetrics) -> OcrPage:
    """The result for a page that was blank and so was not OCRed."""
    return OcrPage(
        text="",
        words=(),
        mean_conf=None,
        rotation=0,
        skew_deg=None,
        text_pdf=b"",
        dpi=dpi,
        tesseract_runs=0,
        blank=True,
        metrics=metrics,
    )


def ocr_job(job: PageJob, settings: OcrSettings) -> OcrPage:
    """Render, measure and (unless a cover sheet or blank) OCR one page: the whole of a worker's
    job, run in an OCR slot (escr.pages.slots) for `ocr_pages` or for a Celery worker.

    The page is rendered once: the cover-sheet check, the measurements and tesseract all read it
    in grey, tesseract with any light-coloured print put back from the colour (`render_for_ocr`)."""
    render = render_for_ocr(job.path, job.media_type, job.index, dpi=job.dpi, timeout_s=settings.page_timeout_s)
    metrics = page_metrics(render.grey)
    if job.find_cover:
        sheet = find_coversheet(render.grey)
        if sheet is not None:
            return replace(blank_page(dpi=job.dpi, metrics=metrics), blank=False, cover=sheet,
                           stamp=read_date_stamp(render.grey, dpi=job.dpi, settings=settings))
    if metrics.blank:
        return blank_page(dpi=job.dpi, metrics=metrics)
    image = render.for_tesseract()
    del render  # while tesseract reads, one page image is held, not a colour one beside it
    return ocr_page(image, dpi=job.dpi, settings=settings, metrics=metrics)


_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_NUMERIC_DATE = re.compile(r"(?<!\d)(\d{1,2})\s*[./-]\s*(\d{1,2})\s*[./-]\s*(\d{4}|\d{2})(?!\d)")
_NAMED_DATE = re.compile(r"(?<!\d)(\d{1,2})\s*(?:ST|ND|RD|TH)?\s*[./-]?\s*(" + "|".join(_MONTHS)
                         + r")[A-Z]*\.?\s*[./-]?\s*(\d{4}|\d{2})(?!\d)")


def parse_stamp_date(text: str) -> date | None:
    """The date an office stamp says, read as a UK date: 12/03/2026, 12.3.26, 12 MAR 2026,
    12-Mar-26; None when no valid date is there (a stamp is never guessed at)."""
    upper = text.upper()
    for pattern, month_of in ((_NAMED_DATE, lambda m: _MONTHS.index(m[:3]) + 1), (_NUMERIC_DATE, int)):
        for found in pattern.finditer(upper):
            day, month, year = int(found.group(1)), month_of(found.group(2)), int(found.group(3))
            year += 2000 if year < 100 else 0
            try:
                return date(year, month, day)
            except ValueError:
                continue
    return None


def _empty_box(box: Image.Image, *, dpi: int) -> bool:
    """Nothing stamped: inside the printed frame and below its label, hardly any ink (no OCR run)."""
    mm = dpi / 25.4
    inner = box.crop((int(5 * mm), int(9 * mm), max(int(5 * mm) + 1, box.width - int(5 * mm)),
                      max(int(9 * mm) + 1, box.height - int(5 * mm))))
    dark = sum(inner.point(lambda v: 255 if v < 128 else 0).histogram()[255:])
    return dark < 0.002 * inner.width * inner.height


def read_date_stamp(image: Image.Image, *, dpi: int, settings: OcrSettings) -> date | None:
    """The date stamped in the cover sheet's "received" box, however the sheet was turned on the
    scanner; None when the box is empty or the date cannot be read (business support enter it)."""
    box = read_stamp_box(image, dpi=dpi)
    if box is None or _empty_box(box, dpi=dpi):
        return None
    for psm in ("6", "11"):  # a block of text; then scattered words (a tilted or faint stamp)
        try:
            text, _ = read_page_text(box, dpi=dpi, psm=psm, settings=settings, hocr=False)
        except OcrError:
            return None
        day = parse_stamp_date(text.replace(STAMP_LABEL, " "))
        if day is not None:
            return day
    return None


def _recognise(
    image: Image.Image,
    *,
    dpi: int,
    settings: OcrSettings,
    metrics: PageMetrics,
    rotation: int = 0,
) -> OcrPage:
    """One tesseract read giving hOCR and plain text together; the text layer is drawn from the
    hOCR here (escr.pages.text_layer), not by tesseract's PDF renderer."""
    text, hocr = read_page_text(image, dpi=dpi, psm=PSM, settings=settings)
    lines = read_hocr(hocr)
    text_pdf = text_layer_pdf(lines, width_px=image.width, height_px=image.height, dpi=dpi)
    words = tuple(word for line in lines for word in line.words)
    slopes = [line.slope for line in lines if line.slope is not None and line.runs_across]
    return OcrPage(
        text=text.replace("\f", "").strip(),
        words=words,
        mean_conf=statistics.fmean(w.conf for w in words) if words else None,
        rotation=rotation,
        skew_deg=_skew(slopes),
        text_pdf=text_pdf,
        dpi=dpi,
        tesseract_runs=1,
        blank=False,
        metrics=metrics,
    )


def _skew(slopes: list[float]) -> float | None:
    """Median text-line angle in degrees, counter-clockwise positive (image y grows downward)."""
    if len(slopes) < MIN_SKEW_LINES:
        return None
    return round(-math.degrees(math.atan(statistics.median(slopes))), 2)


def _reads_badly(page: OcrPage, image: Image.Image, dpi: int, settings: OcrSettings) -> bool:
    """A first pass that reads badly may be of a page scanned sideways or upside down.

    Tesseract reads a sideways page's text as vertical lines, often with good confidence, so a
    page whose words mostly run vertically is checked too.
    """
    if page.mean_conf is None or page.mean_conf < settings.orientation_retry_below_conf:
        return True
    long_words = _long_words(page)
    if sum(not _horizontal(w) for w in long_words) > len(long_words) / 2:
        return True
    ink_sq_inches = page.metrics.ink_fraction * image.width * image.height / (dpi * dpi)
    return len(page.words) < ink_sq_inches * MIN_WORDS_PER_INK_SQ_INCH


def _detect_rotation(image: Image.Image, *, dpi: int, settings: OcrSettings) -> int:
    """Clockwise degrees OSD says the image must turn to be upright; 0 when unsure or upright."""
    factor = max(1, round(dpi / OSD_DPI))
    small = image.reduce(factor) if factor > 1 else image
    found = detect_orientation(small, dpi=dpi // factor, settings=settings)
    if found is None or found[1] < OSD_MIN_CONFIDENCE:
        return 0
    turn = found[0] % 360
    return turn if turn in CLOCKWISE_TURN else 0


def _quality(page: OcrPage) -> float:
    """How well a run read the page upright: summed confidence of confident horizontal words."""
    return sum(w.conf for w in _long_words(page) if w.conf >= CONFIDENT_WORD and _horizontal(w))


def _long_words(page: OcrPage) -> list[OcrWord]:
    """Words long enough that their box shows which way the text runs."""
    return [w for w in page.words if len(w.text) >= 3 and any(c.isalnum() for c in w.text)]


def _horizontal(word: OcrWord) -> bool:
    x0, y0, x1, y1 = word.bbox
    return x1 - x0 >= y1 - y0
