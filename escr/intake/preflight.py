"""Check a file from the intake folder before anything decodes it fully.

A file that passes gets a `PreflightReport` (pages, sizes, effective resolution, encoding,
capture software) that the rest of the pipeline relies on. A file that fails raises
`InputRejected` with a stable `code`, a plain-English `message` and an `action` for business
support; the caller quarantines it. The input file is only ever read.

Everything here works from headers and dictionaries: page images are never decoded, so a
35000 x 35000 pixel image costs no more memory than a postcard.

File type policy: the type is decided by sniffing the file's first bytes, and the file name's
extension must agree with it. A supported file with a misleading extension (a PNG named .pdf,
a PDF named .tif) is refused with ``wrong_type`` rather than silently accepted, because a
mismatch means a scanner's device profile is wrong and staff should fix it at the source.

Refusal codes: empty, too_large, unsupported_type, wrong_type, truncated (incomplete or
damaged beyond safe repair), encrypted, no_pages, too_many_pages, decompression_bomb,
page_size. A PDF page without any raster image (a born-digital page) is accepted with no
resolution.
"""

from __future__ import annotations

import math
import mmap
import re
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pikepdf
from PIL import Image, ImagePalette, JpegImagePlugin, TiffImagePlugin, UnidentifiedImageError

from escr.errors import FileUnreadable, InputRejected
from escr.settings import PreflightLimits

PDF = "application/pdf"
TIFF = "image/tiff"
JPEG = "image/jpeg"
PNG = "image/png"

_EXTENSIONS = {".pdf": PDF, ".tif": TIFF, ".tiff": TIFF, ".jpg": JPEG, ".jpeg": JPEG, ".jpe": JPEG, ".png": PNG}
_TYPE_NAMES = {PDF: "a PDF", TIFF: "a TIFF image", JPEG: "a JPEG image", PNG: "a PNG image"}
_SIGNATURES = (
    (b"II*\x00", TIFF),
    (b"MM\x00*", TIFF),
    (b"II+\x00", TIFF),  # BigTIFF
    (b"MM\x00+", TIFF),
    (b"\xff\xd8\xff", JPEG),
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"%PDF-", PDF),
)
# Only to tell staff what a refused file actually is.
_OTHER_SIGNATURES = (
    (b"GIF8", "a GIF image"),
    (b"PK\x03\x04", "a ZIP archive or a Word/Excel document"),
    (b"\xd0\xcf\x11\xe0", "an older Word/Excel document"),
    (b"{\\rtf", "an RTF document"),
    (b"BM", "a BMP image"),
)
_HEAD_BYTES = 1024  # PDF readers accept junk before %PDF- within the first kilobyte
_PILLOW_FORMATS = {TIFF: "TIFF", JPEG: "JPEG", PNG: "PNG"}

# Last image codec in a PDF filter chain -> reported encoding. ASCII filters are transport only.
_PDF_CODECS = {
    "/DCTDecode": "jpeg", "/DCT": "jpeg",
    "/JPXDecode": "jpx",
    "/JBIG2Decode": "jbig2",
    "/CCITTFaxDecode": "ccitt", "/CCF": "ccitt",
    "/FlateDecode": "flate", "/Fl": "flate",
    "/LZWDecode": "lzw", "/LZW": "lzw",
    "/RunLengthDecode": "runlength", "/RL": "runlength",
}
_TIFF_CODECS = {
    "group4": "tiff-group4", "group3": "tiff-group3", "tiff_ccitt": "tiff-ccitt-rle",
    "tiff_lzw": "lzw", "tiff_adobe_deflate": "flate", "tiff_deflate": "flate",
    "jpeg": "jpeg", "tiff_jpeg": "jpeg", "packbits": "packbits", "raw": "raw",
}
_GREY_SPACES = {"/DeviceGray", "/G", "/CalGray", "/Separation"}
_COLOUR_SPACES = {"/DeviceRGB", "/RGB", "/DeviceCMYK", "/CMYK", "/CalRGB", "/Lab", "/DeviceN"}
_BILEVEL_CODECS = {"ccitt", "jbig2"}
_GREY_MODES = {"L", "LA", "La", "I", "F", "I;16", "I;16B", "I;16L", "I;16N"}
_MAX_FORM_DEPTH = 8
_MAX_CONTENT_BYTES = 64 * 1024**2  # compressed content-stream bytes parsed per page
_LETTER = (612.0, 792.0)
_PT_PER_CM = 72 / 2.54

_TRUNCATED_ACTION = (
    "Scan the pages again. If this keeps happening, check the scanner's connection to the "
    "intake folder and the space left on it."
)
_RESCAN_SETTINGS_ACTION = "Check the scanner's settings for this device profile and scan the pages again."


