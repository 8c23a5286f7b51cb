"""The benchmark corpus: scanned A4 pages at 300 dpi as an office MFD writes them.

Files are PDFs of full-page images (greyscale JPEG, bilevel CCITT G4, colour JPEG), each an MFD
batch of one or two documents behind escr cover sheets, with a few blank backs and pages fed
sideways or upside down. Every page image is also written on its own, as the very bytes the
PDF embeds, so the Tesseract-alone floor reads exactly the same pixels. Generation is
deterministic and cached under BENCH_WORK/corpus: a second run reuses the files.
"""

from __future__ import annotations

import io
import json
import random
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import img2pdf
from PIL import Image, ImageDraw, ImageFont

from escr.pages.coversheet import CoverSheet
from tests.support.scans import FONT, FONT_BOLD, colourise, coversheet_page, degrade

VERSION = 3  # bump when the generated pages change, so cached corpora are rebuilt
DPI = 300
A4_PX = (round(8.27 * DPI), round(11.69 * DPI))
ENCODINGS = ("grey_jpeg", "ccitt_g4", "colour_jpeg")

# Words of a social-care record, most common first; also the vocabulary of the seeded database.
_VOCABULARY = (
    "the of and to a in for is on that with was as at by be this are from his her has have will "
    "not child children family mother father school social worker plan meeting visit home police "
    "health report review care support concerns parents agreed risk safety assessment referral "
    "contact conference protection need needs service services team manager nurse doctor teacher "
    "siblings grandmother foster placement court order education attendance behaviour development "
    "wishes feelings seen alone bedroom house kitchen injury bruise hospital appointment outcome "
    "action actions timescale responsible review date strategy discussion enquiry section threshold "
    "domestic abuse neglect emotional physical sexual exploitation missing episode return interview "
    "advocate independent reviewing officer chair minutes attendees apologies purpose summary "
    "analysis recommendation recommendations decision decisions consent information sharing "
    "agency agencies professional professionals health visitor midwife paediatrician therapist "
    "housing benefits income debt substance alcohol drugs mental wellbeing counselling group work "
    "letter telephone email weekly monthly fortnightly previous current future progress improved "
    "worsened stable unchanged observed reported disclosed explained confirmed denied requested "
    "arranged attended cancelled rearranged completed outstanding pending overdue escalated closed "
    "transferred allocated duty locality north south east west central partnership safeguarding "
    "board procedures guidance statutory legal planning proceedings assessment parenting capacity "
    "environmental factors developmental routines boundaries stimulation warmth stability guidance"
)
WORDS = tuple(_VOCABULARY.split())

TITLES = {
    "referral": "Multi-Agency Referral Form",
    "assessment": "Single Assessment",
    "child_in_need_plan": "Child in Need Plan",
    "child_protection_plan": "Child Protection Plan",
    "cp_conference_minutes": "Child Protection Conference Minutes",
}

_GIVEN = ["Amelia", "Oliver", "Jayden", "Sophie", "Noah", "Isla", "Leo", "Ava", "Freddie", "Maya",
          "Harrison", "Evie", "Reggie", "Poppy", "Tommy", "Ruby", "Alfie", "Daisy", "Kai", "Lily",
          "Mason", "Grace", "Theo", "Erin"]
_FAMILY = ["Whitfield", "Okonkwo", "Marsh", "Pennington", "Castellano", "Hargreaves", "Nakamura",
           "Brennan", "Oduya", "Kowalczyk", "Thistlewood", "Abernethy"]


@dataclass(frozen=True)
class BenchChild:
    child_id: str
    given_names: str
    family_name: str
    date_of_birth: str
    nhs_number: str


@dataclass(frozen=True)
class ScanFile:
    path: str  # the PDF
    encoding: str
    pages: int
    covers: int
    blank: int
    rotated: int
    page_images: tuple[str, ...]  # the embedded images, one file per page, for the floor


