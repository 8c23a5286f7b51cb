"""Tesseract itself: the one place escr asks it to read an image.

Two engines give the same answers. `library` (the default) keeps Tesseract loaded in the process
through tesserocr and hands it the page's pixels; `command` starts the `tesseract` program for every
read, as escr did before (docs/decisions/0006). The library is the faster: measured on the
benchmark's dense pages it reads a page in about four fifths of the command's CPU time, with
the same model and the same or a lower character error rate. Either way escr keeps a crashing or
hanging Tesseract away from the intake: pages are read in child processes (escr.pages.slots).

Errors are OcrError or OcrTimeout, never a library's own; OCR text never goes into a message.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from functools import cache
from pathlib import Path

from PIL import Image

from escr.errors import OcrError, OcrTimeout
from escr.settings import OcrSettings

# Where distributions put the models when neither ocr.tessdata_dir nor TESSDATA_PREFIX says.
_TESSDATA_DIRS = ("/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata",
                  "/usr/share/tessdata", "/usr/local/share/tessdata", "/opt/homebrew/share/tessdata")
_local = threading.local()  # each thread's loaded engines: tesserocr's are not shared between threads


def read_page_text(image: Image.Image, *, dpi: int, psm: str, settings: OcrSettings,
                   hocr: bool = True) -> tuple[str, bytes]:
    """The page's text (tesseract's plain-text output) and its hOCR (b"" when not asked for)."""
    if settings.engine == "command":
        return _command_read(image, dpi=dpi, psm=psm, settings=settings, hocr=hocr)
    api = _api(settings.language, settings)
    api.SetPageSegMode(int(psm))
    _set_pixels(api, image, dpi)
    started = time.monotonic()
    try:
        done = api.Recognize(timeout=max(1, int(settings.page_timeout_s * 1000)))
        if not done:
            if time.monotonic() - started >= settings.page_timeout_s:
                raise OcrTimeout(f"tesseract took longer than {settings.page_timeout_s} s")
            raise OcrError("tesseract could not read the page")
        return api.GetUTF8Text(), (api.GetHOCRText(0).encode("utf-8") if hocr else b"")
    except RuntimeError as exc:
        raise OcrError(f"tesseract failed: {type(exc).__name__}") from exc
    finally:
        api.Clear()


def detect_orientation(image: Image.Image, *, dpi: int, settings: OcrSettings) -> tuple[int, float] | None:
    """(clockwise degrees to turn the image upright, OSD's confidence), or None when OSD cannot
    tell (too little text on the page)."""
    if settings.engine == "command":
        return _command_orientation(image, dpi=dpi, settings=settings)
    api = _api("osd", settings)
    _set_pixels(api, image, dpi)
    try:
        found = api.DetectOrientationScript()
    except RuntimeError:
        return None
    finally:
        api.Clear()
    if not found:
        return None
    # tesserocr gives the text's orientation; the turn that makes it upright is its complement.
    return (360 - int(found["orient_deg"])) % 360, float(found["orient_conf"])


def engine_version(settings: OcrSettings) -> str:
    """The Tesseract version that reads the pages, for every document's provenance."""
    if settings.engine == "command":
        import pytesseract

        try:
            return str(pytesseract.get_tesseract_version())
        except (pytesseract.TesseractNotFoundError, OSError) as exc:
            raise OcrError("tesseract is not installed", code="ocr_unavailable") from exc
    try:
        import tesserocr
    except ImportError as exc:
        raise OcrError("tesserocr is not installed", code="ocr_unavailable") from exc
    return str(tesserocr.tesseract_version().split()[1])


@cache
def tessdata_dir(configured: Path | None) -> Path:
    """The folder holding the traineddata models."""
    for candidate in (configured, os.environ.get("TESSDATA_PREFIX"), *_TESSDATA_DIRS):
        if candidate and (Path(candidate) / "eng.traineddata").exists():
            return Path(candidate)
    raise OcrError("no tesseract language data found; install tesseract-ocr-eng or set ocr.tessdata_dir",
                   code="ocr_unavailable")


def _api(language: str, settings: OcrSettings):  # type: ignore[no-untyped-def]
    """This thread's engine for `language`, loaded once and kept."""
    engines: dict[str, object] = _local.__dict__.setdefault("engines", {})
    api = engines.get(language)
    if api is None:
        import tesserocr

        psm = tesserocr.PSM.OSD_ONLY if language == "osd" else tesserocr.PSM.AUTO
        try:
            api = tesserocr.PyTessBaseAPI(path=f"{tessdata_dir(settings.tessdata_dir)}/", lang=language, psm=psm)
        except RuntimeError as exc:
            raise OcrError(f"tesseract cannot load language {language!r}", code="ocr_unavailable") from exc
        engines[language] = api
    return api


def tesseract_ready(image: Image.Image) -> Image.Image:
    """Greyscale, bilevel or RGB: the modes either engine is handed."""
    if image.mode in ("1", "L", "RGB"):
        return image
    return image.convert("RGB" if image.mode in ("RGBA", "P", "CMYK", "YCbCr") else "L")


def _set_pixels(api, image: Image.Image, dpi: int) -> None:  # type: ignore[no-untyped-def]
    """Hand tesseract the raw pixels: ~20 ms a page where tesserocr's SetImage encodes a copy."""
    image = tesseract_ready(image)
    if image.mode == "1":
        image = image.convert("L")
    depth = 3 if image.mode == "RGB" else 1
    api.SetImageBytes(image.tobytes(), image.width, image.height, depth, depth * image.width)
    api.SetSourceResolution(dpi)


# --- the command ------------------------------------------------------------------------------


def _command_read(image: Image.Image, *, dpi: int, psm: str, settings: OcrSettings,
                  hocr: bool) -> tuple[str, bytes]:
    with tempfile.TemporaryDirectory(prefix="escr-ocr-") as tmp:
        source = Path(tmp) / "page.tif"
        # Uncompressed: writing takes milliseconds, PNG compression would take ~0.1 s a page.
        image.save(source, format="TIFF", dpi=(dpi, dpi), compression="raw")
        base = Path(tmp) / "out"
        _run_tesseract([str(source), str(base), "-l", settings.language, "--psm", psm, "--dpi", str(dpi),
                        *(["hocr"] if hocr else []), "txt"], settings)
        text = base.with_suffix(".txt").read_text(encoding="utf-8")
        return text, base.with_suffix(".hocr").read_bytes() if hocr else b""


def _command_orientation(image: Image.Image, *, dpi: int, settings: OcrSettings) -> tuple[int, float] | None:
    import re

    with tempfile.TemporaryDirectory(prefix="escr-osd-") as tmp:
        source = Path(tmp) / "page.tif"
        image.save(source, format="TIFF", dpi=(dpi, dpi), compression="raw")
        try:
            report = _run_tesseract([str(source), "stdout", "--psm", "0", "--dpi", str(dpi)], settings)
        except OcrTimeout:
            raise
        except OcrError:
            return None
    rotate, conf = re.search(r"Rotate: (\d+)", report), re.search(r"Orientation confidence: (-?[\d.]+)", report)
    if rotate is None or conf is None:
        return None
    return int(rotate.group(1)) % 360, float(conf.group(1))


def _run_tesseract(args: list[str], settings: OcrSettings) -> str:
    """Run tesseract single-threaded; failures and timeouts become OcrError (no page content)."""
    import pytesseract

    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        proc = subprocess.run([pytesseract.pytesseract.tesseract_cmd, *args], env=env, capture_output=True,
                              timeout=settings.page_timeout_s, check=False)
    except FileNotFoundError as exc:
        raise OcrError("tesseract is not installed", code="ocr_unavailable") from exc
    except subprocess.TimeoutExpired as exc:
        raise OcrTimeout(f"tesseract took longer than {settings.page_timeout_s} s") from exc
    if proc.returncode != 0:
        raise OcrError(f"tesseract exited with status {proc.returncode}")
    return proc.stdout.decode("utf-8", "replace")
