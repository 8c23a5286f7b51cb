"""Page images for the browser: thumbnails and larger views rendered from the searchable PDF.

Rendered with pdf2image (poppler) at low resolution and cached under ESCR_HOME by the PDF's
SHA-256 (the stored PDF never changes), in a directory only escr's user can read. Access to
an image is checked and logged by the caller exactly as for the document.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

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
