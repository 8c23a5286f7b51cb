"""Issue 19, timeliness (seed 001 section 9, seed 003 section 5): arrival -> scanned -> filed ->
verified per document, reported per team and month in working days of England and Wales."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import pytest

from escr.app import timeliness
from escr.app.access import AccessDenied
from escr.errors import ValidationFailed
from escr.record.events import Actor
from tests.support.records import add_people, file_document

ADMIN = Actor(kind="user", name="admin")


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=10, tzinfo=UTC)


def test_working_days_skip_weekends_and_bank_holidays_of_england_and_wales():
    assert timeliness.working_days(date(2024, 5, 3), date(2024, 5, 7)) == 1  # Friday to Tuesday over the May holiday
    assert timeliness.working_days(date(2024, 12, 23), date(2025, 1, 2)) == 5  # Christmas, Boxing Day, New Year


@pytest.fixture
def people(with_children):
    return with_children, add_people(with_children, [
        ("bs.jones", "business_support", []),
        ("tm.smith", "team_manager", ["north"]),
        ("sw.ahmed", "caseworker", ["north"]),
    ], teams=("north",))


def test_the_report_per_team_and_month(people):
    services, p = people
    a = file_document(services, ["AB123456"], coversheet_batch_id="CS-1", received_at=at("2024-05-07"),
                      verified_at=at("2024-05-07"))
    b = file_document(services, ["AB123457"], received_at=at("2024-05-02"), verified_at=at("2024-05-15"))
    c = file_document(services, ["AB123456"], coversheet_batch_id="CS-3", received_at=at("2024-05-21"))
    file_document(services, ["CD654321"], coversheet_batch_id="CS-4", received_at=at("2024-05-10"),
                  verified_at=at("2024-05-13"))
    file_document(services, ["AB123456"], coversheet_batch_id="CS-5", received_at=at("2024-04-30"))
    with services.db.session() as session:
        bs = p["bs.jones"]
        timeliness.record_arrival(session, bs, "CS-1", date(2024, 5, 3), source="cover_stamp")
        timeliness.record_arrival(session, bs, b, date(2024, 5, 1))
        timeliness.record_arrival(session, bs, "CS-3", date(2024, 5, 20))
        timeliness.record_arrival(session, bs, "CS-4", date(2024, 5, 10))
        timeliness.record_arrival(session, bs, "CS-5", date(2024, 4, 29))
        with pytest.raises(AccessDenied):
            timeliness.record_arrival(session, p["sw.ahmed"], "CS-9", date(2024, 5, 1))
    with services.db.session() as session:
        rows = timeliness.report(session, p["bs.jones"], "2024-05", target=5, today=date(2024, 6, 3))
        assert [r.team for r in rows] == ["north", "south"]
        north = rows[0]
        assert (north.items, north.completed, north.median_days, north.p90_days, north.over_target, north.waiting) == (
            3, 2, 5.0, 8.2, 2, 1)
        assert [(w["document_id"], w["working_days"]) for w in north.oldest_waiting] == [(c, 9)]
        assert a not in [w["document_id"] for w in north.oldest_waiting]
        # A team manager sees their own teams only.
        assert [r.team for r in timeliness.report(session, p["tm.smith"], "2024-05", target=5,
                                                  today=date(2024, 6, 3))] == ["north"]
        with pytest.raises(AccessDenied):
            timeliness.report(session, p["sw.ahmed"], "2024-05", target=5)
        with pytest.raises(ValidationFailed):
            timeliness.report(session, p["bs.jones"], "May 2024", target=5)
    exported = list(csv.DictReader(io.StringIO(timeliness.report_csv(rows))))
    assert exported[0] == {"team": "north", "month": "2024-05", "items": "3", "completed": "2",
                                "median_days": "5", "p90_days": "8.2", "over_target": "2", "waiting": "1",
                                "median_days_to_scanned": "1", "median_days_to_filed": "1"}


def test_a_team_name_typed_as_a_formula_is_shown_not_run_when_the_export_is_opened():
    row = timeliness.TeamMonth(team='=HYPERLINK("http://x.example","open me")', month="2024-05")
    exported = list(csv.DictReader(io.StringIO(timeliness.report_csv([row]))))
    assert exported[0]["team"] == '\'=HYPERLINK("http://x.example","open me")'
    assert exported[0]["month"] == "2024-05"
