"""`escr watch` as business support run it: a real process, files arriving slowly, crashes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from escr.pages.coversheet import CoverSheet
from escr.record.database import Database
from escr.record.models import Batch, Document, Event
from tests.support.scans import coversheet_page, degrade, text_page, write_pdf, write_slowly

pytestmark = pytest.mark.ocr

A6 = (4.13, 5.83)
LETTER = ["Letter to the family", "Date: 2 April 2026", "NHS number 943 476 5919", "We will visit on Monday."]


def small_page(lines):
    return degrade(text_page(lines, dpi=300, size_inches=A6, font_pt=11), noise=0.0003, seed=3)


def start_watcher(home: Path) -> subprocess.Popen:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ESCR_") or k.startswith("ESCR_TEST_")},
           "ESCR_HOME": str(home), "ESCR_STABLE_SECONDS": "1.0", "ESCR_RESCAN_SECONDS": "2"}
    if os.environ.get("ESCR_TEST_DATABASE_URL"):
        env["ESCR_DATABASE_URL"] = os.environ["ESCR_TEST_DATABASE_URL"]
    return subprocess.Popen([sys.executable, "-m", "escr", "watch"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(condition: Callable[[], bool], limit_s: float = 240.0) -> None:
    """A bounded wait so a broken watcher fails the test instead of hanging it."""
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the watcher did not finish the work in time")
        time.sleep(0.5)


def count(db: Database, model) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_file_written_slowly_is_taken_only_when_complete(with_children, tmp_path):
    settings = with_children.settings
    scan = write_pdf([small_page(LETTER), small_page(LETTER[:2] + ["Second page of the letter."])],
                     tmp_path / "scan.pdf")
    watcher = start_watcher(settings.home)
    try:
        drop = settings.intake_dir / "bs.jones" / "mfd-1" / "scan_0001.pdf"
        drop.parent.mkdir(parents=True)
        write_slowly(scan.read_bytes(), drop, chunks=6, pause_s=0.4)  # slower than a poll, quicker than stable
        wait_for(lambda: count(with_children.db, Batch) == 1 and not drop.exists())
    finally:
        watcher.send_signal(signal.SIGTERM)
        _, stderr = watcher.communicate(timeout=120)
    assert watcher.returncode == 0, stderr
    assert not list(settings.quarantine_dir.rglob("*")), "a partial file was quarantined"
    with with_children.db.session() as session:
        batch = session.scalars(select(Batch)).one()
        assert (batch.operator, batch.device, batch.page_count) == ("bs.jones", "mfd-1", 2)
        doc = session.scalars(select(Document)).one()
        assert [c.child_id for c in doc.children] == ["AB123456"]
    for word in ("Amelia", "943 476 5919", "Whitfield"):  # no personal data in the log
        assert word not in stderr


def test_watcher_keeps_running_whatever_it_is_fed(services, tmp_path):
    settings = services.settings
    watcher = start_watcher(settings.home)
    try:
        folder = settings.intake_dir / "bs.jones"
        folder.mkdir(parents=True)
        (folder / "empty.pdf").write_bytes(b"")
        (folder / "notes.txt").write_text("not a scan")
        os.symlink("/etc/passwd", folder / "link.pdf")
        (settings.intake_dir / "root-level.pdf").write_bytes(write_pdf([small_page(LETTER)], tmp_path / "x.pdf").read_bytes())
        wait_for(lambda: len(list(settings.quarantine_dir.glob("*/*.reason.json"))) == 4)
        good = folder / "good.pdf"
        write_pdf([small_page(LETTER)], tmp_path / "good.pdf").rename(good)
        wait_for(lambda: count(services.db, Batch) == 1)
    finally:
        watcher.send_signal(signal.SIGTERM)
        watcher.communicate(timeout=120)
    codes = sorted(p.name.split(".reason")[0] for p in settings.quarantine_dir.glob("*/*.reason.json"))
    assert codes == ["empty.pdf", "link.pdf", "notes.txt", "root-level.pdf"]
    assert os.path.islink(next(settings.quarantine_dir.glob("*/link.pdf")))  # moved, never followed


def test_kill_9_at_random_points_loses_nothing_and_files_nothing_twice(with_children, tmp_path):
    settings, db = with_children.settings, with_children.db
    sheet = CoverSheet("B-CRASH001", ("AB123456",), "correspondence", 1)
    batch_pdf = write_pdf([coversheet_page(sheet, dpi=200), small_page(LETTER),
                           coversheet_page(CoverSheet("B-CRASH002", ("CD654321",), "referral", 1), dpi=200),
                           small_page(["Referral", "Date: 1 May 2026", "Concerns were raised."])],
                          tmp_path / "batch.pdf", dpi=[200, 300, 200, 300])
    letter_pdf = write_pdf([small_page(LETTER + ["Copy for the file."])], tmp_path / "letter.pdf")
    folder = settings.intake_dir / "bs.jones"
    folder.mkdir(parents=True)
    for src in (batch_pdf, letter_pdf):
        tmp = folder / f".{src.name}.part"
        tmp.write_bytes(src.read_bytes())
        tmp.rename(folder / src.name)

    rng = random.Random(20261122)
    for _ in range(5):
        watcher = start_watcher(settings.home)
        time.sleep(rng.uniform(1.0, 9.0))
        watcher.kill()
        watcher.wait()
    watcher = start_watcher(settings.home)
    try:
        wait_for(lambda: count(db, Batch) == 2 and not any(settings.processing_dir.rglob("*.pdf"))
                 and not any(folder.iterdir()))
    finally:
        watcher.send_signal(signal.SIGTERM)
        watcher.communicate(timeout=120)

    assert not list(settings.quarantine_dir.rglob("*.pdf"))
    with db.session() as session:
        docs = session.scalars(select(Document)).all()
        assert sorted(d.coversheet_batch_id or "-" for d in docs) == ["-", "B-CRASH001", "B-CRASH002"]
        filed = session.scalars(select(Event.document_id).where(Event.kind == "filed")).all()
        assert sorted(filed) == sorted(d.id for d in docs)  # each document filed exactly once
        referenced = {d.searchable_key for d in docs} | {d.manifest_key for d in docs} | {
            b.original_key for b in session.scalars(select(Batch))}
    # Nothing stored twice, nothing missing (anchors of the event chain, written after each filed
    # scan, are the store's own and belong to no document).
    stored = {key for key in with_children.store.iter_keys() if not key.startswith("anchors/")}
    assert stored == referenced
