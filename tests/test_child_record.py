"""Issue 19: a manager's file examination on the child's record (seed 003 section 4), and a
person's entry in the status history redating the child's documents (seed 001 sections 17-18)."""

from __future__ import annotations

from datetime import date

import pytest

from escr.app import records
from escr.app.access import AccessDenied
from escr.errors import ValidationFailed
from escr.record.events import Actor
from escr.record.models import Document
from tests.support.records import add_people, file_document

ADMIN = Actor(kind="user", name="admin")


@pytest.fixture
def people(with_children):
    return with_children, add_people(with_children, [
        ("tm.smith", "team_manager", ["north"]),
        ("tm.south", "team_manager", ["south"]),
        ("sw.ahmed", "caseworker", ["north"]),
        ("au.khan", "auditor", []),
    ], teams=("north", "south"))


def test_a_managers_examination_is_recorded_and_shown_on_the_childs_record(people):
    services, p = people
    with services.db.session() as session:
        records.examine(session, p["tm.smith"], "AB123456", kind="supervision", purpose="monthly supervision",
                        notes="chronology up to date; child seen alone", examined_on=date(2024, 5, 3))
        records.examine(session, p["au.khan"], "AB123456", kind="audit", purpose="case-file audit May",
                        notes="care plan missing", examined_on=date(2024, 5, 20))
        with pytest.raises(AccessDenied):
            records.examine(session, p["sw.ahmed"], "AB123456", kind="review", purpose="x", notes="")
        with pytest.raises(AccessDenied):  # not their team
            records.examine(session, p["tm.south"], "AB123456", kind="review", purpose="x", notes="")
        with pytest.raises(ValidationFailed):
            records.examine(session, p["tm.smith"], "AB123456", kind="chat", purpose="x", notes="")
    with services.db.session() as session:
        shown = records.examinations(session, p["sw.ahmed"], "AB123456")
        assert [(e["kind"], e["examined_by"], e["examined_on"]) for e in shown] == [
            ("audit", "au.khan", "2024-05-20"), ("supervision", "tm.smith", "2024-05-03")]


def test_an_adoption_order_entered_by_a_manager_redates_the_childs_documents(people):
    services, p = people
    doc_id = file_document(services, ["CD654321"], retention_until=date(2086, 11, 30))
    with pytest.raises(AccessDenied):
        records.add_child_status(services, p["sw.ahmed"], "AB123456", status="adoption", on_date=date(2024, 1, 1))
    with pytest.raises(ValidationFailed):
        records.add_child_status(services, p["tm.south"], "CD654321", status="adoption")
    result = records.add_child_status(services, p["tm.south"], "CD654321", status="adoption", on_date=date(2024, 2, 1))
    assert result["retention_changes"] == 1
    with services.db.session() as session:
        assert session.get(Document, doc_id).retention_until == date(2124, 2, 1)
        history = records.status_history(session, p["tm.south"], "CD654321")
        assert [(h["status"], h["source"]) for h in history] == [("cla", "import"), ("adoption", "person")]
