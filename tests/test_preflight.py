"""Preflight: what the pipeline learns about an intake file, and why a bad file is refused."""

from __future__ import annotations

import hashlib
import re
import struct
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pikepdf
import pytest
from PIL import Image, ImageFile

from escr.errors import InputRejected
from escr.intake.preflight import PreflightReport, preflight
from escr.settings import PreflightLimits
from tests.support.scans import text_page, write_image, write_pdf, write_tiff

CORPUS = Path(__file__).resolve().parents[2] / "shared/corpus/scanners"

LIMITS = PreflightLimits()
A6 = (4.13, 5.83)  # inches
# A name that looks like personal data: it must never reach a message, action or note.
NAME = "Whitfield_Amelia_letter"


def small_page(text: str = "Review meeting notes", dpi: int = 150) -> Image.Image:
    return text_page([text, "Reference AB123456"], dpi=dpi, size_inches=A6, margin_inches=0.4)


def rejected(path: Path, code: str, limits: PreflightLimits = LIMITS) -> InputRejected:
    """Preflight must refuse `path` with `code`, in plain English that names no file or path."""
    before = hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None
    with pytest.raises(InputRejected) as info:
        preflight(path, limits=limits)
    exc = info.value
    assert exc.code == code, (exc.code, exc.message)
    for text in (exc.message, exc.action):
        assert text and text[0].isupper() and text.endswith("."), text
        assert str(path.parent) not in text and path.stem not in text and NAME not in text
        assert not re.search(r"pikepdf|qpdf|PIL|Traceback|Error|xref|errno|0x[0-9a-f]", text), text
    if before is not None:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == before, "preflight changed the input file"
    return exc


def accepted(path: Path, limits: PreflightLimits = LIMITS) -> PreflightReport:
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    report = preflight(path, limits=limits)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before, "preflight changed the input file"
    assert report.page_count == len(report.pages)
    assert [p.index for p in report.pages] == list(range(report.page_count))
    for note in report.notes:
        assert str(path.parent) not in note and NAME not in note, note
    return report


def tiff_claiming(path: Path, width: int, height: int) -> Path:
    """A tiny G4 TIFF whose header claims `width` x `height` pixels (the data is a few bytes)."""
    data = b"\x00" * 16
    entries = [
        (256, 4, width), (257, 4, height), (258, 3, 1), (259, 3, 4), (262, 3, 0),
        (273, 4, 0), (277, 3, 1), (278, 4, height), (279, 4, len(data)),
    ]
    ifd_size = 2 + 12 * len(entries) + 4
    data_offset = 8 + ifd_size
    ifd = struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        value = data_offset if tag == 273 else value
        ifd += struct.pack("<HHI", tag, kind, 1) + (struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value))
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + data)
    return path


def three_page_pdf(tmp_path: Path) -> Path:
    pages = [small_page(f"Page {n}") for n in range(3)]
    return write_pdf(pages, tmp_path / f"{NAME}.pdf", dpi=150)


def blank_pdf(path: Path, size: tuple[float, float], content: bytes = b"") -> Path:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    pdf.pages[0].mediabox = pikepdf.Array([0, 0, *size])  # set directly: pikepdf refuses absurd sizes
    if content:
        pdf.pages[0].obj.Contents = pdf.make_stream(content)
    pdf.save(path)
    return path


# --- accepted files ---------------------------------------------------------------------------


def test_mixed_resolution_pdf_reports_each_page_dpi(tmp_path: Path) -> None:
    pages = [small_page("first", dpi=150), small_page("second", dpi=300), small_page("third", dpi=150)]
    report = accepted(write_pdf(pages, tmp_path / f"{NAME}.pdf", dpi=[150, 300, 150]))
    assert report.media_type == "application/pdf"
    assert report.page_count == 3
    assert [(p.dpi_x, p.dpi_y) for p in report.pages] == [(150, 150), (300, 300), (150, 150)]
    assert [p.pixel_width for p in report.pages] == [620, 1239, 620]
    first = report.pages[0]
    assert first.encoding == "jpeg" and first.colour == "grey" and first.rotate == 0
    assert first.width_pt == pytest.approx(4.13 * 72, abs=0.5)
    assert first.height_pt == pytest.approx(5.83 * 72, abs=0.5)


