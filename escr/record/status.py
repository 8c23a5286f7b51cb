"""A child's status history (seed 001 sections 17-18, 24): not one category, but periods.

Child in need, S47 enquiry, CP plan, looked after, care leaver, adoption (with the order date),
closed (with the final contact date), died (with the date): each with from and to dates, and
more than one may hold at once. Retention reads the whole history (the longest period wins).

The child index import keeps the rows marked `import`; a person's entries (`person`) are never
changed by an import. An import row carries either an explicit `status_history` column
(`cin:2019-01-04/2020-03-01; cp:2020-03-01/; adoption:2021-05-01`, ISO dates, an empty end
meaning ongoing, a single date for the dated statuses) or the current `category` (several
separated by `;`), which opens the statuses not yet open and ends the ones no longer listed on
the day of the import; `final_contact`, `adoption_order` and `date_of_death` give dated statuses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from escr.clock import iso
from escr.record import payloads
from escr.record.events import Actor, Kind, ProtocolEvent, now, record
from escr.record.models import Child, ChildStatus
from escr.record.retention import StatusPeriod

PERIOD_STATUSES = ("cin", "s47", "cp", "cla", "care_leaver")
DATED_STATUSES = ("adoption", "closed", "died")  # each is about one date: order, final contact, death
STATUSES = PERIOD_STATUSES + DATED_STATUSES
ALIASES = {"lac": "cla", "looked_after": "cla", "child_in_need": "cin", "cp_plan": "cp", "care leaver": "care_leaver",
           "adopted": "adoption"}
_ITEM = re.compile(r"^\s*([a-z_ ]+?)\s*:\s*(\d{4}-\d{2}-\d{2})?\s*(/\s*(\d{4}-\d{2}-\d{2})?)?\s*$")


def status_code(text: str) -> str:
    """A status as the schedule names it; a ValueError says which word is not one."""
    code = ALIASES.get(text.strip().lower(), text.strip().lower())
    if code not in STATUSES:
        raise ValueError(f"'{text.strip()}' is not a status (one of {', '.join(STATUSES)})")
    return code


@dataclass(frozen=True)
class Period:
    status: str
    from_date: date | None
    to_date: date | None
    on_date: date | None

    def key(self) -> tuple[str, date | None, date | None, date | None]:
        return (self.status, self.from_date, self.to_date, self.on_date)


def parse_history(text: str) -> list[Period]:
    """`code:FROM/TO; code:DATE` -> periods; raises ValueError naming the first bad item."""
    periods = []
    for item in (i for i in text.split(";") if i.strip()):
        m = _ITEM.match(item.lower())
        if not m:
            raise ValueError(f"'{item.strip()}' is not status:FROM/TO or status:DATE")
        code = status_code(m.group(1))
        start = date.fromisoformat(m.group(2)) if m.group(2) else None
        end = date.fromisoformat(m.group(4)) if m.group(4) else None
        if code in DATED_STATUSES:
            if m.group(3) and end:
                raise ValueError(f"{code} takes one date, not a period")
            if start is None:
                raise ValueError(f"{code} needs its date")
            periods.append(Period(code, start, None, start))
            continue
        if start and end and end < start:
            raise ValueError(f"{code} ends before it starts")
        periods.append(Period(code, start, end, None))
    return periods


def parse_categories(text: str | None) -> list[str]:
    return [status_code(c) for c in re.split(r"[;|]", text or "") if c.strip()]


def periods_of(child: Child) -> list[StatusPeriod]:
    return [StatusPeriod(s.status, s.from_date, s.to_date, s.on_date) for s in child.statuses]


def as_dict(row: ChildStatus) -> dict[str, object]:
    return {"id": row.id, "status": row.status, "from": iso(row.from_date), "to": iso(row.to_date),
            "on": iso(row.on_date), "source": row.source, "recorded_by": row.recorded_by}



def sync_import(session: Session, child: Child, *, history: str | None, categories: Sequence[str],
                dated: dict[str, date | None], today: date, actor: Actor, new: bool) -> bool:
    """Bring the child's import-kept statuses in line with one import row; True if anything changed.

    With `history` the import rows are replaced by it. Otherwise the listed categories are the
    statuses holding now: one not open yet opens today (or from an unknown start, for a child seen
    for the first time), one open but no longer listed ends today. A dated status (closure,
    adoption order, death) follows its column; without a history, a closure whose column was
    emptied ends today (the case was reopened)."""
    mine = [s for s in child.statuses if s.source == "import"]
    before = sorted(_key(s) for s in mine)
    stamp = now()

    def add(status: str, start: date | None, end: date | None, on: date | None) -> None:
        child.statuses.append(ChildStatus(status=status, from_date=start, to_date=end, on_date=on, source="import",
                                          recorded_by=actor.name, recorded_at=stamp))

    if history is not None:
        wanted = parse_history(history)
        keep = {p.key() for p in wanted}
        for row in mine:
            if _key(row) not in keep:
                child.statuses.remove(row)
        have = {_key(s) for s in child.statuses if s.source == "import"}
        for p in wanted:
            if p.key() not in have:
                add(p.status, p.from_date, p.to_date, p.on_date)
    else:
        open_now = {s.status: s for s in mine if s.status in PERIOD_STATUSES and s.to_date is None}
        for code in dict.fromkeys(categories):
            if code in DATED_STATUSES:
                continue
            if code not in open_now:
                add(code, None if new else today, None, None)
        for code, row in open_now.items():
            if code not in categories:
                row.to_date = today
    for code, on in dated.items():
        current = [s for s in child.statuses if s.source == "import" and s.status == code and s.to_date is None]
        if on is None:
            if code == "closed" and history is None:
                for row in current:
                    row.to_date = today
            continue
        if any(s.on_date == on for s in current):
            continue
        for row in current:
            if code == "closed":
                row.to_date = today  # closed again later: the newer closure stands
            else:
                row.on_date = row.from_date = on  # a corrected order or death date
                break
        else:
            add(code, on, None, on)
    session.flush()
    after = sorted(_key(s) for s in child.statuses if s.source == "import")
    if after == before:
        return False
    record(session, ProtocolEvent(kind=Kind.CHILD_STATUS, actor=actor, child_id=child.child_id, outcome="imported",
                                  parameters=payloads.ChildStatus(before=[_show(k) for k in before],
                                                                  after=[_show(k) for k in after])))
    return True


def _key(s: ChildStatus) -> tuple[str, str, str, str]:
    return (s.status, iso(s.from_date) or "", iso(s.to_date) or "", iso(s.on_date) or "")


def _show(key: tuple[str, str, str, str]) -> payloads.StatusPeriod:
    return payloads.StatusPeriod(status=key[0], from_=key[1] or None, to=key[2] or None, on=key[3] or None)


def add_status(session: Session, child: Child, *, status: str, from_date: date | None, to_date: date | None,
               on_date: date | None, actor: Actor) -> ChildStatus:
    """A person's entry in the history (the application layer checks who may make it)."""
    code = status_code(status)
    if code in DATED_STATUSES:
        on_date = on_date or from_date
        if on_date is None:
            raise ValueError(f"{code} needs its date")
        from_date = from_date or on_date
    if from_date and to_date and to_date < from_date:
        raise ValueError("the status ends before it starts")
    row = ChildStatus(status=code, from_date=from_date, to_date=to_date, on_date=on_date, source="person",
                      recorded_by=actor.name, recorded_at=now())
    child.statuses.append(row)
    session.flush()
    record(session, ProtocolEvent(kind=Kind.CHILD_STATUS, actor=actor, child_id=child.child_id, outcome="added",
                                  parameters=payloads.ChildStatus(added=payloads.StatusAdded.model_validate(as_dict(row)))))
    return row


def holding_on(periods: Iterable[StatusPeriod], day: date) -> list[str]:
    """The statuses that held on `day` (a start not known counts as before it)."""
    return sorted({p.status for p in periods if p.status in PERIOD_STATUSES
                   and (p.from_date is None or p.from_date <= day) and (p.to_date is None or p.to_date >= day)})
