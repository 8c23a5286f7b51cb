"""The reading copy's invisible text, built here from tesseract's hOCR instead of by tesseract's
own PDF renderer.

Tesseract's renderer writes each line as one run of 11 pt words stepped along the page: on a
scan skewed by a degree or two, a viewer's layout order (`pdftotext -layout`, copy and paste, a
screen reader) splits every long line in two and interleaves the halves with the next line's.
Here every word is turned by its line's baseline angle and stretched over its box, with a
stretched space between words, in a font as tall as the line's letters, and all words of a line
start on one height: viewers then read and select whole lines, in order (see `_draw_line`). It
also spares tesseract a third renderer on every page.

The page is a one-page PDF like tesseract's text-only page, so the reading copy places it the
same way (escr.pages.searchable); its glyphless font is tesseract's own (`pdf.ttf`).
"""

from __future__ import annotations

import io
import math
import os
import re
import subprocess
import unicodedata
import zlib
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import pikepdf
import pytesseract
from pikepdf import Name

from escr.errors import OcrError
from escr.pages.hocr import HocrLine

GLYPH_WIDTH = 0.5  # the glyphless font's advance, in em (its /DW 500)
# Viewers join two words whose drawn boxes are closer than about a tenth of the font's size
# (poppler's pdftotext -raw, copy and paste): tesseract's boxes of "Home" and "a" can be two
# pixels apart. A word is drawn at most this far short of the next, in ems, so they stay two.
MIN_WORD_GAP = 0.2
FONT = Name("/f-0-0")


def text_layer_pdf(lines: Sequence[HocrLine], *, width_px: int, height_px: int, dpi: int) -> bytes:
    """A one-page PDF, as big as the page image, holding only the invisible text of `lines`
    (escr.pages.hocr.read_hocr)."""
    scale = 72.0 / dpi
    content = b"".join(_draw_line(line, scale, height_px * scale) for line in lines)
    pdf = pikepdf.new()
    page = pdf.add_blank_page(page_size=(round(width_px * scale, 3), round(height_px * scale, 3)))
    page.obj[Name.Resources] = pikepdf.Dictionary(Font=pikepdf.Dictionary({str(FONT): _font(pdf)}))
    page.obj[Name.Contents] = pdf.make_stream(zlib.compress(content, 6), Filter=Name.FlateDecode)
    out = io.BytesIO()
    pdf.save(out, deterministic_id=True, compress_streams=False)  # the content is compressed already
    return out.getvalue()


def _draw_line(line: HocrLine, scale: float, page_height: float) -> bytes:
    """One line: every word turned by the line's baseline angle, stretched over its box, all words
    starting on one height, the baseline's at the middle of the line.

    Viewers build lines from where words start: words started on a skewed baseline drift by more
    than a line's height across a page, and `pdftotext -layout` then split every line in two (as
    it did with tesseract's renderer, and with each line drawn turned as a whole). On one height
    each line comes out whole; the cost is that a word at either end of a skewed line sits up to
    half the drift off its ink (3 points at 1 degree over a 6-inch line)."""
    # As viewers read it: compatibility forms (ligatures, full-width letters) as plain letters.
    words = [(text, x0, max(x1, x0 + 1)) for text, (x0, _y0, x1, _y1)
             in ((unicodedata.normalize("NFKC", w.text).strip(), w.bbox) for w in line.words) if text]
    if not words:
        return b""
    slope = line.slope or 0.0
    x0, y0, _x1, bottom = line.bbox
    angle = -math.atan(slope)  # image y runs down, PDF y up
    cos, sin = math.cos(angle), math.sin(angle)
    middle = (words[0][1] + words[-1][2]) / 2
    y = page_height - (bottom + line.intercept + slope * (middle - x0)) * scale
    size = max((line.x_size if line.x_size else max(1, bottom - y0) * cos) * scale, 1.0)  # the letters' height
    turn = f"{cos:.5f} {sin:.5f} {-sin:.5f} {cos:.5f}"
    out = [f"BT 3 Tr /f-0-0 {size:.2f} Tf\n".encode()]
    for n, (text, left, right) in enumerate(words):
        x, width = left * scale, (right - left) * scale
        if n + 1 < len(words):  # a word ends at least a word space before the next one starts
            width = max(min(width, words[n + 1][1] * scale - x - MIN_WORD_GAP * size), width / 2)
        out.append(_show(text, turn, x, y, width / cos, size))
        if n + 1 < len(words):  # a stretched space: viewers see the gap as one, never joining words
            gap = max(words[n + 1][1] * scale - x - width, scale)
            out.append(_show(" ", turn, x + width, y, gap / cos, size))
    out.append(b"ET\n")
    return b"".join(out)


