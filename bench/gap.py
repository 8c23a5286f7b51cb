"""Where escr spends time the floor does not: each piece of escr's per-page work timed alone.

One core, one page at a time, on a sample of the corpus pages: the floor's `tesseract ... txt`,
the same tesseract run writing the two outputs escr asks for (hOCR and text; until issue 21 also
tesseract's text-only PDF, kept here for comparison), escr's text layer drawn from the hOCR, and
escr's own steps around it (the page image, taken from the PDF where it is one plain image, the
cover-sheet check on that image, page metrics, escr's OCR call with its orientation logic).
Beside them, what a pdftoppm render of the page would cost instead.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.corpus import Corpus
from bench.runners import clean_env

PDF = "application/pdf"


def _timed(work: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = work()
    return time.perf_counter() - started, value


def _tesseract(image: Path, outputs: list[str], tmp: Path) -> float:
    env = clean_env({"OMP_THREAD_LIMIT": "1"})
    extra = ["-c", "textonly_pdf=1", "--psm", "3"] if "pdf" in outputs else []
    cmd = ["tesseract", str(image), str(tmp / "out"), "-l", "eng", *extra, *outputs]
    seconds, done = _timed(lambda: subprocess.run(cmd, env=env, capture_output=True, check=False))
    if done.returncode != 0:
        raise RuntimeError(f"tesseract exited {done.returncode}")
    return seconds


def _pdftoppm(pdf_path: Path, index: int, dpi: int) -> Any:
    """The page drawn by pdftoppm, as escr does when the page is not one plain image."""
    from escr.pages.imaging import _render_pdf_page

    return _render_pdf_page(pdf_path, index, dpi=dpi, grey=True, timeout_s=None)


def sample_pages(corpus: Corpus, limit: int = 6) -> list[tuple[Path, int, Path]]:
    """(pdf, page index, page image) for the first text pages of each file, rotated ones first."""
    picked: list[tuple[Path, int, Path]] = []
    per_file = max(1, limit // max(1, len(corpus.files)))
    for scan in corpus.files:
        images = [Path(p) for p in scan.page_images]
        order = sorted(range(1, len(images)), key=lambda i: images[i].stat().st_size, reverse=True)
        picked += [(Path(scan.path), i, images[i]) for i in order[:per_file]]
    return picked[:limit]


def _measure_page(pdf: Path, index: int, image_file: Path, tmp: Path) -> dict[str, Any]:
    from PIL import Image

    from escr.pages.coversheet import find_coversheet
    from escr.pages.hocr import read_hocr
    from escr.pages.imaging import embedded_page_image, page_metrics, render_for_ocr
    from escr.pages.ocr import ocr_page
    from escr.pages.text_layer import text_layer_pdf
    from escr.settings import OcrSettings

    row: dict[str, Any] = {"page": f"{pdf.name}#{index + 1}"}
    row["floor_tesseract_txt_s"] = _tesseract(image_file, ["txt"], tmp)
    row["tesseract_hocr_txt_s"] = _tesseract(image_file, ["hocr", "txt"], tmp)
    row["tesseract_hocr_pdf_txt_s"] = _tesseract(image_file, ["hocr", "pdf", "txt"], tmp)
    hocr = (tmp / "out.hocr").read_bytes()
    with Image.open(image_file) as size:
        width, height = size.size
    row["text_layer_from_hocr_s"], _ = _timed(lambda: text_layer_pdf(read_hocr(hocr), width_px=width, height_px=height, dpi=300))
    row["pdftoppm_render_300dpi_s"], _ = _timed(lambda: _pdftoppm(pdf, index, 300))
    row["page_image_s"], render = _timed(lambda: render_for_ocr(pdf, PDF, index, dpi=300))
    row["page_image_was_extracted"] = embedded_page_image(pdf, index, dpi=300) is not None
    row["cover_check_s"], _ = _timed(lambda: find_coversheet(render.grey))
    row["page_metrics_s"], metrics = _timed(lambda: page_metrics(render.grey))
    row["colour_check_s"], image = _timed(render.for_tesseract)
    row["colour_print_put_back"] = image is not render.grey
    row["escr_ocr_page_s"], page = _timed(lambda: ocr_page(image, dpi=300, settings=OcrSettings(), metrics=metrics))
    row["tesseract_runs"] = page.tesseract_runs
    row["escr_total_s"] = sum(row[k] for k in ("page_image_s", "cover_check_s", "page_metrics_s", "colour_check_s",
                                               "escr_ocr_page_s"))
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}


def measure_gap(corpus: Corpus, limit: int = 6) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-gap-") as tmp:
        rows = [_measure_page(pdf, index, image, Path(tmp)) for pdf, index, image in sample_pages(corpus, limit)]
    keys = [k for k in rows[0] if k.endswith("_s")] if rows else []
    mean = {k: round(statistics.fmean(r[k] for r in rows), 3) for k in keys}
    return {"pages": rows, "mean_s": mean,
            "note": "one core, one page at a time; escr_total_s = the page image (taken from the PDF, or "
                    "rendered) + cover-sheet check on it + metrics + the colour-print check (and putting such "
                    "print back) + escr's OCR call (tesseract with hOCR+txt, the text layer drawn from the hOCR, "
                    "orientation retries); "
                    "pdftoppm_render is what a render would cost instead"}
