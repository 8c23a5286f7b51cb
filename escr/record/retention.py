"""The retention schedule: how long a child's documents must be kept.

The schedule is configuration (councils differ lawfully). A date that depends on something not
yet known - the final contact of an open case, the date of an adoption order - is None, which
means "keep": nothing is ever disposed of on a guess.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