@dataclass(frozen=True)
class PageInfo:
    index: int  # 0-based
    width_pt: float  # as displayed (after /Rotate)
    height_pt: float
    rotate: int  # the page's /Rotate (0/90/180/270), 0 for images
    dpi_x: float | None  # effective resolution of the main image (largest drawn); None if no image
    dpi_y: float | None
    pixel_width: int | None
    pixel_height: int | None
    colour: str | None  # "bilevel" | "grey" | "colour"
    encoding: str | None  # "ccitt" | "jbig2" | "jpeg" | "jpx" | "flate" | "tiff-group4" | "lzw" | "png" | ...


@dataclass(frozen=True)
class PreflightReport:
    media_type: str  # "application/pdf" | "image/tiff" | "image/jpeg" | "image/png"
    page_count: int
    pages: tuple[PageInfo, ...]
    producer: str | None  # PDF Producer (else Creator), TIFF/EXIF/PNG Software: the capture software
    notes: tuple[str, ...]  # repairs and quirks observed
    # Active content of the original, left out of every reading copy (the original keeps it).
    removed: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Image:
    """One raster image as declared in its dictionary or header (never decoded)."""

    width: int
    height: int
    colour: str | None
    encoding: str


@dataclass(frozen=True)
class _Placement:
    """An image drawn on a PDF page: the image and the page area it is stretched over."""

    image: _Image
    matrix: pikepdf.Matrix
    masks: tuple[_Image, ...] = ()  # soft masks are decoded with the image, so count for bombs


def preflight(path: Path, *, limits: PreflightLimits) -> PreflightReport:
    """Check `path` and describe it, or raise InputRejected saying why it cannot be filed.

    Raises FileUnreadable (transient, not InputRejected) if the file cannot be read at all, e.g.
    it vanished or a permission is wrong: that is not the file's fault, so the pipeline leaves it
    in processing/ for a retry instead of quarantining it.
    """
    size = _file_size(path)
    if size == 0:
        raise InputRejected(
            "empty", "The file is empty (0 bytes).",
            "Scan the pages again and make sure the scanner finishes writing the file.",
        )
    if size > limits.max_file_bytes:
        raise too_large(size, limits)
    media_type = _media_type(path)
    if media_type == PDF:
        return _preflight_pdf(path, size, limits)
    return _preflight_raster(path, media_type, size, limits)


def too_large(size: int, limits: PreflightLimits) -> InputRejected:
    """The refusal of a file over the size limit (checked at receipt too, before it is hashed)."""
    return InputRejected(
        "too_large",
        f"The file is {_megabytes(size)}, more than the {_megabytes(limits.max_file_bytes)} allowed.",
        "Scan the batch as several smaller files, or check the scanner is not set to an "
        "unusually high resolution.",
    )


# --- type sniffing -------------------------------------------------------------------------


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:
        raise FileUnreadable("the intake file could not be read") from exc


