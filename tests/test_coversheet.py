"""Cover sheets: what is printed is what the pipeline reads back from a real-looking scan."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pikepdf
import pytest
import zxingcpp
from hypothesis import given, reject, settings
from hypothesis import strategies as st
from pdf2image import convert_from_path
from PIL import Image, ImageDraw

from escr.errors import InputRejected
from escr.pages.coversheet import (
    BANNER,
    MAX_PAYLOAD_CHARS,
    CoverSheet,
    CoverSheetInvalid,
    decode_payload,
    encode_payload,
    find_coversheet,
    looks_like_coversheet_text,
    new_batch_id,
    render_coversheet_pdf,
)
from tests.support.scans import coversheet_page, degrade, text_page, write_pdf

SIBLINGS = CoverSheet(
    batch_id="B-7K3Q9X2M",
    child_ids=("AB123456", "AB123457"),
    doc_type="cp_conference_minutes",
    declared_pages=4,
)
# As long as a sheet is allowed to get: the densest QR code escr ever prints.
CROWDED = CoverSheet(
    batch_id="B-KXJGPYSR",
    child_ids=tuple(f"XY{i:06d}-long" for i in range(12)),
    doc_type="court_order_" + "x" * 52,
    declared_pages=9999,
)


def qr_image(text: str, *, scale: int = 8) -> Image.Image:
    """Someone else's QR code (or a hand-made escr one), as a greyscale picture."""
    barcode = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode)
    return Image.fromarray(np.array(barcode.to_image(scale=scale))).convert("L")


