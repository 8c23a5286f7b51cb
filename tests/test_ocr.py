"""OCR of page images: words with confidences, pages turned upright, skew, blank pages skipped."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from escr.errors import OcrError
from escr.pages.imaging import page_metrics
from escr.pages.ocr import OcrPage, PageJob, ocr_page, tesseract_version
from escr.pages.slots import ocr_pages
from escr.settings import OcrSettings
from tests.support.scans import colour_letter, degrade, text_page, write_pdf, write_tiff

pytestmark = pytest.mark.real_ocr  # about OCR itself: never served from the test OCR cache

CORPUS = Path(__file__).resolve().parents[2] / "shared/corpus/scanners"
corpus = pytest.mark.skipif(not CORPUS.exists(), reason="scanner corpus not present")

DPI = 200
A6 = (4.13, 5.83)
LINES = [
    "Referral from Hillside Primary School",
    "The family attended the review meeting",
    "and agreed the safety plan with the team.",
    "Next visit booked for the spring term,",
    "with the school nurse and class teacher.",
    "Signed by the duty social worker.",
]
KNOWN = ["Referral", "Hillside", "Primary", "family", "review", "meeting", "safety", "nurse"]
SETTINGS = OcrSettings()


def a6_page() -> Image.Image:
    page = text_page(LINES, dpi=DPI, size_inches=A6, font_pt=11, margin_inches=0.5)
    page.info["dpi"] = (DPI, DPI)
    return page


def turned(image: Image.Image, **degradation: float) -> Image.Image:
    out = degrade(image, **degradation)
    out.info["dpi"] = (DPI, DPI)
    return out


def assert_reads_the_letter(page: OcrPage) -> None:
    for word in KNOWN:
        assert word in page.text
    assert page.text.index("Referral") < page.text.index("Signed")  # reading order


@pytest.fixture(scope="module")
def upright() -> OcrPage:
    return ocr_page(a6_page(), dpi=DPI, settings=SETTINGS)


@pytest.mark.ocr
def test_known_words_come_back_with_confidences(upright: OcrPage) -> None:
    assert_reads_the_letter(upright)
    by_text = {w.text: w for w in upright.words}
    for word in KNOWN:
        assert by_text[word].conf > 80
    assert upright.mean_conf is not None and upright.mean_conf > 85
    # Boxes are in image pixels: the first word starts at the 0.5 inch margin.
    x0, y0, x1, y1 = by_text["Referral"].bbox
    assert abs(x0 - DPI // 2) <= 8 and abs(y0 - DPI // 2) <= 20 and x1 > x0 and y1 > y0


@pytest.mark.ocr
def test_upright_page_costs_one_tesseract_run_and_yields_a_text_layer(upright: OcrPage) -> None:
    assert upright.tesseract_runs == 1
    assert upright.rotation == 0
    assert upright.text_pdf.startswith(b"%PDF")
    assert upright.dpi == DPI and not upright.blank
    assert upright.skew_deg is not None and abs(upright.skew_deg) < 0.5


@pytest.mark.ocr
@pytest.mark.parametrize(("turned_ccw", "expected_rotation", "runs"), [
    (90, 90, 2),  # landscape: orientation detection first, then the upright pass
    (180, 180, 3),  # looks upright: first pass, orientation detection, upright pass
])
def test_turned_page_comes_back_upright(turned_ccw: int, expected_rotation: int, runs: int) -> None:
    page = ocr_page(turned(a6_page(), rotate=turned_ccw), dpi=DPI, settings=SETTINGS)
    assert page.rotation == expected_rotation
    assert_reads_the_letter(page)
    assert page.mean_conf is not None and page.mean_conf > 85
    assert page.tesseract_runs == runs


@pytest.mark.ocr
def test_upright_landscape_page_is_read_once_as_it_is() -> None:
    """A landscape form (a chronology, a spreadsheet) is checked for orientation, then read once."""
    landscape = text_page(["Chronology of significant events", "Referral received from the school nurse",
                           "Strategy discussion held with the police", "Initial child protection conference"],
                          dpi=DPI, size_inches=(5.83, 4.13), margin_inches=0.4)
    page = ocr_page(landscape, dpi=DPI, settings=SETTINGS)
    assert page.rotation == 0 and page.tesseract_runs == 2
    assert "Chronology" in page.text and "Strategy" in page.text


@pytest.mark.ocr
def test_cover_sheet_is_read_from_the_same_render_and_not_ocred(tmp_path: Path) -> None:
    from escr.pages.coversheet import CoverSheet
    from tests.support.scans import coversheet_page

    sheet = CoverSheet("B-7K3Q9X2M", ("AB123456",), "referral", 1)
    pdf = write_pdf([degrade(coversheet_page(sheet, dpi=DPI), noise=0.01, skew_deg=1.5), a6_page()],
                    tmp_path / "batch.pdf", dpi=DPI)
    jobs = [PageJob(pdf, "application/pdf", i, DPI, key=i, find_cover=True) for i in (0, 1)]
    results = {job.key: page for job, page in ocr_pages(jobs, settings=SETTINGS, workers=2)}
    assert results[0].cover == sheet
    assert results[0].tesseract_runs == 0 and results[0].text == "" and not results[0].blank
    assert results[1].cover is None
    assert_reads_the_letter(results[1])
    # Asked only to OCR (no cover check), the same sheet is just a page.
    (_, plain), = ocr_pages([PageJob(pdf, "application/pdf", 0, DPI)], settings=SETTINGS, workers=1)
    assert plain.cover is None and plain.tesseract_runs >= 1


@pytest.mark.ocr
def test_orientation_detection_off_leaves_a_turned_page_as_it_is() -> None:
    settings = OcrSettings(detect_orientation=False)
    page = ocr_page(turned(a6_page(), rotate=180), dpi=DPI, settings=settings)
    assert page.rotation == 0 and page.tesseract_runs == 1
    assert "Referral" not in page.text


@pytest.mark.ocr
def test_skew_of_three_degrees_is_measured() -> None:
    page = ocr_page(turned(a6_page(), skew_deg=3), dpi=DPI, settings=SETTINGS)
    assert page.skew_deg is not None
    assert abs(page.skew_deg - 3) <= 1  # counter-clockwise positive, as degrade turns it
    assert "Hillside" in page.text


@pytest.mark.ocr
def test_ocr_pages_skips_blank_pages_and_routes_results_by_key(tmp_path: Path) -> None:
    empty = text_page([], dpi=DPI, size_inches=A6)
    pdf = write_pdf([a6_page(), degrade(empty, noise=0.002)], tmp_path / "batch.pdf", dpi=DPI)
    tiff = write_tiff([a6_page()], tmp_path / "scan.tif", dpi=DPI)
    jobs = [
        PageJob(pdf, "application/pdf", 0, DPI, key="pdf-1"),
        PageJob(pdf, "application/pdf", 1, DPI, key="pdf-2"),
        PageJob(tiff, "image/tiff", 0, DPI, key="tif-1"),
    ]
    results = {job.key: page for job, page in ocr_pages(jobs, settings=SETTINGS, workers=2)}
    assert set(results) == {"pdf-1", "pdf-2", "tif-1"}
    blank = results["pdf-2"]
    assert blank.blank and blank.metrics.blank
    assert blank.tesseract_runs == 0 and blank.words == () and blank.text_pdf == b""
    for key in ("pdf-1", "tif-1"):
        assert not results[key].blank
        assert_reads_the_letter(results[key])


@pytest.mark.ocr
def test_light_coloured_print_and_highlighted_lines_of_a_colour_scan_are_both_read(tmp_path: Path) -> None:
    # In grey, orange and yellow print is as light as the paper; read in colour, as tesseract
    # reads a colour page by itself, a highlighter's stripe turns black with the words in it.
    # escr reads the grey page with the coloured print put back from the colour: all of it reads.
    coloured = [("Received by the duty team", (255, 140, 0)), ("Strategy meeting Thursday", (220, 180, 0)),
                ("Chronology attached overleaf", (90, 150, 230)), ("Hospital discharge summary", (255, 100, 170))]
    page = colour_letter(coloured, lines=LINES, dpi=DPI, size_inches=A6, font_pt=10,
                         highlight=(255, 240, 60), highlighted=(1, 2))
    pdf = write_pdf([page], tmp_path / "colour.pdf", dpi=DPI)
    [(_, result)] = list(ocr_pages([PageJob(pdf, "application/pdf", 0, DPI)], settings=SETTINGS, workers=1))
    assert_reads_the_letter(result)
    assert "The family attended the review meeting" in result.text  # highlighted
    assert "and agreed the safety plan with the team." in result.text  # highlighted
    for word in ("Received", "duty", "Strategy", "Thursday", "Chronology", "overleaf", "Hospital", "discharge"):
        assert word in result.text


def test_ocr_pages_with_no_jobs_yields_nothing() -> None:
    assert list(ocr_pages([], settings=SETTINGS, workers=2)) == []


@pytest.mark.ocr
def test_tesseract_failure_is_an_ocr_error_without_page_text() -> None:
    settings = OcrSettings(language="xx_no_such_language")
    with pytest.raises(OcrError) as err:
        ocr_page(a6_page(), dpi=DPI, settings=settings)
    assert "Referral" not in str(err.value)


@pytest.mark.ocr
def test_tesseract_timeout_is_an_ocr_error() -> None:
    settings = OcrSettings(page_timeout_s=0)
    with pytest.raises(OcrError) as err:
        ocr_page(a6_page(), dpi=DPI, settings=settings)
    assert err.value.code == "ocr_timeout"


@pytest.mark.ocr
def test_tesseract_version_is_reported() -> None:
    assert tesseract_version().split(".")[0].isdigit()


@pytest.mark.ocr
def test_metrics_passed_in_are_carried_on_the_result(upright: OcrPage) -> None:
    assert upright.metrics == page_metrics(a6_page())


@pytest.mark.ocr
@pytest.mark.corpus
@corpus
def test_corpus_cardinal_sideways_and_upside_down_pages_come_back_upright() -> None:
    # cardinal.pdf holds one page drawn at 0, 90, 180 and 270 degrees; its pages 2 and 3 are
    # turned a quarter and a half.
    source = CORPUS / "cardinal.pdf"
    jobs = [PageJob(source, "application/pdf", i, 150, key=i) for i in (1, 2)]
    results = {job.key: page for job, page in ocr_pages(jobs, settings=SETTINGS, workers=2)}
    assert results[1].rotation == 270
    assert results[2].rotation == 180
    for page in results.values():
        assert "LinnSequencer" in page.text
        assert page.mean_conf is not None and page.mean_conf > 80


@pytest.mark.ocr
@pytest.mark.corpus
@corpus
def test_corpus_french_accents_survive() -> None:
    jobs = [PageJob(CORPUS / "francais.pdf", "application/pdf", 0, 300)]
    [(_, page)] = list(ocr_pages(jobs, settings=SETTINGS, workers=1))
    assert "intérieure" in page.text
    assert "qualité" in page.text


@pytest.mark.ocr
@pytest.mark.parametrize("turned_ccw", [0, 90])
def test_the_distributions_tesseract_command_reads_the_same_page(turned_ccw: int) -> None:
    """ocr.engine = "command" (the `tesseract` program per read) reads and turns pages as the
    default engine does, for a council that takes Tesseract from its distribution only."""
    settings = OcrSettings(engine="command")
    page = ocr_page(turned(a6_page(), rotate=turned_ccw), dpi=DPI, settings=settings)
    assert_reads_the_letter(page)
    assert page.rotation == turned_ccw
    assert tesseract_version(settings).split(".")[0].isdigit()