def _read_head(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read(_HEAD_BYTES)
    except OSError as exc:
        raise FileUnreadable("the intake file could not be read") from exc


def _sniff(head: bytes) -> str | None:
    """The supported type the bytes really are; a PDF header may follow some junk."""
    for signature, media_type in _SIGNATURES:
        if media_type == PDF:
            if signature in head:
                return PDF
        elif head.startswith(signature):
            return media_type
    return None


def _describe_other(head: bytes) -> str:
    """A plain name for an unsupported file's content, for the refusal message."""
    for signature, name in _OTHER_SIGNATURES:
        if head.startswith(signature):
            return name
    if head[4:8] == b"ftyp":
        return "a HEIC/HEIF photo or a video" if head[8:12] != b"avif" else "an AVIF image"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "a WebP image"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "not a scanned image"
    return "plain text" if "\x00" not in text else "not a scanned image"


def _media_type(path: Path) -> str:
    """The file's type, refusing unsupported types and names that do not match content."""
    head = _read_head(path)
    declared = _EXTENSIONS.get(path.suffix.lower())
    actual = _sniff(head)
    shown_ext = path.suffix.lower() or "no extension"
    if declared is None and actual is None:
        raise InputRejected(
            "unsupported_type",
            f"This type of file ({shown_ext}, {_describe_other(head)}) cannot be filed. "
            "Only PDF, TIFF, JPEG and PNG scans are accepted.",
            "Scan the paper to PDF or TIFF. If this is an electronic document, save or print it "
            "to PDF first.",
        )
    if actual is None and any(sig.startswith(head) for sig, t in _SIGNATURES if t == declared):
        raise InputRejected(
            "truncated", "The file is incomplete: it stops before its first page begins.", _TRUNCATED_ACTION
        )
    if declared != actual:
        what = _TYPE_NAMES.get(actual) if actual else _describe_other(head)
        named = f"ends in {shown_ext}" if declared else "has no PDF, TIFF, JPEG or PNG extension"
        raise InputRejected(
            "wrong_type",
            f"The file name {named}, but the file is {what}.",
            "Correct the scanner's scan-to-folder profile so the file type matches the name it "
            "saves, then scan the pages again.",
        )
    return actual


# --- shared checks ---------------------------------------------------------------------------


def _megabytes(size: int) -> str:
    return f"{size / 1024**2:,.1f} MB"


def _check_page_count(count: int, limits: PreflightLimits, *, counted_all: bool = True) -> None:
    if count == 0:
        raise InputRejected(
            "no_pages", "The file contains no pages.", "Scan the pages again; the scanner saved an empty document."
        )
    if count > limits.max_pages:
        raise InputRejected(
            "too_many_pages",
            f"The file has {count:,} pages{'' if counted_all else ' or more'}; at most "
            f"{limits.max_pages:,} are accepted in one file.",
            "Split the batch into smaller scans, each with its own cover sheet.",
        )


def _check_pixels(index: int, width: int, height: int, limits: PreflightLimits) -> None:
    """Refuse images that would need huge memory to decode, from their declared size alone."""
    if width * height > limits.max_page_pixels:
        raise InputRejected(
            "decompression_bomb",
            f"Page {index + 1} holds an image of {width:,} x {height:,} pixels, more than the "
            f"{limits.max_page_pixels:,} pixels allowed for one page.",
            "Check the scanner's resolution setting (300 dpi is enough for any paper record) and "
            "scan the pages again.",
        )


def _check_page_size(index: int, width_pt: float, height_pt: float, limits: PreflightLimits, *, upper: bool = True) -> None:
    """Refuse pages smaller than a small slip or larger than any real sheet of paper."""
    small = min(width_pt, height_pt) < limits.min_page_side_pt
    large = upper and max(width_pt, height_pt) > limits.max_page_side_pt
    if small or large:
        raise InputRejected(
            "page_size",
            f"Page {index + 1} is {width_pt / _PT_PER_CM:,.1f} x {height_pt / _PT_PER_CM:,.1f} cm; "
            f"each side must be between {limits.min_page_side_pt / _PT_PER_CM:,.1f} cm and "
            f"{limits.max_page_side_pt / _PT_PER_CM:,.1f} cm.",
            "Check the scanner's paper-size setting for this device profile and scan the pages again.",
        )


def _truncated(message: str) -> InputRejected:
    return InputRejected("truncated", message, _TRUNCATED_ACTION)


def _clean_text(value: object) -> str | None:
    """Producer strings as printable single-line text, or None when blank."""
    text = re.sub(r"\s+", " ", "".join(ch for ch in str(value) if ch.isprintable() or ch.isspace())).strip()
    return text[:200] or None


# --- PDF -------------------------------------------------------------------------------------


def _preflight_pdf(path: Path, size: int, limits: PreflightLimits) -> PreflightReport:
    try:
        with pikepdf.open(path) as pdf:
            return _describe_pdf(pdf, path, size, limits)
    except pikepdf.PasswordError as exc:
        raise _encrypted() from exc
    except pikepdf.PdfError as exc:
        if "encrypt" in str(exc).lower():
            raise _encrypted() from exc
        raise _truncated("The PDF is incomplete or damaged and cannot be read.") from exc
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError, RecursionError) as exc:
        # Objects of the wrong type where the PDF standard requires another: a broken file.
        raise _truncated("The PDF is damaged: parts of its structure are missing or invalid.") from exc


def _encrypted() -> InputRejected:
    return InputRejected(
        "encrypted",
        "The PDF is protected with a password, so it cannot be read.",
        "Switch off password protection (encryption) in the scanner's settings and scan the pages again.",
    )


def _describe_pdf(pdf: pikepdf.Pdf, path: Path, size: int, limits: PreflightLimits) -> PreflightReport:
    notes: list[str] = []
    repaired = _note_warnings(pdf.get_warnings(), path, notes)
    if repaired and not _has_eof_marker(path, size):
        raise _truncated("The PDF is incomplete: the end of the file is missing, so pages may be lost.")
    if pdf.is_encrypted:
        notes.append("PDF is encrypted with an empty user password (owner restrictions only)")
    if pdf.is_linearized:
        notes.append("PDF is linearised (fast web view)")
    found = len(pdf.pages)
    declared = _as_int(pdf.Root.get("/Pages", {}).get("/Count"))
    if declared is not None and declared > found:
        raise _truncated(f"The PDF says it has {declared} pages but only {found} can be found.")
    if declared is not None and declared != found:
        notes.append(f"page tree declares {declared} pages, {found} found")
    _check_page_count(found, limits)
    pages = tuple(_describe_pdf_page(page, n, limits, notes) for n, page in enumerate(pdf.pages))
    _note_warnings(pdf.get_warnings(), path, notes)  # stream repairs found while reading pages
    return PreflightReport(PDF, found, pages, _pdf_producer(pdf), tuple(dict.fromkeys(notes)),
                           removed=_active_content(pdf))


