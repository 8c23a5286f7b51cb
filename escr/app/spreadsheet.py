"""CSV as every export writes it: one place that keeps formulas out of a reader's spreadsheet.

A cell that a spreadsheet would run as a formula (starting =, +, -, @, tab or CR) is prefixed
with an apostrophe, so a team name, a reason or a log line typed as `=HYPERLINK(...)` is shown,
never run, when an auditor opens the export.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """The text of one cell; JSON for structures, an apostrophe before anything formula-like."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True, default=str)
    text = str(value)
    return "'" + text if text[:1] in FORMULA_STARTS else text


def csv_lines(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """The CSV a row at a time (for streaming a long log)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
    yield buf.getvalue()


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """The whole CSV as one string (for a short report)."""
    return "".join(csv_lines(header, rows))