@pytest.mark.parametrize(("encoding", "reported", "colour"), [("ccitt", "ccitt", "bilevel"), ("png", "flate", "grey")])
def test_pdf_image_encoding_and_colour(tmp_path: Path, encoding: str, reported: str, colour: str) -> None:
    report = accepted(write_pdf([small_page()], tmp_path / f"{NAME}.pdf", dpi=150, encoding=encoding))
    page = report.pages[0]
    assert (page.encoding, page.colour, page.dpi_x) == (reported, colour, 150)


def test_rotated_pdf_page_reports_displayed_size(tmp_path: Path) -> None:
    path = write_pdf([small_page()], tmp_path / "scan.pdf", dpi=150)
    with pikepdf.open(path) as pdf:
        pdf.pages[0].rotate(90, relative=False)
        pdf.save(tmp_path / f"{NAME}.pdf")
    page = accepted(tmp_path / f"{NAME}.pdf").pages[0]
    assert page.rotate == 90
    assert page.width_pt > page.height_pt  # a portrait A6 turned on its side
    assert page.width_pt == pytest.approx(5.83 * 72, abs=0.5)
    assert (page.dpi_x, page.dpi_y) == (150, 150)


def test_image_drawn_inside_a_form_at_half_size_has_double_resolution(tmp_path: Path) -> None:
    src = pikepdf.open(write_pdf([small_page()], tmp_path / "scan.pdf", dpi=150))
    width, height = (float(v) for v in src.pages[0].mediabox[2:])
    out = pikepdf.new()
    out.add_blank_page(page_size=(width, height))
    out.pages[0].add_overlay(src.pages[0], pikepdf.Rectangle(0, 0, width / 2, height / 2))
    out.save(tmp_path / f"{NAME}.pdf")
    page = accepted(tmp_path / f"{NAME}.pdf").pages[0]
    assert page.dpi_x == pytest.approx(300, abs=0.5) and page.dpi_y == pytest.approx(300, abs=0.5)
    assert page.pixel_width == 620


def test_inline_image_is_found(tmp_path: Path) -> None:
    content = b"q 72 0 0 36 0 0 cm BI /W 8 /H 4 /BPC 8 /CS /G /F /AHx ID " + b"80" * 32 + b"> EI Q"
    page = accepted(blank_pdf(tmp_path / f"{NAME}.pdf", (300, 400), content)).pages[0]
    assert (page.dpi_x, page.dpi_y, page.pixel_width, page.colour) == (8, 8, 8, "grey")


def test_page_without_any_image_is_accepted_with_unknown_resolution(tmp_path: Path) -> None:
    content = b"BT /F1 12 Tf 72 700 Td (Printed to folder) Tj ET"
    report = accepted(blank_pdf(tmp_path / f"{NAME}.pdf", (595, 842), content))
    page = report.pages[0]
    assert report.page_count == 1
    assert (page.dpi_x, page.dpi_y, page.pixel_width, page.encoding) == (None, None, None, None)


def test_owner_restricted_pdf_with_empty_user_password_is_accepted(tmp_path: Path) -> None:
    with pikepdf.open(three_page_pdf(tmp_path)) as pdf:
        restrictions = pikepdf.Permissions(extract=False, modify_other=False)
        pdf.save(tmp_path / "restricted.pdf", encryption=pikepdf.Encryption(user="", owner="admin", allow=restrictions))
    report = accepted(tmp_path / "restricted.pdf")
    assert report.page_count == 3
    assert any("encrypted" in note for note in report.notes)


def test_damaged_pdf_that_qpdf_can_repair_is_accepted_and_the_repair_noted(tmp_path: Path) -> None:
    path = three_page_pdf(tmp_path)
    data = path.read_bytes()
    damaged = re.sub(rb"startxref\s+\d+", b"startxref\n999", data)
    assert damaged != data
    path.write_bytes(damaged)
    report = accepted(path)
    assert report.page_count == 3
    assert [p.dpi_x for p in report.pages] == [150, 150, 150]
    assert any("reconstruct" in note for note in report.notes)


def test_multipage_g4_tiff(tmp_path: Path) -> None:
    path = write_tiff([small_page(f"Page {n}") for n in range(3)], tmp_path / f"{NAME}.tif", dpi=150)
    report = accepted(path)
    assert (report.media_type, report.page_count) == ("image/tiff", 3)
    for page in report.pages:
        assert (page.encoding, page.colour, page.dpi_x, page.dpi_y, page.rotate) == ("tiff-group4", "bilevel", 150, 150, 0)
        assert page.width_pt == pytest.approx(4.13 * 72, abs=0.5)


