"""Page rendering and page measurements: what OCR and image QC are given to look at."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pikepdf
import pytest
from PIL import Image

from escr.errors import InputRejected
from escr.pages.colour_print import colour_print_mask
from escr.pages.imaging import ocr_dpi, page_metrics, render_for_ocr, render_page
from tests.support.scans import colour_letter, degrade, text_page, write_image, write_pdf, write_tiff

pytestmark = pytest.mark.real_ocr  # about OCR itself: never served from the test OCR cache

CORPUS = Path(__file__).resolve().parents[2] / "shared/corpus/scanners"
corpus = pytest.mark.skipif(not CORPUS.exists(), reason="scanner corpus not present")

A6 = (4.13, 5.83)
LINES = ["Dear Ms Carter, thank you for your letter", "about the meeting on Friday."]


def a6_text(dpi: int = 200) -> Image.Image:
    return text_page(LINES, dpi=dpi, size_inches=A6, margin_inches=0.5)


def with_dpi(image: Image.Image, dpi: int) -> Image.Image:
    image.info["dpi"] = (dpi, dpi)
    return image


def dark_box_page(dpi: int) -> Image.Image:
    """An A6 page whose top half is black: easy to tell apart from a text page, and its top."""
    page = Image.new("L", tuple(round(s * dpi) for s in A6), 255)
    page.paste(0, (0, 0, page.width, page.height // 2))
    return page


# ---------------------------------------------------------------- ocr_dpi


@pytest.mark.parametrize(
    ("dpi_x", "dpi_y", "expected"),
    [
        (600, 600, 300),  # oversampled scan rendered down
        (300, 300, 300),
        (200, 200, 200),  # kept: no upsampling within range
        (100, 100, 150),  # coarse scan rendered up to the minimum
        (200, 100, 200),  # non-square: the finer axis counts
        (None, None, 300),  # unknown: maximum
        (0, 0, 300),
    ],
)
def test_ocr_dpi_clamps_native_resolution(dpi_x, dpi_y, expected) -> None:
    assert ocr_dpi(dpi_x, dpi_y, min_dpi=150, max_dpi=300) == expected


# ---------------------------------------------------------------- render_page


def test_render_pdf_page_renders_only_the_asked_page_at_the_asked_dpi(tmp_path: Path) -> None:
    pdf = write_pdf([a6_text(), dark_box_page(200)], tmp_path / "two.pdf", dpi=200)
    image = render_page(pdf, "application/pdf", 1, dpi=100)
    assert image.mode == "L"
    assert abs(image.width - 413) <= 1 and abs(image.height - 583) <= 1
    assert image.info["dpi"] == (100, 100)
    pixels = np.asarray(image)
    assert pixels[: image.height // 3].mean() < 20  # page 2's black top half, right way up
    assert pixels[-image.height // 3 :].mean() > 235


def test_render_pdf_page_shows_the_page_as_displayed_with_its_rotate(tmp_path: Path) -> None:
    pdf = write_pdf([dark_box_page(100)], tmp_path / "rot.pdf", dpi=100)
    with pikepdf.open(pdf, allow_overwriting_input=True) as doc:
        doc.pages[0].obj.Rotate = 90
        doc.save(pdf)
    image = render_page(pdf, "application/pdf", 0, dpi=100)
    assert image.width > image.height  # a portrait page turned a quarter is landscape
    pixels = np.asarray(image)
    # Turned clockwise, the black top half is now the right half.
    assert pixels[:, image.width * 2 // 3 :].mean() < 20
    assert pixels[:, : image.width // 3].mean() > 235


def test_render_pdf_page_out_of_range_is_rejected(tmp_path: Path) -> None:
    pdf = write_pdf([a6_text(100)], tmp_path / "one.pdf", dpi=100)
    with pytest.raises(InputRejected) as err:
        render_page(pdf, "application/pdf", 3, dpi=100)
    assert err.value.code == "page_missing"


def test_render_tiff_frame_by_index(tmp_path: Path) -> None:
    tiff = write_tiff([a6_text(), dark_box_page(200)], tmp_path / "scan.tif", dpi=200)
    first = render_page(tiff, "image/tiff", 0, dpi=200)
    second = render_page(tiff, "image/tiff", 1, dpi=200)
    assert first.mode == second.mode == "L"
    assert np.asarray(first).mean() > 240 and np.asarray(second).mean() < 140
    with pytest.raises(InputRejected) as err:
        render_page(tiff, "image/tiff", 2, dpi=200)
    assert err.value.code == "page_missing"


def test_render_image_resampled_from_its_own_dpi(tmp_path: Path) -> None:
    jpeg = write_image(a6_text(200), tmp_path / "scan.jpg", dpi=200)
    image = render_page(jpeg, "image/jpeg", 0, dpi=100)
    assert (abs(image.width - 413) <= 1, abs(image.height - 583) <= 1) == (True, True)
    png = write_image(a6_text(200), tmp_path / "scan.png", dpi=200)
    assert render_page(png, "image/png", 0, dpi=200, grey=False).mode == "L"  # grey stays grey
    colour = write_image(a6_text(200).convert("RGB"), tmp_path / "colour.png", dpi=200)
    assert render_page(colour, "image/png", 0, dpi=200, grey=False).mode == "RGB"
    assert render_page(colour, "image/png", 0, dpi=200).mode == "L"


def test_render_rgba_png_lands_on_white_paper(tmp_path: Path) -> None:
    transparent = Image.new("RGBA", (400, 600), (0, 0, 0, 0))
    transparent.save(tmp_path / "clear.png", dpi=(100, 100))
    image = render_page(tmp_path / "clear.png", "image/png", 0, dpi=100)
    assert np.asarray(image).min() == 255  # transparent is paper, not black ink


@pytest.mark.parametrize(("name", "media_type"), [("bad.pdf", "application/pdf"), ("bad.png", "image/png")])
def test_render_unreadable_file_is_rejected_with_a_reason(tmp_path: Path, name: str, media_type: str) -> None:
    bad = tmp_path / name
    bad.write_bytes(b"this is not a scan at all" * 10)
    with pytest.raises(InputRejected) as err:
        render_page(bad, media_type, 0, dpi=100)
    assert err.value.code.startswith("unreadable")
    assert err.value.action


@pytest.mark.corpus
@corpus
def test_render_corpus_invalid_pdf_is_rejected() -> None:
    with pytest.raises(InputRejected):
        render_page(CORPUS / "invalid.pdf", "application/pdf", 0, dpi=100)


@pytest.mark.corpus
@corpus
def test_render_corpus_non_square_scan_at_its_finer_resolution() -> None:
    with pikepdf.open(CORPUS / "aspect.pdf") as doc:
        box = doc.pages[0].mediabox
        width_pt, height_pt = float(box[2] - box[0]), float(box[3] - box[1])
    dpi = ocr_dpi(200, 100, min_dpi=150, max_dpi=300)
    image = render_page(CORPUS / "aspect.pdf", "application/pdf", 0, dpi=dpi)
    assert abs(image.width - width_pt / 72 * 200) <= 2
    assert abs(image.height - height_pt / 72 * 200) <= 2


# ---------------------------------------------------------------- page_metrics


def test_metrics_two_lines_of_text_are_not_blank() -> None:
    metrics = page_metrics(with_dpi(text_page(LINES, dpi=300), 300))
    assert not metrics.blank
    assert metrics.ink_fraction > 0
    assert metrics.p1 < 60  # black ink
    assert metrics.p99 == 255


def test_metrics_empty_page_is_blank() -> None:
    metrics = page_metrics(with_dpi(text_page([], dpi=200, size_inches=A6), 200))
    assert metrics.blank and metrics.ink_fraction == 0
    assert metrics.dark_fraction == 0


@pytest.mark.parametrize("dpi", [150, 300])
def test_metrics_speckle_noise_on_an_empty_page_is_blank(dpi: int) -> None:
    noisy = degrade(text_page([], dpi=dpi), noise=0.002)
    assert page_metrics(with_dpi(noisy, dpi)).blank


def test_metrics_blank_back_with_scanner_edge_shadow_is_blank() -> None:
    back = np.full((1754, 1240), 248, np.uint8)  # A4 at 150 dpi, off-white paper
    back[:, :25] = 60  # dark shadow along the binding edge
    back[-15:, :] = 90  # and along the bottom
    metrics = page_metrics(with_dpi(Image.fromarray(back), 150))
    assert metrics.blank
    assert metrics.dark_fraction > 0.01  # the shadow is still counted as dark


def test_metrics_a_short_word_alone_is_not_blank() -> None:
    page = with_dpi(text_page(["Page 2"], dpi=200), 200)
    assert not page_metrics(page).blank


def test_metrics_faint_scan_has_a_high_p1_and_dark_scan_a_high_dark_fraction() -> None:
    page = text_page(LINES * 6, dpi=150)
    faint = with_dpi(page.point(lambda v: 180 + v * 75 // 255), 150)  # ink no darker than 180
    dark = with_dpi(page.point(lambda v: v * 100 // 255), 150)  # grey-black background
    faint_m, normal_m, dark_m = (page_metrics(p) for p in (faint, with_dpi(page, 150), dark))
    assert not faint_m.blank
    assert faint_m.p1 >= 170 > normal_m.p1
    assert dark_m.dark_fraction > 0.9 > normal_m.dark_fraction


@pytest.mark.corpus
@corpus
def test_metrics_corpus_blank_page_is_blank_and_text_page_is_not() -> None:
    blank = render_page(CORPUS / "blank.pdf", "application/pdf", 0, dpi=150)
    text = render_page(CORPUS / "ccitt.pdf", "application/pdf", 0, dpi=150)
    assert page_metrics(blank).blank
    assert not page_metrics(text).blank


# ---------------------------------------------------------------- the scan's own image instead of a render


def _pdftoppm(pdf: Path, index: int, dpi: int) -> Image.Image:
    """What a viewer shows: the reference the embedded image must match."""
    import pdf2image

    (image,) = pdf2image.convert_from_path(pdf, dpi=dpi, first_page=index + 1, last_page=index + 1,
                                           grayscale=True, use_cropbox=True)
    return image.convert("L")


def _difference(a: Image.Image, b: Image.Image) -> float:
    """Mean grey-level difference over the common area (a render may be one pixel larger)."""
    w, h = min(a.width, b.width), min(a.height, b.height)
    return float(np.abs(np.asarray(a.crop((0, 0, w, h)), dtype=np.int16)
                        - np.asarray(b.crop((0, 0, w, h)), dtype=np.int16)).mean())


def _letter(dpi: int) -> Image.Image:
    page = text_page(["Child protection conference minutes", "Attendees: the family and the school nurse"] * 4,
                     dpi=dpi, size_inches=A6, margin_inches=0.4)
    page.paste(0, (0, 0, page.width // 4, page.height // 8))  # a dark corner shows which way up it is
    return page


@pytest.mark.parametrize("encoding", ["jpeg", "ccitt", "png"])
def test_embedded_image_is_the_page_a_viewer_shows(tmp_path: Path, encoding: str) -> None:
    from escr.pages.imaging import embedded_page_image

    pdf = write_pdf([_letter(300)], tmp_path / f"{encoding}.pdf", dpi=300, encoding=encoding)
    image = embedded_page_image(pdf, 0, dpi=300)
    assert image is not None and image.mode == "L"
    reference = _pdftoppm(pdf, 0, 300)
    assert abs(image.width - reference.width) <= 1 and abs(image.height - reference.height) <= 1
    assert _difference(image, reference) < 4  # the same page; only pdftoppm's edge smoothing differs


def test_embedded_colour_jpeg_is_decoded_grey_like_a_render(tmp_path: Path) -> None:
    from escr.pages.imaging import embedded_page_image

    colour = Image.merge("RGB", [_letter(300)] * 3)
    colour.paste((200, 30, 30), (colour.width // 2, 0, colour.width, colour.height // 8))  # a red stamp
    pdf = write_pdf([colour], tmp_path / "colour.pdf", dpi=300, encoding="jpeg")
    image = embedded_page_image(pdf, 0, dpi=300)
    assert image is not None and image.mode == "L"
    assert _difference(image, _pdftoppm(pdf, 0, 300)) < 4


@pytest.mark.parametrize("encoding", ["jpeg", "ccitt"])
def test_oversampled_scan_is_decoded_reduced_to_the_ocr_resolution(tmp_path: Path, encoding: str) -> None:
    from escr.pages.imaging import embedded_page_image

    pdf = write_pdf([_letter(600)], tmp_path / "fine.pdf", dpi=600, encoding=encoding)
    image = embedded_page_image(pdf, 0, dpi=300)
    assert image is not None
    reference = _pdftoppm(pdf, 0, 300)
    assert abs(image.width - reference.width) <= 1 and abs(image.height - reference.height) <= 1
    assert _difference(image, reference) < 12  # box filter against pdftoppm's: the same page, as sharp


@pytest.mark.parametrize("rotate", [90, 180, 270])
def test_embedded_image_is_turned_by_the_pages_rotate_as_a_viewer_turns_it(tmp_path: Path, rotate: int) -> None:
    from escr.pages.imaging import embedded_page_image

    pdf = write_pdf([_letter(300)], tmp_path / "turned.pdf", dpi=300, encoding="ccitt")
    with pikepdf.open(pdf, allow_overwriting_input=True) as doc:
        doc.pages[0].obj.Rotate = rotate
        doc.save(pdf)
    image = embedded_page_image(pdf, 0, dpi=300)
    assert image is not None
    assert _difference(image, _pdftoppm(pdf, 0, 300)) < 4


def _add_to_content(pdf: Path, extra: bytes) -> None:
    with pikepdf.open(pdf, allow_overwriting_input=True) as doc:
        doc.pages[0].contents_add(extra, prepend=False)
        doc.save(pdf)


def test_page_with_more_than_its_image_is_rendered_not_extracted(tmp_path: Path) -> None:
    """A line drawn over the scan (an annotation burnt in by capture software) must show."""
    from escr.pages.imaging import embedded_page_image

    pdf = write_pdf([Image.new("L", (1240, 1748), 255)], tmp_path / "drawn.pdf", dpi=300)
    _add_to_content(pdf, b"q 20 w 0 0 m 297 420 l S Q")
    assert embedded_page_image(pdf, 0, dpi=300) is None
    image = render_page(pdf, "application/pdf", 0, dpi=300)
    assert np.asarray(image).min() < 50  # pdftoppm drew the line


def test_scan_at_a_resolution_that_is_no_multiple_of_the_ocr_one_is_rendered(tmp_path: Path) -> None:
    from escr.pages.imaging import embedded_page_image

    pdf = write_pdf([_letter(250)], tmp_path / "odd.pdf", dpi=250)
    assert embedded_page_image(pdf, 0, dpi=300) is None
    assert embedded_page_image(pdf, 0, dpi=250) is not None
    image = render_page(pdf, "application/pdf", 0, dpi=300)
    assert abs(image.width - round(A6[0] * 300)) <= 2


def test_image_with_a_decode_array_is_rendered_not_extracted(tmp_path: Path) -> None:
    from escr.pages.imaging import embedded_page_image

    pdf = write_pdf([_letter(300)], tmp_path / "masked.pdf", dpi=300)
    with pikepdf.open(pdf, allow_overwriting_input=True) as doc:
        (image,) = (doc.pages[0].resources.XObject[name] for name in doc.pages[0].resources.XObject.keys())
        image.Decode = pikepdf.Array([1, 0])  # inverted: only a real renderer applies it
        doc.save(pdf)
    assert embedded_page_image(pdf, 0, dpi=300) is None
    assert np.asarray(render_page(pdf, "application/pdf", 0, dpi=300)).mean() < 128  # shown inverted


@corpus
@pytest.mark.corpus
@pytest.mark.parametrize("name", ["ccitt.pdf", "francais.pdf"])
def test_corpus_scans_embedded_image_matches_the_render(name: str) -> None:
    from escr.pages.imaging import embedded_page_image

    pdf = CORPUS / name
    image = embedded_page_image(pdf, 0, dpi=300)
    assert image is not None
    # Real capture software's bilevel pages: pdftoppm smooths the edges of every glyph, so the
    # two differ on edge pixels only (a negative, a shift or another page would differ by ~100).
    assert _difference(image, _pdftoppm(pdf, 0, 300)) < 10


# ---------------------------------------------------------------- colour print for OCR


@pytest.mark.parametrize("dpi", [150, 300])
def test_only_light_coloured_print_brings_a_colour_scans_colour_into_ocr(tmp_path, dpi) -> None:
    # Tesseract takes about 40 % longer over a colour page than over its grey copy, so it always
    # reads grey. A colour letter in dark ink, with a letterhead band and highlighted lines, reads
    # the same in grey and needs nothing of its colour; one orange line is print grey would lose,
    # and it is put back dark on the grey page while the paper around it stays as it was.
    letter = ["Dear Ms Carter, thank you for your letter", "about the meeting on Friday.", "Yours sincerely"]
    plain = colour_letter(lines=letter, dpi=dpi, highlight=(255, 240, 60), highlighted=(1,))
    stamped = colour_letter([("RECEIVED 3 MARCH", (255, 140, 0))], lines=letter, dpi=dpi)
    for name, page in (("plain", plain), ("stamped", stamped)):
        write_pdf([page], tmp_path / f"{name}.pdf", dpi=dpi)
    plain_render = render_for_ocr(tmp_path / "plain.pdf", "application/pdf", 0, dpi=dpi)
    assert plain_render.for_tesseract() is plain_render.grey
    stamped_render = render_for_ocr(tmp_path / "stamped.pdf", "application/pdf", 0, dpi=dpi)
    read = stamped_render.for_tesseract()
    assert read.mode == "L" and read.size == stamped_render.grey.size and read.info["dpi"] == (dpi, dpi)
    before, after = np.asarray(stamped_render.grey), np.asarray(read)
    px, step = round(12 * dpi / 72), round(12 * dpi / 72 * 1.6)
    top = round(0.5 * dpi) + step * (len(letter) + 1)  # where colour_letter prints the stamp
    band = slice(top - 2, top + px + px // 2)
    assert before[band].min() > 110  # in grey the orange print is nearly as light as the paper
    assert after[band].min() < 60  # put back, it is as dark as ink
    changed_rows = np.nonzero((after != before).any(axis=1))[0]
    assert changed_rows.min() >= top - 4 and changed_rows.max() <= top + 2 * px  # nothing else changed
    # The same page scanned to a JPEG file instead of a PDF: drawn once, in colour, the same print put back.
    jpeg_render = render_for_ocr(write_image(stamped, tmp_path / "stamped.jpg", dpi=dpi), "image/jpeg", 0, dpi=dpi)
    assert jpeg_render.grey.mode == "L" and np.asarray(jpeg_render.for_tesseract())[band].min() < 60
    grey_scan = write_pdf([a6_text(dpi)], tmp_path / "grey.pdf", dpi=dpi)
    grey_render = render_for_ocr(grey_scan, "application/pdf", 0, dpi=dpi)
    assert grey_render.grey.mode == "L" and grey_render.for_tesseract() is grey_render.grey


@corpus
@pytest.mark.corpus
def test_corpus_colour_scans_need_no_colour_for_ocr_and_bilevel_ones_render_grey() -> None:
    # c02-22.pdf is a colour scan of a printed book page with an engraving: nothing in colour only.
    page = render_page(CORPUS / "c02-22.pdf", "application/pdf", 0, dpi=150, grey=False)
    assert page.mode == "RGB" and colour_print_mask(page) is None
    # jbig2.pdf goes through pdftoppm (JBIG2 is not decoded directly): bilevel, so drawn in grey.
    assert render_page(CORPUS / "jbig2.pdf", "application/pdf", 0, dpi=150, grey=False).mode == "L"
