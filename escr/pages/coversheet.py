"""Batch cover sheets: the printed page that tells the pipeline where a document starts.

Business support print one sheet per document, put it on top of the paper and scan the
whole batch. Each sheet carries the same data twice: a QR code for the pipeline and large
text for the person checking the paper (and for OCR, when the code cannot be read).

The QR payload is short, versioned ASCII, e.g.

    ESCR1;b=B-7K3Q9X2M;c=AB123456,AB123457;t=cp_conference_minutes;n=4

Values are percent-encoded (RFC 3986 unreserved characters stay as they are), so a child id
or document type holding `;`, `=`, `,`, `%` or non-ASCII text cannot break the framing, and
the payload stays ASCII whatever QR encoder or reader sits in between.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

import numpy as np
import zxingcpp
from PIL import Image, ImageFilter
from rapidfuzz import fuzz

from escr.errors import EscrError, InputRejected

if TYPE_CHECKING:  # reportlab only draws sheets: the OCR slots that read them never load it
    from reportlab.pdfgen.canvas import Canvas

PAYLOAD_VERSION = 1
BANNER = "ESCR COVER SHEET - scan this page first"

# Crockford's base 32: no I, L, O or U, so a batch id read aloud or retyped is unambiguous.
_BATCH_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_BATCH_ID_LEN = 8

MAX_FIELD_CHARS = 64
MAX_CHILDREN = 12
MAX_DECLARED_PAGES = 9999
# A payload this long still gives QR modules large enough to read from a 100 dpi copy.
MAX_PAYLOAD_CHARS = 300

_ESCR_PREFIX = re.compile(r"ESCR(\d+)(?:;|$)")
_ENCODED_VALUE = re.compile(r"(?:[A-Za-z0-9_.~-]|%[0-9A-Fa-f]{2})+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

_UNREADABLE_ACTION = (
    "Reprint the cover sheet from escr, put it on top of the document and rescan the batch."
)

_FONT_PATHS = {
    "EscrSans": "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "EscrSans-Bold": "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
}
_FALLBACK_FONTS = {"EscrSans": "Helvetica", "EscrSans-Bold": "Helvetica-Bold"}

# Detection: the first pass runs on a page shrunk to about this long side (100-150 dpi for
# A4/A5), which reads the big code quickly and averages scanner speckle away.
_FAST_LONG_SIDE_PX = 1400
# Share of neighbouring pixels, across and down, that change between black and white in a block
# that could be QR modules: a code read at 100-150 dpi measures 0.1-0.3, the edge of a dark
# band across the page under 0.02.
MIN_MODULE_CHANGES = 0.04


class CoverSheetInvalid(EscrError, ValueError):
    """Cover-sheet fields that could not be printed and read back unchanged (bad input to
    `escr coversheet`, not a bad scan). Messages name the field, never its value."""

    code = "coversheet_invalid"


@dataclass(frozen=True)
class CoverSheet:
    """What one printed cover sheet says about the document under it."""

    batch_id: str
    child_ids: tuple[str, ...]
    doc_type: str
    declared_pages: int | None = None

    def __post_init__(self) -> None:
        # A sheet that cannot be printed and read back unchanged must never be made.
        if isinstance(self.child_ids, str):
            raise CoverSheetInvalid("child_ids must be a sequence of ids, not one string")
        if not isinstance(self.child_ids, tuple):
            object.__setattr__(self, "child_ids", tuple(self.child_ids))
        _check_text("batch_id", self.batch_id)
        _check_text("doc_type", self.doc_type)
        if not self.child_ids:
            raise CoverSheetInvalid("a cover sheet names at least one child")
        if len(self.child_ids) > MAX_CHILDREN:
            raise CoverSheetInvalid(f"a cover sheet names at most {MAX_CHILDREN} children")
        for child_id in self.child_ids:
            _check_text("child_id", child_id)
        if len(set(self.child_ids)) != len(self.child_ids):
            raise CoverSheetInvalid("child ids on a cover sheet must be distinct")
        if self.declared_pages is not None and (
            isinstance(self.declared_pages, bool)
            or not isinstance(self.declared_pages, int)
            or not 1 <= self.declared_pages <= MAX_DECLARED_PAGES
        ):
            raise CoverSheetInvalid(f"declared_pages must be 1..{MAX_DECLARED_PAGES} or None")


def _check_text(field: str, value: object) -> None:
    """Reject values a person could not read off the printed sheet."""
    if not isinstance(value, str) or not value.strip():
        raise CoverSheetInvalid(f"{field} must be a non-empty string")
    if value != value.strip():
        raise CoverSheetInvalid(f"{field} must not start or end with whitespace")
    if len(value) > MAX_FIELD_CHARS:
        raise CoverSheetInvalid(f"{field} is longer than {MAX_FIELD_CHARS} characters")
    if _CONTROL.search(value):
        raise CoverSheetInvalid(f"{field} contains control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise CoverSheetInvalid(f"{field} is not valid Unicode text") from None


def new_batch_id() -> str:
    """A fresh batch id such as B-7K3Q9X2M: short, uppercase, no look-alike characters."""
    return "B-" + "".join(secrets.choice(_BATCH_ALPHABET) for _ in range(_BATCH_ID_LEN))


# ---------------------------------------------------------------------------------------
# Payload


def _enc(value: str) -> str:
    return quote(value, safe="", encoding="utf-8", errors="strict")


def encode_payload(sheet: CoverSheet) -> str:
    """The text the QR code carries; decode_payload(encode_payload(s)) == s."""
    parts = [
        f"ESCR{PAYLOAD_VERSION}",
        f"b={_enc(sheet.batch_id)}",
        "c=" + ",".join(_enc(c) for c in sheet.child_ids),
        f"t={_enc(sheet.doc_type)}",
    ]
    if sheet.declared_pages is not None:
        parts.append(f"n={sheet.declared_pages}")
    payload = ";".join(parts)
    if len(payload) > MAX_PAYLOAD_CHARS:
        raise CoverSheetInvalid(f"cover sheet payload longer than {MAX_PAYLOAD_CHARS} characters")
    return payload


def _unreadable(message: str) -> InputRejected:
    return InputRejected(code="coversheet_unreadable", message=message, action=_UNREADABLE_ACTION)


def _dec(field: str, raw: str) -> str:
    """Undo _enc, refusing anything _enc could not have written."""
    if not _ENCODED_VALUE.fullmatch(raw):
        raise _unreadable(f"cover sheet field {field!r} is badly escaped")
    try:
        return unquote(raw, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise _unreadable(f"cover sheet field {field!r} is not valid UTF-8") from None


def decode_payload(text: str) -> CoverSheet | None:
    """The cover sheet a barcode's text describes, or None if the barcode is someone else's.

    Any QR code on a letter (a payment link, a clinic's booking code) gives None. Text that
    claims to be an escr sheet but cannot be read exactly raises InputRejected with code
    ``coversheet_unreadable``: a half-understood sheet could file pages to the wrong child.
    """
    head = _ESCR_PREFIX.match(text)
    if head is None:
        return None
    if int(head.group(1)) != PAYLOAD_VERSION:
        raise _unreadable(
            f"cover sheet payload version {head.group(1)} is not supported "
            f"(this escr reads version {PAYLOAD_VERSION})"
        )
    fields: dict[str, str] = {}
    for item in text.split(";")[1:]:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise _unreadable("cover sheet payload has a field without a name or value")
        if key in fields:
            raise _unreadable(f"cover sheet payload repeats field {key!r}")
        fields[key] = value
    missing = [k for k in ("b", "c", "t") if k not in fields]
    if missing:
        raise _unreadable(f"cover sheet payload lacks field(s) {', '.join(missing)}")
    unknown = sorted(set(fields) - {"b", "c", "t", "n"})
    if unknown:
        raise _unreadable(f"cover sheet payload has unknown field(s) {', '.join(unknown)}")
    declared = fields.get("n")
    if declared is not None and not re.fullmatch(r"[1-9][0-9]{0,3}", declared):
        raise _unreadable("cover sheet page count is not a whole number from 1 to 9999")
    try:
        return CoverSheet(
            batch_id=_dec("b", fields["b"]),
            child_ids=tuple(_dec("c", c) for c in fields["c"].split(",")),
            doc_type=_dec("t", fields["t"]),
            declared_pages=int(declared) if declared is not None else None,
        )
    except CoverSheetInvalid as exc:
        raise _unreadable(f"cover sheet payload is invalid: {exc.message}") from None


# ---------------------------------------------------------------------------------------
# Rendering


def _fonts() -> tuple[str, str]:
    """DejaVu if installed (covers accented names in child_labels), else the PDF base fonts."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    names = []
    for name, path in _FONT_PATHS.items():
        if name in pdfmetrics.getRegisteredFontNames():
            names.append(name)
        elif Path(path).is_file():
            pdfmetrics.registerFont(TTFont(name, path))
            names.append(name)
        else:
            names.append(_FALLBACK_FONTS[name])
    return names[0], names[1]


def _draw_qr(canvas: Canvas, payload: str, x: float, y: float, size: float) -> None:
    """A QR code `size` points square (quiet zone included) with its lower-left at x, y."""
    from reportlab.graphics import renderPDF
    from reportlab.graphics.barcode.qr import QrCodeWidget
    from reportlab.graphics.shapes import Drawing

    widget = QrCodeWidget(payload, barLevel="Q", barBorder=4, barWidth=size, barHeight=size)
    drawing = Drawing(size, size)
    drawing.add(widget)
    renderPDF.draw(drawing, canvas, x, y)


def _fit_font(text: str, font: str, size: float, width: float, smallest: float) -> float:
    """The largest size up to `size` at which `text` fits on one line, not below `smallest`."""
    from reportlab.pdfbase import pdfmetrics

    while size > smallest and pdfmetrics.stringWidth(text, font, size) > width:
        size -= 1
    return size


def _wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """Word-wrap, then cut any word too long for a line (ids and codes have no spaces)."""
    from reportlab.lib.utils import simpleSplit
    from reportlab.pdfbase import pdfmetrics

    lines: list[str] = []
    for line in simpleSplit(text, font, size, width) or [""]:
        while pdfmetrics.stringWidth(line, font, size) > width and len(line) > 1:
            cut = len(line) - 1
            while cut > 1 and pdfmetrics.stringWidth(line[:cut], font, size) > width:
                cut -= 1
            lines.append(line[:cut])
            line = line[cut:]
        lines.append(line)
    return lines


def _draw_lines(
    canvas: Canvas, text: str, font: str, size: float, x: float, y: float, width: float
) -> float:
    """Draw wrapped text whose first line's top is at y; return the y below the last line."""
    canvas.setFont(font, size)
    for line in _wrap(text, font, size, width):
        canvas.drawString(x, y - size, line)
        y -= size * 1.25
    return y


def _draw_block(
    canvas: Canvas,
    items: Sequence[tuple[str, str, float, float]],
    x: float,
    top: float,
    width: float,
    bottom: float,
) -> None:
    """Draw (text, font, size, gap above) items downwards from `top`, shrunk to end above
    `bottom` so that many siblings or long labels never run over the lower barcode."""

    def height(scale: float) -> float:
        return sum(
            gap + len(_wrap(text, font, size * scale, width)) * size * scale * 1.25
            for text, font, size, gap in items
        )

    scale = 1.0
    while scale > 0.4 and height(scale) > top - bottom:
        scale -= 0.05
    y = top
    for text, font, size, gap in items:
        y = _draw_lines(canvas, text, font, size * scale, x, y - gap, width)


def render_coversheet_pdf(
    sheet: CoverSheet, out: Path, *, child_labels: Sequence[str] = ()
) -> Path:
    """Write a printable A4 cover sheet for `sheet` to `out`.

    A large QR code top left and a smaller copy bottom right (a torn, folded or stapled
    corner still leaves one readable), with every field also printed in large text so the
    person checking the paper can see which child and document it is for. `child_labels`
    (e.g. the child's name) are printed only, never put in the barcode or PDF metadata.
    """
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen.canvas import Canvas

    payload = encode_payload(sheet)
    regular, bold = _fonts()
    page_w, page_h = A4
    margin = 15 * mm
    text_w = page_w - 2 * margin

    canvas = Canvas(str(out), pagesize=A4, invariant=True, pageCompression=1)
    canvas.setTitle(f"ESCR cover sheet {sheet.batch_id}")
    canvas.setAuthor("escr")
    canvas.setCreator("escr")

    banner_size = _fit_font(BANNER, bold, 24, text_w, 12)
    canvas.setFont(bold, banner_size)
    canvas.drawCentredString(page_w / 2, page_h - margin - banner_size, BANNER)

    big = 85 * mm
    big_top = page_h - margin - banner_size - 8 * mm
    _draw_qr(canvas, payload, margin, big_top - big, big)

    side_x = margin + big + 8 * mm
    side_w = page_w - margin - side_x
    y = big_top - 6 * mm
    y = _draw_lines(canvas, "Batch", regular, 14, side_x, y, side_w)
    batch_size = _fit_font(sheet.batch_id, bold, 30, side_w, 12)
    y = _draw_lines(canvas, sheet.batch_id, bold, batch_size, side_x, y, side_w)
    if sheet.declared_pages is not None:
        y = _draw_lines(canvas, "Pages after this sheet", regular, 14, side_x, y - 8 * mm, side_w)
        _draw_lines(canvas, str(sheet.declared_pages), bold, 30, side_x, y, side_w)

    # The box for the office's "received" date stamp, below the batch and page count, beside the
    # large code: `read_stamp_box` finds it from that code, whichever way up the sheet was scanned.
    left, right, top, bottom = stamp_offsets_mm()
    centre_x, centre_y = margin + big / 2, big_top - big / 2
    canvas.setLineWidth(1.2)
    canvas.rect(centre_x + left * mm, centre_y - bottom * mm, (right - left) * mm, (bottom - top) * mm)
    canvas.setFont(regular, 10)
    canvas.drawString(centre_x + left * mm + 2 * mm, centre_y - top * mm - 4.5 * mm, STAMP_LABEL)

    small = 45 * mm
    label = "Child ID" if len(sheet.child_ids) == 1 else "Child IDs"
    block: list[tuple[str, str, float, float]] = [
        (label, regular, 14, 0),
        (", ".join(sheet.child_ids), bold, 26, 0),
        *((line, regular, 18, 0) for line in child_labels),
        ("Document type", regular, 14, 6 * mm),
        (sheet.doc_type, bold, 26, 0),
    ]
    _draw_block(canvas, block, margin, big_top - big - 8 * mm, text_w, margin + small + 6 * mm)

    note_w = page_w - 2 * margin - small - 8 * mm
    _draw_lines(
        canvas,
        "Put this sheet on top of the document it describes, one sheet per document. "
        "Do not staple, fold or write over the codes.",
        regular,
        11,
        margin,
        margin + 14 * mm,
        note_w,
    )
    _draw_qr(canvas, payload, page_w - margin - small, margin, small)

    canvas.showPage()
    canvas.save()
    return out


# ---------------------------------------------------------------------------------------
# The received-date stamp box (seed 001 s. 9: timeliness is measured from the paper's arrival)

STAMP_LABEL = "Date received (stamp here)"
_BIG_QR_MM = 85.0


def stamp_offsets_mm() -> tuple[float, float, float, float]:
    """The stamp box's left, right, top and bottom edges from the large code's centre, in mm on
    the upright sheet with y growing downwards: right of the code, level with its lower part,
    below the batch id and page count."""
    left = _BIG_QR_MM / 2 + 8.0
    right = left + (210.0 - 15.0) - (15.0 + _BIG_QR_MM + 8.0)
    bottom = _BIG_QR_MM / 2
    return left, right, bottom - 28.0, bottom


def read_stamp_box(image: Image.Image, *, dpi: int) -> Image.Image | None:
    """The stamp box of the cover sheet on this page, cut out and turned upright, or None when the
    large code is not found. The large code's centre and the way it faces fix the sheet's place
    and turn on the scan (upright, sideways or upside down), so the box is found from it."""
    grey = _greyscale(image)
    small = _shrink(grey)
    scale = grey.width / small.width
    codes = [b for b in _read_qr(small) if b.valid and b.text.startswith("ESCR")]
    if not codes:  # as find_coversheet: the full page only when the quick look found nothing
        scale, codes = 1.0, [b for b in _read_qr(grey) if b.valid and b.text.startswith("ESCR")]
    if not codes:
        return None

    def corners(b: zxingcpp.Barcode) -> np.ndarray:
        p = b.position
        return np.array([[c.x, c.y] for c in (p.top_left, p.top_right, p.bottom_right, p.bottom_left)],
                        float) * scale

    big = max(codes, key=lambda b: float(np.linalg.norm(corners(b)[0] - corners(b)[1])))
    px_per_mm = dpi / 25.4
    side = float(np.linalg.norm(corners(big)[0] - corners(big)[1])) / px_per_mm
    if side < 55:  # only the small corner copy was read: no safe anchor for the box
        return None
    centre = corners(big).mean(axis=0)
    turns = int(round((big.orientation % 360) / 90.0)) % 4  # quarter turns clockwise the sheet lies
    dx0, dx1, dy0, dy1 = stamp_offsets_mm()
    box = np.array([[dx0, dy0], [dx1, dy0], [dx1, dy1], [dx0, dy1]], float)
    angle = np.deg2rad(90 * turns)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    placed = box @ rot.T * px_per_mm + centre
    left, top = placed.min(axis=0) - 2 * px_per_mm
    right, bottom = placed.max(axis=0) + 2 * px_per_mm
    crop = grey.crop((int(max(0, left)), int(max(0, top)), int(min(grey.width, right)), int(min(grey.height, bottom))))
    return crop.rotate(90 * turns, expand=True) if turns else crop


# ---------------------------------------------------------------------------------------
# Detection


def _read_qr(image: Image.Image, *, return_errors: bool = False) -> list[zxingcpp.Barcode]:
    return zxingcpp.read_barcodes(
        image,
        formats=zxingcpp.BarcodeFormat.QRCode,
        try_rotate=True,
        try_downscale=True,
        try_invert=False,
        return_errors=return_errors,
    )


def _sheet_from(barcodes: Sequence[zxingcpp.Barcode]) -> CoverSheet | None:
    """The one escr sheet among a page's barcodes; foreign codes are skipped.

    A malformed escr code is reported only if no good copy was read beside it. Two
    different sheets on one page cannot be split safely, so that is refused.
    """
    sheets: list[CoverSheet] = []
    problem: InputRejected | None = None
    for barcode in barcodes:
        if not barcode.valid:
            continue
        try:
            sheet = decode_payload(barcode.text)
        except InputRejected as exc:
            problem = problem or exc
            continue
        if sheet is not None and sheet not in sheets:
            sheets.append(sheet)
    if len(sheets) > 1:
        raise InputRejected(
            code="coversheet_conflict",
            message=f"one page holds {len(sheets)} different escr cover sheets",
            action="Scan each cover sheet on its own page, on top of its own document.",
        )
    if sheets:
        return sheets[0]
    if problem is not None:
        raise problem
    return None


def _greyscale(image: Image.Image) -> Image.Image:
    if image.mode == "L":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        background.alpha_composite(image.convert("RGBA"))
        image = background
    return image.convert("L")


def _shrink(grey: Image.Image) -> Image.Image:
    """Box-average down to about _FAST_LONG_SIDE_PX: cheap, and it smooths speckle."""
    factor = int(max(grey.size) / _FAST_LONG_SIDE_PX + 0.5)
    return grey.reduce(factor) if factor > 1 else grey


def _might_hold_barcode(small: Image.Image, misses: Sequence[zxingcpp.Barcode]) -> bool:
    """Worth a full-resolution look? A QR symbol was seen but not decoded, or the page has
    a block dense and evenly mixed in black and white, as a QR code's modules are and text
    lines are not, and changing between them often both across and down, as modules do and
    the edge of a letterhead's dark band does not."""
    if misses:
        return True
    arr = np.asarray(small, dtype=np.uint8)
    side = max(8, min(arr.shape) // 12)
    h, w = (arr.shape[0] // side) * side, (arr.shape[1] // side) * side
    if h == 0 or w == 0:
        return False
    blocks = (arr[:h, :w] < 128).reshape(h // side, side, w // side, side)
    dark = blocks.mean(axis=(1, 3))
    across = (blocks[:, :, :, 1:] != blocks[:, :, :, :-1]).mean(axis=(1, 3))
    down = (blocks[:, 1:, :, :] != blocks[:, :-1, :, :]).mean(axis=(1, 3))
    return bool(((dark > 0.3) & (dark < 0.7) & (across > MIN_MODULE_CHANGES) & (down > MIN_MODULE_CHANGES)).any())


def find_coversheet(image: Image.Image) -> CoverSheet | None:
    """The escr cover sheet on this scanned page, or None for an ordinary page.

    Called on every page of every batch, so the common case is one zxing pass over a
    box-averaged greyscale copy of about 100-150 dpi (a few milliseconds for A4 at 300 dpi).
    Only when that finds no escr sheet and the page looks as if it could hold a QR code
    (a symbol seen but not decoded, or a block of dense black-and-white modules) is the
    full-resolution page read, and then once more after a 3x3 median filter, which removes
    the scanner speckle that breaks the small corner copy of the code. Turned pages and a
    few degrees of skew need nothing special: QR finder patterns are read at any angle.

    Raises InputRejected (``coversheet_unreadable``) if the only escr code on the page is
    malformed, and (``coversheet_conflict``) if the page holds two different sheets.
    """
    grey = _greyscale(image)
    small = _shrink(grey)
    found = _read_qr(small, return_errors=True)
    sheet = _sheet_from(found)
    if sheet is not None:
        return sheet
    misses = [b for b in found if not b.valid]
    if found and not misses:
        return None  # only foreign codes (a letter's payment or booking code), all read
    if not _might_hold_barcode(small, misses):
        return None
    if small is not grey:
        sheet = _sheet_from(_read_qr(grey))
        if sheet is not None:
            return sheet
    return _sheet_from(_read_qr(grey.filter(ImageFilter.MedianFilter(3))))


def looks_like_coversheet_text(text: str) -> bool:
    """True if OCR text holds the printed "ESCR COVER SHEET" banner.

    Lets the pipeline hold a batch for a person when a sheet's codes were both unreadable.
    Spaces and punctuation are ignored and one misread character is tolerated.
    """
    squashed = re.sub(r"[^A-Z0-9]", "", text.upper())
    if len(squashed) < 10:
        return False
    return fuzz.partial_ratio("ESCRCOVERSHEET", squashed) >= 90
