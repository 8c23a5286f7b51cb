"""Page images for OCR and image QC: one page rendered at a time, and cheap page measurements.

A document is never decoded whole: `render_page` renders the one page asked for, so memory is
bounded by one page image per OCR worker. Rendered images carry their resolution in
`image.info["dpi"]`, which `page_metrics` uses to work at about 75 dpi.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pdf2image
import pdf2image.exceptions
import pikepdf
from pikepdf import Name
from PIL import Image, ImageOps, UnidentifiedImageError

from escr.errors import InputRejected, OcrError
from escr.pages.colour_print import COLOUR_CHECK_DPI, colour_print_mask, with_colour_print

PDF = "application/pdf"
IMAGE_TYPES = frozenset({"image/tiff", "image/jpeg", "image/png"})

RESCAN = "Rescan the document and put the new file in the intake folder."

# A clockwise turn (a page's /Rotate, or OCR's upright correction) -> the PIL transpose doing it.
CLOCKWISE_TURN = {
    90: Image.Transpose.ROTATE_270,
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_90,
}

# page_metrics works on a copy reduced to about this resolution: enough to see text lines,
# coarse enough that isolated scanner speckle averages away.
METRICS_DPI = 75
# A pixel is ink when it is this much darker than the paper (the page's median grey level).
INK_CONTRAST = 40
# Share of each side ignored for blank detection: scanner edge shadow and punched holes live there.
BORDER_FRACTION = 0.04
# Below this share of ink pixels (after speckle removal) a page has nothing on it worth reading;
# a single short word ("Page 2") on A4 measures about 0.0003, two lines of text about 0.0024.
BLANK_INK_FRACTION = 0.0002


def render_page(
    path: Path,
    media_type: str,
    index: int,
    *,
    dpi: int,
    grey: bool = True,
    timeout_s: float | None = None,
) -> Image.Image:
    """Render page `index` (0-based) as it is displayed, at `dpi`, for OCR and image QC.

    PDF pages go through pdftoppm (which applies the page's /Rotate and renders its crop box),
    TIFF frames are picked with seek, JPEG/PNG are opened directly; scanned images are resampled
    from their own resolution to `dpi` when they declare one, and turned by their EXIF
    orientation, so every input comes out the same way round as the PDF wrapper shows it.
    With `grey` off, a page that has colour comes out RGB; grey and bilevel ones still come out grey.
    """
    if media_type == PDF:
        image = embedded_page_image(path, index, dpi=dpi, grey=grey)
        if image is None:
            image = _render_pdf_page(path, index, dpi=dpi, grey=grey, timeout_s=timeout_s)
    elif media_type in IMAGE_TYPES:
        image = _load_image_frame(path, index, dpi=dpi, grey=grey)
    else:
        raise InputRejected(
            "unsupported_type", f"files of type {media_type} cannot be rendered", RESCAN
        )
    # Only the resolution travels with the image: a source TIFF's compression or EXIF would
    # otherwise follow it into every later save.
    image.info = {"dpi": (dpi, dpi)}
    return image


@dataclass
class OcrRender:
    """A page rendered for OCR: in grey at once, for the measurements and the cover-sheet check,
    and in colour only where the grey page needs its colour print back (`colour_print_mask`)."""

    grey: Image.Image
    preview: Callable[[], Image.Image | None] | None = None  # a ~150 dpi colour copy, on demand
    full_colour: Callable[[], Image.Image] | None = None  # the page in colour, on demand

    def for_tesseract(self) -> Image.Image:
        """The grey page, with any print grey loses put back from the colour (`colour_print_mask`)."""
        if self.preview is None or self.full_colour is None:
            return self.grey
        preview = self.preview()
        mask = None if preview is None else colour_print_mask(preview)
        if mask is None:
            return self.grey
        return with_colour_print(self.grey, self.full_colour(), mask)


def render_for_ocr(path: Path, media_type: str, index: int, *, dpi: int, timeout_s: float | None = None) -> OcrRender:
    """Render page `index` for OCR as `render_page` does, keeping its colour within reach.

    A plain scanned page (see `embedded_page_image`) is decoded in grey; if it is a colour one,
    the colour check later decodes a copy at a quarter of the pixels (libjpeg scales a JPEG as it
    decodes), so an ordinary colour letter costs what a grey one does and the page in full colour
    is decoded only when it has colour print to put back. Any other page is drawn once, in colour
    if it may have any, and its grey copy made from that.
    """
    if media_type == PDF:
        colour = False

        def decode(stream: pikepdf.Stream, factor: int) -> Image.Image | None:
            nonlocal colour
            colour = stream.get(Name.ColorSpace) == Name.DeviceRGB
            return _decode_scan_image(stream, factor, grey=True)

        grey = _embedded(path, index, dpi, decode)
        if grey is not None:
            grey.info = {"dpi": (dpi, dpi)}
            if not colour:
                return OcrRender(grey)
            return OcrRender(
                grey,
                preview=lambda: _colour_preview(path, index, dpi),
                full_colour=lambda: render_page(path, media_type, index, dpi=dpi, grey=False, timeout_s=timeout_s),
            )
        # Not a plain scanned page (just found out): straight to pdftoppm, not through render_page.
        image = _render_pdf_page(path, index, dpi=dpi, grey=False, timeout_s=timeout_s)
        image.info = {"dpi": (dpi, dpi)}
    else:
        image = render_page(path, media_type, index, dpi=dpi, grey=False, timeout_s=timeout_s)
    if image.mode == "L":
        return OcrRender(image)
    grey = image.convert("L")
    grey.info = dict(image.info)
    factor = _colour_check_factor(dpi)
    return OcrRender(grey, preview=lambda: image.reduce(factor) if factor > 1 else image, full_colour=lambda: image)


def _colour_check_factor(dpi: int) -> int:
    """How many times a page at `dpi` is reduced for the colour check (to about COLOUR_CHECK_DPI)."""
    return max(1, round(dpi / COLOUR_CHECK_DPI))


def _colour_preview(path: Path, index: int, dpi: int) -> Image.Image | None:
    """The plain scanned page in colour at about COLOUR_CHECK_DPI, for the colour check only
    (so its size is left as libjpeg's scaling gives it, a pixel or so off an exact reduction)."""
    extra = _colour_check_factor(dpi)

    def decode(stream: pikepdf.Stream, factor: int) -> Image.Image | None:
        if stream.get(Name.Filter) == Name.DCTDecode:
            image = Image.open(io.BytesIO(stream.read_raw_bytes()))
            image.draft("RGB", (int(stream.Width) // (factor * extra), int(stream.Height) // (factor * extra)))
        else:
            image = pikepdf.PdfImage(stream).as_pil_image()
        image.load()
        if image.mode != "RGB":
            return None
        return image if image.width < int(stream.Width) else image.reduce(factor * extra)

    return _embedded(path, index, dpi, decode)


def embedded_page_image(path: Path, index: int, *, dpi: int, grey: bool = True) -> Image.Image | None:
    """The page's one scanned image, decoded straight from the PDF, or None to render instead.

    An MFD page is one image drawn over the whole page; decoding it costs a tenth of a pdftoppm
    render (and a JPEG scanned finer than `dpi` is decoded already reduced, by libjpeg). Only that
    plain case is taken: exactly one image filling the page's crop box, no mask or decode array,
    grey, RGB or bilevel, at `dpi` or a whole multiple of it (up to 4x). Anything else, and any
    image that does not decode, goes to pdftoppm, which draws the page as a viewer would.
    """
    return _embedded(path, index, dpi, lambda stream, factor: _decode_scan_image(stream, factor, grey=grey))


def _embedded(
    path: Path, index: int, dpi: int, decode: Callable[[pikepdf.Stream, int], Image.Image | None]
) -> Image.Image | None:
    """`decode(image, reduction factor)` of the page's plain scanned image, turned by its /Rotate."""
    try:
        with pikepdf.open(path, access_mode=pikepdf.AccessMode.stream) as pdf:
            if not 0 <= index < len(pdf.pages):
                return None
            found = _full_page_image(pdf.pages[index], dpi)
            if found is None:
                return None
            stream, factor, rotate = found
            image = decode(stream, factor)
    except (pikepdf.PdfError, OSError, ValueError, TypeError, KeyError, AttributeError,
            NotImplementedError, UnidentifiedImageError, Image.DecompressionBombError):
        return None
    if image is None:
        return None
    return image.transpose(CLOCKWISE_TURN[rotate]) if rotate else image


_PLAIN_FILTERS = frozenset({"/DCTDecode", "/CCITTFaxDecode", "/FlateDecode"})
_PLAIN_SPACES = frozenset({"/DeviceGray", "/DeviceRGB"})
_MAX_EXTRACT_FACTOR = 4


def _full_page_image(page: pikepdf.Page, dpi: int) -> tuple[pikepdf.Stream, int, int] | None:
    """(image, reduction factor, /Rotate) when the page is nothing but one image filling it."""
    box = [float(v) for v in page.mediabox]
    crop = [float(v) for v in page.obj.get(Name.CropBox, page.mediabox)]
    if any(abs(a - b) > 0.5 for a, b in zip(box, crop, strict=True)) or Name.UserUnit in page.obj:
        return None
    rotate = int(page.obj.get(Name.Rotate, 0)) % 360
    if rotate not in (0, 90, 180, 270):
        return None
    ops = [(list(operands), str(op)) for operands, op in pikepdf.parse_content_stream(page)]
    if [op for _, op in ops] != ["q", "cm", "Do", "Q"]:
        return None
    a, b, c, d, e, f = (float(v) for v in ops[1][0])
    width, height = box[2] - box[0], box[3] - box[1]
    if b or c or a <= 0 or d <= 0 or abs(a - width) > 0.5 or abs(d - height) > 0.5 \
            or abs(e - box[0]) > 0.5 or abs(f - box[1]) > 0.5:
        return None
    xobjects = page.resources.get(Name.XObject, {})
    name = ops[2][0][0]
    if name not in xobjects:
        return None
    image = xobjects[name]
    if image.get(Name.Subtype) != Name.Image or any(k in image for k in (Name.SMask, Name.Mask, Name.Decode)) \
            or bool(image.get(Name.ImageMask, False)):
        return None
    filters = image.get(Name.Filter)
    filters = [str(filters)] if isinstance(filters, Name) else [str(x) for x in (filters or [])]
    space = image.get(Name.ColorSpace)
    if len(filters) != 1 or filters[0] not in _PLAIN_FILTERS or not isinstance(space, Name) \
            or str(space) not in _PLAIN_SPACES or int(image.get(Name.BitsPerComponent, 0)) not in (1, 8):
        return None
    native_x, native_y = int(image.Width) * 72 / width, int(image.Height) * 72 / height
    factor = round(native_x / dpi)
    if not 1 <= factor <= _MAX_EXTRACT_FACTOR or abs(native_x - factor * dpi) > 0.01 * dpi * factor \
            or abs(native_y - native_x) > 0.01 * native_x:
        return None
    return image, factor, rotate


def _decode_scan_image(stream: pikepdf.Stream, factor: int, *, grey: bool) -> Image.Image | None:
    """Decode the image, reduced by `factor`: JPEGs by libjpeg's own scaling, others by box filter."""
    width, height = int(stream.Width), int(stream.Height)
    target = (width // factor, height // factor)
    if stream.get(Name.Filter) == Name.DCTDecode:
        image = Image.open(io.BytesIO(stream.read_raw_bytes()))
        if image.mode not in ("L", "RGB") or image.size != (width, height):
            return None
        image.draft("L" if grey else image.mode, target)
        image.load()
    else:
        image = pikepdf.PdfImage(stream).as_pil_image()
        image.load()
        if image.size != (width, height) or image.mode not in ("1", "L", "RGB"):
            return None
    if grey and image.mode != "L":
        image = image.convert("L")
    elif not grey and image.mode == "1":
        image = image.convert("L")
    if image.size != target and factor > 1:
        image = image.reduce(factor) if image.size == (width, height) else image.resize(target, Image.Resampling.BOX)
    return image


def _render_pdf_page(
    path: Path, index: int, *, dpi: int, grey: bool, timeout_s: float | None
) -> Image.Image:
    """One page through pdf2image's pdftoppm backend; its errors become escr errors."""
    try:
        images = pdf2image.convert_from_path(
            path,
            dpi=dpi,
            first_page=index + 1,
            last_page=index + 1,
            grayscale=grey or not _may_have_colour(path, index),
            use_cropbox=True,
            timeout=timeout_s,
        )
    except pdf2image.exceptions.PDFPopplerTimeoutError as exc:
        raise OcrError(f"rendering page {index + 1} timed out", code="render_timeout") from exc
    except pdf2image.exceptions.PDFInfoNotInstalledError as exc:
        raise OcrError(
            "poppler-utils (pdftoppm) is not installed", code="render_unavailable"
        ) from exc
    except (pdf2image.exceptions.PDFPageCountError, pdf2image.exceptions.PDFSyntaxError) as exc:
        raise InputRejected("unreadable_pdf", "the PDF could not be read", RESCAN) from exc
    if not images or index < 0:
        raise InputRejected("page_missing", f"the PDF has no page {index + 1}", RESCAN)
    image = images[0]
    return image.convert("L") if grey and image.mode != "L" else image


_GREY_SPACES = frozenset({"/DeviceGray", "/CalGray"})
_COLOUR_OPERATORS = frozenset({"rg", "RG", "k", "K", "cs", "CS", "sc", "SC", "scn", "SCN", "sh"})


def _may_have_colour(path: Path, index: int) -> bool:
    """False only for a page nothing on which can be coloured (grey or bilevel images, such as a
    JBIG2 scan, and no colour set), so pdftoppm draws it in grey, a third of the bytes."""
    try:
        with pikepdf.open(path, access_mode=pikepdf.AccessMode.stream) as pdf:
            page = pdf.pages[index]
            resources = page.resources
            if Name.Pattern in resources or Name.Shading in resources:
                return True
            for xobject in resources.get(Name.XObject, {}).values():
                if xobject.get(Name.Subtype) != Name.Image:
                    return True  # a form can hold anything
                space = xobject.get(Name.ColorSpace)
                if not bool(xobject.get(Name.ImageMask, False)) and not (
                    isinstance(space, Name) and str(space) in _GREY_SPACES
                ):
                    return True
            return any(str(op) in _COLOUR_OPERATORS for _, op in pikepdf.parse_content_stream(page))
    except (pikepdf.PdfError, OSError, ValueError, TypeError, KeyError, AttributeError, IndexError):
        return True


def _load_image_frame(path: Path, index: int, *, dpi: int, grey: bool) -> Image.Image:
    """One frame of a scanned image file, upright per EXIF, resampled to `dpi`."""
    try:
        with Image.open(path) as img:
            img.seek(index)
            img.load()
            native = _declared_dpi(img)
            frame = _flatten(ImageOps.exif_transpose(img) or img, grey=grey)
    except EOFError as exc:
        raise InputRejected("page_missing", f"the image has no page {index + 1}", RESCAN) from exc
    except Image.DecompressionBombError as exc:  # Pillow's own bound, above preflight's
        raise InputRejected(
            "image_too_large", "the image has more pixels than a scanned page can", RESCAN
        ) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InputRejected("unreadable_image", "the image could not be read", RESCAN) from exc
    return _resample(frame, native, dpi)


def _declared_dpi(img: Image.Image) -> tuple[float, float] | None:
    """The resolution the file declares, or None when missing or a placeholder (1 or 72 dpi)."""
    raw = img.info.get("dpi")
    if not raw:
        return None
    x, y = (float(v) for v in raw)
    return (x, y) if x > 72 and y > 72 else None


def _flatten(img: Image.Image, *, grey: bool) -> Image.Image:
    """Alpha onto white paper, then greyscale, or RGB if the image has colour and `grey` is off."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(paper, rgba)
    target = "L" if grey or img.mode in ("1", "L", "I", "I;16", "F") else "RGB"
    return img.convert(target) if img.mode != target else img.copy()


def _resample(img: Image.Image, native: tuple[float, float] | None, dpi: int) -> Image.Image:
    """Scale from the file's resolution to `dpi` (also squares up non-square pixels)."""
    if native is None:
        return img
    size = (max(1, round(img.width * dpi / native[0])), max(1, round(img.height * dpi / native[1])))
    if size == img.size:
        return img
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)


def ocr_dpi(dpi_x: float | None, dpi_y: float | None, *, min_dpi: int, max_dpi: int) -> int:
    """The resolution to render at for OCR: the scan's own, kept within [min_dpi, max_dpi].

    Oversampled scans are rendered down (tesseract gains nothing past ~300 dpi but time), coarse
    ones up; the finer axis of a non-square scan counts; unknown resolution renders at max_dpi.
    """
    known = [d for d in (dpi_x, dpi_y) if d is not None and d > 1]
    if not known:
        return max_dpi
    return int(round(min(max(max(known), min_dpi), max_dpi)))


@dataclass(frozen=True)
class PageMetrics:
    """Cheap measurements of one rendered page for blank detection and image QC."""

    mean: float  # mean grey level 0..255
    dark_fraction: float  # share of pixels darker than mid-grey (a too-dark scan has many)
    ink_fraction: float  # share of ink pixels away from the edges, isolated speckle removed
    p1: int  # 1st percentile grey of the ink (of the whole page when there is none): faint = high
    p99: int  # 99th percentile grey of the whole page: the paper's white
    blank: bool  # nothing worth reading: a blank page, or a blank back with speckle/edge shadow


def page_metrics(image: Image.Image) -> PageMetrics:
    """Measure a page on a copy reduced to ~75 dpi, so it costs milliseconds, not OCR time.

    Box-averaging scanner speckle away at that scale and then dropping ink pixels with fewer
    than two ink neighbours leaves text strokes, rules and pictures: what makes a page non-blank.
    The outer few percent of each side are ignored for blankness (edge shadow, punched holes).
    """
    grey = np.asarray(_reduced(image), dtype=np.uint8)
    paper = float(np.median(grey))
    ink = _ink_mask(grey, paper)
    ink_values = grey[ink]
    p1 = np.percentile(ink_values if ink_values.size else grey, 1)
    ink_fraction = float(ink.mean())
    return PageMetrics(
        mean=float(grey.mean()),
        dark_fraction=float((grey < 128).mean()),
        ink_fraction=ink_fraction,
        p1=int(p1),
        p99=int(np.percentile(grey, 99)),
        blank=ink_fraction < BLANK_INK_FRACTION,
    )


def _reduced(image: Image.Image) -> Image.Image:
    """A greyscale copy at about METRICS_DPI (box filter, which averages speckle away)."""
    grey = image if image.mode == "L" else image.convert("L")
    dpi = image.info.get("dpi")
    if dpi and float(dpi[0]) > 1:
        factor = round(float(dpi[0]) / METRICS_DPI)
    else:  # unknown: assume a letter/A4 page, whose long side is ~11.7 in
        factor = round(max(grey.size) / (11.7 * METRICS_DPI))
    return grey.reduce(factor) if factor > 1 else grey


def _ink_mask(grey: np.ndarray, paper: float) -> np.ndarray:
    """Pixels clearly darker than the paper, not in the border, and not isolated specks."""
    ink = grey < paper - INK_CONTRAST
    h, w = ink.shape
    bh, bw = round(h * BORDER_FRACTION), round(w * BORDER_FRACTION)
    ink[:bh, :] = ink[h - bh :, :] = False
    ink[:, :bw] = ink[:, w - bw :] = False
    padded = np.pad(ink, 1).astype(np.uint8)
    neighbours = sum(
        padded[1 + dy : h + 1 + dy, 1 + dx : w + 1 + dx]
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
        if dy or dx
    )
    return ink & (neighbours >= 2)
