"""The child index: imported from the case-management system's CSV export, looked up for linking."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pydantic import BaseModel, ValidationError, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from escr.errors import InputRejected
from escr.indexing.identifiers import nhs_number_valid
from escr.indexing.matching import ChildRecord
from escr.record import payloads
from escr.record.events import Actor, Kind, ProtocolEvent, now, record
from escr.record.models import Child
from escr.record.status import parse_categories, parse_history, sync_import

COLUMNS = ("child_id", "given_names", "family_name", "date_of_birth", "nhs_number", "category", "status", "team")
# The case's closure date, the adoption order and the date of death when the export has them, and
# an explicit status history (escr.record.status); each feeds the child's status history.
OPTIONAL_COLUMNS = ("final_contact", "adoption_order", "date_of_death", "status_history")
STATUS_COLUMNS = ("adoption_order", "date_of_death", "status_history")  # kept in the history, not the row
# A change to any of these can change how long the child's documents must be kept.
RETENTION_FIELDS = ("category", "status", "date_of_birth", "final_contact")


class ChildRow(BaseModel):
    child_id: str
    given_names: str
    family_name: str
    date_of_birth: date | None = None
    nhs_number: str | None = None
    category: str | None = None
    status: str | None = None
    team: str | None = None
    final_contact: date | None = None
    adoption_order: date | None = None
    date_of_death: date | None = None
    status_history: str | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value.strip() if isinstance(value, str) else value

    @field_validator("nhs_number")
    @classmethod
    def _nhs(cls, value: str | None) -> str | None:
        if value is None:
            return None
        digits = "".join(ch for ch in value if ch.isdigit())
        if not nhs_number_valid(digits):
            raise ValueError("NHS number fails its modulus-11 check")
        return digits

    @field_validator("category")
    @classmethod
    def _categories(cls, value: str | None) -> str | None:
        parse_categories(value)  # a status the schedule does not know is refused, not ignored
        return value

    @field_validator("status_history")
    @classmethod
    def _history(cls, value: str | None) -> str | None:
        if value is not None:
            parse_history(value)
        return value


@dataclass(frozen=True)
class ImportSummary:
    added: int
    updated: int
    unchanged: int


def read_children_csv(path: Path) -> list[ChildRow]:
    """Parse and validate the whole file first, so a bad row imports nothing."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputRejected("bad_columns", f"The child index file lacks columns: {', '.join(missing)}.",
                                f"Export the columns {', '.join(COLUMNS)}.")
        rows, errors = [], []
        for line_no, raw in enumerate(reader, start=2):
            try:
                rows.append(ChildRow(**{c: raw.get(c) for c in COLUMNS + OPTIONAL_COLUMNS}))
            except ValidationError as exc:
                fields = sorted({str(e["loc"][0]) if e["loc"] else "row" for e in exc.errors()})
                errors.append(f"line {line_no}: {', '.join(fields)}")
    if errors:
        raise InputRejected("bad_rows", f"The child index file has invalid rows ({'; '.join(errors[:20])}).",
                            "Correct those rows and import again; nothing was imported.")
    return rows


def import_children(session: Session, rows: Sequence[ChildRow], *, actor: Actor,
                    on_retention_change: Callable[[Session, list[str]], object] | None = None) -> ImportSummary:
    """Add or update children in the caller's transaction. `on_retention_change` gets the ids of
    children whose category, status, birth date or closure changed (their documents' retention
    dates are recomputed: escr.record.retention_updates.retention_hook); if it fails, nothing is imported."""
    added = updated = unchanged = 0
    retention_changed = []
    stamp = now()
    for row in rows:
        values = row.model_dump(exclude=set(STATUS_COLUMNS))
        existing = session.get(Child, row.child_id)
        if existing is None:
            child = Child(**values, updated_at=stamp)
            session.add(child)
            added += 1
        elif any(getattr(existing, k) != v for k, v in values.items()):
            child = existing
            if any(getattr(existing, k) != values[k] for k in RETENTION_FIELDS):
                retention_changed.append(row.child_id)
            for k, v in values.items():
                setattr(existing, k, v)
            existing.updated_at = stamp
            updated += 1
        else:
            child = existing
            unchanged += 1
        history_changed = sync_import(
            session, child, history=row.status_history, categories=parse_categories(row.category),
            dated={"closed": row.final_contact, "adoption": row.adoption_order, "died": row.date_of_death},
            today=stamp.date(), actor=actor, new=existing is None)
        if history_changed and existing is not None and row.child_id not in retention_changed:
            retention_changed.append(row.child_id)
            if existing.updated_at != stamp:  # only the history changed
                existing.updated_at = stamp
                unchanged, updated = unchanged - 1, updated + 1
    summary = ImportSummary(added, updated, unchanged)
    record(session, ProtocolEvent(kind=Kind.CHILDREN_IMPORTED, actor=actor,
                                  parameters=payloads.ChildrenImported(
                                      added=added, updated=updated, unchanged=unchanged,
                                      retention_fields_changed=len(retention_changed))))
    if retention_changed and on_retention_change is not None:
        session.flush()
        on_retention_change(session, retention_changed)
    return summary


def to_record(child: Child) -> ChildRecord:
    return ChildRecord(child.child_id, child.given_names, child.family_name, child.date_of_birth, child.nhs_number)


class DbChildLookup:
    """The matching module's ChildLookup over the database; queries use the indexes, never a full scan."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _query(self, column, values: Iterable) -> list[ChildRecord]:  # type: ignore[no-untyped-def]
        values = list(set(values))
        if not values:
            return []
        rows = self.session.scalars(select(Child).where(column.in_(values))).all()
        return [to_record(c) for c in rows]

    def by_ids(self, ids: Iterable[str]) -> list[ChildRecord]:
        return self._query(Child.child_id, ids)

    def by_nhs(self, numbers: Iterable[str]) -> list[ChildRecord]:
        return self._query(Child.nhs_number, numbers)

    def by_dobs(self, dates: Iterable[date]) -> list[ChildRecord]:
        return self._query(Child.date_of_birth, dates)
