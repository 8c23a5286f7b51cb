"""The searchable PDF: scanned pages untouched, OCR text findable where it is on the page."""

from __future__ import annotations

import hashlib
import html
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pikepdf
import pytest
from PIL import Image

from escr.errors import InputRejected
from escr.pages.imaging import page_metrics, render_page
from escr.pages.ocr import OcrPage, PageJob, blank_page
from escr.pages.searchable import SearchablePage, build_searchable_pdf, images_to_pdf
from escr.pages.slots import ocr_pages
from escr.settings import OcrSettings
from tests.support.scans import degrade, text_page, write_image, write_pdf, write_tiff

pytestmark = pytest.mark.real_ocr  # about OCR itself: never served from the test OCR cache

CORPUS = Path(__file__).resolve().parents[2] / "shared/corpus/scanners"
corpus = pytest.mark.skipif(not CORPUS.exists(), reason="scanner corpus not present")

DPI = 200
A6 = (4.13, 5.83)
MARGIN_PT = 36  # text_page margin of 0.5 inch
LETTER = [
    "Referral from Hillside Primary School",
    "The family attended the review meeting",
    "and agreed the safety plan with the team.",
    "Signed by the duty social worker.",
]
REPORT = [
    "Discharge summary from Riverside Hospital",
    "Observations were normal throughout",
    "the stay and the ward team were satisfied.",
    "Copied to the family doctor.",
]
COVER = ["BATCH COVER SHEET", "Do not file this sheet"]
SETTINGS = OcrSettings()


def a6(lines: list[str]) -> Image.Image:
    return text_page(lines, dpi=DPI, size_inches=A6, font_pt=11, margin_inches=0.5)


@dataclass(frozen=True)
class Word:
    text: str
    x0: float
    y0: float
    x1: float
    y1: float


def pdf_words(pdf: Path) -> list[list[Word]]:
    """pdftotext's words per page, with boxes in points on the page as displayed."""
    out = subprocess.run(
        ["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    pattern = re.compile(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>')
    return [
        [Word(html.unescape(m[5]), *(float(v) for v in m.group(1, 2, 3, 4))) for m in pattern.finditer(page)]
        for page in out.split("<page ")[1:]
    ]


def texts(words: list[Word]) -> set[str]:
    return {w.text for w in words}


def image_streams(pdf: Path) -> list[list[tuple[str, bytes]]]:
    """Each page's images as (filters, raw encoded bytes)."""
    with pikepdf.open(pdf) as doc:
        return [
            sorted((_filters(img), img.read_raw_bytes()) for img in page.get_images().values())
            for page in doc.pages
        ]


def _filters(stream: pikepdf.Stream) -> str:
    found = stream.get("/Filter")
    return " ".join(str(f) for f in found) if isinstance(found, pikepdf.Array) else str(found)


def ocr_all(jobs: list[PageJob], workers: int = 2) -> dict[object, OcrPage]:
    return {job.key: page for job, page in ocr_pages(jobs, settings=SETTINGS, workers=workers)}


# ------------------------------------------------------------------ one batch, built once


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[object, OcrPage]]:
    """A scanned batch: cover sheet, an upright letter, and a report fed in sideways."""
    folder = tmp_path_factory.mktemp("batch")
    sideways = degrade(a6(REPORT), rotate=90)
    source = write_pdf([a6(COVER), a6(LETTER), sideways], folder / "batch.pdf", dpi=DPI)
    results = ocr_all([PageJob(source, "application/pdf", i, DPI, key=i) for i in (1, 2)])
    return source, results


@pytest.fixture(scope="module")
def searchable(batch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    source, results = batch
    out = tmp_path_factory.mktemp("out") / "searchable.pdf"
    return build_searchable_pdf(source, [SearchablePage(i, results[i]) for i in (1, 2)], out)


@pytest.mark.ocr
def test_searchable_pdf_text_is_found_and_cover_sheet_left_out(searchable: Path) -> None:
    pages = pdf_words(searchable)
    assert len(pages) == 2
    assert {"Referral", "Hillside", "safety"} <= texts(pages[0])
    assert {"Discharge", "Riverside", "Hospital"} <= texts(pages[1])
    assert not any("COVER" in w.text for page in pages for w in page)


def test_pages_share_one_text_font_and_keep_their_text_compressed(searchable: Path) -> None:
    """Every tesseract page brings the same invisible font: a 300-page copy carried it 300 times
    (and held every page's text decoded until it was written)."""
    with pikepdf.open(searchable) as doc:
        fonts = {obj.objgen for obj in doc.objects
                 if isinstance(obj, pikepdf.Dictionary) and obj.get("/Type") == "/Font"}
        layers = [xobj for page in doc.pages for name, xobj in page.resources.XObject.items()
                  if name.startswith("/OCR")]
        assert len(layers) == 2 and all(layer.Subtype == "/Form" for layer in layers)
        assert len(fonts) == 2  # the Type0 font and its one CID font, for both pages
        assert len({font.objgen for layer in layers for font in layer.Resources.Font.values()}) == 1
        assert all(layer.get("/Filter") == "/FlateDecode" for layer in layers)


def test_nothing_of_the_pages_left_out_reaches_the_reading_copy(batch, tmp_path: Path) -> None:
    """A batch holds other documents, maybe of other children: their images, and an outline or
    link that points at their pages, must not travel in this document's copy."""
    source, results = batch
    linked = tmp_path / "linked.pdf"
    with pikepdf.open(source) as doc:
        cover = doc.pages[0]
        outline = pikepdf.Dictionary(Title="Cover", Dest=pikepdf.Array([cover.obj, pikepdf.Name.Fit]))
        doc.Root.Outlines = doc.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Outlines, First=doc.make_indirect(outline)))
        link = pikepdf.Dictionary(Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link, Rect=[0, 0, 50, 50],
                                  Dest=pikepdf.Array([cover.obj, pikepdf.Name.Fit]))
        doc.pages[1].obj.Annots = pikepdf.Array([doc.make_indirect(link)])
        doc.save(linked)
    out = build_searchable_pdf(linked, [SearchablePage(1, results[1])], tmp_path / "one.pdf")
    cover_image = image_streams(source)[0][0][1]
    assert cover_image not in out.read_bytes()
    with pikepdf.open(out) as doc:
        assert len(doc.pages) == 1 and "/Outlines" not in doc.Root and "/Annots" not in doc.pages[0].obj
        assert sum(1 for obj in doc.objects if isinstance(obj, pikepdf.Stream)
                   and obj.get("/Subtype") == pikepdf.Name.Image) == 1


