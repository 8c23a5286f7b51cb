"""NHS numbers, child ids and dates as they are written on UK social-care paper."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from escr.errors import ConfigError
from escr.indexing.identifiers import (
    find_child_ids,
    find_dates,
    find_dates_of_birth,
    find_nhs_numbers,
    nhs_number_valid,
)

TODAY = date(2025, 3, 20)


def _with_check_digit(nine: str) -> str | None:
    total = sum(int(d) * w for d, w in zip(nine, range(10, 1, -1), strict=True))
    check = (11 - total % 11) % 11
    return None if check == 10 else nine + str(check)


# --- NHS numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["9434765919", "9434765870", "4010232137"])
def test_published_and_fixture_nhs_numbers_are_valid(number: str) -> None:
    assert nhs_number_valid(number)


@pytest.mark.parametrize(
    "number",
    ["9434765918", "943476591", "94347659190", "943476591O", "", "abcdefghij", "943 476 5919"],
)
def test_wrong_check_digit_or_shape_is_invalid(number: str) -> None:
    assert not nhs_number_valid(number)


def test_check_digit_of_ten_means_no_valid_number() -> None:
    # 123456789x: weighted sum 210, 210 mod 11 = 1, 11 - 1 = 10: never issued, whatever x is.
    assert not any(nhs_number_valid(f"123456789{d}") for d in range(10))


def test_check_value_eleven_means_check_digit_zero() -> None:
    # 000000000 sums to 0, so 11 - 0 = 11, written as 0.
    assert nhs_number_valid("0000000000")
    assert not nhs_number_valid("0000000001")


@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_every_number_with_its_check_digit_passes(nine: str) -> None:
    number = _with_check_digit(nine)
    if number is not None:
        assert nhs_number_valid(number)
        assert [f.value for f in find_nhs_numbers(f"NHS No: {number}")] == [number]


@given(st.text(alphabet="0123456789", min_size=9, max_size=9),
       st.integers(0, 9), st.integers(1, 9))
def test_every_single_digit_change_fails(nine: str, position: int, delta: int) -> None:
    number = _with_check_digit(nine)
    if number is None:
        return
    changed = number[:position] + str((int(number[position]) + delta) % 10) + number[position + 1:]
    assert not nhs_number_valid(changed)
    assert find_nhs_numbers(f"NHS No: {changed}") == []


def test_nhs_numbers_found_in_all_written_forms_with_spans() -> None:
    text = "NHS: 943 476 5919. Also 943-476-5919 and 9434765919; bad 943 476 5918."
    found = find_nhs_numbers(text)
    assert [f.value for f in found] == ["9434765919"] * 3
    assert [text[f.start:f.end] for f in found] == ["943 476 5919", "943-476-5919", "9434765919"]


def test_ocr_letter_o_in_a_digit_run_is_not_corrected() -> None:
    # 9434765919 with 0-like letters would be a guess; nothing is found.
    assert find_nhs_numbers("NHS no 943 476 59l9 / 94347659I9 / 4O10232137") == []


def test_digits_inside_a_longer_number_are_not_an_nhs_number() -> None:
    assert find_nhs_numbers("ref 19434765919 and 94347659190") == []


# --- child ids -----------------------------------------------------------------------------


def test_child_ids_found_with_the_default_pattern() -> None:
    text = "Child ID: AB123456 (sibling CD654321); not ab123456, XAB123456 or AB1234567"
    assert [f.value for f in find_child_ids(text, r"\b[A-Z]{2}\d{6}\b")] == ["AB123456", "CD654321"]


def test_child_id_pattern_is_configuration() -> None:
    text = "Mosaic person ref: P-0042117, case 12"
    found = find_child_ids(text, r"\bP-\d{7}\b")
    assert [(f.value, text[f.start:f.end]) for f in found] == [("P-0042117", "P-0042117")]


def test_named_group_id_is_the_value() -> None:
    found = find_child_ids("LCS ID 556677 and 123", r"LCS ID (?P<id>\d{6})")
    assert [f.value for f in found] == ["556677"]


def test_bad_child_id_pattern_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="child id pattern"):
        find_child_ids("AB123456", r"[A-Z{2")


# --- dates ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("14/06/05", date(2005, 6, 14)),
        ("14/6/2005", date(2005, 6, 14)),
        ("14.6.2005", date(2005, 6, 14)),
        ("14-06-2005", date(2005, 6, 14)),
        ("14 June 2005", date(2005, 6, 14)),
        ("14th June 2005", date(2005, 6, 14)),
        ("14th of June 2005", date(2005, 6, 14)),
        ("14 Jun 05", date(2005, 6, 14)),
        ("14-Jun-05", date(2005, 6, 14)),
        ("June 14, 2005", date(2005, 6, 14)),
        ("2005-06-14", date(2005, 6, 14)),
        ("1st Sept 2024", date(2024, 9, 1)),
        ("2 MAY 2019", date(2019, 5, 2)),
    ],
)
def test_uk_date_forms(written: str, expected: date) -> None:
    text = f"Seen at home on {written}, with mother."
    found = find_dates(text, today=TODAY)
    assert [f.value for f in found] == [expected]
    assert text[found[0].start:found[0].end].rstrip(".") == written


def test_numeric_dates_are_always_day_first() -> None:
    # 03/04/05 is 3 April 2005 in the UK, never 4 March.
    assert [f.value for f in find_dates("on 03/04/05", today=TODAY)] == [date(2005, 4, 3)]


def test_month_first_numeric_date_is_dropped_not_reinterpreted() -> None:
    assert find_dates("US form date 06/14/2005", today=TODAY) == []


@pytest.mark.parametrize("impossible", ["31/02/2020", "29/02/2023", "00/01/2020", "12/13/2020"])
def test_impossible_dates_are_dropped(impossible: str) -> None:
    assert find_dates(f"Date: {impossible}", today=TODAY) == []


def test_leap_day_is_kept() -> None:
    assert [f.value for f in find_dates("29/02/2024", today=TODAY)] == [date(2024, 2, 29)]


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("14/06/05", date(2005, 6, 14)),
        ("20/03/25", date(2025, 3, 20)),  # today itself
        ("21/03/25", date(1925, 3, 21)),  # tomorrow: the previous century
        ("01/01/30", date(1930, 1, 1)),
        ("14 Jun 99", date(1999, 6, 14)),
    ],
)
def test_two_digit_years_are_never_in_the_future(written: str, expected: date) -> None:
    assert [f.value for f in find_dates(written, today=TODAY)] == [expected]


def test_numbers_that_are_not_dates_are_ignored() -> None:
    text = "Room 14.30, IP 192.168.1.10, version 1.2.3, score 3/4, phone 01632 960001, 12/2020"
    assert find_dates(text, today=TODAY) == []


def test_dates_come_in_text_order_with_labels() -> None:
    text = (
        "Date: 12/03/2025\n"
        "Date of meeting: 3rd March 2025\n"
        "Date of next meeting - 2025-06-03\n"
        "Dated 1 Feb 2025; seen 2/2/2025\n"
    )
    found = find_dates(text, today=TODAY)
    assert [(f.value, f.label) for f in found] == [
        (date(2025, 3, 12), "date"),
        (date(2025, 3, 3), "meeting date"),
        (date(2025, 6, 3), "next meeting"),
        (date(2025, 2, 1), "dated"),
        (date(2025, 2, 2), None),
    ]


@pytest.mark.parametrize(
    "line",
    [
        "DOB: 14/06/2015",
        "D.O.B. 14.6.2015",
        "d.o.b 14 June 2015",
        "Date of birth - 14th June 2015",
        "Date of Birth:\t14/06/15",
        "Born 14 Jun 2015",
        "She was born on 14/06/2015 in Leeds",
        "Name: Amelia Whitfield | DOB | 14-06-2015",
    ],
)
def test_dates_of_birth_by_label(line: str) -> None:
    found = find_dates_of_birth(f"Child details\n{line}\n", today=TODAY)
    assert [(f.value, f.label) for f in found] == [(date(2015, 6, 14), "dob")]


def test_dob_label_on_the_line_above_does_not_count() -> None:
    assert find_dates_of_birth("Date of birth:\n14/06/2015", today=TODAY) == []


def test_unlabelled_and_other_labelled_dates_are_not_dates_of_birth() -> None:
    text = "Date: 14/06/2015  Update: 1/1/2020  14 June 2015"
    assert find_dates_of_birth(text, today=TODAY) == []
    assert [f.label for f in find_dates(text, today=TODAY)] == ["date", None, None]


def test_future_date_labelled_dob_is_not_a_date_of_birth() -> None:
    assert find_dates_of_birth("DOB: 01/09/2025 (expected)", today=TODAY) == []