_ANNOTATION_KINDS = {"/Widget": "form fields", "/FileAttachment": "attached files", "/Screen": "Screen annotations",
                     "/Movie": "multimedia", "/Sound": "multimedia", "/RichMedia": "multimedia", "/3D": "3D content",
                     "/Link": "links"}
_ACTION_KINDS = {"/JavaScript": "JavaScript", "/Launch": "actions that launch a program",
                 "/ImportData": "actions that import data", "/SubmitForm": "actions that submit a form",
                 "/GoToE": "links into embedded files", "/Rendition": "multimedia"}


def _active_content(pdf: pikepdf.Pdf) -> tuple[str, ...]:
    """What in the PDF can act, play or carry a file, in plain words: the reading copy is built
    without any of it, and the certificate says what was left out."""
    found: set[str] = set()

    def action(a: object, default: str) -> None:
        if isinstance(a, pikepdf.Dictionary):
            found.add(_ACTION_KINDS.get(str(a.get("/S", "")), default))
            if "/JS" in a:
                found.add("JavaScript")
            nxt = a.get("/Next")
            for item in (nxt if isinstance(nxt, pikepdf.Array) else [nxt] if nxt is not None else []):
                action(item, default)
        elif a is not None:
            found.add(default)

    def actions(holder: pikepdf.Dictionary, default: str) -> None:
        if "/A" in holder or "/AA" in holder:
            found.add(default)  # where the actions are; action() adds what they do
        action(holder.get("/A"), default)
        extra = holder.get("/AA")
        if isinstance(extra, pikepdf.Dictionary):
            for a in extra.values():
                action(a, default)

    try:
        root = pdf.Root
        if "/OpenAction" in root:
            open_action = root.OpenAction
            found.add("an action run when the document opens")
            if isinstance(open_action, pikepdf.Dictionary):
                action(open_action, "an action run when the document opens")
        actions(root, "document actions")
        names = root.get("/Names")
        if isinstance(names, pikepdf.Dictionary):
            for key, what in (("/JavaScript", "JavaScript"), ("/EmbeddedFiles", "embedded files"),
                              ("/Renditions", "multimedia")):
                if key in names:
                    found.add(what)
        for key, what in (("/AcroForm", "form fields"), ("/Collection", "a PDF portfolio (embedded files)")):
            if key in root:
                found.add(what)
        for page in pdf.pages:
            actions(page.obj, "page actions")
            for annot in page.obj.get("/Annots", pikepdf.Array()):
                if not isinstance(annot, pikepdf.Dictionary):
                    continue
                kind = _ANNOTATION_KINDS.get(str(annot.get("/Subtype", "")))
                if kind:
                    found.add(kind)
                actions(annot, "annotation actions")
                if "/FS" in annot:
                    found.add("attached files")
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        found.add("active content that could not all be listed")
    return tuple(sorted(found))


def _note_warnings(warnings: list[str], path: Path, notes: list[str]) -> bool:
    """Record qpdf's repairs as notes (file name removed); True if the xref had to be rebuilt."""
    rebuilt = False
    for warning in warnings:
        text = str(warning).replace(str(path), "").replace(path.name, "").strip(" :")
        if "reconstruct" in text or "startxref" in text:
            rebuilt = True
        notes.append(f"qpdf repair: {text}"[:200])
    return rebuilt


def _has_eof_marker(path: Path, size: int) -> bool:
    """Whether the file ends as a complete PDF does; a cut-off transfer loses this marker."""
    with path.open("rb") as fh:
        fh.seek(max(0, size - _HEAD_BYTES))
        return b"%%EOF" in fh.read()


def _pdf_producer(pdf: pikepdf.Pdf) -> str | None:
    """The software that wrote the PDF; Author and Title are never read (they can name people)."""
    info = pdf.docinfo
    for key in ("/Producer", "/Creator"):
        value = info.get(key)
        if value is not None and (text := _clean_text(value)):
            return text
    return None