@pytest.mark.ocr
def test_sideways_page_is_turned_upright_and_its_words_lie_where_they_are_seen(
    searchable: Path, batch
) -> None:
    _, results = batch
    assert results[1].rotation == 0 and results[2].rotation == 90
    with pikepdf.open(searchable) as doc:
        assert int(doc.pages[0].obj.get("/Rotate", 0)) == 0
        assert int(doc.pages[1].obj.get("/Rotate", 0)) == 90
    shown = render_page(searchable, "application/pdf", 1, dpi=50)
    assert shown.height > shown.width  # displayed as the portrait page it is
    pages = pdf_words(searchable)
    for page, first in ((pages[0], "Referral"), (pages[1], "Discharge")):
        word = next(w for w in page if w.text == first)
        # The first word of the page is drawn at the 0.5 inch margin, top left, upright.
        assert abs(word.x0 - MARGIN_PT) <= 6
        assert MARGIN_PT - 4 <= word.y0 <= MARGIN_PT + 12
        assert word.x1 - word.x0 > 3 * (word.y1 - word.y0)  # runs left to right


@pytest.mark.ocr
def test_scanned_images_are_copied_byte_for_byte(searchable: Path, batch) -> None:
    source, _ = batch
    original = image_streams(source)
    assert image_streams(searchable) == [original[1], original[2]]
    assert all(f == "/DCTDecode" for page in original for f, _ in page)


@pytest.mark.ocr
def test_same_input_gives_byte_identical_output_and_pages_follow_the_given_order(
    searchable: Path, batch, tmp_path: Path
) -> None:
    source, results = batch
    again = build_searchable_pdf(source, [SearchablePage(i, results[i]) for i in (1, 2)], tmp_path / "a.pdf")
    assert again.read_bytes() == searchable.read_bytes()
    swapped = build_searchable_pdf(source, [SearchablePage(i, results[i]) for i in (2, 1)], tmp_path / "b.pdf")
    assert [("Discharge" in texts(p), "Referral" in texts(p)) for p in pdf_words(swapped)] == [
        (True, False),
        (False, True),
    ]


