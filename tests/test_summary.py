"""The chronology's "From" column: whom a document is from, as its paper says, never OCR noise."""

from __future__ import annotations

import pytest

from escr.indexing.summary import sender

LETTER = """Hillcrest Primary School
Church Lane, Northtown
9 March 2026
Attendance concerns for AB123456
Dear Ms Ahmed,
Her attendance has fallen this term.
Yours sincerely,
Mrs J. O'Neill-Smith
Headteacher"""


def test_a_letter_is_from_whoever_signed_it():
    assert sender(LETTER) == "Mrs J. O'Neill-Smith"


@pytest.mark.parametrize(("text", "expected"), [
    ("Referral form\nReferrer: PC 4471 Dawson, Northshire Police\nChild: AB123456", "PC 4471 Dawson, Northshire Police"),
    ("Northshire Constabulary\nDomestic abuse notification\nDate: 1 March 2026", "Northshire Constabulary"),
    ("Minutes of the core group\nCompleted by: Social Worker, North Team", "Social Worker, North Team"),
])
def test_the_paper_says_who_it_is_from(text, expected):
    assert sender(text) == expected


@pytest.mark.parametrize("garbled", [
    "HILLCREST PR1MARY SCH0OL\nAttendance concerns\nThe pupil was absent.",  # digits inside words: a logo
    "~ |= ee School « & —-\nAttendance concerns\nThe pupil was absent.",  # specks and rules beside one word
    "From: ;:-' ~~ |l| Il\nAttendance concerns",
    "Report\nYours sincerely,\n— ~~ = | ee\n",
])
def test_ocr_noise_is_not_shown_as_the_sender(garbled):
    assert sender(garbled) is None
