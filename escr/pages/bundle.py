"""Disclosure bundles: redactions burnt into re-rendered page images, written one page at a time.

A redaction drawn over a PDF is not a redaction: the text layer, the original image and the
metadata still hold what is under the box. So every page of a bundle is rendered afresh from the
reading copy (poppler), the redacted areas are painted black into the pixels, the result is
encoded as a new JPEG, and the only text put back is an invisible layer of the OCR words that
lie wholly outside every redaction (as OCRmyPDF lays its layer: render mode 3, one word per
box). Nothing of the source PDF is copied: no image stream, no text, no metadata, no
attachments. Pages withheld in full become a plain text page that says so.

`BundleWriter` writes the PDF as a stream - each page's objects go to the file as soon as the
page is made and only their byte offsets stay in memory - so a 300-page bundle needs the memory
of one page image, like intake. The SHA-256 is computed while writing.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from lxml import etree
from pdf2image import convert_from_path
from pdf2image.exceptions import PDFPageCountError, PDFSyntaxError
from PIL import Image, ImageChops, ImageDraw
from reportlab.pdfbase.pdfmetrics import stringWidth

from escr.errors import StorageError

A4 = (595.0, 842.0)
MARGIN = 56.0
Box = tuple[float, float, float, float]  # x0, y0 (top left), x1, y1 as fractions of the page, 0..1


@dataclass(frozen=True)
class Word:
    text: str
    box: Box


@dataclass(frozen=True)
class Line:
    text: str
    size: float = 10.0
    bold: bool = False
    gap: float = 0.0  # extra space before the line, in points


def page_words(pdf: Path) -> Iterator[list[Word]]:
    """The OCR words of each page of a reading copy with their boxes, from its invisible text
    layer (poppler's `pdftotext -bbox`), one page at a time, as fractions of the page shown."""
    try:
        proc = subprocess.Popen(["pdftotext", "-bbox", "-enc", "UTF-8", str(pdf), "-"], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
    except OSError as exc:
        raise StorageError(f"cannot run pdftotext: {type(exc).__name__}") from exc
    assert proc.stdout is not None
    words: list[Word] = []
    width = height = 1.0
    try:
        for event, el in etree.iterparse(proc.stdout, events=("start", "end"), recover=True, huge_tree=True):
            tag = etree.QName(el).localname
            if event == "start" and tag == "page":
                width, height = float(el.get("width") or 1), float(el.get("height") or 1)
                words = []
            elif event == "end" and tag == "word":
                text = (el.text or "").strip()
                if text:
                    words.append(Word(text, (float(el.get("xMin")) / width, float(el.get("yMin")) / height,
                                             float(el.get("xMax")) / width, float(el.get("yMax")) / height)))
                el.clear()
            elif event == "end" and tag == "page":
                yield words
                el.clear()
    except etree.XMLSyntaxError as exc:
        raise StorageError("cannot read the text layer of a reading copy") from exc
    finally:
        proc.stdout.close()
        proc.wait()


def overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def render_page(pdf: Path, page: int, dpi: int) -> Image.Image:
    """One page (1-based) of a PDF as pixels, as displayed (rotation applied)."""
    try:
        (image,) = convert_from_path(pdf, dpi=dpi, first_page=page, last_page=page)
    except (PDFPageCountError, PDFSyntaxError, ValueError) as exc:
        raise StorageError(f"cannot render page {page} of a stored PDF: {type(exc).__name__}") from exc
    return image


def burn_in(image: Image.Image, boxes: Sequence[Box]) -> Image.Image:
    """The page with every box painted solid black into its pixels (a box is grown by a pixel
    each way so that anti-aliased glyph edges go too). Grey scans stay grey."""
    out = _grey_or_colour(image)
    draw = ImageDraw.Draw(out)
    w, h = out.size
    for x0, y0, x1, y1 in boxes:
        draw.rectangle([max(0, int(x0 * w) - 1), max(0, int(y0 * h) - 1),
                        min(w - 1, int(x1 * w + 0.999) + 1), min(h - 1, int(y1 * h + 0.999) + 1)], fill=0)
    return out


def _grey_or_colour(image: Image.Image) -> Image.Image:
    """A new image (never the one given): one grey channel when the page has no colour."""
    if image.mode in ("1", "L", "LA", "I", "I;16"):
        return image.convert("L")
    rgb = image.convert("RGB")
    r, g, b = rgb.split()
    if ImageChops.difference(r, g).getbbox() is None and ImageChops.difference(g, b).getbbox() is None:
        return r
    return rgb if rgb is not image else rgb.copy()


def _pdf_text(text: str) -> bytes:
    raw = text.encode("cp1252", errors="replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def wrap(text: str, size: float, width: float, bold: bool = False) -> list[str]:
    font = "Helvetica-Bold" if bold else "Helvetica"
    out: list[str] = []
    line = ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and stringWidth(trial, font, size) > width:
            out.append(line)
            line = word
        else:
            line = trial
    out.append(line)
    return out


def paginate(lines: Sequence[Line], page: tuple[float, float] = A4) -> list[list[Line]]:
    """Lines wrapped to the page's width and cut into pages (for the cover, index and schedule)."""
    pages: list[list[Line]] = [[]]
    y = MARGIN
    for line in lines:
        for i, part in enumerate(wrap(line.text, line.size, page[0] - 2 * MARGIN, line.bold)):
            step = line.size * 1.35 + (line.gap if i == 0 else 0)
            if y + step > page[1] - MARGIN and pages[-1]:
                pages.append([])
                y = MARGIN
                step = line.size * 1.35
            pages[-1].append(Line(part, line.size, line.bold, step))
            y += step
    return pages


class BundleWriter:
    """A PDF written object by object to `out`; `close()` writes the page tree, the catalog and
    the cross-reference table and returns (SHA-256, page count). No /Info, no XMP metadata."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._digest = hashlib.sha256()
        self._pos = 0
        self._offsets: dict[int, int] = {}
        self._next = 5  # 1 catalog, 2 pages, 3 Helvetica, 4 Helvetica-Bold
        self._pages: list[int] = []
        self._write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self._digest.update(data)
        self._pos += len(data)

    def _id(self) -> int:
        self._next += 1
        return self._next - 1

    def _object(self, num: int, body: bytes) -> None:
        self._offsets[num] = self._pos
        self._write(b"%d 0 obj\n" % num + body + b"\nendobj\n")

    def _stream(self, num: int, entries: bytes, data: bytes) -> None:
        self._object(num, b"<<" + entries + b" /Length %d>>\nstream\n" % len(data) + data + b"\nendstream")

    def _page(self, size: tuple[float, float], content: bytes, xobjects: bytes = b"") -> None:
        content_id, page_id = self._id(), self._id()
        self._stream(content_id, b"", content)
        resources = b"<</Font <</F1 3 0 R /F2 4 0 R>>" + (b" /XObject <<" + xobjects + b">>" if xobjects else b"") + b">>"
        self._object(page_id, b"<</Type /Page /Parent 2 0 R /MediaBox [0 0 %.2f %.2f] /Resources " % size
                     + resources + b" /Contents %d 0 R>>" % content_id)
        self._pages.append(page_id)

    def image_page(self, image: Image.Image, dpi: int, words: Sequence[Word], quality: int = 75) -> None:
        """A re-rendered page: the (already burnt-in) image as a fresh JPEG, and `words` as an
        invisible text layer at their places."""
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=quality, optimize=True)
        jpeg = buf.getvalue()
        w_px, h_px = image.size
        w_pt, h_pt = w_px * 72.0 / dpi, h_px * 72.0 / dpi
        space = b"/DeviceGray" if image.mode == "L" else b"/DeviceRGB"
        image_id = self._id()
        self._stream(image_id, b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace " % (w_px, h_px)
                     + space + b" /BitsPerComponent 8 /Filter /DCTDecode", jpeg)
        ops = [b"q %.2f 0 0 %.2f 0 0 cm /Im0 Do Q" % (w_pt, h_pt)]
        if words:
            ops.append(b"BT 3 Tr")
            for word in words:
                x0, y0, x1, y1 = word.box
                size = max(1.0, (y1 - y0) * h_pt * 0.85)
                natural = stringWidth(word.text, "Helvetica", size) or 1.0
                scale = max(1.0, min(1000.0, 100.0 * (x1 - x0) * w_pt / natural))
                ops.append(b"/F1 %.2f Tf %.1f Tz 1 0 0 1 %.2f %.2f Tm " % (size, scale, x0 * w_pt, h_pt - y1 * h_pt)
                           + _pdf_text(word.text) + b" Tj")
            ops.append(b"ET")
        self._page((w_pt, h_pt), b"\n".join(ops), b"/Im0 %d 0 R" % image_id)

    def text_page(self, lines: Sequence[Line], size: tuple[float, float] = A4) -> None:
        """A page of plain visible text (cover, index, schedule, a page withheld in full)."""
        ops = [b"BT"]
        y = size[1] - MARGIN
        for line in lines:
            y -= line.gap or line.size * 1.35
            ops.append(b"/%s %.1f Tf 1 0 0 1 %.2f %.2f Tm " % (b"F2" if line.bold else b"F1", line.size, MARGIN, y)
                       + _pdf_text(line.text) + b" Tj")
        ops.append(b"ET")
        self._page(size, b"\n".join(ops))

    @property
    def page_count(self) -> int:
        return len(self._pages)

    def close(self) -> tuple[str, int]:
        kids = b" ".join(b"%d 0 R" % p for p in self._pages)
        self._object(2, b"<</Type /Pages /Kids [" + kids + b"] /Count %d>>" % len(self._pages))
        self._object(1, b"<</Type /Catalog /Pages 2 0 R>>")
        for num, name in ((3, b"Helvetica"), (4, b"Helvetica-Bold")):
            self._object(num, b"<</Type /Font /Subtype /Type1 /BaseFont /" + name + b" /Encoding /WinAnsiEncoding>>")
        xref = self._pos
        size = self._next
        rows = [b"0000000000 65535 f \n"]
        rows += [b"%010d 00000 n \n" % self._offsets[n] if n in self._offsets else b"0000000000 65535 f \n"
                 for n in range(1, size)]
        self._write(b"xref\n0 %d\n" % size + b"".join(rows))
        self._write(b"trailer\n<</Size %d /Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (size, xref))
        return self._digest.hexdigest(), len(self._pages)
