"""Issue 19, paper files (seed 001 sections 1, 7, 22-23; seed 003): volumes and originals, their
removal with a manager's authority, arrival confirmed by the other side, overdue items, and a
loss reported once, told at once by the alert command and by e-mail through a real SMTP relay."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from escr.app import paper
from escr.app.access import AccessDenied
from escr.errors import InvalidState, ProtocolViolation, ValidationFailed
from escr.record.events import Actor
from escr.record.models import Event, PaperVolume
from escr.services import open_services
from escr.settings import load_settings
from tests.support.intake import free_port
from tests.support.records import add_people, file_document

ADMIN = Actor(kind="user", name="admin")


@pytest.fixture
def people(with_children):
    return with_children, add_people(with_children, [
        ("bs.jones", "business_support", []),
        ("bs.patel", "business_support", []),
        ("tm.smith", "team_manager", ["north"]),
        ("sw.ahmed", "caseworker", ["north"]),
        ("sw.other", "caseworker", []),
    ], teams=("north",))


def _register(services, who, volume_id="AB123456-V1", kind="volume"):
    with services.db.session() as session:
        paper.register(session, who, volume_id=volume_id, child_id="AB123456", kind=kind, title="Volume 1",
                       contents="referrals, assessments, CP conference minutes", location="Records store, shelf 4",
                       covers_from=date(2015, 7, 1), covers_to=date(2019, 12, 31))


def test_a_volume_and_an_original_show_on_the_childs_record_with_where_they_are(people):
    services, p = people
    _register(services, p["bs.jones"])
    _register(services, p["bs.jones"], "AB123456-O1", kind="original")
    doc_id = file_document(services, ["AB123456"])
    with services.db.session() as session:
        paper.link_document(session, p["bs.jones"], doc_id, "AB123456-V1")
    with services.db.session() as session:
        record = paper.components(session, p["sw.ahmed"], "AB123456")
        assert [(v["id"], v["kind"], v["location"]) for v in record["paper"]] == [
            ("AB123456-O1", "original", "Records store, shelf 4"), ("AB123456-V1", "volume", "Records store, shelf 4")]
        assert record["documents"][0]["volume_id"] == "AB123456-V1"
        with pytest.raises(AccessDenied):
            paper.components(session, p["sw.other"], "AB123456")


def test_removal_needs_a_named_manager_and_the_receiver_confirms(people):
    services, p = people
    _register(services, p["bs.jones"])
    with services.db.session() as session:
        with pytest.raises(ValidationFailed):
            paper.book_out(session, p["bs.jones"], "AB123456-V1", recipient="sw.ahmed", authorised_by="",
                           due_back=date.today() + timedelta(days=7))
        with pytest.raises(ProtocolViolation):  # not a manager
            paper.book_out(session, p["bs.jones"], "AB123456-V1", recipient="sw.ahmed", authorised_by="bs.patel",
                           due_back=date.today() + timedelta(days=7))
        move = paper.book_out(session, p["bs.jones"], "AB123456-V1", recipient="sw.ahmed", authorised_by="tm.smith",
                              due_back=date.today() + timedelta(days=7))
        move_id = move.id
    with services.db.session() as session:
        with pytest.raises(ProtocolViolation):
            paper.confirm_arrival(session, p["bs.jones"], move_id)
    with services.db.session() as session:
        paper.confirm_arrival(session, p["sw.ahmed"], move_id)
        assert session.get(PaperVolume, "AB123456-V1").location == "sw.ahmed"
        back = paper.book_in(session, p["bs.jones"], "AB123456-V1", to="Records store, shelf 4")
        back_id = back.id
    with services.db.session() as session:
        paper.confirm_arrival(session, p["bs.patel"], back_id)
        vol = session.get(PaperVolume, "AB123456-V1")
        assert (vol.state, vol.location) == ("in_place", "Records store, shelf 4")
        moved = session.scalars(select(Event).where(Event.kind == "paper_moved", Event.outcome == "booked_out")).one()
        assert moved.detail["parameters"]["authorised_by"] == "tm.smith"


def test_an_item_past_its_due_back_date_is_listed_as_overdue(people):
    services, p = people
    _register(services, p["bs.jones"])
    with services.db.session() as session:
        move = paper.book_out(session, p["bs.jones"], "AB123456-V1", recipient="Court", authorised_by="tm.smith",
                              due_back=date.today() + timedelta(days=2))
        paper.confirm_arrival(session, p["tm.smith"], move.id)
    from escr.record.events import now
    with services.db.session() as session:
        assert paper.overdue(session, p["tm.smith"]) == []
        [late] = paper.overdue(session, p["tm.smith"], at=now() + timedelta(days=5))
        assert (late["paper_ref"], late["problem"], late["child_id"], late["days"]) == ("AB123456-V1", "overdue_return",
                                                                                       "AB123456", 3)


class Inbox:
    def __init__(self) -> None:
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        self.messages.append(envelope)
        return "250 OK"


def test_a_loss_is_reported_once_tells_people_at_once_and_shows_until_closed(people, tmp_path, database_url):
    services, p = people
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    alert_file = tmp_path / "alert.json"
    try:
        settings = load_settings(home=services.settings.home, database_url=database_url,
                                 provenance={"alert_command": ["sh", "-c", f"cat > {alert_file}"]},
                                 records={"smtp_host": "127.0.0.1", "smtp_port": port,
                                          "alert_recipients": ["director@council.example", "records@council.example"]})
        told = open_services(settings)
        _register(told, p["bs.jones"])
        incident = paper.report_loss(told, p["sw.ahmed"], "AB123456-V1", kind="stolen",
                                     description="taken from a car")
        assert incident.notified == {"command": "ok", "email": "ok", "recipients": 2}
        assert json.loads(alert_file.read_text())["volume_id"] == "AB123456-V1"
        [mail] = inbox.messages
        assert sorted(mail.rcpt_tos) == ["director@council.example", "records@council.example"]
        assert b"paper stolen" in mail.content and b"taken from a car" not in mail.content
        with told.db.session() as session:
            with pytest.raises(InvalidState):
                paper.report_loss(told, p["bs.jones"], "AB123456-V1", kind="missing", description="again")
        with told.db.session() as session:
            paper.follow_up(session, p["bs.jones"], incident.id, "police informed, crime ref 123")
            shown = paper.components(session, p["sw.ahmed"], "AB123456")
            assert shown["paper"][0]["state"] == "stolen"
            assert shown["open_incidents"][0]["follow_ups"][0]["by"] == "bs.jones"
            with pytest.raises(AccessDenied):
                paper.close_incident(session, p["bs.jones"], incident.id, outcome="recovered", location="Store")
            paper.close_incident(session, p["tm.smith"], incident.id, outcome="recovered", location="Records store")
        with told.db.session() as session:
            shown = paper.components(session, p["sw.ahmed"], "AB123456")
            assert shown["open_incidents"] == [] and shown["paper"][0]["state"] == "in_place"
        told.db.dispose()
    finally:
        controller.stop()


def test_a_failing_relay_does_not_lose_the_report(people, database_url):
    services, p = people
    settings = load_settings(home=services.settings.home, database_url=database_url,
                             records={"smtp_host": "127.0.0.1", "smtp_port": free_port(), "smtp_timeout_s": 2,
                                      "alert_recipients": ["director@council.example"]})
    told = open_services(settings)
    try:
        _register(told, p["bs.jones"])
        incident = paper.report_loss(told, p["bs.jones"], "AB123456-V1", kind="missing", description="not on shelf")
        assert incident.notified["email"] == "failed"
        with told.db.session() as session:
            assert session.get(PaperVolume, "AB123456-V1").state == "missing"
    finally:
        told.db.dispose()
