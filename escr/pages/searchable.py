"""The searchable PDF: the scan's own pages, untouched, with OCR text laid over them invisibly.

The as-scanned images are evidence: they are copied byte for byte, never decoded or re-encoded.
Each page gains an invisible text layer (a one-page text PDF drawn from the hOCR, placed as a form
XObject over the page) and, when OCR found it turned, a corrected /Rotate so it displays upright.
Output is deterministic: the same input gives the same bytes, so a crash-retry stores the same
content-addressed object.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import img2pdf
import pikepdf
from pikepdf import Name

from escr.errors import InputRejected, OcrError
from escr.pages.ocr import OcrPage
from escr.pages.readings import PageReading

RESCAN = "Rescan the document and put the new file in the intake folder."


@dataclass(frozen=True)
class SearchablePage:
    source_index: int  # 0-based page of the source PDF
    ocr: OcrPage | PageReading  # its rotation and text layer


def images_to_pdf(path: Path, media_type: str, out: Path, *, assumed_dpi: int | None = None) -> Path:
    """Wrap a scanned TIFF/JPEG/PNG into a PDF without re-encoding it, one page per frame.

    img2pdf embeds JPEG and CCITT G4 data as they are (PNG's compressed data too) and sizes each
    page from the image's resolution. The source file is only read. No date is written, so the
    same image always gives the same PDF. `assumed_dpi` sizes pages of an image that states no
    resolution (img2pdf would otherwise assume 96 dpi and make a poster of a 300 dpi scan).
    """
    if not media_type.startswith("image/"):
        raise InputRejected(
            "unsupported_type", f"files of type {media_type} are not images", RESCAN
        )
    try:
        layout = img2pdf.get_fixed_dpi_layout_fun((assumed_dpi, assumed_dpi)) if assumed_dpi else None
        data = img2pdf.convert(str(path), nodate=True, layout_fun=layout) if layout else img2pdf.convert(str(path), nodate=True)
    except (img2pdf.ImageOpenError, img2pdf.AlphaChannelError, img2pdf.PdfTooLargeError) as exc:
        raise InputRejected(
            "unreadable_image", "the image could not be wrapped as a PDF", RESCAN
        ) from exc
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise InputRejected("unreadable_image", "the image could not be read", RESCAN) from exc
    out.write_bytes(data)
    return out


def build_searchable_pdf(source_pdf: Path, pages: Sequence[SearchablePage], out: Path) -> Path:
    """A new PDF of the listed pages of `source_pdf`, in the order given, each made searchable.

    A page's content and images are copied as they are; its OCR text goes on top, invisible,
    placed over the page as displayed; `ocr.rotation` is added to its /Rotate. Pages not listed
    (cover sheets, other documents of the batch) are left out, and so is everything of the
    source's catalog (outline, forms, names, structure tree, links) that could reach them.

    The copy is made by cutting the source down, not by copying its pages into a new PDF:
    qpdf reads copied pages' image data into memory, so a 300-page scan would be held whole,
    while a cut-down source streams each image from the scan file as it is written.
    """
    if len({p.source_index for p in pages}) != len(pages):
        raise OcrError("a page is listed twice for one reading copy", code="searchable_pdf_failed")
    try:
        with pikepdf.open(source_pdf, access_mode=pikepdf.AccessMode.stream) as pdf:
            if any(not 0 <= p.source_index < len(pdf.pages) for p in pages):
                raise IndexError("page not in the PDF")
            kept = [pdf.pages[p.source_index] for p in pages]
            del pdf.pages[:]
            for page in kept:
                pdf.pages.append(page)
            _keep_only_pages(pdf)
            shared = _SharedResources(pdf)
            for page, listed in zip(pdf.pages, pages, strict=True):
                _make_searchable(pdf, page, listed.ocr, shared)
            pdf.save(
                out,
                deterministic_id=True,
                # Never decode a stream to recompress it: the scan's bytes stay as they were.
                stream_decode_level=pikepdf.StreamDecodeLevel.none,
                object_stream_mode=pikepdf.ObjectStreamMode.generate,
            )
    except IndexError as exc:
        raise InputRejected("page_missing", "a listed page is not in the PDF", RESCAN) from exc
    except pikepdf.PdfError as exc:
        raise OcrError(
            "the searchable PDF could not be built", code="searchable_pdf_failed"
        ) from exc
    return out


# Annotations a reader can only look at: comments and markup, nothing that acts, plays or holds a file.
HARMLESS_ANNOTATIONS = frozenset(Name(f"/{n}") for n in (
    "Text", "FreeText", "Line", "Square", "Circle", "Polygon", "PolyLine", "Highlight", "Underline",
    "Squiggly", "StrikeOut", "Stamp", "Caret", "Ink", "Popup"))


def _keep_only_pages(pdf: pikepdf.Pdf) -> None:
    """Only the page tree stays reachable, so only the kept pages' objects are written.

    That leaves out the catalog's open action, document actions, JavaScript, embedded files and
    form; on the pages, actions (/AA) go, and every annotation but harmless markup without an
    action or destination: links (they can lead to another document of the batch), form
    widgets, file attachments, Screen, multimedia and 3D. The reading copy is served to
    caseworkers, so it holds nothing that runs; what preflight found is in its report."""
    for key in list(pdf.Root.keys()):
        if key not in ("/Type", "/Pages"):
            del pdf.Root[key]
    if Name.Info in pdf.trailer:
        del pdf.trailer[Name.Info]
    for page in pdf.pages:
        for key in (Name.B, Name.AA):  # article beads lead to the source's threads; page actions
            if key in page.obj:
                del page.obj[key]
        annots = page.obj.get(Name.Annots)
        if annots is None:
            continue
        kept = [a for a in annots if isinstance(a, pikepdf.Dictionary) and a.get(Name.Subtype) in HARMLESS_ANNOTATIONS
                and not any(k in a for k in (Name.A, Name.AA, Name.Dest, Name.FS, Name.RichMediaContent))]
        kept_ids = {a.objgen for a in kept if a.is_indirect}
        for annot in kept:  # a reference to a dropped annotation would keep it in the file
            for key in (Name.Parent, Name.IRT):
                target = annot.get(key)
                if target is not None and (not target.is_indirect or target.objgen not in kept_ids):
                    del annot[key]
        if kept:
            page.obj[Name.Annots] = pikepdf.Array(kept)
        else:
            del page.obj[Name.Annots]


def _make_searchable(pdf: pikepdf.Pdf, page: pikepdf.Page, ocr: OcrPage | PageReading,
                     shared: _SharedResources) -> None:
    """Turn the page upright, then lay the text layer over it as it is now displayed."""
    rotate = (int(page.obj.get(Name.Rotate, 0)) + ocr.rotation) % 360
    if rotate:
        page.obj[Name.Rotate] = rotate
    elif Name.Rotate in page.obj:
        del page.obj[Name.Rotate]
    text_pdf = ocr.text_pdf  # read once: a page reading loads it from the work folder
    if not text_pdf:
        return
    with pikepdf.open(io.BytesIO(text_pdf)) as text:
        layer = _text_layer(pdf, text.pages[0], shared)
    name = page.add_resource(
        layer, Name.XObject, name=_free_xobject_name(page), replace_existing=False
    )
    # invert_transformations: the layer keeps the orientation it has on screen, so the upright
    # text page lands on the page as displayed (after /Rotate), not on its unrotated user space.
    placement = page.calc_form_xobject_placement(
        layer,
        name,
        pikepdf.Rectangle(page.cropbox),
        invert_transformations=True,
        allow_shrink=True,
        allow_expand=True,
    )
    # Wrap the original content in q/Q (its graphics state cannot leak into the layer) without
    # rewriting the original content stream itself.
    page.contents_add(b"q\n", prepend=True)
    page.contents_add(b"Q\n" + placement, prepend=False)


def _text_layer(pdf: pikepdf.Pdf, text: pikepdf.Page, shared: _SharedResources) -> pikepdf.Object:
    """Tesseract's text-only page as a form XObject of `pdf`, its content still compressed and
    its font shared with every other page's.

    qpdf's own conversion (`as_form_xobject`) decodes the content into memory and copies a font
    per page: a 300-page reading copy held every page's text layer decoded, with 300 copies of
    the same glyphless font, until it was written. Anything but tesseract's plain page (one
    content stream at the origin, upright, no user unit, its own resources) goes that general
    way instead.
    """
    contents = text.obj.get(Name.Contents)
    box = [float(v) for v in text.mediabox]
    if not isinstance(contents, pikepdf.Stream) or box[:2] != [0.0, 0.0] or Name.UserUnit in text.obj \
            or int(text.obj.get(Name.Rotate, 0)) % 360 or not isinstance(text.obj.get(Name.Resources), pikepdf.Dictionary):
        return pdf.copy_foreign(text.as_form_xobject())
    filters, parms = shared.get(contents.get(Name.Filter)), shared.get(contents.get(Name.DecodeParms))
    layer = pikepdf.Stream(pdf, b"")
    layer.write(contents.read_raw_bytes(), filter=filters, decode_parms=parms, type_check=False)
    layer[Name.Type] = Name.XObject
    layer[Name.Subtype] = Name.Form
    layer[Name.BBox] = pikepdf.Array(text.mediabox)
    layer[Name.Resources] = shared.get(text.obj.Resources)  # its font found by content, copied once
    return layer


class _SharedResources:
    """Resources copied into `pdf` once, by content: every tesseract page brings the same font."""

    def __init__(self, pdf: pikepdf.Pdf) -> None:
        self.pdf = pdf
        self.copied: dict[str, pikepdf.Object] = {}

    def get(self, obj: Any) -> Any:
        if not isinstance(obj, pikepdf.Object) or not obj.is_indirect:  # a value or a direct container
            if isinstance(obj, pikepdf.Dictionary):
                return pikepdf.Dictionary({key: self.get(value) for key, value in obj.items()})
            if isinstance(obj, pikepdf.Array):
                return pikepdf.Array([self.get(item) for item in obj])
            if isinstance(obj, Name):
                return Name(str(obj))
            if isinstance(obj, pikepdf.String):
                return pikepdf.String(bytes(obj))
            return obj
        key = _content_key(obj)
        if key not in self.copied:
            self.copied[key] = self.pdf.copy_foreign(obj)
        return self.copied[key]


def _content_key(obj: pikepdf.Object) -> str:
    """A digest of an object and everything it refers to (streams by their raw bytes)."""
    digest = hashlib.sha256()
    seen: dict[tuple[int, int], int] = {}  # each object fed once; later references by their order

    def feed(o: Any) -> None:
        if not isinstance(o, pikepdf.Object):  # pikepdf hands numbers and booleans back as Python's
            digest.update(repr((type(o).__name__, o)).encode())
            return
        if o.is_indirect:
            if o.objgen in seen:
                digest.update(f"<seen {seen[o.objgen]}>".encode())
                return
            seen[o.objgen] = len(seen)
        if isinstance(o, pikepdf.Stream):
            digest.update(b"stream")
            digest.update(o.read_raw_bytes())
        if isinstance(o, (pikepdf.Dictionary, pikepdf.Stream)):
            for key in sorted(o.keys()):
                digest.update(key.encode())
                feed(o[key])
            digest.update(b">>")
        elif isinstance(o, pikepdf.Array):
            digest.update(b"[")
            for item in o:
                feed(item)
            digest.update(b"]")
        else:
            digest.update(o.unparse())

    feed(obj)
    return digest.hexdigest()


def _free_xobject_name(page: pikepdf.Page) -> Name:
    """A resource name not yet used on the page; chosen, not random, so output is reproducible."""
    used = page.resources.get(Name.XObject, pikepdf.Dictionary())
    n = 0
    while Name(f"/OCR{n}") in used:
        n += 1
    return Name(f"/OCR{n}")
