"""Issue 19, DOMAIN protocol steps 2 and 6: every printed cover sheet is in the register, sheets
printed but not scanned are listed, and a batch's paper is destroyed only once declared and found
agree or the shortfall is listed as missing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from escr.app import coversheets
from escr.app.access import AccessDenied
from escr.errors import InvalidState
from escr.provenance import paper
from escr.record.events import Actor
from escr.storage.objectstore import today_utc
from tests.support.records import add_people, file_document

ADMIN = Actor(kind="user", name="admin")


@pytest.fixture
def people(with_children):
    return with_children, add_people(with_children, [
        ("bs.jones", "business_support", []),
        ("sw.ahmed", "caseworker", []),
    ])


def test_sheets_printed_but_not_scanned_are_listed(people):
    services, p = people
    with services.db.session() as session:
        for batch_id in ("B-1", "B-2"):
            coversheets.register_printed(session, p["bs.jones"], batch_id=batch_id, child_ids=["AB123456"],
                                         doc_type="referral", declared_pages=2)
        with pytest.raises(AccessDenied):
            coversheets.unscanned(session, p["sw.ahmed"], days=0)
    file_document(services, ["AB123456"], coversheet_batch_id="B-1")
    with services.db.session() as session:
        assert coversheets.unscanned(session, p["bs.jones"], days=3) == []
        later = today_utc() + timedelta(days=3)
        assert [s["cover_batch_id"] for s in coversheets.unscanned(session, p["bs.jones"], days=3, today=later)] == ["B-2"]


def test_paper_of_a_batch_short_of_its_declared_pages_is_destroyed_only_once_the_gap_is_listed(people):
    services, p = people
    with services.db.session() as session:
        coversheets.register_printed(session, p["bs.jones"], batch_id="B-3", child_ids=["EF111222"],
                                     doc_type="referral", declared_pages=3)
    verified = datetime.now(UTC) - timedelta(days=40)
    doc_id = file_document(services, ["EF111222"], coversheet_batch_id="B-3", verified_at=verified)
    settings, catalogue = services.settings.provenance, services.doctypes
    with services.db.session() as session:
        shown = coversheets.manifest(session, p["bs.jones"], "B-3")
        assert (shown["declared"]["pages"], shown["found"]["pages"], shown["reconciled"]) == (3, 1, False)
        with pytest.raises(InvalidState) as err:
            paper.destroy(session, [doc_id], by="Shred Co", method="cross-cut", certificate_ref="C-1",
                          recorded_by="bs.jones", catalogue=catalogue, settings=settings, today=today_utc())
        assert "batch manifest of B-3" in err.value.message
    with services.db.session() as session:
        after = coversheets.list_missing(session, p["bs.jones"], "B-3", description="two pages of the letter",
                                         pages=2)
        assert after["reconciled"] and after["missing"][0]["pages"] == 2
        [row] = paper.destroy(session, [doc_id], by="Shred Co", method="cross-cut", certificate_ref="C-1",
                              recorded_by="bs.jones", catalogue=catalogue, settings=settings, today=today_utc())
        assert row.action == "destroyed"