def test_tiff_reports_capture_software_and_lzw_colour(tmp_path: Path) -> None:
    page = small_page().convert("RGB")
    page.save(tmp_path / f"{NAME}.tiff", "TIFF", compression="tiff_lzw", dpi=(200, 200), tiffinfo={305: "ScanStation 5.1"})
    report = accepted(tmp_path / f"{NAME}.tiff")
    assert report.producer == "ScanStation 5.1"
    assert (report.pages[0].encoding, report.pages[0].colour, report.pages[0].dpi_x) == ("lzw", "colour", 200)


def test_tiff_without_resolution_reports_none_and_centimetres_convert(tmp_path: Path) -> None:
    Image.new("1", (600, 800), 1).save(tmp_path / "nodpi.tif", "TIFF", compression="group4")
    page = accepted(tmp_path / "nodpi.tif").pages[0]
    assert (page.dpi_x, page.dpi_y) == (None, None)  # Pillow itself would say 1 dpi
    Image.new("1", (600, 800), 1).save(
        tmp_path / "cm.tif", "TIFF", compression="group4", tiffinfo={282: 80.0, 283: 80.0, 296: 3}
    )
    page = accepted(tmp_path / "cm.tif").pages[0]
    assert (page.dpi_x, page.dpi_y) == (203.2, 203.2)


def test_jpeg(tmp_path: Path) -> None:
    report = accepted(write_image(small_page(dpi=200), tmp_path / f"{NAME}.JPG", dpi=200))
    page = report.pages[0]
    assert (report.media_type, report.page_count) == ("image/jpeg", 1)
    assert (page.encoding, page.colour, page.dpi_x, page.dpi_y) == ("jpeg", "grey", 200, 200)
    assert page.width_pt == pytest.approx(4.13 * 72, abs=0.5)
    small_page().save(tmp_path / "nodpi.jpg", "JPEG")
    assert accepted(tmp_path / "nodpi.jpg").pages[0].dpi_x is None


def test_png_with_and_without_resolution(tmp_path: Path) -> None:
    with_dpi = accepted(write_image(small_page().convert("RGB"), tmp_path / f"{NAME}.png", dpi=300))
    assert with_dpi.media_type == "image/png"
    assert (with_dpi.pages[0].dpi_x, with_dpi.pages[0].colour, with_dpi.pages[0].encoding) == (300, "colour", "png")

    small_page().save(tmp_path / "nodpi.png")  # no pHYs chunk
    without = accepted(tmp_path / "nodpi.png")
    assert (without.pages[0].dpi_x, without.pages[0].dpi_y) == (None, None)
    assert without.pages[0].pixel_width == 620
    assert any("no resolution" in note for note in without.notes)


def test_image_drawn_rotated_then_stretched(tmp_path: Path) -> None:
    """Scanner PDFs of landscape pages combine a turn and a stretch: the order of cm matters."""
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(400, 400))
    image = pdf.make_stream(b"\x80" * (400 * 200), Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Image,
                            Width=400, Height=200, ColorSpace=pikepdf.Name.DeviceGray, BitsPerComponent=8)
    page = pdf.pages[0]
    page.obj.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image))
    page.obj.Contents = pdf.make_stream(b"q 0 1 -1 0 300 50 cm 200 0 0 100 0 0 cm /Im0 Do Q")
    pdf.save(tmp_path / f"{NAME}.pdf")
    page_info = accepted(tmp_path / f"{NAME}.pdf").pages[0]
    # 400 px over 200 pt and 200 px over 100 pt: 144 dpi both ways.
    assert (page_info.dpi_x, page_info.dpi_y) == (144, 144)
    assert (page_info.colour, page_info.encoding) == ("grey", "flate")  # pikepdf compresses on save


