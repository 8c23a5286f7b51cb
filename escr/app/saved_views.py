"""Saved views: a person's named filters for a child's chronology (issue 17, as paperless-ngx has).

A view holds filters only - document types, a period, which states, third-party or not, words in
the text, and the order - never access: opening one goes through need-to-know and is logged as any
read of the chronology (`escr.app.reading.Reader.chronology`). A view belongs to the person who
saved it; to anyone else it does not exist (the same "not found" as a name never saved). It may
remember the child it was saved from, so the home page opens it there in one click; its filters
apply to any child's chronology.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from escr.app import access
from escr.app.access import Can, Principal, require, require_change
from escr.app.labels import uk_date
from escr.clock import iso, now
from escr.errors import Conflict, NotFound, ValidationFailed
from escr.record.models import SavedView
from escr.services import Services

STATES = {"verified": "Verified documents", "all": "All documents", "pending": "Not yet verified only"}
THIRD_PARTY = {"any": "With or without third-party information", "only": "Only documents with third-party information",
               "without": "Only documents without third-party information"}
SORTS = {"oldest": "Oldest first", "newest": "Newest first"}
MAX_NAME_CHARS = 80
MAX_TEXT_CHARS = 200
MAX_TYPES = 30
MAX_VIEWS = 100  # per person


@dataclass(frozen=True)
class ViewFilters:
    """What a chronology shows and in what order; the defaults are the chronology as it opens."""

    types: tuple[str, ...] = ()
    since: date | None = None
    until: date | None = None
    state: str = "verified"
    third_party: str = "any"
    text: str = ""
    sort: str = "oldest"

    @classmethod
    def parse(cls, *, types: list[str] | tuple[str, ...] | None = None, since: date | str | None = None,
              until: date | str | None = None, state: str | None = None, third_party: str | None = None,
              text: str | None = None, sort: str | None = None) -> ViewFilters:
        """Filters from what a page, the API or a command was given; a plain-English
        `ValidationFailed` naming the filter when one is not understood."""
        wanted = tuple(sorted({t.strip() for t in (types or []) if t and t.strip()}))
        if len(wanted) > MAX_TYPES or any(len(t) > 64 for t in wanted):
            raise ValidationFailed(f"choose at most {MAX_TYPES} document types")
        start, end = _day(since, "from"), _day(until, "to")
        if start and end and start > end:
            raise ValidationFailed("the period's start is after its end")
        words = " ".join((text or "").split())
        if len(words) > MAX_TEXT_CHARS:
            raise ValidationFailed(f"search for at most {MAX_TEXT_CHARS} characters")
        return cls(types=wanted, since=start, until=end, state=_one_of(state or "verified", STATES, "state"),
                   third_party=_one_of(third_party or "any", THIRD_PARTY, "third-party filter"),
                   text=words, sort=_one_of(sort or "oldest", SORTS, "order"))

    @classmethod
    def stored(cls, data: dict[str, Any]) -> ViewFilters:
        return cls.parse(types=data.get("types") or [], since=data.get("since"), until=data.get("until"),
                         state=data.get("state"), third_party=data.get("third_party"), text=data.get("text"),
                         sort=data.get("sort"))

    def as_dict(self) -> dict[str, Any]:
        return {"types": list(self.types), "since": iso(self.since), "until": iso(self.until), "state": self.state,
                "third_party": self.third_party, "text": self.text, "sort": self.sort}

    @property
    def shows_unverified(self) -> bool:
        """Whether documents not yet verified are listed (marked) at all."""
        return self.state != DEFAULT.state

    def as_query(self) -> dict[str, Any]:
        """The filters as a chronology URL's parameters, leaving out those at their default (and
        the words to find, which never go in a URL)."""
        query = {key: value for key, value in self.as_dict().items()
                 if key not in ("types", "text") and value != getattr(DEFAULT, key)}
        return {"type": list(self.types), "since": "", "until": "", "state": "", "third_party": "", "sort": "",
                **{k: v or "" for k, v in query.items()}}

    def describe(self) -> list[str]:
        """The filters that differ from the chronology as it opens, in words (types as codes:
        the faces label them)."""
        out = []
        if self.since and self.until:
            out.append(f"{uk_date(self.since)} to {uk_date(self.until)}")
        elif self.since or self.until:
            out.append(f"from {uk_date(self.since)}" if self.since else f"up to {uk_date(self.until)}")
        if self.shows_unverified:
            out.append(STATES[self.state].lower())
        if self.third_party != "any":
            out.append(THIRD_PARTY[self.third_party].lower())
        if self.text:
            out.append(f"containing \u201c{self.text}\u201d")
        if self.sort != "oldest":
            out.append(SORTS[self.sort].lower())
        return out


DEFAULT = ViewFilters()  # the chronology as it opens


def _day(value: date | str | None, what: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValidationFailed(f"the \u201c{what}\u201d date is not a date (use the date picker, or YYYY-MM-DD)") from None


def _one_of(value: str, choices: dict[str, str], what: str) -> str:
    if value not in choices:
        raise ValidationFailed(f"the {what} must be one of: {', '.join(choices)}")
    return value


def clean_name(name: str) -> str:
    """A view's name as kept: spaces collapsed; 1 to 80 characters, no "/" or control characters
    (it is part of the view's address in the API)."""
    cleaned = " ".join((name or "").split())
    if not cleaned:
        raise ValidationFailed("give the view a name")
    if len(cleaned) > MAX_NAME_CHARS:
        raise ValidationFailed(f"a view's name has at most {MAX_NAME_CHARS} characters")
    if "/" in cleaned or any(unicodedata.category(c).startswith("C") for c in cleaned):
        raise ValidationFailed("a view's name cannot hold \u201c/\u201d or control characters")
    return cleaned


def as_dict(view: SavedView) -> dict[str, Any]:
    filters = ViewFilters.stored(view.filters)
    return {"name": view.name, "child_id": view.child_id, "filters": filters.as_dict(),
            "described": filters.describe(), "created_at": iso(view.created_at),
            "updated_at": iso(view.updated_at)}


class SavedViews:
    """One person's saved views: list, open, save (a new name or replacing one), remove."""

    def __init__(self, services: Services, principal: Principal) -> None:
        self.db = services.db
        self.p = principal

    def _may(self) -> None:
        require(self.p, Can.FIND_CHILDREN)  # those who read chronologies

    def _own(self, session: Any, name: str) -> SavedView:
        view = session.scalars(select(SavedView).where(SavedView.user_id == self.p.user_id,
                                                       SavedView.name == " ".join((name or "").split()))).first()
        if view is None:
            raise NotFound("you have no saved view of that name")
        return view

    def list(self) -> list[dict[str, Any]]:
        self._may()
        with self.db.session() as session:
            return [as_dict(v) for v in session.scalars(select(SavedView).where(SavedView.user_id == self.p.user_id)
                                                        .order_by(SavedView.name))]

    def get(self, name: str) -> dict[str, Any]:
        self._may()
        with self.db.session() as session:
            return as_dict(self._own(session, name))

    def filters(self, name: str) -> tuple[int, ViewFilters]:
        """The view's id (for the access log) and its filters, to open it."""
        self._may()
        with self.db.session() as session:
            view = self._own(session, name)
            return view.id, ViewFilters.stored(view.filters)

    def save(self, name: str, filters: ViewFilters, *, child_id: str | None = None) -> dict[str, Any]:
        """Save under `name`, replacing this person's view of that name if there is one; returns
        the view and whether it was new. The child, when given, must be one they may open."""
        self._may()
        require_change(self.p)
        cleaned = clean_name(name)
        child = (child_id or "").strip() or None
        with self.db.session() as session:
            if child is not None:
                access.child_grant(session, self.p, child)  # the same answer as the chronology's
            view = session.scalars(select(SavedView).where(SavedView.user_id == self.p.user_id,
                                                           SavedView.name == cleaned)).first()
            stamp = now()
            created = view is None
            if view is None:
                count = len(session.scalars(select(SavedView.id).where(SavedView.user_id == self.p.user_id)).all())
                if count >= MAX_VIEWS:
                    raise Conflict(f"you have {MAX_VIEWS} saved views already: remove one first",
                                   code="too_many_views")
                view = SavedView(user_id=self.p.user_id, name=cleaned, created_at=stamp)
                session.add(view)
            view.child_id, view.filters, view.updated_at = child, filters.as_dict(), stamp
            try:
                session.flush()
            except IntegrityError:  # saved at the same moment elsewhere
                raise Conflict("a view of that name was saved at the same moment; try again",
                               code="view_exists") from None
            return {**as_dict(view), "created": created}

    def remove(self, name: str) -> None:
        self._may()
        require_change(self.p)
        with self.db.session() as session:
            session.delete(self._own(session, name))
