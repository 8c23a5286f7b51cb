"""Identifiers and dates found in a document's OCR text: NHS numbers, local child ids, dates.

Everything here only *finds* what is plainly written; nothing is guessed. An NHS number must
pass its modulus-11 check digit and is never "repaired" (an OCR "O" inside a digit run means
the number is not found, not that it is read as 0), and a date that does not exist on the
calendar is dropped rather than re-read month-first.

Why dates are parsed with targeted regexes rather than a general date library:
`dateparser.search.search_dates` and `dateutil.parser.parse(fuzzy=True)` are built to find
*something* date-like in free text, which is the wrong bias for OCR output of social-care
papers. On such text they turn case numbers, times, page numbers, ages and stray words
("May", "second", "now", "Sun") into dates, silently fill a missing day or year from the
current date, and pick day- or month-first per string, so "03/04/05" can come back as
4 March in one place and 3 April in another. A child's date of birth or a document date
that is wrong is worse than one that is missing. The patterns below accept only the forms
written on UK paper (DOMAIN.md), always read day-first, need a day, a month and a year,
resolve a two-digit year so the date is not in the future, and report exactly where each
date was found so that a person can check it against the image.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from escr.errors import ConfigError

DEFAULT_CHILD_ID_PATTERN = r"\b[A-Z]{2}\d{6}\b"
_MIN_YEAR = 1900
_MAX_YEAR = 2099
_LABEL_LOOKBACK = 60  # characters of the same line searched for a label before a date


@dataclass(frozen=True)
class Found:
    """An identifier, normalised, and the span of text it was read from."""

    value: str
    start: int
    end: int


@dataclass(frozen=True)
class FoundDate:
    """A calendar date, where it was written, and the label just before it if any."""

    value: date
    start: int
    end: int
    label: str | None = None


# --- NHS numbers -------------------------------------------------------------------------

_NHS_RE = re.compile(r"(?<!\d)(\d{3})[ -]?(\d{3})[ -]?(\d{4})(?!\d)")


def nhs_number_valid(digits: str) -> bool:
    """True for a 10-digit NHS number whose last digit is its modulus-11 check digit.

    Weights 10..2 on the first nine digits; check = 11 - (sum mod 11), where 11 means 0 and
    10 means the number can never be issued.
    """
    if len(digits) != 10 or not digits.isascii() or not digits.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])


def find_nhs_numbers(text: str) -> list[Found]:
    """NHS numbers written as 943 476 5919, 943-476-5919 or 9434765919 that pass the check."""
    found = []
    for m in _NHS_RE.finditer(text):
        digits = "".join(m.groups())
        if nhs_number_valid(digits):
            found.append(Found(digits, m.start(), m.end()))
    return found


# --- local child ids -----------------------------------------------------------------------


def compile_child_id_pattern(pattern: str) -> re.Pattern[str]:
    """The configured child-id regex, or a ConfigError saying it does not compile."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"child id pattern is not a valid regular expression: {exc}") from exc


def find_child_ids(text: str, pattern: str = DEFAULT_CHILD_ID_PATTERN) -> list[Found]:
    """Local child ids matching the configured pattern (a group named `id`, if any, is the id)."""
    regex = compile_child_id_pattern(pattern)
    found = []
    for m in regex.finditer(text):
        if "id" in regex.groupindex and m.group("id") is not None:
            value, start, end = m.group("id"), m.start("id"), m.end("id")
        else:
            value, start, end = m.group(0), m.start(), m.end()
        if value.strip():
            found.append(Found(value.strip(), start, end))
    return found


# --- dates ---------------------------------------------------------------------------------

_MONTH = (
    r"(?P<mon>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b\.?"
)
_MONTHS = {m: n for n, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
)}
_ORDINAL = r"(?:st|nd|rd|th)?"
_NO_DIGIT_BEFORE = r"(?<!\d)(?<!\d[./-])"
_NO_DIGIT_AFTER = r"(?!\d)(?![./-]\d)"

_DATE_PATTERNS = (
    # 14/06/05, 14/6/2005, 14.6.2005, 14-06-2005 (always day first)
    re.compile(
        _NO_DIGIT_BEFORE
        + r"(?P<d>\d{1,2})(?P<sep>[./-])(?P<m>\d{1,2})(?P=sep)(?P<y>\d{4}|\d{2})"
        + _NO_DIGIT_AFTER
    ),
    # 2005-06-14 (also 2005/06/14)
    re.compile(
        _NO_DIGIT_BEFORE
        + r"(?P<y>\d{4})(?P<sep>[./-])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})"
        + _NO_DIGIT_AFTER
    ),
    # 14 June 2005, 14th June 2005, 14th of June 2005, 14 Jun 05, 14-Jun-05
    re.compile(
        r"(?<!\d)(?P<d>\d{1,2})" + _ORDINAL + r"[ \t./-]*(?:of[ \t]+)?" + _MONTH
        + r"[ \t.,/-]*(?P<y>\d{4}|\d{2})(?!\d)",
        re.IGNORECASE,
    ),
    # June 14, 2005 / June 14th 2005 (four-digit year only: "June 14, 05" is too loose)
    re.compile(
        r"\b" + _MONTH + r"[ \t]+(?P<d>\d{1,2})" + _ORDINAL + r",?[ \t]+(?P<y>\d{4})(?!\d)",
        re.IGNORECASE,
    ),
)