def test_raster_preflight_never_decodes_pixels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    grey_palette = small_page().convert("P")  # a palette of greys only
    grey_palette.save(tmp_path / "grey_palette.png", dpi=(150, 150))
    coloured = small_page().convert("RGB")
    coloured.paste((200, 30, 30), (0, 0, 620, 40))  # a red letterhead band
    coloured.quantize(4).save(tmp_path / "colour_palette.tif", dpi=(150, 150))
    files = [
        tmp_path / "grey_palette.png",
        tmp_path / "colour_palette.tif",
        write_image(small_page(), tmp_path / "scan.png", dpi=150),
        write_image(small_page(), tmp_path / "scan.jpg", dpi=150),
        write_tiff([small_page(), small_page()], tmp_path / "scan.tif", dpi=150),
    ]

    def no_decoding(self: object) -> None:
        raise AssertionError("preflight decoded pixels")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    reports = [accepted(f) for f in files]
    assert [r.page_count for r in reports] == [1, 1, 1, 1, 2]
    assert [r.pages[0].colour for r in reports[:2]] == ["grey", "colour"]


# --- refused files ----------------------------------------------------------------------------


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / f"{NAME}.pdf").write_bytes(b"")
    rejected(tmp_path / f"{NAME}.pdf", "empty")


def test_file_over_the_byte_limit(tmp_path: Path) -> None:
    rejected(three_page_pdf(tmp_path), "too_large", PreflightLimits(max_file_bytes=1000))


@pytest.mark.parametrize("layout", ["img2pdf", "objects-in-order"])
def test_pdf_cut_in_half_is_truncated(tmp_path: Path, layout: str) -> None:
    path = three_page_pdf(tmp_path)
    if layout == "objects-in-order":  # qpdf rebuilds this one with pages whose images are gone
        with pikepdf.open(path) as pdf:
            pdf.save(tmp_path / "plain.pdf", object_stream_mode=pikepdf.ObjectStreamMode.disable)
        path.write_bytes((tmp_path / "plain.pdf").read_bytes())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    rejected(path, "truncated")


def test_pdf_missing_only_its_last_bytes_is_truncated(tmp_path: Path) -> None:
    path = three_page_pdf(tmp_path)
    path.write_bytes(path.read_bytes()[:-40])  # every page object is intact; the end is not
    rejected(path, "truncated")


def test_pdf_page_whose_image_object_is_missing_is_refused(tmp_path: Path) -> None:
    """A complete-looking file (it ends properly) whose page 2 points at an object that is gone."""
    with pikepdf.open(three_page_pdf(tmp_path)) as pdf:
        pdf.save(tmp_path / "plain.pdf", object_stream_mode=pikepdf.ObjectStreamMode.disable)
    data = (tmp_path / "plain.pdf").read_bytes()
    second_image = re.findall(rb"/Im0 (\d+) 0 R", data)[1]
    broken = data.replace(b"/Im0 " + second_image + b" 0 R", b"/Im0 " + b"9" * len(second_image) + b" 0 R")
    assert broken != data and broken.rstrip().endswith(b"%%EOF")
    path = tmp_path / f"{NAME}.pdf"
    path.write_bytes(broken)
    assert "Page 2" in rejected(path, "truncated").message


