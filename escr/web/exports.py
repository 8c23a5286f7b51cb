"""CSV exports of the access log and of a document's provenance, streamed row by row.

Cells are written by `escr.app.spreadsheet`, which keeps formulas out of an auditor's spreadsheet.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from fastapi.responses import StreamingResponse

from escr.app.spreadsheet import csv_lines

ACCESS_LOG_COLUMNS = ("seq", "at", "actor", "action", "child_id", "document_id", "outcome", "purpose", "basis",
                      "break_glass_id", "parameters", "hash")
PROVENANCE_COLUMNS = ("seq", "at", "kind", "actor", "outcome", "document_id", "detail", "hash", "prev_hash")


def access_log_row(event: dict[str, Any]) -> dict[str, Any]:
    params = dict(event.get("parameters") or {})
    return {**event, "basis": params.pop("basis", None), "break_glass_id": params.pop("break_glass_id", None),
            "parameters": params}


def csv_response(rows: Iterable[dict[str, Any]], columns: Sequence[str], filename: str) -> StreamingResponse:
    return StreamingResponse(csv_lines(columns, ([row.get(c) for c in columns] for row in rows)), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})
