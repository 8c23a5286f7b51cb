"""Page images for the browser: thumbnails and larger views rendered from the searchable PDF,
and the words of its text layer with their boxes (to mark search hits on a page image).

Rendered with pdf2image (poppler) at low resolution and cached under ESCR_HOME by the PDF's
SHA-256 (the stored PDF never changes), in a directory only escr's user can read. Access to
an image is checked and logged by the caller exactly as for the document.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pdf2image import convert_from_path
from pdf2image.exceptions import PDFPageCountError, PDFSyntaxError

from escr.errors import NotFound, StorageError
from escr.storage.objectstore import ObjectStore


def cache_dir(home: Path) -> Path:
    path = home / "cache" / "pages"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _local_pdf(store: ObjectStore, key: str, sha256: str, cache: Path) -> Path:
    pdf = cache / f"{sha256}.pdf"
    if not pdf.exists():
        fd, tmp = tempfile.mkstemp(dir=cache, suffix=".part")
        with os.fdopen(fd, "wb") as out, store.open(key) as src:
            shutil.copyfileobj(src, out)
        os.replace(tmp, pdf)
    return pdf


def local_pdf(store: ObjectStore, key: str, sha256: str, cache: Path) -> Path:
    """A local copy of a stored PDF in the page cache (for renderers that need a file)."""
    return _local_pdf(store, key, sha256, cache)


def page_image(store: ObjectStore, home: Path, *, key: str, sha256: str, page: int, page_count: int, dpi: int) -> Path:
    """A PNG of one page (1-based) of the stored PDF at `dpi`, rendered once and then cached."""
    if not 1 <= page <= page_count:
        raise NotFound(f"no page {page} (the document has {page_count})")
    cache = cache_dir(home)
    target = cache / sha256 / f"{dpi}-{page}.png"
    if target.exists():
        return target
    target.parent.mkdir(exist_ok=True, mode=0o700)
    pdf = _local_pdf(store, key, sha256, cache)
    try:
        (image,) = convert_from_path(pdf, dpi=dpi, first_page=page, last_page=page, grayscale=False)
    except (PDFPageCountError, PDFSyntaxError, ValueError) as exc:
        raise StorageError(f"cannot render page {page} of a stored PDF: {type(exc).__name__}") from exc
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
    with os.fdopen(fd, "wb") as out:
        image.save(out, "PNG", optimize=True)
    os.replace(tmp, target)
    return target


@dataclass(frozen=True)
class WordBox:
    """A word of a page's text layer and where it lies, as fractions of the page's width and height
    (0-1 from the top left), so it can be drawn over a page image of any size."""

    text: str
    left: float
    top: float
    right: float
    bottom: float


_WORD = re.compile(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">(.*?)</word>')
_PAGE = re.compile(r'<page width="([\d.]+)" height="([\d.]+)">')


def word_boxes(store: ObjectStore, home: Path, *, key: str, sha256: str, page: int, page_count: int) -> list[WordBox]:
    """The words of one page (1-based) of the stored searchable PDF with their boxes.

    Read with poppler's `pdftotext -bbox` from the invisible text layer the intake laid over the
    scan from the OCR's hOCR, so the boxes sit where the words are on the page image rendered
    from the same PDF. Cached beside the page images (the stored PDF never changes)."""
    if not 1 <= page <= page_count:
        raise NotFound(f"no page {page} (the document has {page_count})")
    cache = cache_dir(home)
    target = cache / sha256 / f"words-{page}.json"
    if not target.exists():
        target.parent.mkdir(exist_ok=True, mode=0o700)
        pdf = _local_pdf(store, key, sha256, cache)
        try:
            done = subprocess.run(["pdftotext", "-q", "-bbox", "-f", str(page), "-l", str(page), str(pdf), "-"],
                                  capture_output=True, timeout=60, check=True)
        except (OSError, subprocess.SubprocessError) as exc:
            raise StorageError(f"cannot read the words of page {page} of a stored PDF: {type(exc).__name__}") from exc
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
        with os.fdopen(fd, "w") as out:
            json.dump(_parse_bbox(done.stdout.decode("utf-8", "replace")), out)
        os.replace(tmp, target)
    return [WordBox(*w) for w in json.loads(target.read_text())]


def _parse_bbox(xhtml: str) -> list[list[Any]]:
    size = _PAGE.search(xhtml)
    if size is None:
        return []
    width, height = float(size.group(1)), float(size.group(2))
    if width <= 0 or height <= 0:
        return []
    return [[html.unescape(m.group(5)), float(m.group(1)) / width, float(m.group(2)) / height,
             float(m.group(3)) / width, float(m.group(4)) / height] for m in _WORD.finditer(xhtml)]
