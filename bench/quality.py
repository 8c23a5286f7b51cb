"""What the OCR reads and what a reader of the reading copy gets, on the dense corpus (issue 21):
character error rates against the text each page was rendered from.

- content order: the text layer as written (`pdftotext -raw`), or tesseract's own text file for
  the floor - is the OCR as good as tesseract alone, and as OCRmyPDF's?
- layout order: `pdftotext -layout`, what copy and paste and screen readers meet on a skewed
  page - does the text layer read line by line, in order?
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from rapidfuzz.distance import Levenshtein

from bench.corpus import Corpus, truth_text


def cer(truth: str, read: str) -> float:
    """Character error rate, in per cent, whitespace runs counted as one space."""
    want, got = " ".join(truth.split()), " ".join(read.split())
    return round(100 * Levenshtein.distance(want, got) / max(1, len(want)), 2)


def pdf_text(pdf: Path | bytes, mode: str) -> str:
    data = pdf if isinstance(pdf, bytes) else pdf.read_bytes()
    return subprocess.run(["pdftotext", mode, "-", "-"], input=data, capture_output=True, check=True).stdout.decode()


def measure_quality(corpus: Corpus, *, floor_dir: Path, escr_home: Path | None, escr_documents: list[list[str]],
                    ocrmypdf_dir: Path | None) -> dict[str, Any]:
    truth = "\n".join(truth_text(scan) for scan in corpus.files)
    result: dict[str, Any] = {"pages": corpus.pages, "characters": len(" ".join(truth.split()))}
    floor = "\n".join((floor_dir / f"page-{n}.txt").read_text() for n in range(len(corpus.page_images))
                      if (floor_dir / f"page-{n}.txt").exists())
    result["tesseract alone"] = {"content_order_cer": cer(truth, floor)}
    if escr_home is not None and all(escr_documents):
        copies = _escr_reading_copies(escr_home, [d for docs in escr_documents for d in docs])
        result["escr"] = {"content_order_cer": cer(truth, "\n".join(pdf_text(c, "-raw") for c in copies)),
                          "layout_order_cer": cer(truth, "\n".join(pdf_text(c, "-layout") for c in copies))}
    outputs = [ocrmypdf_dir / f"out-{n}.pdf" for n in range(len(corpus.files))] if ocrmypdf_dir else []
    if outputs and all(p.exists() for p in outputs):
        result["OCRmyPDF"] = {"content_order_cer": cer(truth, "\n".join(pdf_text(p, "-raw") for p in outputs)),
                              "layout_order_cer": cer(truth, "\n".join(pdf_text(p, "-layout") for p in outputs))}
    return result


def _escr_reading_copies(home: Path, document_ids: list[str]) -> list[bytes]:
    """The reading copies escr stored for these documents, read through escr itself."""
    from escr.record.models import Document
    from escr.services import open_services
    from escr.settings import load_settings

    os.environ["ESCR_HOME"] = str(home)
    try:
        services = open_services(load_settings())
    finally:
        del os.environ["ESCR_HOME"]
    with services.db.session() as session:
        keys = [session.get(Document, doc_id).searchable_key for doc_id in document_ids]
    copies = []
    for key in keys:
        with services.store.open(key) as stream:
            copies.append(stream.read())
    services.db.engine.dispose()
    return copies
