"""A document's one-line summary and its sender, read from the top of its first page's OCR text.

The chronology reads like one: date, type, from whom and a line saying what the document is.
The title is the first line that says something (not a date, an id or a form label alone); the
sender is what the paper says it is from ("From:", "Referrer:", "Completed by:", a letter's
signature after "Yours sincerely") or, failing that, an agency named in its heading (a school,
the police, a hospital, a court). Neither is guessed beyond that: None when the text does not say,
or when what it says is not readable words (OCR of a logo or a stamp, "SCH0OL |~ ~ ee").
"""

from __future__ import annotations

import re

TITLE_CHARS = 90
SENDER_CHARS = 80
HEAD_LINES = 6  # an agency named in the heading: the letterhead, within the first lines

_LABELLED = re.compile(
    r"^\s*(?:from|sender|sent\s+by|referrer(?:'s\s+name)?|referred\s+by|name\s+of\s+referrer|author|"
    r"prepared\s+by|completed\s+by|written\s+by|report(?:ed)?\s+by|officer(?:\s+in\s+charge)?|"
    r"social\s+worker|issued\s+by)\s*[:\-–]\s*(.{3,})$", re.IGNORECASE)
_CLOSING = re.compile(r"^\s*(?:yours\s+(?:sincerely|faithfully)|kind\s+regards|best\s+wishes|signed)\b[\s,.:]*$",
                      re.IGNORECASE)
_AGENCY = re.compile(
    r"\b(?:police|constabulary|school|academy|college|nursery|nhs|hospital|surgery|health\s+(?:centre|visitor)|"
    r"camhs|trust|court|cafcass|council|housing|probation|gp)\b", re.IGNORECASE)
_NOT_A_TITLE = re.compile(
    r"^\s*(?:date|dob|d\.o\.b|date\s+of\s+birth|nhs\s+(?:no|number)|child(?:'s)?\s+(?:id|name)?|ref(?:erence)?|"
    r"our\s+ref|your\s+ref|page\s+\d|tel|telephone|email)\b\s*[:\-]?", re.IGNORECASE)
_LETTERS = re.compile(r"[A-Za-z]")
_WORD = re.compile(r"^[A-Za-z][A-Za-z'’.&-]*[A-Za-z.]$|^[A-Z]$|^&$")
_DIGITS_IN_WORD = re.compile(r"[A-Za-z]\d|\d[A-Za-z]")
_DOCUMENT_WORD = re.compile(r"\b(?:report|information|referral|assessment|minutes|plan|letter|form|summary|review|"
                            r"order|notes?|statement|record)\b", re.IGNORECASE)


def _lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in (text or "").splitlines() if line.strip()]


def _readable(text: str) -> bool:
    """Mostly words: at least two of three parts read as words, none mixes letters and digits the
    way OCR of a logo does ("SCH0OL"), and a word of three letters or more is there at all."""
    parts = [p.strip(",;:()") for p in text.split()]
    parts = [p for p in parts if p]
    if not parts or any(_DIGITS_IN_WORD.search(p) for p in parts):
        return False
    words = [p for p in parts if _WORD.match(p)]
    return 3 * len(words) >= 2 * len(parts) and any(len(w) >= 3 for w in words)


def _cut(text: str, limit: int) -> str:
    text = text.strip(" ,;:-")
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _letterhead(line: str) -> bool:
    """A short heading naming an agency (a school, the police, a trust), not a sentence."""
    return bool(_AGENCY.search(line)) and not _DOCUMENT_WORD.search(line) and len(line.split()) <= 8 \
        and not line.endswith(".") \
        and not _NOT_A_TITLE.match(line) and not _LABELLED.match(line)


def title(text: str) -> str | None:
    """The first line that says what the document is (past a letterhead, unless that is all)."""
    found = [line for line in _lines(text)[:12]
             if len(_LETTERS.findall(line)) >= 3 and not _NOT_A_TITLE.match(line) and not _LABELLED.match(line)]
    for line in found:
        if not _letterhead(line) or len(found) == 1:
            return _cut(line, TITLE_CHARS)
    return _cut(found[0], TITLE_CHARS) if found else None


def sender(text: str) -> str | None:
    """Whom the document is from, when the paper says so."""
    lines = _lines(text)
    for line in lines:
        m = _LABELLED.match(line)
        if m and _readable(m.group(1)):
            return _cut(m.group(1), SENDER_CHARS)
    for i, line in enumerate(lines[:-1]):
        if _CLOSING.match(line) and _readable(lines[i + 1]):
            return _cut(lines[i + 1], SENDER_CHARS)
    heading = title(text)
    for line in lines[:HEAD_LINES]:
        if _letterhead(line) and _readable(line) and _cut(line, TITLE_CHARS) != heading:
            return _cut(line, SENDER_CHARS)
    return None