def _describe_pdf_page(page: pikepdf.Page, index: int, limits: PreflightLimits, notes: list[str]) -> PageInfo:
    """Size, rotation and main image of one page; refuses bombs before odd sizes."""
    rotate = page.rotation
    if rotate % 90:
        notes.append(f"page {index + 1}: /Rotate {rotate} is not a multiple of 90, treated as 0")
        rotate = 0
    box_w, box_h = _page_box(page, index, notes)
    placements = _page_placements(page, index, box_w, box_h, notes)
    for image in (i for p in placements for i in (p.image, *p.masks)):
        _check_pixels(index, image.width, image.height, limits)
    width_pt, height_pt = (box_h, box_w) if rotate in (90, 270) else (box_w, box_h)
    _check_page_size(index, width_pt, height_pt, limits)
    main = max(placements, key=lambda p: (_area(p.matrix), p.image.width * p.image.height), default=None)
    if main is None:
        return PageInfo(index, width_pt, height_pt, rotate, None, None, None, None, None, None)
    dpi_x, dpi_y = _effective_dpi(main, _user_unit(page))
    return PageInfo(
        index, width_pt, height_pt, rotate, dpi_x, dpi_y,
        main.image.width, main.image.height, main.image.colour, main.image.encoding,
    )


def _user_unit(page: pikepdf.Page) -> float:
    """PDF 1.6 pages may declare a unit larger than the 1/72 inch point."""
    try:
        unit = float(page.obj.get("/UserUnit", 1.0))
    except (TypeError, ValueError):
        return 1.0
    return unit if math.isfinite(unit) and unit > 0 else 1.0


def _page_box(page: pikepdf.Page, index: int, notes: list[str]) -> tuple[float, float]:
    """Visible page size in points: the crop box clipped to the media box, times /UserUnit."""
    try:
        media = [float(v) for v in page.mediabox]
    except (KeyError, AttributeError, TypeError, ValueError, pikepdf.PdfError):
        notes.append(f"page {index + 1}: no valid MediaBox, US Letter assumed")
        media = [0.0, 0.0, *_LETTER]
    try:
        crop = [float(v) for v in page.cropbox]
    except (KeyError, AttributeError, TypeError, ValueError, pikepdf.PdfError):
        crop = media
    if len(media) != 4 or len(crop) != 4:
        raise _truncated(f"Page {index + 1} of the PDF has an invalid page size entry.")
    x0 = max(min(media[0], media[2]), min(crop[0], crop[2]))
    x1 = min(max(media[0], media[2]), max(crop[0], crop[2]))
    y0 = max(min(media[1], media[3]), min(crop[1], crop[3]))
    y1 = min(max(media[1], media[3]), max(crop[1], crop[3]))
    if x1 <= x0 or y1 <= y0:  # crop box outside the media box: readers show the media box
        x0, x1 = sorted((media[0], media[2]))
        y0, y1 = sorted((media[1], media[3]))
    unit = _user_unit(page)
    return (x1 - x0) * unit, (y1 - y0) * unit


def _area(matrix: pikepdf.Matrix) -> float:
    return abs(matrix.a * matrix.d - matrix.b * matrix.c)


def _effective_dpi(placement: _Placement, unit: float) -> tuple[float | None, float | None]:
    """Pixels per inch along the image's own axes, as `pdfimages -list` reports them."""
    m = placement.matrix
    width_in = math.hypot(m.a, m.b) * unit / 72
    height_in = math.hypot(m.c, m.d) * unit / 72
    if width_in <= 0 or height_in <= 0:
        return None, None
    return round(placement.image.width / width_in, 2), round(placement.image.height / height_in, 2)


def _page_placements(
    page: pikepdf.Page, index: int, box_w: float, box_h: float, notes: list[str]
) -> list[_Placement]:
    """Every image the page draws, with where it lands; refuses pages whose parts are missing."""
    obj = page.obj
    if "/Contents" not in obj.keys():
        return []  # a page with no content at all is a legitimately blank page
    contents = obj.get("/Contents")
    streams = list(contents) if isinstance(contents, pikepdf.Array) else [contents]
    if not streams or any(not isinstance(s, pikepdf.Stream) for s in streams):
        raise _truncated(f"Page {index + 1} of the PDF is damaged: its content is missing.")
    if sum(_as_int(s.get("/Length")) or 0 for s in streams) > _MAX_CONTENT_BYTES:
        notes.append(f"page {index + 1}: content stream too large to inspect, images assumed full-page")
        return _assume_full_page(obj.get("/Resources"), index, box_w, box_h)
    try:
        return list(_walk_content(page, obj.get("/Resources"), pikepdf.Matrix(), index, 0, set()))
    except pikepdf.PdfError:
        notes.append(f"page {index + 1}: content stream could not be parsed, images assumed full-page")
        return _assume_full_page(obj.get("/Resources"), index, box_w, box_h)