def letter_with(*codes: Image.Image, dpi: int = 200) -> Image.Image:
    page = text_page(["Dear Ms Whitfield,"] + [f"Line {n} of an ordinary letter." for n in range(12)], dpi=dpi)
    x = page.width // 10
    for code in codes:
        page.paste(code, (x, page.height // 2))
        x += code.width + page.width // 10
    return page


@pytest.fixture(scope="module")
def pages() -> dict[int, Image.Image]:
    return {dpi: coversheet_page(SIBLINGS, dpi=dpi) for dpi in (200, 300)}


# ---------------------------------------------------------------------------------------
# Payload

ids = st.text(
    alphabet=st.one_of(
        st.sampled_from("ABCXYZ0123456789_-.;=,%:/ "),
        st.characters(blacklist_categories=("Cc", "Cs")),
    ),
    min_size=1,
    max_size=12,
).filter(lambda s: s == s.strip() and s.strip())


@settings(max_examples=300, deadline=None)
@given(
    batch_id=ids,
    child_ids=st.lists(ids, min_size=1, max_size=4, unique=True),
    doc_type=ids,
    declared=st.one_of(st.none(), st.integers(1, 9999)),
)
def test_payload_round_trips_any_valid_sheet(batch_id, child_ids, doc_type, declared):
    sheet = CoverSheet(batch_id, tuple(child_ids), doc_type, declared)
    try:
        payload = encode_payload(sheet)
    except CoverSheetInvalid:
        reject()  # too long for a cover sheet's barcode; tested separately
    assert payload.startswith("ESCR1;")
    assert payload.isascii() and payload.isprintable()
    # separators inside values are escaped: exactly the framing fields, one comma per sibling
    assert payload.count(";") == (4 if declared is not None else 3)
    assert payload.count(",") == len(child_ids) - 1
    assert decode_payload(payload) == sheet


def test_payload_is_compact_and_readable():
    assert encode_payload(SIBLINGS) == "ESCR1;b=B-7K3Q9X2M;c=AB123456,AB123457;t=cp_conference_minutes;n=4"
    single = CoverSheet("B-7K3Q9X2M", ("AB123456",), "referral", None)
    assert encode_payload(single) == "ESCR1;b=B-7K3Q9X2M;c=AB123456;t=referral"
    assert decode_payload(encode_payload(single)) == single


def test_separator_in_a_child_id_cannot_add_a_child():
    sheet = CoverSheet("B-1", ("AB1,AB2;t=court_order",), "referral", None)
    back = decode_payload(encode_payload(sheet))
    assert back.child_ids == ("AB1,AB2;t=court_order",)
    assert back.doc_type == "referral"


def test_new_batch_ids_are_short_unambiguous_and_distinct():
    made = {new_batch_id() for _ in range(500)}
    assert len(made) == 500
    for batch_id in made:
        assert re.fullmatch(r"B-[0-9A-HJKMNP-TV-Z]{8}", batch_id), batch_id
    batch_id = next(iter(made))
    sheet = CoverSheet(batch_id, ("AB123456",), "referral")
    assert decode_payload(encode_payload(sheet)).batch_id == batch_id


@pytest.mark.parametrize(
    "kwargs",
    [
        {"child_ids": ()},
        {"child_ids": "AB123456"},
        {"child_ids": ("AB123456", "AB123456")},
        {"child_ids": ("",)},
        {"child_ids": (" AB123456",)},
        {"child_ids": tuple(f"AB{n:06d}" for n in range(13))},
        {"batch_id": "B-1\n2"},
        {"doc_type": "   "},
        {"doc_type": "x" * 65},
        {"declared_pages": 0},
        {"declared_pages": 10_000},
        {"declared_pages": True},
    ],
)
def test_sheet_that_could_not_be_read_back_is_refused(kwargs):
    fields = {"batch_id": "B-7K3Q9X2M", "child_ids": ("AB123456",), "doc_type": "referral", "declared_pages": 2}
    with pytest.raises(CoverSheetInvalid) as caught:
        CoverSheet(**(fields | kwargs))
    assert caught.value.code == "coversheet_invalid"  # the CLI prints it as one line
    assert isinstance(caught.value, ValueError)


def test_payload_too_long_for_the_barcode_is_refused(tmp_path):
    huge = CoverSheet("B-1", tuple(f"{'Z' * 60}{n:02d}" for n in range(12)), "referral")
    assert len(",".join(huge.child_ids)) > MAX_PAYLOAD_CHARS
    with pytest.raises(CoverSheetInvalid, match="longer than"):
        encode_payload(huge)
    with pytest.raises(CoverSheetInvalid):
        render_coversheet_pdf(huge, tmp_path / "huge.pdf")
    assert not (tmp_path / "huge.pdf").exists()


@pytest.mark.parametrize(
    "text",
    [
        "https://pay.example.org/invoice/123",
        "ESCROW-2024-0001",
        "escr1;b=B-1;c=AB123456;t=referral",
        "ESCR1x;b=B-1",
        "",
        "WIFI:S:clinic;T:WPA;P:secret;;",
    ],
)
def test_foreign_barcode_text_is_not_a_coversheet(text):
    assert decode_payload(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "ESCR1",
        "ESCR1;b=B-1;t=referral",  # no child
        "ESCR1;b=B-1;c=AB123456;t=referral;n=0",
        "ESCR1;b=B-1;c=AB123456;t=referral;n=four",
        "ESCR1;b=B-1;c=AB123456;t=referral;n=12345",
        "ESCR1;b=B-1;b=B-2;c=AB123456;t=referral",  # which batch?
        "ESCR1;b=B-1;c=AB123456,,AB123457;t=referral",
        "ESCR1;b=B-1;c=AB123456,AB123456;t=referral",
        "ESCR1;b=B-1;c=AB 123456;t=referral",  # unescaped space
        "ESCR1;b=B-1;c=AB123456;t=%ZZ",
        "ESCR1;b=B-1;c=AB123456;t=%FF%FE",  # not UTF-8
        "ESCR1;b=B-1;c=AB123456;t=referral;x=1",
        "ESCR1;b=B-1;c=AB123456;t=referral;",
        "ESCR1;b=B-1;c=AB123456;t=%0A",  # control character
        "ESCR2;b=B-1;c=AB123456;t=referral",  # a future version this escr cannot read
    ],
)
def test_malformed_escr_payload_is_rejected_with_a_clear_code(text):
    with pytest.raises(InputRejected) as caught:
        decode_payload(text)
    assert caught.value.code == "coversheet_unreadable"
    assert "cover sheet" in caught.value.message
    assert "AB123456" not in caught.value.message  # ids of what could not be read are not logged
    assert "rescan" in caught.value.action.lower()


# ---------------------------------------------------------------------------------------
# The printed sheet


def test_pdf_shows_every_field_for_the_person_checking_the_paper(tmp_path):
    pdf = render_coversheet_pdf(SIBLINGS, tmp_path / "sheet.pdf", child_labels=["Amelia Whitfield", "Zoë Łukasz"])
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    for shown in (BANNER, "B-7K3Q9X2M", "AB123456", "AB123457", "cp_conference_minutes", "Amelia Whitfield", "Zoë Łukasz"):
        assert shown in text, shown
    assert re.search(r"Pages after this sheet\s+4\b", text)
    with pikepdf.open(pdf) as doc:
        assert len(doc.pages) == 1
        width, height = (float(v) for v in doc.pages[0].mediabox[2:])
        assert (round(width), round(height)) == (595, 842)  # A4 in points
        metadata = str(dict(doc.docinfo))
    assert "B-7K3Q9X2M" in metadata
    assert "Whitfield" not in metadata and "AB123456" not in metadata  # no personal data in metadata


def test_long_sheet_keeps_all_its_text_on_the_page(tmp_path):
    pdf = render_coversheet_pdf(CROWDED, tmp_path / "sheet.pdf", child_labels=[f"Sibling {n}" for n in range(12)])
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    squashed = re.sub(r"\s", "", text)
    for child_id in CROWDED.child_ids:
        assert child_id in squashed
    assert CROWDED.doc_type in squashed
    page = coversheet_page(CROWDED, dpi=150)
    assert find_coversheet(page) == CROWDED


def test_sheet_carries_two_matching_barcodes_with_strong_error_correction(pages):
    codes = zxingcpp.read_barcodes(pages[300], formats=zxingcpp.BarcodeFormat.QRCode)
    assert len(codes) == 2
    assert {c.text for c in codes} == {encode_payload(SIBLINGS)}
    assert all(c.ec_level in ("M", "Q", "H") for c in codes)
    big, small = sorted(codes, key=lambda c: -abs(c.position.top_right.x - c.position.top_left.x))
    # opposite corners: one top left, the other bottom right
    assert big.position.top_left.x < pages[300].width / 2 and big.position.top_left.y < pages[300].height / 2
    assert small.position.bottom_right.x > pages[300].width / 2
    assert small.position.bottom_right.y > pages[300].height / 2


# ---------------------------------------------------------------------------------------
# Finding the sheet in a scanned batch


@pytest.mark.parametrize("dpi", [200, 300])
@pytest.mark.parametrize(
    "damage",
    [
        {},
        {"skew_deg": 3},
        {"skew_deg": -3},
        {"noise": 0.03, "seed": 1},
        {"rotate": 180},
        {"rotate": 90},
        {"rotate": 270, "skew_deg": 2, "noise": 0.02, "seed": 2},
        {"blur": 1.2, "lighten": 120},
    ],
    ids=["clean", "skew+3", "skew-3", "speckle", "upside-down", "sideways", "sideways-skewed-speckled", "faint"],
)
def test_sheet_is_found_on_a_degraded_scan(pages, dpi, damage):
    assert find_coversheet(degrade(pages[dpi], **damage)) == SIBLINGS


@pytest.mark.parametrize("dpi", [200, 300])
@pytest.mark.parametrize("encoding", ["ccitt", "jpeg"])
def test_sheet_is_found_after_mfd_encoding(pages, tmp_path, dpi, encoding):
    scanned = degrade(pages[dpi], skew_deg=-2, noise=0.01, seed=4)
    pdf = write_pdf([scanned], tmp_path / "batch.pdf", dpi=dpi, encoding=encoding)
    (back,) = convert_from_path(pdf, dpi=dpi)
    assert find_coversheet(back) == SIBLINGS


def test_sheet_is_found_on_a_bilevel_image(pages):
    bilevel = degrade(pages[300], skew_deg=1, noise=0.02, seed=5).convert("1")
    assert bilevel.mode == "1"
    assert find_coversheet(bilevel) == SIBLINGS


@pytest.mark.parametrize(
    ("sheet", "dpi", "noise"),
    [(SIBLINGS, 200, 0.08), (SIBLINGS, 300, 0.12), (CROWDED, 200, 0.05), (CROWDED, 300, 0.12)],
    ids=["siblings-200", "siblings-300", "crowded-200", "crowded-300"],
)
def test_sheet_with_a_torn_corner_is_read_from_the_other_copy(sheet, dpi, noise):
    page = coversheet_page(sheet, dpi=dpi)
    draw = ImageDraw.Draw(page)
    draw.polygon([(0, 0), (int(page.width * 0.45), 0), (0, int(page.height * 0.45))], fill=255)
    assert find_coversheet(degrade(page, skew_deg=3, noise=noise, seed=0)) == sheet


def test_sheet_folded_across_its_big_barcode_still_reads(pages):
    page = pages[200].copy()
    ImageDraw.Draw(page).rectangle([0, page.height // 5, page.width, page.height // 5 + 20], fill=0)
    assert find_coversheet(degrade(page, noise=0.08, skew_deg=3, seed=0)) == SIBLINGS


@pytest.mark.parametrize("dpi", [200, 300])
def test_ordinary_text_page_is_not_a_coversheet(dpi):
    page = text_page([f"Core group minutes, item {n}: actions agreed." for n in range(30)], dpi=dpi)
    assert find_coversheet(degrade(page, noise=0.02, skew_deg=1)) is None
    assert find_coversheet(page.convert("1")) is None


def test_blank_and_tiny_pages_are_not_coversheets():
    assert find_coversheet(Image.new("L", (1654, 2339), 255)) is None
    assert find_coversheet(Image.new("RGB", (40, 30), "white")) is None


def test_foreign_qr_code_on_a_letter_is_ignored():
    page = letter_with(qr_image("https://pay.example.org/invoice/123"))
    assert find_coversheet(page) is None


def test_sheet_is_found_beside_a_foreign_code():
    page = letter_with(qr_image("https://pay.example.org/invoice/123"), qr_image(encode_payload(SIBLINGS)))
    assert find_coversheet(page) == SIBLINGS


def test_malformed_escr_code_on_a_page_is_rejected():
    page = letter_with(qr_image("ESCR1;b=B-7K3Q9X2M;t=referral"))
    with pytest.raises(InputRejected) as caught:
        find_coversheet(page)
    assert caught.value.code == "coversheet_unreadable"


def test_two_different_sheets_on_one_page_are_refused():
    other = CoverSheet("B-7K3Q9X2M", ("CD654321",), "referral", 1)
    page = letter_with(qr_image(encode_payload(SIBLINGS)), qr_image(encode_payload(other)))
    with pytest.raises(InputRejected) as caught:
        find_coversheet(page)
    assert caught.value.code == "coversheet_conflict"


def test_colour_scan_with_alpha_is_read():
    page = coversheet_page(SIBLINGS, dpi=150).convert("RGBA")
    assert find_coversheet(page) == SIBLINGS


# ---------------------------------------------------------------------------------------
# OCR fallback banner


@pytest.mark.parametrize(
    "text",
    [
        BANNER,
        "some noise\nESCR COVER SHEET - scan this page first\nBatch B-7K3Q9X2M",
        "ESCR C0VER SHEET — scan this page frst",  # OCR confusions
        "escr cover\nsheet",
        "ESCRCOVER SHEET",
    ],
)
def test_banner_is_recognised_in_ocr_text(text):
    assert looks_like_coversheet_text(text)


@pytest.mark.parametrize(
    "text",
    ["", "FAX COVER SHEET", "Please find enclosed the cover sheet for the court bundle.", "SCREEN", "ESCR"],
)
def test_other_text_is_not_the_banner(text):
    assert not looks_like_coversheet_text(text)


# ---------------------------------------------------------------------------------------
# Real scanner output

CORPUS = Path(__file__).resolve().parents[2] / "shared/corpus/scanners"


@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS.exists(), reason="scanner corpus not present")
@pytest.mark.parametrize(
    "name", ["ccitt.pdf", "jbig2.pdf", "skew.pdf", "cardinal.pdf", "c02-22.pdf", "epson.pdf", "typewriter.png", "baiona_gray.png"]
)
def test_real_scanned_pages_are_not_coversheets(name):
    path = CORPUS / name
    if path.suffix == ".pdf":
        scanned = convert_from_path(path, dpi=200, grayscale=True)
    else:
        with Image.open(path) as image:
            scanned = [image.copy()]
    assert scanned
    for page in scanned:
        assert find_coversheet(page) is None


def test_a_letterhead_band_is_not_taken_for_a_code_but_a_sheet_is(monkeypatch) -> None:
    """Every page is checked, so an ordinary letter must cost one quick look: a dark band across
    its top must not send it to the slow full-resolution reads that a damaged code gets."""
    import escr.pages.coversheet as coversheet

    letter = Image.new("L", (2481, 3508), 235)
    draw = ImageDraw.Draw(letter)
    draw.rectangle((0, 0, 2481, 130), fill=60)  # the council's coloured band, scanned grey
    for y in range(400, 3000, 70):
        draw.rectangle((300, y, 2000, y + 25), fill=40)  # lines of text
    full_reads = []
    real_read = coversheet._read_qr
    monkeypatch.setattr(coversheet, "_read_qr", lambda image, **kw: full_reads.append(image.size) or real_read(image, **kw))
    assert find_coversheet(letter) is None
    assert len(full_reads) == 1  # the reduced copy only
    assert coversheet._might_hold_barcode(coversheet._shrink(coversheet_page(SIBLINGS, dpi=300)), [])
