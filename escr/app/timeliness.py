"""Timeliness: how long paper takes from arriving in the office to a verified scan on the record.

Seed 001 section 9 and seed 003 section 5 ask that recording is timely. The day paper arrived
comes from the cover sheet's date stamp or a business support officer's entry (`PaperArrival`,
per cover-sheet batch or per document; a document's own entry wins). Each document is measured
arrival -> scanned (its file reached intake) -> filed -> verified, in working days of England
and Wales (weekends and the bank holidays of the maintained `holidays` library). The report is
per team (the child's team; a document about children of two teams counts in each) and month
of arrival: the median and 90th percentile, the items over the configured target (waiting items
count once they are over), and the oldest items still waiting; it exports as CSV.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

import holidays
import numpy as np
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from escr.app.access import AccessDenied, Principal, Role
from escr.app.spreadsheet import csv_text
from escr.errors import ValidationFailed
from escr.record.events import Kind, ProtocolEvent, now, record
from escr.record.models import Batch, Child, Document, DocumentChild, PaperArrival
from escr.record.states import DocumentState
from escr.storage.objectstore import today_utc

SOURCES = ("cover_stamp", "officer")
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
READERS = (Role.BUSINESS_SUPPORT, Role.TEAM_MANAGER, Role.AUDITOR)


def record_arrival(session: Session, principal: Principal, ref: str, arrived_on: date, *,
                   source: str = "officer") -> PaperArrival:
    """When the paper of a cover-sheet batch (or one document) reached the office."""
    if principal.role is not Role.BUSINESS_SUPPORT:
        raise AccessDenied("business support record when paper arrived", code="role_forbidden")
    if source not in SOURCES:
        raise ValidationFailed(f"source is one of {', '.join(SOURCES)}")
    ref = (ref or "").strip()
    if not ref:
        raise ValidationFailed("required: a cover-sheet batch id or document id")
    if arrived_on > today_utc():
        raise ValidationFailed("the arrival date is in the future")
    row = session.get(PaperArrival, ref)
    old = row.arrived_on.isoformat() if row else None
    if row is None:
        row = PaperArrival(ref=ref, arrived_on=arrived_on, source=source, recorded_by=principal.username,
                           recorded_at=now())
        session.add(row)
    else:
        row.arrived_on, row.source, row.recorded_by, row.recorded_at = arrived_on, source, principal.username, now()
    session.flush()
    record(session, ProtocolEvent(kind=Kind.PAPER_ARRIVAL, actor=principal.actor, outcome=source,
                                  parameters={"ref": ref, "arrived_on": arrived_on.isoformat(), "old": old}))
    return row


@lru_cache(maxsize=1)
def _bank_holidays() -> tuple[np.datetime64, ...]:
    years = range(2000, date.today().year + 3)
    return tuple(np.datetime64(d) for d in holidays.country_holidays("GB", subdiv="ENG", years=years))


def working_days(start: date, end: date) -> int:
    """Working days from `start` to `end` (the day of arrival not counted), England and Wales."""
    return int(np.busday_count(start, end, holidays=list(_bank_holidays()))) if end > start else 0


@dataclass
class Item:
    document_id: str
    team: str
    arrived: date
    scanned: date
    filed: date
    verified: date | None

    def days(self, today: date) -> int:
        return working_days(self.arrived, self.verified or today)

    def as_dict(self, today: date) -> dict[str, Any]:
        return {"document_id": self.document_id, "team": self.team, "arrived": self.arrived.isoformat(),
                "scanned": self.scanned.isoformat(), "filed": self.filed.isoformat(),
                "verified": self.verified.isoformat() if self.verified else None,
                "working_days": self.days(today)}


@dataclass
class TeamMonth:
    team: str
    month: str
    items: int = 0
    completed: int = 0
    median_days: float | None = None
    p90_days: float | None = None
    stage_medians: dict[str, float | None] = field(default_factory=dict)
    over_target: int = 0
    waiting: int = 0
    oldest_waiting: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _day(value: datetime) -> date:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).date()


def _items(session: Session, month: str, teams: frozenset[str] | None) -> list[Item]:
    year, mon = (int(x) for x in month.split("-"))
    first = date(year, mon, 1)
    after = date(year + (mon == 12), mon % 12 + 1, 1)
    arrivals = {a.ref: a.arrived_on for a in session.scalars(
        select(PaperArrival).where(PaperArrival.arrived_on >= first, PaperArrival.arrived_on < after))}
    if not arrivals:
        return []
    refs = list(arrivals)
    rows = session.execute(
        select(Document, Batch, Child.team).join(Batch, Batch.id == Document.batch_id)
        .join(DocumentChild, DocumentChild.document_id == Document.id)
        .join(Child, Child.child_id == DocumentChild.child_id)
        .where(or_(Document.id.in_(refs), Document.coversheet_batch_id.in_(refs)),
               Document.state.not_in((DocumentState.REJECTED, DocumentState.DISPOSED)))).all()
    own = {r.ref: r.arrived_on for r in session.scalars(select(PaperArrival).where(
        PaperArrival.ref.in_([doc.id for doc, _, _ in rows])))}
    found, seen = [], set()
    for doc, batch, team in rows:
        arrived = own.get(doc.id) or arrivals.get(doc.coversheet_batch_id or "")
        team = team or "(no team)"
        if arrived is None or not (first <= arrived < after) or (doc.id, team) in seen:
            continue
        if teams is not None and team not in teams:
            continue
        seen.add((doc.id, team))
        found.append(Item(doc.id, team, arrived, _day(batch.received_at), _day(batch.filed_at),
                          _day(doc.verified_at) if doc.verified_at and doc.state == DocumentState.VERIFIED else None))
    return found


def _median(values: list[int]) -> float | None:
    return float(statistics.median(values)) if values else None


def report(session: Session, principal: Principal, month: str, *, target: int, oldest: int = 20,
           today: date | None = None) -> list[TeamMonth]:
    """Per team, for paper that arrived in `month` (YYYY-MM); team managers see their own teams."""
    if principal.role not in READERS:
        raise AccessDenied(f"the {principal.role} role reads no timeliness report", code="role_forbidden")
    if not MONTH.match(month or ""):
        raise ValidationFailed("a month is written YYYY-MM")
    today = today or today_utc()
    teams = principal.teams if principal.role is Role.TEAM_MANAGER else None
    by_team: dict[str, list[Item]] = defaultdict(list)
    for item in _items(session, month, teams):
        by_team[item.team].append(item)
    result = []
    for team in sorted(by_team):
        items = by_team[team]
        done = [i for i in items if i.verified]
        days = [i.days(today) for i in done]
        waiting = sorted((i for i in items if not i.verified), key=lambda i: (i.arrived, i.document_id))
        result.append(TeamMonth(
            team=team, month=month, items=len(items), completed=len(done), median_days=_median(days),
            p90_days=float(np.percentile(days, 90)) if days else None,
            stage_medians={"scanned": _median([working_days(i.arrived, i.scanned) for i in items]),
                           "filed": _median([working_days(i.arrived, i.filed) for i in items]),
                           "verified": _median(days)},
            over_target=sum(1 for i in items if i.days(today) > target), waiting=len(waiting),
            oldest_waiting=[i.as_dict(today) for i in waiting[:oldest]]))
    return result


CSV_COLUMNS = ("team", "month", "items", "completed", "median_days", "p90_days", "over_target", "waiting",
               "median_days_to_scanned", "median_days_to_filed")


def report_csv(rows: list[TeamMonth]) -> str:
    return csv_text(CSV_COLUMNS, ([r.team, r.month, r.items, r.completed, _num(r.median_days), _num(r.p90_days),
                                   r.over_target, r.waiting, _num(r.stage_medians.get("scanned")),
                                   _num(r.stage_medians.get("filed"))] for r in rows))


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def recent_arrivals(session: Session, principal: Principal, *, limit: int = 20) -> list[dict[str, Any]]:
    """The arrival dates recorded last, newest first (so an officer sees what they entered)."""
    if principal.role not in READERS:
        raise AccessDenied(f"the {principal.role} role reads no arrival dates", code="role_forbidden")
    rows = session.scalars(select(PaperArrival).order_by(PaperArrival.recorded_at.desc()).limit(limit))
    return [{"ref": r.ref, "arrived_on": r.arrived_on.isoformat(), "source": r.source, "recorded_by": r.recorded_by,
             "recorded_at": r.recorded_at.isoformat()} for r in rows]


def stamped_arrival(session: Session, ref: str, stamped: date, *, scanned_on: date, recorded_by: str,
                    max_days: int = 366) -> PaperArrival | None:
    """Intake read the office's "received" stamp on a cover sheet: record it as the batch's arrival,
    unless someone entered the arrival already (a person's entry is never overwritten) or the date
    cannot be right (after the scan, or more than `max_days` before it: a misread, left for a person)."""
    if session.get(PaperArrival, ref) is not None:
        return None
    if stamped > scanned_on or (scanned_on - stamped).days > max_days:
        return None
    row = PaperArrival(ref=ref, arrived_on=stamped, source="cover_stamp", recorded_by=recorded_by, recorded_at=now())
    session.add(row)
    session.flush()
    return row