def _walk_content(
    stream: pikepdf.Page | pikepdf.Object,
    resources: pikepdf.Object | None,
    ctm: pikepdf.Matrix,
    index: int,
    depth: int,
    seen: set[tuple[int, int]],
) -> Iterator[_Placement]:
    """Follow q/Q/cm through a content stream (and the forms it draws) to each image drawn."""
    stack: list[pikepdf.Matrix] = []
    for inst in pikepdf.parse_content_stream(stream, "q Q cm Do BI ID EI"):
        if isinstance(inst, pikepdf.ContentStreamInlineImage):
            yield _Placement(_pdf_image(inst.iimage.obj, resources), ctm)
            continue
        op = str(inst.operator)
        if op == "q":
            stack.append(ctm)
        elif op == "Q":
            ctm = stack.pop() if stack else pikepdf.Matrix()
        elif op == "cm" and len(inst.operands) == 6:
            ctm = pikepdf.Matrix(*(float(v) for v in inst.operands)) @ ctm
        elif op == "Do" and inst.operands:
            yield from _draw_xobject(str(inst.operands[0]), resources, ctm, index, depth, seen)


def _draw_xobject(
    name: str,
    resources: pikepdf.Object | None,
    ctm: pikepdf.Matrix,
    index: int,
    depth: int,
    seen: set[tuple[int, int]],
) -> Iterator[_Placement]:
    xobjects = resources.get("/XObject") if isinstance(resources, pikepdf.Dictionary) else None
    xobject = xobjects.get(name) if isinstance(xobjects, pikepdf.Dictionary) else None
    if not isinstance(xobject, pikepdf.Stream):
        raise _truncated(f"Page {index + 1} of the PDF is damaged: an image or part of the page is missing.")
    subtype = xobject.get("/Subtype")
    if subtype == pikepdf.Name.Image:
        yield _Placement(_pdf_image(xobject, resources), ctm, _masks(xobject, resources))
    elif subtype == pikepdf.Name.Form and depth < _MAX_FORM_DEPTH and xobject.objgen not in seen:
        matrix = xobject.get("/Matrix")
        form_matrix = pikepdf.Matrix(*(float(v) for v in matrix)) if isinstance(matrix, pikepdf.Array) and len(matrix) == 6 else pikepdf.Matrix()
        form_resources = xobject.get("/Resources", resources)
        yield from _walk_content(xobject, form_resources, form_matrix @ ctm, index, depth + 1, seen | {xobject.objgen})


def _assume_full_page(resources: pikepdf.Object | None, index: int, box_w: float, box_h: float) -> list[_Placement]:
    """When drawing cannot be followed, treat each image in the page's resources as full-page."""
    xobjects = resources.get("/XObject") if isinstance(resources, pikepdf.Dictionary) else None
    if not isinstance(xobjects, pikepdf.Dictionary):
        return []
    full_page = pikepdf.Matrix(box_w, 0, 0, box_h, 0, 0)
    return [
        _Placement(_pdf_image(x, resources), full_page, _masks(x, resources))
        for _, x in xobjects.items()
        if isinstance(x, pikepdf.Stream) and x.get("/Subtype") == pikepdf.Name.Image
    ]


def _masks(image: pikepdf.Stream, resources: pikepdf.Object | None) -> tuple[_Image, ...]:
    masks = (image.get("/SMask"), image.get("/Mask"))
    return tuple(_pdf_image(m, resources) for m in masks if isinstance(m, pikepdf.Stream))


