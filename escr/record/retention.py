"""The retention schedule: how long a child's documents must be kept.

The schedule is configuration (councils differ lawfully). A date that depends on something not
yet known - the final contact of an open case, the date of an adoption order - is None, which
means "keep": nothing is ever disposed of on a guess.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from escr.errors import ConfigError


class RetentionRule(BaseModel):
    label: str
    years_after_final_contact: int | None = None
    until_age: int | None = None
    years_after_event: int | None = None
    event: str | None = None
    # A child who died before this age is kept this many years after death instead (CLA: 18, 15).
    died_before_age: int | None = None
    years_after_death: int | None = None


@dataclass(frozen=True)
class StatusPeriod:
    """One period of a child's status history, as retention reads it (escr.record.status)."""

    status: str
    from_date: date | None = None
    to_date: date | None = None
    on_date: date | None = None  # adoption order, final contact of a closure, date of death


class RetentionSchedule(BaseModel):
    categories: dict[str, RetentionRule]

    def keep_until(
        self, category: str | None, *, date_of_birth: date | None, final_contact: date | None = None,
        events: Mapping[str, date] | None = None,
    ) -> date | None:
        rule = self.categories.get((category or "").lower())
        if rule is None:
            return None
        if rule.until_age is not None:
            return _add_years(date_of_birth, rule.until_age) if date_of_birth else None
        if rule.years_after_final_contact is not None:
            return _add_years(final_contact, rule.years_after_final_contact) if final_contact else None
        if rule.years_after_event is not None and rule.event:
            when = (events or {}).get(rule.event)
            return _add_years(when, rule.years_after_event) if when else None
        return None

    def keep_until_history(self, periods: Iterable[StatusPeriod], *, date_of_birth: date | None,
                           final_contact: date | None = None) -> date | None:
        """The longest period of every status the child has had (seed 001 s. 24, DOMAIN.md).

        The dated statuses give the dates: the newest closure still standing is the final
        contact (a reopened case, its closure ended, is open again: keep), the adoption order,
        the death. Statuses without a rule (closed, died) only give dates."""
        periods = list(periods)
        closures = [p.on_date for p in periods if p.status == "closed" and p.to_date is None and p.on_date]
        if any(p.status == "closed" for p in periods):
            final_contact = max(closures) if closures else None
        events = {p.status: p.on_date for p in periods if p.on_date is not None}
        events["adoption_order"] = events.get("adoption_order") or events.get("adoption")  # type: ignore[assignment]
        died = events.get("died")
        dates: list[date | None] = []
        for p in periods:
            rule = self.categories.get(p.status.lower())
            if rule is None:
                continue
            if (died and rule.died_before_age is not None and rule.years_after_death is not None
                    and date_of_birth and died < _add_years(date_of_birth, rule.died_before_age)):
                dates.append(_add_years(died, rule.years_after_death))
                continue
            dates.append(self.keep_until(p.status, date_of_birth=date_of_birth, final_contact=final_contact,
                                         events={k: v for k, v in events.items() if v is not None}))
        return self.longest(dates) if dates else None

    def longest(self, dates: Iterable[date | None]) -> date | None:
        """The longest applicable period wins; an unknown date means keep, so it wins too."""
        dates = list(dates)
        if not dates or any(d is None for d in dates):
            return None
        return max(d for d in dates if d is not None)


def _add_years(start: date, years: int) -> date:
    try:
        return start.replace(year=start.year + years)
    except ValueError:  # 29 February
        return start.replace(year=start.year + years, day=28)


def load_retention(path: Path) -> RetentionSchedule:
    try:
        return RetentionSchedule.model_validate(yaml.safe_load(path.read_text()))
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"retention schedule {path.name} is invalid: {type(exc).__name__}") from exc