@pytest.mark.ocr
def test_page_with_its_own_rotate_gets_the_text_where_it_is_displayed(tmp_path: Path) -> None:
    # A landscape-stored scan that its /Rotate 90 shows upright (as some MFDs write pages).
    stored = degrade(a6(LETTER), rotate=90)
    source = write_pdf([stored], tmp_path / "rotated.pdf", dpi=DPI)
    with pikepdf.open(source, allow_overwriting_input=True) as doc:
        doc.pages[0].obj.Rotate = 90
        doc.save(source)
    [page] = ocr_all([PageJob(source, "application/pdf", 0, DPI)], workers=1).values()
    assert page.rotation == 0 and page.tesseract_runs == 1  # rendered as displayed: upright
    out = build_searchable_pdf(source, [SearchablePage(0, page)], tmp_path / "out.pdf")
    with pikepdf.open(out) as doc:
        assert int(doc.pages[0].obj.Rotate) == 90
    word = next(w for w in pdf_words(out)[0] if w.text == "Referral")
    assert abs(word.x0 - MARGIN_PT) <= 6
    assert MARGIN_PT - 4 <= word.y0 <= MARGIN_PT + 12


def test_blank_page_is_copied_without_a_text_layer(tmp_path: Path) -> None:
    empty = text_page([], dpi=100, size_inches=A6)
    source = write_pdf([empty], tmp_path / "blank.pdf", dpi=100)
    blank = blank_page(dpi=100, metrics=page_metrics(empty))
    out = build_searchable_pdf(source, [SearchablePage(0, blank)], tmp_path / "out.pdf")
    assert pdf_words(out) == [[]]
    assert image_streams(out) == image_streams(source)


def test_listing_a_page_the_pdf_lacks_is_rejected(tmp_path: Path) -> None:
    empty = text_page([], dpi=100, size_inches=A6)
    source = write_pdf([empty], tmp_path / "one.pdf", dpi=100)
    blank = blank_page(dpi=100, metrics=page_metrics(empty))
    with pytest.raises(InputRejected):
        build_searchable_pdf(source, [SearchablePage(4, blank)], tmp_path / "out.pdf")


# ------------------------------------------------------------------ images_to_pdf


@pytest.mark.ocr
def test_g4_tiff_is_wrapped_without_re_encoding_and_made_searchable(tmp_path: Path) -> None:
    frames = [a6(LETTER).convert("1"), a6(REPORT).convert("1")]
    tiff = write_tiff(frames, tmp_path / "scan.tif", dpi=DPI)
    before = hashlib.sha256(tiff.read_bytes()).hexdigest()
    wrapped = images_to_pdf(tiff, "image/tiff", tmp_path / "scan.pdf")
    assert hashlib.sha256(tiff.read_bytes()).hexdigest() == before  # original untouched
    assert images_to_pdf(tiff, "image/tiff", tmp_path / "again.pdf").read_bytes() == wrapped.read_bytes()

    streams = image_streams(wrapped)
    assert [[f for f, _ in page] for page in streams] == [["/CCITTFaxDecode"], ["/CCITTFaxDecode"]]
    with pikepdf.open(wrapped) as doc:
        box = doc.pages[0].mediabox
        assert abs(float(box[2]) - A6[0] * 72) < 1 and abs(float(box[3]) - A6[1] * 72) < 1
    # Lossless: the embedded image decodes to exactly the scanned pixels.
    with pikepdf.open(wrapped) as doc:
        [embedded] = doc.pages[1].get_images().values()
        decoded = pikepdf.PdfImage(embedded).as_pil_image()
    assert np.array_equal(np.asarray(decoded.convert("L")), np.asarray(frames[1].convert("L")))

    results = ocr_all([PageJob(wrapped, "application/pdf", i, DPI, key=i) for i in (0, 1)])
    out = build_searchable_pdf(wrapped, [SearchablePage(i, results[i]) for i in (0, 1)], tmp_path / "s.pdf")
    assert image_streams(out) == streams
    pages = pdf_words(out)
    assert "Hillside" in texts(pages[0]) and "Riverside" in texts(pages[1])


def test_jpeg_is_wrapped_with_its_own_bytes(tmp_path: Path) -> None:
    jpeg = write_image(a6(LETTER), tmp_path / "scan.jpg", dpi=DPI)
    wrapped = images_to_pdf(jpeg, "image/jpeg", tmp_path / "scan.pdf")
    assert image_streams(wrapped) == [[("/DCTDecode", jpeg.read_bytes())]]


def test_unreadable_image_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00 not really a tiff")
    with pytest.raises(InputRejected):
        images_to_pdf(bad, "image/tiff", tmp_path / "out.pdf")


# ------------------------------------------------------------------ real scanner files


@pytest.mark.ocr
@pytest.mark.corpus
@corpus
def test_corpus_bilevel_scans_stay_byte_identical_and_become_searchable(tmp_path: Path) -> None:
    names = ("ccitt.pdf", "jbig2.pdf")
    results = ocr_all([PageJob(CORPUS / n, "application/pdf", 0, 150, key=n) for n in names])
    for name in names:
        out = build_searchable_pdf(CORPUS / name, [SearchablePage(0, results[name])], tmp_path / name)
        assert image_streams(out) == image_streams(CORPUS / name)
        assert "LinnSequencer" in texts(pdf_words(out)[0])