def _as_int(value: object) -> int | None:
    """A PDF integer as int; None for anything else (names, booleans, reals with fractions)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return int(number) if math.isfinite(number) and number == int(number) else None


def _pdf_image(info: pikepdf.Object, resources: pikepdf.Object | None) -> _Image:
    """Size, colour and codec of a PDF image (XObject or inline) from its dictionary alone."""
    width = _as_int(info.get("/Width", info.get("/W")))
    height = _as_int(info.get("/Height", info.get("/H")))
    if width is None or height is None or width <= 0 or height <= 0:
        raise _truncated("The PDF is damaged: an image on one of its pages has no valid size.")
    encoding = _pdf_encoding(info.get("/Filter", info.get("/F")))
    return _Image(width, height, _pdf_colour(info, encoding, resources), encoding)


def _pdf_encoding(filters: pikepdf.Object | None) -> str:
    names = [str(f) for f in filters] if isinstance(filters, pikepdf.Array) else [str(filters)] if filters else []
    for name in reversed(names):
        if name in _PDF_CODECS:
            return _PDF_CODECS[name]
    return "raw"


def _pdf_colour(info: pikepdf.Dictionary, encoding: str, resources: pikepdf.Object | None) -> str | None:
    if bool(info.get("/ImageMask", info.get("/IM"))) or encoding in _BILEVEL_CODECS:
        return "bilevel"
    kind = _colour_space_kind(info.get("/ColorSpace", info.get("/CS")), resources, 0)
    if kind == "grey" and _as_int(info.get("/BitsPerComponent", info.get("/BPC"))) == 1:
        return "bilevel"
    return kind


def _colour_space_kind(space: pikepdf.Object | None, resources: pikepdf.Object | None, depth: int) -> str | None:
    """"grey" or "colour" for a PDF colour space, following named and indexed spaces."""
    if space is None or depth > 4:
        return None
    if isinstance(space, pikepdf.Array) and len(space) > 0:
        family = str(space[0])
        if family == "/ICCBased" and len(space) > 1 and isinstance(space[1], pikepdf.Stream):
            return "grey" if _as_int(space[1].get("/N")) == 1 else "colour"
        if family in ("/Indexed", "/I") and len(space) > 1:
            return _colour_space_kind(space[1], resources, depth + 1)
        return _colour_space_kind(space[0], resources, depth + 1)
    name = str(space)
    if name in _GREY_SPACES:
        return "grey"
    if name in _COLOUR_SPACES:
        return "colour"
    named = resources.get("/ColorSpace") if isinstance(resources, pikepdf.Dictionary) else None
    if isinstance(named, pikepdf.Dictionary) and name in named:
        return _colour_space_kind(named.get(name), resources, depth + 1)
    return None


# --- TIFF / JPEG / PNG ---------------------------------------------------------------------------


def _preflight_raster(path: Path, media_type: str, size: int, limits: PreflightLimits) -> PreflightReport:
    """Headers only, one frame at a time; Pillow's own bomb guard maps to the same refusal."""
    notes: list[str] = []
    try:
        with Image.open(path, formats=[_PILLOW_FORMATS[media_type]]) as image:
            producer = _image_producer(image)
            pages = tuple(_raster_pages(image, media_type, size, limits, notes))
        _check_complete(path, media_type, size)
    except Image.DecompressionBombError as exc:
        raise InputRejected(
            "decompression_bomb",
            f"The image's declared size is far larger than the {limits.max_page_pixels:,} pixels "
            "allowed for one page.",
            "Check the scanner's resolution setting (300 dpi is enough for any paper record) and "
            "scan the pages again.",
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, struct.error, KeyError, TypeError) as exc:
        raise _truncated("The image file is incomplete or damaged and cannot be read.") from exc
    return PreflightReport(media_type, len(pages), pages, producer, tuple(dict.fromkeys(notes)))


def _raster_pages(
    image: Image.Image, media_type: str, size: int, limits: PreflightLimits, notes: list[str]
) -> Iterator[PageInfo]:
    for index in range(limits.max_pages + 1):
        if index:
            try:
                image.seek(index)
            except EOFError:
                return
        if index == limits.max_pages:
            _check_page_count(index + 1, limits, counted_all=False)
        yield _raster_page(image, index, media_type, size, limits, notes)
        if media_type != TIFF:
            return


def _raster_page(
    image: Image.Image, index: int, media_type: str, size: int, limits: PreflightLimits, notes: list[str]
) -> PageInfo:
    width, height = image.size
    if width <= 0 or height <= 0:
        raise _truncated("The image file is damaged: a page has no valid size.")
    _check_pixels(index, width, height, limits)
    if media_type == TIFF:
        _check_tiff_data(image, size)
    dpi_x, dpi_y = _image_dpi(image, media_type)
    if dpi_x is None or dpi_y is None:
        # Unknown resolution: at any real resolution (72 dpi or more) the page is at most this
        # big, so only the lower bound can be checked honestly.
        width_pt, height_pt = float(width), float(height)
        notes.append(f"page {index + 1}: no resolution in the file; size assumes 72 dpi")
        _check_page_size(index, width_pt, height_pt, limits, upper=False)
    else:
        width_pt, height_pt = width * 72 / dpi_x, height * 72 / dpi_y
        _check_page_size(index, width_pt, height_pt, limits)
    orientation = _orientation(image, media_type)
    if orientation not in (None, 1):
        notes.append(f"page {index + 1}: orientation tag {orientation} (pixels are stored turned)")
    return PageInfo(
        index, width_pt, height_pt, 0, dpi_x, dpi_y, width, height,
        _mode_colour(image), _raster_encoding(image, media_type),
    )


def _orientation(image: Image.Image, media_type: str) -> int | None:
    if media_type == TIFF:
        return image.tag_v2.get(0x0112)
    return image.getexif().get(0x0112) if media_type == JPEG else None


def _image_dpi(image: Image.Image, media_type: str) -> tuple[float | None, float | None]:
    """The resolution the file states, or None: Pillow's invented defaults (1 or 72 dpi) are not used."""
    if media_type == TIFF:
        tags = image.tag_v2
        return _resolution(tags.get(282), tags.get(283), tags.get(296, 2))
    if media_type == JPEG:
        unit = image.info.get("jfif_unit")
        if unit in (1, 2):
            dpi = _resolution(*image.info.get("jfif_density", (0, 0)), {1: 2, 2: 3}[unit])
            if dpi != (None, None):
                return dpi
        exif = image.getexif()
        return _resolution(exif.get(282), exif.get(283), exif.get(296, 2))
    return _resolution(*image.info.get("dpi", (None, None)), 2)  # PNG: only set for pHYs in metres