def _show(text: str, turn: str, x: float, y: float, advance: float, size: float) -> bytes:
    """`text` from (x, y), turned, stretched (Tz) so that it advances exactly `advance`."""
    stretch = 100.0 * advance / (len(text) * GLYPH_WIDTH * size)
    return f"{turn} {x:.2f} {y:.2f} Tm {stretch:.2f} Tz <{_cids(text)}> Tj\n".encode()


def _cids(text: str) -> str:
    """Two-byte codes, one per character: the code is the character (the font maps all codes to
    its one blank glyph, its ToUnicode back to the character); beyond the BMP, U+FFFD."""
    if max(text) > "\uffff":
        text = "".join(c if c <= "\uffff" else "\ufffd" for c in text)
    return text.encode("utf-16-be", "surrogatepass").hex().upper()


_TO_UNICODE = (b"/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
               b"/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
               b"/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
               b"1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
               b"1 beginbfrange\n<0000> <FFFF> <0000>\nendbfrange\n"
               b"endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n")


def _font(pdf: pikepdf.Pdf) -> pikepdf.Object:
    """The glyphless Type 0 font: every code draws nothing, 0.5 em wide, and reads as itself."""
    font_file = _glyphless_font()
    descriptor = pikepdf.Dictionary(
        Type=Name.FontDescriptor, FontName=Name("/GlyphLessFont"), Flags=5, FontBBox=[0, 0, 500, 1000],
        ItalicAngle=0, Ascent=1000, Descent=-1, CapHeight=1000, StemV=80,
        FontFile2=pdf.make_stream(font_file, Length1=len(font_file)))
    cid_to_gid = pdf.make_stream(_every_code_to_glyph_one(), Filter=Name.FlateDecode)
    descendant = pikepdf.Dictionary(
        Type=Name.Font, Subtype=Name.CIDFontType2, BaseFont=Name("/GlyphLessFont"),
        CIDSystemInfo=pikepdf.Dictionary(Registry=pikepdf.String("Adobe"), Ordering=pikepdf.String("Identity"),
                                         Supplement=0),
        FontDescriptor=pdf.make_indirect(descriptor), DW=round(GLYPH_WIDTH * 1000), CIDToGIDMap=cid_to_gid)
    return pdf.make_indirect(pikepdf.Dictionary(
        Type=Name.Font, Subtype=Name.Type0, BaseFont=Name("/GlyphLessFont"), Encoding=Name("/Identity-H"),
        DescendantFonts=[pdf.make_indirect(descendant)],
        ToUnicode=pdf.make_stream(_TO_UNICODE)))


@cache
def _every_code_to_glyph_one() -> bytes:
    """The CIDToGIDMap, compressed once: 65,536 two-byte entries, each the font's one glyph."""
    return zlib.compress(b"\x00\x01" * 65536, 9)


@cache
def _glyphless_font() -> bytes:
    """Tesseract's own glyphless TrueType font (`pdf.ttf`, beside its language data)."""
    for folder in _tessdata_folders():
        candidate = folder / "pdf.ttf"
        if candidate.is_file():
            return candidate.read_bytes()
    raise OcrError("tesseract's pdf.ttf was not found beside its language data", code="ocr_unavailable")


def _tessdata_folders() -> list[Path]:
    folders = [Path(os.environ["TESSDATA_PREFIX"])] if os.environ.get("TESSDATA_PREFIX") else []
    try:  # "List of available languages in "/usr/share/tesseract-ocr/5/tessdata/" (3):"
        listed = subprocess.run([pytesseract.pytesseract.tesseract_cmd, "--list-langs"], capture_output=True,
                                text=True, timeout=30, check=False).stdout
        match = re.search(r'"([^"]+)"', listed)
        if match:
            folders.append(Path(match.group(1)))
    except (OSError, subprocess.SubprocessError):
        pass
    return folders + [Path(p) for p in ("/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata",
                                        "/usr/share/tessdata", "/usr/local/share/tessdata")]
