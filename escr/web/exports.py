"""CSV exports of the access log and of a document's provenance, streamed row by row.

Cells that a spreadsheet would run as a formula (starting =, +, -, @, tab or CR) are prefixed
with an apostrophe, so an exported log cannot carry a formula into an auditor's spreadsheet.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from fastapi.responses import StreamingResponse

ACCESS_LOG_COLUMNS = ("seq", "at", "actor", "action", "child_id", "document_id", "outcome", "purpose", "basis",
                      "break_glass_id", "parameters", "hash")
PROVENANCE_COLUMNS = ("seq", "at", "kind", "actor", "outcome", "document_id", "detail", "hash", "prev_hash")


def _safe(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True, default=str)
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _lines(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_safe(row.get(c)) for c in columns])
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
    yield buf.getvalue()


def access_log_row(event: dict[str, Any]) -> dict[str, Any]:
    params = dict(event.get("parameters") or {})
    return {**event, "basis": params.pop("basis", None), "break_glass_id": params.pop("break_glass_id", None),
            "parameters": params}


def csv_response(rows: Iterable[dict[str, Any]], columns: Sequence[str], filename: str) -> StreamingResponse:
    return StreamingResponse(_lines(rows, columns), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})