def _resolution(x: object, y: object, unit: object) -> tuple[float | None, float | None]:
    """Dots per inch from a TIFF/EXIF-style pair and unit (2 inch, 3 centimetre, 1 none)."""
    try:
        dpi_x, dpi_y = float(x), float(y)  # type: ignore[arg-type]
    except (TypeError, ValueError, ZeroDivisionError):
        return None, None
    if unit not in (2, 3) or not all(v > 0 and math.isfinite(v) for v in (dpi_x, dpi_y)):
        return None, None
    scale = 2.54 if unit == 3 else 1.0
    return round(dpi_x * scale, 2), round(dpi_y * scale, 2)


def _mode_colour(image: Image.Image) -> str | None:
    mode = image.mode
    if mode == "1":
        return "bilevel"
    if mode in _GREY_MODES:
        return "grey"
    if mode in ("P", "PA"):
        return "grey" if image.palette is not None and _palette_is_grey(image.palette) else "colour"
    return "colour"


def _palette_is_grey(palette: ImagePalette.ImagePalette) -> bool:
    """From the palette as read from the header (getpalette() would decode the image)."""
    raw, layout = bytes(palette.palette), palette.rawmode or palette.mode
    if layout == "RGB;L":  # TIFF colour map: all reds, then all greens, then all blues
        third = len(raw) // 3
        entries = zip(raw[:third], raw[third : 2 * third], raw[2 * third :], strict=False)
    elif layout in ("RGB", "RGBA", "RGBX"):
        step = len(layout)
        entries = zip(raw[0::step], raw[1::step], raw[2::step], strict=False)
    else:
        return False
    triples = list(entries)
    return bool(triples) and all(r == g == b for r, g, b in triples)


def _raster_encoding(image: Image.Image, media_type: str) -> str:
    if media_type == TIFF:
        compression = image.info.get("compression", "raw")
        return _TIFF_CODECS.get(compression, str(compression))
    return "jpeg" if media_type == JPEG else "png"


def _image_producer(image: Image.Image) -> str | None:
    """Software tag (TIFF/EXIF, PNG text), else scanner make and model.

    Never calls getexif() on a PNG: Pillow decodes the whole image to look for EXIF there.
    """
    if isinstance(image, TiffImagePlugin.TiffImageFile):
        tags: Mapping[int, object] = image.tag_v2
    elif isinstance(image, JpegImagePlugin.JpegImageFile):
        tags = image.getexif()
    else:
        tags = {}
    software = tags.get(0x0131) or image.info.get("Software")
    if software:
        return _clean_text(software)
    device = " ".join(str(tags.get(t, "")).strip() for t in (0x010F, 0x0110))
    return _clean_text(device)


def _check_tiff_data(image: Image.Image, size: int) -> None:
    """Every strip or tile of the current TIFF page must lie inside the file."""
    tags = image.tag_v2
    offsets = tags.get(273) or tags.get(324)
    counts = tags.get(279) or tags.get(325)
    if not offsets:
        raise _truncated("The TIFF file is incomplete or damaged: the image data of a page is missing.")
    if isinstance(offsets, int):
        offsets = (offsets,)
    if isinstance(counts, int):
        counts = (counts,)
    ends = [o + c for o, c in zip(offsets, counts or (0,) * len(offsets), strict=False)]
    if max(ends, default=0) > size or max(offsets) >= size:
        raise _truncated("The TIFF file is incomplete: page image data runs past the end of the file.")


def _check_complete(path: Path, media_type: str, size: int) -> None:
    """Catch a cut-off JPEG or PNG without decoding its pixels."""
    if media_type == PNG:
        with Image.open(path, formats=["PNG"]) as image:
            image.verify()  # walks every chunk to IEND and checks its CRC; no pixel decoding
    elif media_type == JPEG and not _jpeg_has_end(path, size):
        raise _truncated("The JPEG image is incomplete: the end of the picture is missing.")


def _jpeg_has_end(path: Path, size: int) -> bool:
    """True if an end-of-image marker follows the first scan (embedded thumbnails are skipped)."""
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        pos = 2
        while pos + 4 <= size:
            if data[pos] != 0xFF:
                return False
            marker = data[pos + 1]
            if marker == 0xFF:  # fill byte
                pos += 1
                continue
            if 0xD0 <= marker <= 0xD7 or marker == 0x01:
                pos += 2
                continue
            length = int.from_bytes(data[pos + 2 : pos + 4], "big")
            if marker == 0xDA:
                return data.find(b"\xff\xd9", pos + 2 + length) != -1
            pos += 2 + length
        return False
