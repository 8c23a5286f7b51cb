"""OCR slots: pages are read in child processes that keep Tesseract loaded, and a child that
dies or hangs costs its one page, never the intake (escr.pages.slots)."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from escr.errors import InputRejected, OcrError
from escr.pages.ocr import OcrPage, PageJob
from escr.pages.slots import OcrSlots
from escr.settings import OcrSettings
from tests.support.scans import text_page, write_pdf

SETTINGS = OcrSettings()
LINES = ["Referral to Childrens Services", "The family attended the review meeting."]


@pytest.fixture
def slots() -> OcrSlots:
    pool = OcrSlots()
    yield pool
    pool.close()


@pytest.fixture
def letter(tmp_path: Path) -> PageJob:
    pdf = write_pdf([text_page(LINES, dpi=200, size_inches=(5.8, 4.1), font_pt=11, margin_inches=0.5)],
                    tmp_path / "letter.pdf", dpi=200)
    return PageJob(pdf, "application/pdf", 0, 200)


def _hanging_page(tmp_path: Path) -> PageJob:
    """A page whose image never arrives: reading it blocks until someone writes to the pipe."""
    fifo = tmp_path / "page.png"
    os.mkfifo(fifo)
    return PageJob(fifo, "image/png", 0, 200)


def _read_in_background(slots: OcrSlots, job: PageJob, settings: OcrSettings) -> dict[str, object]:
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["page"] = slots.read(job, settings)
        except OcrError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    outcome["thread"] = thread
    return outcome


@pytest.mark.ocr
def test_a_page_whose_ocr_process_dies_fails_alone_and_the_next_page_is_read(
        slots: OcrSlots, letter: PageJob, tmp_path: Path) -> None:
    slots.warm(1, SETTINGS)
    [child] = slots.pids()
    hanging = _hanging_page(tmp_path)
    outcome = _read_in_background(slots, hanging, SETTINGS)
    with open(hanging.path, "wb"):  # returns once the child has opened the page: it is reading it
        os.kill(child, signal.SIGKILL)
        outcome["thread"].join()  # type: ignore[attr-defined]
    error = outcome["error"]
    assert isinstance(error, OcrError) and error.code == "ocr_crashed"
    assert "page 1" in error.message
    page = slots.read(letter, SETTINGS)
    assert isinstance(page, OcrPage) and "family attended" in page.text
    assert child not in slots.pids()


@pytest.mark.ocr
def test_a_page_that_hangs_is_stopped_as_a_timeout_and_its_slot_replaced(
        slots: OcrSlots, letter: PageJob, tmp_path: Path) -> None:
    quick = OcrSettings(page_timeout_s=0)
    with pytest.raises(OcrError) as err:
        slots.read(_hanging_page(tmp_path), quick)
    assert err.value.code == "ocr_timeout"
    assert "family attended" in slots.read(letter, SETTINGS).text


@pytest.mark.ocr
def test_a_page_refused_in_the_child_reaches_the_intake_with_its_reason(slots: OcrSlots, letter: PageJob) -> None:
    missing = PageJob(letter.path, letter.media_type, 3, letter.dpi)
    with pytest.raises(InputRejected) as err:
        slots.read(missing, SETTINGS)
    assert err.value.code == "page_missing"
    assert err.value.action  # what business support should do travels with it


@pytest.mark.ocr
def test_slots_read_at_once_use_one_child_each_and_are_kept(slots: OcrSlots, letter: PageJob) -> None:
    slots.warm(2, SETTINGS)
    before = sorted(slots.pids())
    readers = [_read_in_background(slots, letter, SETTINGS) for _ in range(2)]
    for outcome in readers:
        outcome["thread"].join()  # type: ignore[attr-defined]
        assert "family attended" in outcome["page"].text  # type: ignore[attr-defined]
    assert sorted(slots.pids()) == before


@pytest.mark.ocr
def test_ctrl_c_or_a_service_stop_leaves_the_page_in_hand_to_finish(slots: OcrSlots, letter: PageJob) -> None:
    """The watcher finishes the files in hand when stopped; its slots must not die under it."""
    slots.read(letter, SETTINGS)  # the child is up and serving
    [child] = slots.pids()
    for sig in (signal.SIGINT, signal.SIGTERM):
        os.kill(child, sig)
    assert "family attended" in slots.read(letter, SETTINGS).text
    assert slots.pids() == [child]
