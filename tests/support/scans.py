"""Test scans made the way a scanner makes them: rendered text, degraded, saved as real formats.

Every helper here is deterministic for a given seed, so a test that fails fails the same way.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import img2pdf
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

A4_INCHES = (8.27, 11.69)
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
FONT_BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def text_page(
    lines: Sequence[str],
    *,
    dpi: int = 300,
    size_inches: tuple[float, float] = A4_INCHES,
    font_pt: float = 12,
    margin_inches: float = 1.0,
    bold_first: bool = False,
) -> Image.Image:
    """A white page with black text lines, greyscale, at `dpi`."""
    width, height = (round(s * dpi) for s in size_inches)
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    px = round(font_pt * dpi / 72)
    regular = ImageFont.truetype(FONT, px)
    bold = ImageFont.truetype(FONT_BOLD, px)
    x = y = round(margin_inches * dpi)
    for n, line in enumerate(lines):
        draw.text((x, y), line, fill=0, font=bold if bold_first and n == 0 else regular)
        y += round(px * 1.6)
    return page


def degrade(
    page: Image.Image,
    *,
    skew_deg: float = 0.0,
    rotate: int = 0,
    noise: float = 0.0,
    blur: float = 0.0,
    lighten: int = 0,
    seed: int = 0,
) -> Image.Image:
    """Make a clean render look scanned: skew, speckle noise, blur, a faint or turned page.

    `rotate` is counter-clockwise degrees in steps of 90 (a page fed sideways or upside down).
    `lighten` raises every pixel towards white (a too-light scan).
    """
    img = page.convert("L")
    if skew_deg:
        img = img.rotate(skew_deg, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=255)
    if blur:
        img = img.filter(ImageFilter.GaussianBlur(blur))
    if noise:
        rng = np.random.default_rng(seed)
        arr = np.asarray(img, dtype=np.int16)
        speckle = rng.random(arr.shape) < noise
        arr = np.where(speckle, 255 - arr, arr)
        img = Image.fromarray(arr.clip(0, 255).astype(np.uint8), "L")
    if lighten:
        arr = np.asarray(img, dtype=np.int32)
        img = Image.fromarray((arr + (255 - arr) * lighten // 255).clip(0, 255).astype(np.uint8), "L")
    if rotate % 360:
        img = img.rotate(rotate % 360, expand=True)
    return img


def _encode(page: Image.Image, encoding: str, dpi: int) -> bytes:
    buf = io.BytesIO()
    if encoding == "jpeg":
        page.convert("L" if page.mode in ("L", "1") else "RGB").save(buf, "JPEG", quality=85, dpi=(dpi, dpi))
    elif encoding == "ccitt":
        page.convert("1").save(buf, "TIFF", compression="group4", dpi=(dpi, dpi))
    elif encoding == "png":
        page.save(buf, "PNG", dpi=(dpi, dpi))
    else:
        raise ValueError(encoding)
    return buf.getvalue()


def write_pdf(
    pages: Sequence[Image.Image], path: Path, *, dpi: int | Sequence[int] = 300, encoding: str = "jpeg"
) -> Path:
    """A PDF as an MFD writes it: one full-page image per page, images embedded as encoded.

    `encoding` is jpeg (DCT), ccitt (CCITT G4 bilevel) or png (Flate). `dpi` may differ per page.
    """
    dpis = [dpi] * len(pages) if isinstance(dpi, int) else list(dpi)
    blobs = [_encode(p, encoding, d) for p, d in zip(pages, dpis, strict=True)]
    path.write_bytes(img2pdf.convert(blobs))
    return path


def write_tiff(pages: Sequence[Image.Image], path: Path, *, dpi: int = 300, compression: str = "group4") -> Path:
    """A multi-page TIFF, bilevel G4 by default as office scanners write them."""
    frames = [p.convert("1") if compression == "group4" else p for p in pages]
    frames[0].save(path, "TIFF", save_all=True, append_images=frames[1:], compression=compression, dpi=(dpi, dpi))
    return path


def write_image(page: Image.Image, path: Path, *, dpi: int = 300) -> Path:
    """A single JPEG or PNG, by the suffix of `path`."""
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}[path.suffix.lower()]
    page.save(path, fmt, dpi=(dpi, dpi))
    return path


def write_slowly(data: bytes, path: Path, *, chunks: int = 5, pause_s: float = 0.5) -> None:
    """Write `data` to `path` in pieces with pauses, as a scanner writes over SMB."""
    import time

    step = max(1, len(data) // chunks)
    with open(path, "wb") as fh:
        for start in range(0, len(data), step):
            fh.write(data[start : start + step])
            fh.flush()
            time.sleep(pause_s)


# Fictional people used across tests. NHS numbers have valid modulus-11 check digits.
CHILDREN_CSV = """child_id,given_names,family_name,date_of_birth,nhs_number,category,status,team
AB123456,Amelia Rose,Whitfield,2015-06-14,9434765919,cp,open,north
AB123457,Oliver,Whitfield,2017-02-03,9434765870,cp,open,north
CD654321,Jayden,Okonkwo,2011-11-30,4010232137,cla,open,south
EF111222,Sophie,Marsh,2009-01-09,,cin,closed,north
"""


def coversheet_page(sheet, *, dpi: int = 300, child_labels: Sequence[str] = ()) -> Image.Image:
    """An escr cover sheet (escr.pages.coversheet.CoverSheet) as a greyscale page scanned at `dpi`."""
    import tempfile

    from pdf2image import convert_from_path

    from escr.pages.coversheet import render_coversheet_pdf

    with tempfile.TemporaryDirectory() as tmp:
        pdf = render_coversheet_pdf(sheet, Path(tmp) / "coversheet.pdf", child_labels=child_labels)
        (page,) = convert_from_path(pdf, dpi=dpi, grayscale=True)
    return page


PAPER_CREAM = (247, 242, 228)
INK_BLUE_BLACK = (20, 28, 60)


def colourise(grey: Image.Image, *, band: tuple[int, int, int], band_px: int,
              paper: np.ndarray | None = None) -> Image.Image:
    """A colour scan of a grey page: blue-black ink on cream paper (or on `paper`, an RGB array
    the page's size, for stripes under the print), with a letterhead band `band_px` tall."""
    g = np.asarray(grey, dtype=np.float32)[..., None] / 255.0
    under = np.array(PAPER_CREAM, np.float32) if paper is None else paper
    page = Image.fromarray((under * g + np.array(INK_BLUE_BLACK, np.float32) * (1 - g)).clip(0, 255).astype(np.uint8),
                           "RGB")
    ImageDraw.Draw(page).rectangle((0, 0, page.width, band_px), fill=band)
    return page


def colour_letter(coloured: Sequence[tuple[str, tuple[int, int, int]]] = (), *, lines: Sequence[str] = (),
                  dpi: int = 300, size_inches: tuple[float, float] = A4_INCHES, font_pt: float = 12,
                  highlight: tuple[int, int, int] | None = None, highlighted: Sequence[int] = ()) -> Image.Image:
    """A colour scan of a letter (`colourise`), the `highlighted` lines under a highlighter's
    stripe of colour `highlight`, and then `coloured` lines each printed in its own colour (a
    stamp, a heading in the council's colour)."""
    px = round(font_pt * dpi / 72)
    grey = text_page(lines, dpi=dpi, size_inches=size_inches, font_pt=font_pt, margin_inches=0.5)
    paper = np.full((grey.height, grey.width, 3), PAPER_CREAM, np.float32)
    top, step = round(0.5 * dpi), round(px * 1.6)
    for n in highlighted:
        y = top + n * step
        paper[y - px // 4 : y + px + px // 3, round(0.45 * dpi) : grey.width - round(0.45 * dpi)] = highlight
    page = colourise(grey, band=(0, 94, 162), band_px=round(0.3 * dpi), paper=paper)
    draw = ImageDraw.Draw(page)
    font = ImageFont.truetype(FONT, px)
    y = top + step * (len(lines) + 1)
    for text, colour in coloured:
        draw.text((round(0.5 * dpi), y), text, fill=colour, font=font)
        y += step
    return page