@dataclass(frozen=True)
class Corpus:
    root: Path
    files: tuple[ScanFile, ...]
    children_csv: Path

    @property
    def pages(self) -> int:
        return sum(f.pages for f in self.files)

    @property
    def page_images(self) -> list[Path]:
        return [Path(p) for f in self.files for p in f.page_images]

    def summary(self) -> dict[str, object]:
        by_encoding = {e: sum(f.pages for f in self.files if f.encoding == e) for e in ENCODINGS}
        return {"files": len(self.files), "pages": self.pages, "pages_by_encoding": by_encoding,
                "cover_sheets": sum(f.covers for f in self.files), "blank": sum(f.blank for f in self.files),
                "rotated": sum(f.rotated for f in self.files), "dpi": DPI, "paper": "A4"}


def nhs_number(stem: int) -> str:
    """A fictional ten-digit NHS number with a valid modulus-11 check digit."""
    while True:
        digits = f"{stem:09d}"[-9:]
        check = 11 - sum(int(d) * (10 - i) for i, d in enumerate(digits)) % 11
        if check == 11:
            check = 0
        if check != 10:
            return digits + str(check)
        stem += 1


def bench_children() -> list[BenchChild]:
    rng = random.Random(6)
    return [BenchChild(child_id=f"BN{100001 + i:06d}", given_names=given, family_name=rng.choice(_FAMILY),
                       date_of_birth=f"20{rng.randint(8, 21):02d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                       nhs_number=nhs_number(943400000 + i * 7919))
            for i, given in enumerate(_GIVEN)]


def write_children_csv(path: Path) -> Path:
    lines = ["child_id,given_names,family_name,date_of_birth,nhs_number,category,status,team"]
    lines += [f"{c.child_id},{c.given_names},{c.family_name},{c.date_of_birth},{c.nhs_number},cp,open,north"
              for c in bench_children()]
    path.write_text("\n".join(lines) + "\n")
    return path


# --- pages -------------------------------------------------------------------------------------


def _prose_lines(rng: random.Random, count: int, width_chars: int = 72) -> Iterator[str]:
    weights = [1.0 / (rank + 8) for rank in range(len(WORDS))]
    for _ in range(count):
        line: list[str] = []
        while sum(len(w) + 1 for w in line) < width_chars - 10:
            word = rng.choices(WORDS, weights)[0]
            if not line or rng.random() < 0.08:
                word = word.capitalize()
            line.append(word + ("." if rng.random() < 0.07 else "," if rng.random() < 0.05 else ""))
        yield " ".join(line)


def letter_page(rng: random.Random, child: BenchChild, doc_type: str, page_no: int) -> Image.Image:
    """A typed A4 page of a social-care document, greyscale, 300 dpi, like a printed original."""
    width, height = A4_PX
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    regular = ImageFont.truetype(FONT, round(11 * DPI / 72))
    bold = ImageFont.truetype(FONT_BOLD, round(15 * DPI / 72))
    x, y = DPI, round(0.9 * DPI)
    if page_no == 1:
        draw.text((x, y), TITLES[doc_type], fill=0, font=bold)
        y += round(0.45 * DPI)
        header = (f"Child: {child.given_names} {child.family_name}   Date of birth: {child.date_of_birth}",
                  (f"Child ID: {child.child_id}   NHS number: {child.nhs_number[:3]} {child.nhs_number[3:6]} "
                   f"{child.nhs_number[6:]}"), f"Date: {rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/2024")
        for line in header:
            draw.text((x, y), line, fill=0, font=regular)
            y += round(11 * DPI / 72 * 1.6)
        y += round(0.2 * DPI)
    step = round(11 * DPI / 72 * 1.55)
    lines = list(_prose_lines(rng, (height - y - DPI) // step))
    for line in lines:
        draw.text((x, y), line, fill=0, font=regular)
        y += step
    draw.text((width // 2 - 60, height - round(0.6 * DPI)), f"Page {page_no}", fill=0, font=regular)
    page.info["prose"] = "\n".join([*lines, f"Page {page_no}"])  # what a reader must get back
    return page


def blank_back(seed: int) -> Image.Image:
    """The blank reverse of a sheet as a duplex scanner sees it: paper with speckle."""
    return degrade(Image.new("L", A4_PX, 250), noise=0.0008, seed=seed)


def scanned(page: Image.Image, rng: random.Random, *, rotate: int = 0) -> Image.Image:
    return degrade(page, skew_deg=rng.uniform(-0.6, 0.6), noise=0.0015, blur=0.5, rotate=rotate,
                   seed=rng.randint(0, 2**31))


def _colourise(grey: Image.Image, rng: random.Random) -> Image.Image:
    """Cream paper, blue-black ink and a coloured letterhead band: a colour scan of a letter."""
    band = rng.choice([(0, 94, 162), (120, 30, 90), (0, 120, 80)])
    return colourise(grey, band=band, band_px=round(0.45 * DPI))


def encode(page: Image.Image, encoding: str, rng: random.Random) -> tuple[bytes, str]:
    """The bytes an MFD embeds for this page, and the file suffix they have on their own."""
    buf = io.BytesIO()
    if encoding == "grey_jpeg":
        page.convert("L").save(buf, "JPEG", quality=85, dpi=(DPI, DPI))
        return buf.getvalue(), ".jpg"
    if encoding == "ccitt_g4":
        bilevel = page.convert("L").point(lambda v: 255 if v > 150 else 0).convert("1", dither=Image.Dither.NONE)
        bilevel.save(buf, "TIFF", compression="group4", dpi=(DPI, DPI))
        return buf.getvalue(), ".tif"
    if encoding == "colour_jpeg":
        _colourise(page.convert("L"), rng).save(buf, "JPEG", quality=85, dpi=(DPI, DPI))
        return buf.getvalue(), ".jpg"
    raise ValueError(encoding)


# --- files -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageSpec:
    kind: str  # cover | text | blank
    doc: int  # which document of the file
    page_no: int = 0  # 1-based within the document
    rotate: int = 0  # counter-clockwise degrees the page was fed turned


def file_layout(pages: int, file_index: int) -> list[PageSpec]:
    """One or two documents behind cover sheets; some files have a blank back or a turned page."""
    docs = 2 if pages >= 8 else 1
    sizes = [pages // docs + (1 if i < pages % docs else 0) for i in range(docs)]
    specs: list[PageSpec] = []
    for doc, size in enumerate(sizes):
        specs.append(PageSpec("cover", doc))
        specs += [PageSpec("text", doc, n) for n in range(1, size)]
    texts = [i for i, s in enumerate(specs) if s.kind == "text" and s.page_no > 1]
    if texts and file_index % 2 == 0:
        i = texts[0]
        specs[i] = PageSpec("text", specs[i].doc, specs[i].page_no, rotate=90 if file_index % 4 == 0 else 180)
    if texts and file_index % 3 == 1 and not specs[texts[-1]].rotate:
        i = texts[-1]
        specs[i] = PageSpec("blank", specs[i].doc, specs[i].page_no)
    return specs


def _render(spec: PageSpec, child: BenchChild, doc_type: str, declared: int, rng: random.Random,
            cover_cache: dict[tuple[str, str, int], Image.Image]) -> Image.Image:
    if spec.kind == "cover":
        key = (child.child_id, doc_type, declared)
        if key not in cover_cache:
            sheet = CoverSheet(f"B-BENCH{len(cover_cache):03d}", (child.child_id,), doc_type, declared)
            cover_cache[key] = coversheet_page(sheet, dpi=DPI)
        return scanned(cover_cache[key], rng)
    if spec.kind == "blank":
        return blank_back(rng.randint(0, 2**31))
    return scanned(letter_page(rng, child, doc_type, spec.page_no), rng, rotate=spec.rotate)


def write_scan_file(out_dir: Path, name: str, specs: Sequence[PageSpec], encoding: str, seed: int,
                    cover_cache: dict[tuple[str, str, int], Image.Image], *, distinct_pages: int | None = None) -> ScanFile:
    """Render, encode and wrap one file; with `distinct_pages`, text pages repeat after that many."""
    rng = random.Random(seed)
    children, types = bench_children(), list(TITLES)
    docs = sorted({s.doc for s in specs})
    who = {d: children[(seed + d) % len(children)] for d in docs}
    what = {d: types[(seed + d) % len(types)] for d in docs}
    declared = {d: sum(1 for s in specs if s.doc == d and s.kind != "cover") for d in docs}
    image_dir = out_dir / "pages"
    image_dir.mkdir(parents=True, exist_ok=True)
    blobs, images, made = [], [], {}
    for n, spec in enumerate(specs):
        reuse = distinct_pages and spec.kind == "text" and spec.page_no > distinct_pages
        if reuse:
            blob, suffix = made[(spec.page_no - 1) % distinct_pages + 1]
        else:
            page = _render(spec, who[spec.doc], what[spec.doc], declared[spec.doc], rng, cover_cache)
            blob, suffix = encode(page, encoding, rng)
            if spec.kind == "text":
                made[spec.page_no] = (blob, suffix)
        image = image_dir / f"{name}-{n + 1:04d}{suffix}"
        image.write_bytes(blob)
        blobs.append(blob)
        images.append(str(image))
    pdf = out_dir / f"{name}.pdf"
    pdf.write_bytes(img2pdf.convert(blobs))
    return ScanFile(path=str(pdf), encoding=encoding, pages=len(specs),
                    covers=sum(s.kind == "cover" for s in specs), blank=sum(s.kind == "blank" for s in specs),
                    rotated=sum(bool(s.rotate) for s in specs), page_images=tuple(images))


def _cached(root: Path, key: dict[str, object]) -> Corpus | None:
    manifest = root / "manifest.json"
    if not manifest.exists():
        return None
    data = json.loads(manifest.read_text())
    if data.get("key") != key:
        return None
    files = tuple(ScanFile(**{**f, "page_images": tuple(f["page_images"])}) for f in data["files"])
    if not all(Path(f.path).exists() for f in files):
        return None
    return Corpus(root, files, Path(data["children_csv"]))


def _save(root: Path, key: dict[str, object], files: Sequence[ScanFile]) -> Corpus:
    children = write_children_csv(root / "children.csv")
    (root / "manifest.json").write_text(json.dumps(
        {"key": key, "children_csv": str(children), "files": [asdict(f) for f in files]}, indent=1))
    return Corpus(root, tuple(files), children)


def throughput_corpus(base: Path, pages: int, file_pages: int) -> Corpus:
    """`pages` pages in files of about `file_pages`, the three encodings in turn (at least one file each)."""
    key = {"version": VERSION, "pages": pages, "file_pages": file_pages}
    root = base / f"throughput-v{VERSION}-{pages}p-{file_pages}f"
    if (corpus := _cached(root, key)) is not None:
        return corpus
    root.mkdir(parents=True, exist_ok=True)
    count = max(3, round(pages / file_pages))
    sizes = [pages // count + (1 if i < pages % count else 0) for i in range(count)]
    cover_cache: dict[tuple[str, str, int], Image.Image] = {}
    files = [write_scan_file(root, f"batch-{i + 1:03d}-{ENCODINGS[i % 3]}", file_layout(size, i),
                             ENCODINGS[i % 3], seed=1000 + i, cover_cache=cover_cache)
             for i, size in enumerate(sizes)]
    return _save(root, key, files)


def single_document(base: Path, pages: int, *, distinct: int = 30) -> Corpus:
    """One greyscale document of `pages` pages behind one cover sheet (text repeats after `distinct`)."""
    key = {"version": VERSION, "document_pages": pages, "distinct": distinct}
    root = base / f"document-v{VERSION}-{pages}p"
    if (corpus := _cached(root, key)) is not None:
        return corpus
    root.mkdir(parents=True, exist_ok=True)
    specs = [PageSpec("cover", 0)] + [PageSpec("text", 0, n) for n in range(1, pages)]
    scan = write_scan_file(root, f"document-{pages}p", specs, "grey_jpeg", seed=77, cover_cache={},
                           distinct_pages=distinct)
    return _save(root, key, [scan])


DENSE_SKEW_DEG = 1.5


def dense_corpus(base: Path, pages: int, files: int = 3) -> Corpus:
    """Dense typed A4 pages where nothing can be skipped (issue 21): no cover sheets, blank backs
    or turned pages, grey JPEG at 300 dpi, each page skewed by +1.5 or -1.5 degrees in turn as a
    sheet fed a little crooked is. Beside each page image, its body text (`.txt`): what the OCR
    and the reading copy's text layer are scored against."""
    key = {"version": VERSION, "dense_pages": pages, "files": files, "skew": DENSE_SKEW_DEG}
    root = base / f"dense-v{VERSION}-{pages}p"
    if (corpus := _cached(root, key)) is not None:
        return corpus
    root.mkdir(parents=True, exist_ok=True)
    children, types = bench_children(), list(TITLES)
    sizes = [pages // files + (1 if i < pages % files else 0) for i in range(files)]
    scans, number = [], 0
    for f, size in enumerate(sizes):
        rng = random.Random(2100 + f)
        blobs, images = [], []
        for n in range(size):
            letter = letter_page(rng, children[f % len(children)], types[f % len(types)], n + 2)  # no header
            skew = DENSE_SKEW_DEG if number % 2 == 0 else -DENSE_SKEW_DEG
            page = degrade(letter, skew_deg=skew, noise=0.0015, blur=0.5, seed=rng.randint(0, 2**31))
            blob, suffix = encode(page, "grey_jpeg", rng)
            image = root / "pages" / f"dense-{f + 1}-{n + 1:03d}{suffix}"
            image.parent.mkdir(parents=True, exist_ok=True)
            image.write_bytes(blob)
            image.with_suffix(".txt").write_text(letter.info["prose"])
            blobs.append(blob)
            images.append(str(image))
            number += 1
        pdf = root / f"dense-{f + 1}.pdf"
        pdf.write_bytes(img2pdf.convert(blobs))
        scans.append(ScanFile(path=str(pdf), encoding="grey_jpeg", pages=size, covers=0, blank=0, rotated=0,
                              page_images=tuple(images)))
    return _save(root, key, scans)


def truth_text(scan: ScanFile) -> str:
    """The body text of a dense corpus file, page after page."""
    return "\n".join(Path(image).with_suffix(".txt").read_text() for image in scan.page_images)


# --- the oversized page: written as a stream, never held in memory ------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def huge_png(path: Path, side: int) -> Path:
    """A white 1-bit PNG of side x side pixels at 300 dpi (35000 px: ~117 in square)."""
    if path.exists():
        return path
    row = b"\x00" + b"\xff" * ((side + 7) // 8)
    squash = zlib.compressobj(9)
    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n")
        fh.write(_png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)))
        fh.write(_png_chunk(b"pHYs", struct.pack(">IIB", 11811, 11811, 1)))  # 300 dpi in px/m
        data = b"".join(squash.compress(row) for _ in range(side)) + squash.flush()
        fh.write(_png_chunk(b"IDAT", data))
        fh.write(_png_chunk(b"IEND", b""))
    return path


def huge_pdf(path: Path, side: int) -> Path:
    """An A4 PDF page holding one white 1-bit image of side x side pixels (Flate), ~4200 dpi."""
    if path.exists():
        return path
    import pikepdf

    row = b"\x00" * ((side + 7) // 8)  # 0 = white with /Decode [1 0]
    squash = zlib.compressobj(9)
    data = b"".join(squash.compress(row) for _ in range(side)) + squash.flush()
    pdf = pikepdf.new()
    image = pikepdf.Stream(pdf, data)
    image.stream_dict = pikepdf.Dictionary(Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Image, Width=side,
                                           Height=side, ColorSpace=pikepdf.Name.DeviceGray, BitsPerComponent=1,
                                           Filter=pikepdf.Name.FlateDecode, Decode=[1, 0])
    w, h = 595, 842
    content = pikepdf.Stream(pdf, f"q {w} 0 0 {h} 0 0 cm /Im0 Do Q".encode())
    page = pikepdf.Dictionary(Type=pikepdf.Name.Page, MediaBox=[0, 0, w, h], Contents=content,
                              Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image)))
    pdf.pages.append(pikepdf.Page(page))
    pdf.save(path)
    return path