def test_jpeg_cut_in_half_is_truncated(tmp_path: Path) -> None:
    path = write_image(small_page(), tmp_path / f"{NAME}.jpg", dpi=150)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    rejected(path, "truncated")
    path.write_bytes(data[:2])  # cut before the type can even be recognised
    rejected(path, "truncated")


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns as it reads the cut-off file
def test_png_and_tiff_cut_short_are_truncated(tmp_path: Path) -> None:
    png = write_image(small_page(), tmp_path / f"{NAME}.png", dpi=150)
    png.write_bytes(png.read_bytes()[:-30])
    rejected(png, "truncated")
    tif = write_tiff([small_page(f"Page {n}") for n in range(2)], tmp_path / f"{NAME}.tif", dpi=150)
    data = tif.read_bytes()
    tif.write_bytes(data[: len(data) * 3 // 4])
    rejected(tif, "truncated")
    # Header first, pixels after (as many scanners write): the cut loses only pixel data.
    whole = tiff_claiming(tmp_path / "header_first.tif", 620, 874)
    whole.write_bytes(whole.read_bytes()[:-10])
    assert "past the end" in rejected(whole, "truncated").message


def test_password_protected_pdf(tmp_path: Path) -> None:
    with pikepdf.open(three_page_pdf(tmp_path)) as pdf:
        pdf.save(tmp_path / "locked.pdf", encryption=pikepdf.Encryption(user="secret", owner="admin"))
    rejected(tmp_path / "locked.pdf", "encrypted")


@pytest.mark.parametrize("case", ["png-named-pdf", "pdf-named-tif", "pdf-without-extension", "text-named-pdf"])
def test_content_that_does_not_match_the_extension(tmp_path: Path, case: str) -> None:
    if case == "png-named-pdf":
        png = write_image(small_page(), tmp_path / "scan.png", dpi=150)
        target = tmp_path / f"{NAME}.pdf"
        target.write_bytes(png.read_bytes())
    elif case == "pdf-named-tif":
        target = tmp_path / f"{NAME}.tif"
        target.write_bytes(three_page_pdf(tmp_path).read_bytes())
    elif case == "pdf-without-extension":
        target = tmp_path / NAME
        target.write_bytes(three_page_pdf(tmp_path).read_bytes())
    else:
        target = tmp_path / f"{NAME}.pdf"
        target.write_text("Dear Sir, this is not a PDF.\n")
    exc = rejected(target, "wrong_type")
    assert "scanner" in exc.action


def test_unsupported_types(tmp_path: Path) -> None:
    docx = tmp_path / f"{NAME}.docx"
    with zipfile.ZipFile(docx, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    assert "Word" in rejected(docx, "unsupported_type").message
    txt = tmp_path / f"{NAME}.txt"
    txt.write_text("meeting notes\n")
    assert "plain text" in rejected(txt, "unsupported_type").message
    gif = tmp_path / f"{NAME}.gif"
    small_page().save(gif, "GIF")
    assert "GIF" in rejected(gif, "unsupported_type").message
    heic = tmp_path / f"{NAME}.heic"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64)
    rejected(heic, "unsupported_type")


def test_pdf_without_pages(tmp_path: Path) -> None:
    pikepdf.new().save(tmp_path / f"{NAME}.pdf")
    rejected(tmp_path / f"{NAME}.pdf", "no_pages")


def test_too_many_pages_pdf_and_tiff(tmp_path: Path) -> None:
    limits = PreflightLimits(max_pages=2)
    assert "3 pages" in rejected(three_page_pdf(tmp_path), "too_many_pages", limits).message
    tif = write_tiff([small_page(f"Page {n}") for n in range(3)], tmp_path / f"{NAME}.tif", dpi=150)
    rejected(tif, "too_many_pages", limits)


@pytest.mark.parametrize("side", [1.0, 20000.0])
def test_absurd_page_sizes(tmp_path: Path, side: float) -> None:
    exc = rejected(blank_pdf(tmp_path / f"{NAME}.pdf", (side, side)), "page_size")
    assert "cm" in exc.message


def test_tiny_image_is_refused_even_without_resolution(tmp_path: Path) -> None:
    Image.new("L", (40, 40), 255).save(tmp_path / f"{NAME}.png")
    rejected(tmp_path / f"{NAME}.png", "page_size")


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_tiff_claiming_a_huge_size_is_refused_without_decoding(tmp_path: Path) -> None:
    # Far beyond Pillow's own guard: its DecompressionBombError must come out as our code.
    rejected(tiff_claiming(tmp_path / f"{NAME}.tif", 100_000, 100_000), "decompression_bomb")
    # Over our limit but under Pillow's error threshold: our own header check must catch it.
    exc = rejected(tiff_claiming(tmp_path / "just_over.tif", 12_500, 12_500), "decompression_bomb")
    assert "12,500 x 12,500" in exc.message


def test_oversized_later_tiff_page_is_refused(tmp_path: Path) -> None:
    small, big = small_page().convert("1"), Image.new("1", (1600, 1600), 1)
    small.save(tmp_path / f"{NAME}.tif", "TIFF", save_all=True, append_images=[big], compression="group4", dpi=(150, 150))
    exc = rejected(tmp_path / f"{NAME}.tif", "decompression_bomb", PreflightLimits(max_page_pixels=2_000_000))
    assert "Page 2" in exc.message


# --- the real scanner corpus ------------------------------------------------------------------

CORPUS_ACCEPTED = {
    # file: (media type, pages, first page encoding, first page colour)
    "ccitt.pdf": ("application/pdf", 1, "ccitt", "bilevel"),
    "jbig2.pdf": ("application/pdf", 1, "jbig2", "bilevel"),
    "skew.pdf": ("application/pdf", 1, "jbig2", "bilevel"),
    "rotated_skew.pdf": ("application/pdf", 1, "jbig2", "bilevel"),
    "cardinal.pdf": ("application/pdf", 4, "jbig2", "bilevel"),
    "linn.pdf": ("application/pdf", 1, "jbig2", "bilevel"),
    "c02-22.pdf": ("application/pdf", 1, "jpeg", "colour"),
    "multipage.pdf": ("application/pdf", 6, "jpeg", "colour"),
    "kcs.pdf": ("application/pdf", 1, "ccitt", "bilevel"),
    "epson.pdf": ("application/pdf", 1, "ccitt", "bilevel"),
    "aspect.pdf": ("application/pdf", 1, "flate", "colour"),
    "blank.pdf": ("application/pdf", 1, None, None),
    "francais.pdf": ("application/pdf", 1, "jpeg", "grey"),
    "typewriter.png": ("image/png", 1, "png", "grey"),
    "baiona_gray.png": ("image/png", 1, "png", "grey"),
}


@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS.exists(), reason="scanner corpus not present")
@pytest.mark.parametrize("name", sorted(CORPUS_ACCEPTED))
def test_corpus_file_is_accepted(name: str) -> None:
    media_type, pages, encoding, colour = CORPUS_ACCEPTED[name]
    report = accepted(CORPUS / name)
    assert (report.media_type, report.page_count) == (media_type, pages)
    assert (report.pages[0].encoding, report.pages[0].colour) == (encoding, colour)



@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS.exists(), reason="scanner corpus not present")
def test_corpus_specifics() -> None:
    aspect = preflight(CORPUS / "aspect.pdf", limits=LIMITS).pages[0]
    assert (aspect.dpi_x, aspect.dpi_y) == (200, 100)
    rotated = preflight(CORPUS / "rotated_skew.pdf", limits=LIMITS).pages[0]
    assert (rotated.rotate, rotated.width_pt, rotated.height_pt) == (90, 612, 792)
    assert preflight(CORPUS / "kcs.pdf", limits=LIMITS).producer == "Eastman Kodak Company"
    blank = preflight(CORPUS / "blank.pdf", limits=LIMITS).pages[0]
    assert (blank.dpi_x, blank.dpi_y) == (None, None)
    assert preflight(CORPUS / "typewriter.png", limits=LIMITS).pages[0].dpi_x is None


