"""Issue 19, timeliness (seed 001 s. 9, seed 003 s. 5): the office's "received" date stamp on a
cover sheet is read at intake, whichever way up the sheet was scanned, and becomes the batch's
arrival date; an empty box, a date after the scan or a person's own entry are left alone."""

from __future__ import annotations

from datetime import date

import pytest
from PIL import Image, ImageDraw, ImageFont

from escr.app import keeping
from escr.pages.coversheet import CoverSheet
from escr.pages.ocr import parse_stamp_date
from escr.record.models import Event, PaperArrival
from tests.support.intake import ingest
from tests.support.records import add_people
from tests.support.scans import coversheet_page, text_page, write_pdf

BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def stamped(sheet: CoverSheet, text: str | None, *, dpi: int = 300, turn: int = 0) -> Image.Image:
    """The printed sheet with an ink stamp pressed slightly crooked into its "received" box."""
    page = coversheet_page(sheet, dpi=dpi)
    if text:
        s = dpi / 25.4
        ink = Image.new("L", (int(62 * s), int(14 * s)), 0)
        draw = ImageDraw.Draw(ink)
        draw.rectangle((0, 0, ink.width - 1, ink.height - 1), outline=200, width=int(0.6 * s))
        draw.text((int(3 * s), int(3.5 * s)), text, fill=200, font=ImageFont.truetype(BOLD, int(5.5 * s)))
        ink = ink.rotate(3, expand=True)
        page.paste(Image.new("L", ink.size, 70), (int(114 * s), int(95 * s)), ink)
    return page.rotate(turn, expand=True, fillcolor=255) if turn else page


@pytest.mark.parametrize("text, expected", [("RECEIVED 12 MAR 2026", date(2026, 3, 12)), ("12/03/26", date(2026, 3, 12)),
                                            ("3.11.2025", date(2025, 11, 3)), ("31/02/2026", None), ("", None)])
def test_stamp_dates_are_read_the_uk_way_and_never_guessed(text, expected):
    assert parse_stamp_date(text) == expected


def test_a_stamp_on_a_sheet_scanned_upside_down_becomes_the_batch_arrival(with_children, tmp_path):
    services = with_children
    today = date.today()
    stamp = f"{today.day} {today:%b %Y}".upper()
    upside_down = CoverSheet("B-STAMP001", ("AB123456",), "referral", 1)
    blank = CoverSheet("B-STAMP002", ("AB123456",), "referral", 1)
    page = text_page(["Referral to Children's Social Care", "Child: Amelia Whitfield"], dpi=300)
    pdf = write_pdf([stamped(upside_down, stamp, turn=180), page, stamped(blank, None), page], tmp_path / "two.pdf")
    result = ingest(services, pdf)
    assert len(result.documents) == 2
    with services.db.session() as session:
        arrival = session.get(PaperArrival, "B-STAMP001")
        assert arrival is not None and (arrival.arrived_on, arrival.source) == (today, "cover_stamp")
        assert session.get(PaperArrival, "B-STAMP002") is None  # nothing stamped: business support enter it
        event = session.query(Event).filter(Event.kind == "paper_arrival").one()
        assert event.outcome == "cover_stamp" and event.detail["parameters"]["ref"] == "B-STAMP001"
    people = add_people(services, [("bs.jones", "business_support", [])])
    assert keeping.Keeping(services, people["bs.jones"]).recent_arrivals()[0]["source"] == "cover_stamp"


def test_a_persons_entry_is_never_overwritten_by_a_stamp(with_children, tmp_path):
    services = with_children
    people = add_people(services, [("bs.jones", "business_support", [])])
    keeping.Keeping(services, people["bs.jones"]).record_arrival("B-STAMP003", date(2026, 1, 5))
    sheet = CoverSheet("B-STAMP003", ("AB123456",), "referral", 1)
    page = text_page(["Referral to Children's Social Care"], dpi=300)
    ingest(services, write_pdf([stamped(sheet, "02 JAN 2026", turn=90), page], tmp_path / "one.pdf"))
    with services.db.session() as session:
        arrival = session.get(PaperArrival, "B-STAMP003")
        assert (arrival.arrived_on, arrival.source) == (date(2026, 1, 5), "officer")
        assert session.query(Event).filter(Event.kind == "paper_arrival").order_by(Event.id.desc()).first().outcome \
            == "cover_stamp_not_used"