@pytest.mark.ocr
@pytest.mark.corpus
@corpus
def test_corpus_french_accents_survive_into_the_text_layer(tmp_path: Path) -> None:
    source = CORPUS / "francais.pdf"
    [page] = ocr_all([PageJob(source, "application/pdf", 0, 300)], workers=1).values()
    out = build_searchable_pdf(source, [SearchablePage(0, page)], tmp_path / "fr.pdf")
    found = texts(pdf_words(out)[0])
    assert "intérieure," in found or "intérieure" in found
    assert "qualité" in found


SKEWED = [  # long lines: a 1.5 degree skew moves their ends by more than a line's height
    "Alpha referral concerns raised by the school nurse about attendance today",
    "Bravo the family agreed a written safety plan with the allocated worker",
    "Charlie health visitor notes weight gain and a missed appointment again",
    "Delta strategy discussion held with police and the named paediatrician",
    "Echo the child said she feels safe at home with her grandmother now",
    "Foxtrot next review conference booked and the parents were both invited",
]


@pytest.mark.parametrize("skew", [1.5, -1.5])
def test_a_skewed_page_reads_line_by_line_in_a_viewers_layout_order(tmp_path: Path, skew: float) -> None:
    """Copy and paste, screen readers and `pdftotext -layout` follow the text layer's positions: on
    a skewed scan each line must come out whole and in order, not split and interleaved with the
    next line's words (issue 21), and the text must lie along the line as the image shows it."""
    page = degrade(text_page(SKEWED, dpi=300, size_inches=(8.27, 4.0), font_pt=11, margin_inches=0.5),
                   skew_deg=skew, noise=0.001, seed=3)
    source = write_pdf([page], tmp_path / "skewed.pdf", dpi=300)
    result = ocr_all([PageJob(source, "application/pdf", 0, 300, key=0)])[0]
    out = build_searchable_pdf(source, [SearchablePage(0, result)], tmp_path / "reading.pdf")
    layout = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True,
                            check=True).stdout
    read = [" ".join(line.split()) for line in layout.splitlines() if line.strip()]
    for line in SKEWED:
        first, last = line.split()[0], line.split()[-1]
        holding = [r for r in read if r.startswith(first)]
        assert holding and holding[0].endswith(last), (line, read)
    assert [r.split()[0] for r in read] == [line.split()[0] for line in SKEWED]
    # Every word lies along its line's baseline as the image shows it.
    with pikepdf.open(out) as pdf:
        layer = next(x for x in pdf.pages[0].Resources.XObject.values() if x.Subtype == "/Form")
        angles = [np.degrees(np.arctan2(float(ops[1]), float(ops[0])))
                  for ops, op in pikepdf.parse_content_stream(layer) if str(op) == "Tm"]
    assert len(angles) >= sum(len(line.split()) for line in SKEWED)
    assert all(abs(a - skew) < 0.5 for a in angles), angles


def test_words_whose_boxes_almost_touch_are_still_two_words_when_copied(tmp_path: Path) -> None:
    """Tesseract can box two words two pixels apart ("Home a"); the reading copy must not give
    "Homea" to copy and paste, screen readers or `pdftotext -raw` (seen on the benchmark's pages)."""
    from escr.pages.hocr import read_hocr
    from escr.pages.text_layer import text_layer_pdf

    hocr = b"""<html xmlns="http://www.w3.org/1999/xhtml"><body><div class="ocr_page" title="bbox 0 0 1200 200">
      <span class="ocr_line" title="bbox 100 100 700 140; baseline 0 -8; x_size 30">
        <span class="ocrx_word" title="bbox 100 100 220 132">Capacity</span>
        <span class="ocrx_word" title="bbox 240 100 330 132">Home</span>
        <span class="ocrx_word" title="bbox 332 110 350 132">a</span>
        <span class="ocrx_word" title="bbox 352 100 450 132">family</span>
      </span></div></body></html>"""
    out = tmp_path / "layer.pdf"
    out.write_bytes(text_layer_pdf(read_hocr(hocr), width_px=1200, height_px=200, dpi=300))
    for mode in ("-raw", "-layout"):
        read = subprocess.run(["pdftotext", mode, str(out), "-"], capture_output=True, text=True, check=True).stdout
        assert " ".join(read.split()) == "Capacity Home a family", mode