# Labels, most specific first; each maps to the normalised label reported with the date.
_LABELS: tuple[tuple[str, str], ...] = (
    (r"date[ \t]+of[ \t]+birth|birth[ \t]*date|d[ \t]?\.?[ \t]?o[ \t]?\.?[ \t]?b\.?"
     r"|born(?:[ \t]+on)?", "dob"),
    (r"(?:date[ \t]+of[ \t]+)?next[ \t]+(?:meeting|review|conference|core[ \t]+group|visit)"
     r"(?:[ \t]+date)?|review[ \t]+due|due[ \t]+(?:date|by)", "next meeting"),
    (r"date[ \t]+of[ \t]+(?:the[ \t]+)?(?:meeting|conference|review|discussion"
     r"|strategy[ \t]+discussion|core[ \t]+group(?:[ \t]+meeting)?|visit)"
     r"|(?:meeting|conference|review|discussion|visit)[ \t]+date", "meeting date"),
    (r"date[ \t]+of[ \t]+(?:the[ \t]+)?(?P<what>referral|report|assessment|order|letter"
     r"|hearing|incident|plan)|(?P<what2>referral|report|assessment|order|letter|hearing"
     r"|incident|plan)[ \t]+date", "{what} date"),
    (r"date[ \t]+(?P<how>received|completed|signed|sent|issued|written)", "date {how}"),
    (r"dated", "dated"),
    (r"date", "date"),
)
_WEEKDAY = r"(?:(?:mon|tues?|wed(?:nes)?|thu(?:rs)?|fri|sat(?:ur)?|sun)(?:day)?\.?,?[ \t]*)?"
_LABEL_RES = tuple(
    (re.compile(r"(?<![a-z])(?:" + rx + r")[ \t:.|=\-\u2013\u2014]*(?:on[ \t]+)?" + _WEEKDAY + r"$",
                re.IGNORECASE), name)
    for rx, name in _LABELS
)


def _full_year(yy: str, day: int, month: int, today: date) -> int:
    """A two-digit year as the latest century that does not put the date after `today`."""
    if len(yy) == 4:
        return int(yy)
    year = today.year // 100 * 100 + int(yy)
    try:
        if date(year, month, day) > today:
            year -= 100
    except ValueError:
        pass  # 29 February in a non-leap year: the date is dropped by the caller anyway
    return year


def _label_before(text: str, start: int) -> str | None:
    """The label written on the same line just before `start`, normalised, if there is one."""
    line_start = text.rfind("\n", 0, start) + 1
    prefix = text[max(line_start, start - _LABEL_LOOKBACK):start]
    for regex, name in _LABEL_RES:
        m = regex.search(prefix)
        if m:
            groups = {k: v.lower() for k, v in m.groupdict().items() if v}
            what = groups.get("what") or groups.get("what2", "")
            return name.format(what=what, how=groups.get("how", ""))
    return None


def _candidates(text: str, today: date) -> Iterator[FoundDate]:
    for regex in _DATE_PATTERNS:
        for m in regex.finditer(text):
            day = int(m.group("d"))
            month = _MONTHS[m.group("mon")[:3].lower()] if "mon" in regex.groupindex else int(
                m.group("m"))
            year = _full_year(m.group("y"), day, month, today)
            if not _MIN_YEAR <= year <= _MAX_YEAR:
                continue
            try:
                value = date(year, month, day)
            except ValueError:
                continue  # 31/02/2020, 06/14/2005: not re-read another way
            yield FoundDate(value, m.start(), m.end())


def find_dates(text: str, *, today: date) -> list[FoundDate]:
    """Every full date (day, month, year) written in a UK form, in text order, with labels."""
    chosen: list[FoundDate] = []
    for cand in sorted(_candidates(text, today), key=lambda f: (f.start, -(f.end - f.start))):
        if chosen and cand.start < chosen[-1].end:
            continue  # overlaps a longer or earlier reading of the same characters
        chosen.append(cand)
    return [
        FoundDate(f.value, f.start, f.end, _label_before(text, f.start)) for f in chosen
    ]


def find_dates_of_birth(text: str, *, today: date) -> list[FoundDate]:
    """Dates labelled DOB, D.O.B., Date of birth or Born just before them on the same line.

    A labelled date after `today` is not a date of birth (an expected date of delivery, or a
    misread) and is left out.
    """
    return [f for f in find_dates(text, today=today) if f.label == "dob" and f.value <= today]