@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS.exists(), reason="scanner corpus not present")
def test_corpus_invalid_pdf_is_truncated() -> None:
    rejected(CORPUS / "invalid.pdf", "truncated")


@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS.exists(), reason="scanner corpus not present")
@pytest.mark.parametrize("name", sorted(n for n in CORPUS_ACCEPTED if n.endswith(".pdf")))
def test_corpus_resolution_agrees_with_poppler(name: str) -> None:
    """pdfimages -list is an independent measure of each image's effective resolution."""
    listing = subprocess.run(["pdfimages", "-list", str(CORPUS / name)], capture_output=True, text=True, check=True)
    largest: dict[int, tuple[int, int, int]] = {}
    for line in listing.stdout.splitlines()[2:]:
        cols = line.split()
        if cols[2] != "image":
            continue
        page, width, height, xppi, yppi = int(cols[0]) - 1, int(cols[3]), int(cols[4]), int(cols[12]), int(cols[13])
        if page not in largest or width * height > largest[page][0]:
            largest[page] = (width * height, xppi, yppi)
    report = preflight(CORPUS / name, limits=LIMITS)
    for page in report.pages:
        if page.index not in largest:
            assert page.dpi_x is None
            continue
        _, xppi, yppi = largest[page.index]
        assert page.dpi_x == pytest.approx(xppi, abs=1) and page.dpi_y == pytest.approx(yppi, abs=1), page


@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS.exists(), reason="scanner corpus not present")
def test_hugemono_is_a_decompression_bomb_and_is_never_decoded() -> None:
    """Run in a fresh process so its peak memory is measurable: decoding would need over 1 GB."""
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from escr.errors import InputRejected
        from escr.intake.preflight import preflight
        from escr.settings import PreflightLimits
        try:
            preflight(Path({str(CORPUS / "hugemono.pdf")!r}), limits=PreflightLimits())
        except InputRejected as exc:
            print(exc.code)
        # VmHWM is this process image's own peak; ru_maxrss would include the forking parent's.
        hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
        print(int(hwm.split()[1]) // 1024)
        """
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=root)
    code, peak_mb = out.stdout.split()
    assert code == "decompression_bomb"
    assert int(peak_mb) < 300, f"preflight of hugemono.pdf peaked at {peak_mb} MB"

