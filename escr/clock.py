"""Time, one way for the whole codebase.

Every moment escr stores is UTC. SQLite hands stored datetimes back without a zone (PostgreSQL
with one), so anything read from the database goes through `as_utc` before it is compared or
written out; `iso` is the one spelling of a date or moment in API answers and reports.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import overload
from zoneinfo import ZoneInfo


def now() -> datetime:
    """This moment, in UTC."""
    return datetime.now(UTC)


def today(zone: str) -> date:
    """Today's date where the council is (`web.timezone`): a day ends at local midnight, not UTC's."""
    return now().astimezone(ZoneInfo(zone)).date()


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """A stored moment with its zone: a zoneless one is UTC (how SQLite returns it)."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def iso(value: date | datetime | None) -> str | None:
    """ISO 8601 for a day or a moment (moments always carry their zone); None stays None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        value = as_utc(value)
    return value.isoformat()
