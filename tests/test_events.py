"""The protocol log: every event chained to the one before, through one writer."""

from __future__ import annotations

from sqlalchemy import select

from escr.record import payloads
from escr.record.database import GENESIS_HASH
from escr.record.events import AccessEvent, Actor, Kind, ProtocolEvent, event_hash, payload_of, record
from escr.record.models import Event
from tests.support.databases import tamper_with_events

RECEIVED = {"operator": "bs1", "device": "mfd-1", "intake_path": "bs1/mfd-1/s.pdf", "size_bytes": 100,
            "claim_id": "c-1", "received_at": "2026-03-03T09:30:00+00:00"}  # escr.record.payloads.Received


def test_events_form_an_unbroken_hash_chain(services):
    with services.db.session() as session:
        record(session, ProtocolEvent(kind=Kind.RECEIVED, actor=Actor(kind="operator", name="bs1"), batch_id="S-1",
                                      parameters=RECEIVED, inputs={"original": "ab" * 32}))
        record(session, AccessEvent(actor=Actor(kind="user", name="cw1"), action="view", document_id="D-1",
                                    child_id="AB123456"))
    with services.db.session() as session:
        record(session, ProtocolEvent(kind=Kind.VERIFIED, actor=Actor(kind="user", name="v1"), document_id="D-1",
                                      parameters=payloads.Verified(children=[], doc_type=None, third_party=False)))
    with services.db.session() as session:
        rows = session.scalars(select(Event).order_by(Event.id)).all()
        assert [r.kind for r in rows] == ["received", "accessed", "verified"]
        assert rows[0].prev_hash == GENESIS_HASH
        for before, after in zip(rows, rows[1:], strict=False):
            assert after.prev_hash == before.hash
        for row in rows:
            assert event_hash(row.prev_hash, payload_of(row)) == row.hash


def test_editing_an_event_behind_escrs_back_breaks_its_hash(services):
    """Someone with the owner's rights switches the append-only guard off and edits a row: the
    chain still shows it."""
    with services.db.session() as session:
        record(session, ProtocolEvent(kind=Kind.VERIFIED, actor=Actor(kind="user", name="v1"), document_id="D-1",
                                      parameters=payloads.Verified(children=[], doc_type=None, third_party=False)))
    tamper_with_events(services.db, "UPDATE events SET actor = 'someone-else'")
    with services.db.session() as session:
        row = session.scalars(select(Event)).one()
        assert row.actor == "someone-else"
        assert event_hash(row.prev_hash, payload_of(row)) != row.hash
