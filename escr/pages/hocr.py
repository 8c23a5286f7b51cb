"""Tesseract's hOCR, read once per page into its text lines and their words.

Both the page's words (confidences and boxes, for QC and for where a hit is on the page) and its
invisible text layer (escr.pages.text_layer) come from the same hOCR, so it is parsed once.

OCR text is personal data: it never goes into an exception message or a log line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from escr.errors import OcrError

# hOCR's line-level classes for horizontal and vertical text alike: tesseract writes every word
# inside one of these.
LINE_CLASSES = frozenset({"ocr_line", "ocr_caption", "ocr_header", "ocr_textfloat"})
_BBOX = re.compile(r"bbox (-?\d+) (-?\d+) (-?\d+) (-?\d+)")
_WCONF = re.compile(r"x_wconf (-?[\d.]+)")
_BASELINE = re.compile(r"baseline (-?[\d.]+) (-?[\d.]+)")
_X_SIZE = re.compile(r"x_size ([\d.]+)")
_TEXTANGLE = re.compile(r"textangle (\d+)")


@dataclass(frozen=True, slots=True)  # slots: a 300-page file holds over 100,000 of them until filed
class OcrWord:
    text: str
    conf: float  # tesseract's word confidence, 0..100
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels of the upright page image


@dataclass(frozen=True, slots=True)
class HocrLine:
    """One text line as tesseract found it, in reading order."""

    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, y down
    slope: float | None  # of the baseline, image pixels down per pixel right; None if not given
    intercept: int  # the baseline's offset from the box's lower left corner, pixels down
    x_size: float | None  # tesseract's letter height for the line, pixels
    turned: bool  # tesseract gave the line a text angle: it runs down or up the page
    words: tuple[OcrWord, ...]

    @property
    def runs_across(self) -> bool:
        """A horizontal line: vertical ones (a sideways page read as it is) have no usable baseline."""
        x0, y0, x1, y1 = self.bbox
        return not self.turned and x1 - x0 > y1 - y0


def read_hocr(hocr: bytes) -> list[HocrLine]:
    """The page's lines that hold at least one word, each with its words in reading order."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(hocr, parser)
    except etree.XMLSyntaxError as exc:
        raise OcrError("tesseract wrote unreadable hOCR") from exc
    lines = []
    for element in root.iter():
        if element.get("class") not in LINE_CLASSES:
            continue
        title = element.get("title", "")
        box = _BBOX.search(title)
        words = tuple(w for w in (_word(e) for e in element.iter() if e.get("class") == "ocrx_word") if w)
        if box is None or not words:
            continue
        base, size = _BASELINE.search(title), _X_SIZE.search(title)
        lines.append(HocrLine(
            bbox=(int(box[1]), int(box[2]), int(box[3]), int(box[4])),
            slope=float(base[1]) if base else None, intercept=round(float(base[2])) if base else 0,
            x_size=float(size[1]) if size else None, turned=_TEXTANGLE.search(title) is not None, words=words))
    return lines


def _word(element: etree._Element) -> OcrWord | None:
    text = "".join(element.itertext()).strip()
    title = element.get("title", "")
    box = _BBOX.search(title)
    if not text or box is None:
        return None
    conf = _WCONF.search(title)
    return OcrWord(text=text, conf=float(conf[1]) if conf else 0.0,
                   bbox=(int(box[1]), int(box[2]), int(box[3]), int(box[4])))
