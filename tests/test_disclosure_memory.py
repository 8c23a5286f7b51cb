"""A long disclosure bundle exports within the memory of a short one (issue 18): the bundle is
written page by page, as intake reads a scan page by page (bench/memory.py: the peak for 300
pages should be the peak for 30).

Each export runs in a fresh process so that its own peak (VmHWM) is measurable, as
tests/test_preflight.py measures preflight. The documents are built directly - a reading copy of
noisy synthetic scans with a text layer, put in the real store, and rows in the real database -
because 300 OCRed pages would take far longer and OCR is not what is measured.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

from escr.record.models import Document
from escr.storage.objectstore import content_key
from tests.support.records import file_document
from tests.support.web import World, open_world
from tests.test_disclosure import officer

CHILD = "AB123457"
A4 = (595.0, 842.0)


@pytest.fixture(scope="module")
def world(tmp_path_factory, pytestconfig, postgres_server) -> Iterator[World]:
    yield from open_world(tmp_path_factory, pytestconfig, postgres_server, "disclosure_memory")


def reading_copy(path: Path, pages: int) -> Path:
    """A reading copy of `pages` scanned-looking pages (grey noise, so each re-rendered page is a
    JPEG of some hundreds of kilobytes) with a text layer of a few lines on each."""
    scan = Image.effect_noise((620, 877), 40).point(lambda v: min(255, v + 110)).convert("L")
    draw = ImageDraw.Draw(scan)
    for i in range(6):
        draw.text((60, 80 + 40 * i), f"Family support note, line {i}", fill=0)
    image = ImageReader(scan)
    pdf = canvas.Canvas(str(path), pagesize=A4, pageCompression=1)
    for n in range(1, pages + 1):
        pdf.drawImage(image, 0, 0, width=A4[0], height=A4[1])
        text = pdf.beginText(60, A4[1] - 80)
        text.setTextRenderMode(3)
        text.setFont("Helvetica", 11)
        text.textLine(f"Page {n} of the record of Oliver Whitfield")
        pdf.drawText(text)
        pdf.showPage()
    pdf.save()
    return path


def verified_document(world: World, pages: int) -> str:
    pdf = reading_copy(Path(world.home or ".") / f"long-{pages}.pdf", pages)
    sha = hashlib.sha256(pdf.read_bytes()).hexdigest()
    stored = world.services.store.put_file(content_key("searchable", sha, ".pdf"), pdf, sha256=sha,
                                           content_type="application/pdf")
    doc_id = file_document(world.services, [CHILD], doc_type="correspondence",
                           verified_at=datetime(2024, 1, 9, 10, 0, tzinfo=UTC))
    with world.services.db.session() as session:
        doc = session.get(Document, doc_id)
        assert doc is not None
        doc.searchable_key, doc.searchable_sha256 = stored.key, sha
        doc.page_count = doc.declared_pages = pages
        doc.last_page = pages - 1
    return doc_id


def approved_bundle(world: World, doc_id: str) -> int:
    one, two = officer(world, "dis.one"), officer(world, "dis.two")
    rid = int(one.open_request(requester="Oliver Whitfield", relationship="the child himself", basis="care_leaver",
                               child_ids=[CHILD], document_ids=[doc_id])["id"])
    one.redact(rid, doc_id, reason="third_party", page=1, box=(0.05, 0.05, 0.6, 0.12))
    one.submit(rid, "dis.two")
    two.review_document(rid, doc_id)
    two.approve(rid)
    return rid


def peak_of_export(world: World, rid: int) -> tuple[int, int]:
    """(bundle pages, peak resident memory in MB) of one export in a fresh process."""
    settings = world.services.settings
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from sqlalchemy import select
        from escr.app.access import Principal, Role
        from escr.app.disclosure import Disclosures
        from escr.record.models import User
        from escr.services import open_services
        from escr.settings import load_settings
        services = open_services(load_settings(home=Path({str(settings.home)!r}),
                                               database_url={settings.database_url!r}))
        with services.db.session() as session:
            user = session.scalars(select(User).where(User.username == "dis.one")).one()
            who = Principal(user.id, user.username, user.display_name, Role(user.role), third_party=True)
        exported = Disclosures(services, who).export({rid})
        # VmHWM is this process image's own peak; ru_maxrss would include the forking parent's.
        hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
        print(exported["bundle_pages"], int(hwm.split()[1]) // 1024)
        """
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=root)
    pages, peak = out.stdout.split()[-2:]
    return int(pages), int(peak)


def test_a_300_page_bundle_exports_within_the_memory_of_a_30_page_one(world):
    short, long = verified_document(world, 30), verified_document(world, 300)
    short_pages, short_peak = peak_of_export(world, approved_bundle(world, short))
    long_pages, long_peak = peak_of_export(world, approved_bundle(world, long))
    print(f"peak memory of an export: {short_pages} pages {short_peak} MB, {long_pages} pages {long_peak} MB")
    assert short_pages >= 31 and long_pages >= 301  # the front matter, then every page
    # Streamed: the long bundle's pages (each a JPEG of a few hundred kB) are never all held.
    assert long_peak <= short_peak + 25, f"30 pages peaked at {short_peak} MB, 300 pages at {long_peak} MB"
