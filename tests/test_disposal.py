"""Issue 19, disposal (seed 003 appendix 3): a review list of what has passed its retention and is
not held, proposed by a records manager and approved by a second person; the objects are deleted
once their locks have run out, a destruction certificate is written and a tombstone kept."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import select

from escr.app import disposal, paper
from escr.app.access import AccessDenied
from escr.app.accounts import add_user, principal_for
from escr.errors import InvalidState, ProtocolViolation, ValidationFailed
from escr.record.events import Actor
from escr.record.models import Child, Document, Event, Page, PaperVolume
from escr.record.status import add_status
from tests.support.records import add_people, file_document

ADMIN = Actor(kind="user", name="admin")
PAST = date(2020, 1, 1)


@pytest.fixture
def people(with_children):
    return with_children, add_people(with_children, [
        ("rm.evans", "auditor", []),
        ("rm.lee", "auditor", []),
        ("tm.smith", "team_manager", []),
        ("bs.jones", "business_support", []),
    ])


def _search(services, words: str) -> list[str]:
    """The database's own full-text search (FTS5 on SQLite, tsvector on PostgreSQL)."""
    with services.db.session() as session:
        return sorted({hit.document_id for hit in services.db.search_pages(session, words)})


def _ids(candidates):
    return [(c.kind, c.id) for c in candidates]


def test_only_what_has_passed_retention_and_is_not_held_is_on_the_review_list(people):
    services, p = people
    gone = file_document(services, ["EF111222"], retention_until=PAST, locked=False)
    file_document(services, ["AB123456"], retention_until=date(2090, 6, 14))  # not yet
    file_document(services, ["EF111222"], retention_until=None)  # unknown: keep
    held = file_document(services, ["EF111222"], retention_until=PAST, locked=False, doc_type="court_order")
    with services.db.session() as session:
        assert _ids(disposal.review_list(session, p["rm.evans"], services.retention)) == [
            ("document", gone), ("document", held)]
        disposal.set_category_hold(session, p["rm.evans"], scope="doc_type", value="court_order",
                                   reason="public inquiry destruction freeze", known_types=services.doctypes.types)
    with services.db.session() as session:
        assert _ids(disposal.review_list(session, p["rm.evans"], services.retention)) == [("document", gone)]
        # A freeze on a status: every record of a child who has ever had it.
        add_status(session, session.get(Child, "EF111222"), status="cla", from_date=date(2010, 1, 1),
                   to_date=date(2011, 1, 1), on_date=None, actor=ADMIN)
        disposal.set_category_hold(session, p["rm.evans"], scope="status", value="cla", reason="inquiry into care",
                                   known_types=services.doctypes.types)
    with services.db.session() as session:
        assert disposal.review_list(session, p["rm.evans"], services.retention) == []
        with pytest.raises(AccessDenied):
            disposal.review_list(session, p["bs.jones"], services.retention)


def test_proposed_approved_by_another_then_deleted_with_certificate_and_tombstone(people):
    services, p = people
    doc_id = file_document(services, ["EF111222"], retention_until=PAST, locked=False)
    with services.db.session() as session:
        doc = session.get(Document, doc_id)
        doc.pages.append(Page(seq=1, source_index=0, text="Sophie was seen at school", words=[], word_count=5))
    assert _search(services, "Sophie") == [doc_id]
    with services.db.session() as session:
        doc = session.get(Document, doc_id)
        keys = {doc.searchable_key: doc.searchable_sha256, doc.manifest_key: doc.manifest_sha256,
                doc.batch.original_key: doc.batch.sha256}
        with pytest.raises(AccessDenied):
            disposal.propose(session, p["tm.smith"], services.retention, [("document", doc_id)], reason="expired")
        proposal = disposal.propose(session, p["rm.evans"], services.retention, [("document", doc_id)],
                                    reason="retention passed, no hold")
        pid = proposal.id
    with services.db.session() as session:
        with pytest.raises(ProtocolViolation):
            disposal.decide(session, p["rm.evans"], pid, approve=True, note="mine")
    with services.db.session() as session:
        with pytest.raises(InvalidState):
            disposal.carry_out(services, p["rm.evans"], pid)
    with services.db.session() as session:
        disposal.decide(session, p["rm.lee"], pid, approve=True, note="checked against the schedule")
    outcome = disposal.carry_out(services, p["rm.evans"], pid)
    assert outcome.disposed == [f"document {doc_id}"] and outcome.waiting == {}
    assert all(services.store.stat(k) is None for k in keys)
    with services.store.open(outcome.certificate_key) as fh:
        certificate = json.loads(fh.read())
    assert certificate["approved_by"] == "rm.lee" and certificate["items"][0]["hashes"] == keys
    assert services.store.get_retention(outcome.certificate_key).legal_hold
    with services.db.session() as session:
        [stone] = disposal.tombstones(session, p["rm.evans"], item_id=doc_id)
        assert (stone["proposed_by"], stone["approved_by"], stone["hashes"]) == ("rm.evans", "rm.lee", keys)
        assert stone["dates"]["retention_until"] == "2020-01-01"
        assert session.get(Document, doc_id).state == "disposed"
    assert _search(services, "Sophie") == []  # the text is gone with the document
    with services.db.session() as session:
        assert session.scalars(select(Event).where(Event.kind == "disposed")).one().document_id == doc_id


def test_an_item_whose_lock_still_runs_waits_and_a_hold_set_after_approval_stops_it(people):
    services, p = people
    locked = file_document(services, ["EF111222"], retention_until=PAST)  # the store keeps it a day more
    frozen = file_document(services, ["EF111222"], retention_until=PAST, locked=False, doc_type="assessment")
    with services.db.session() as session:
        pid = disposal.propose(session, p["rm.evans"], services.retention,
                               [("document", locked), ("document", frozen)], reason="expired").id
        disposal.decide(session, p["tm.smith"], pid, approve=True, note="ok")
        disposal.set_category_hold(session, p["rm.lee"], scope="doc_type", value="assessment", reason="inquiry",
                                   known_types=services.doctypes.types)
    outcome = disposal.carry_out(services, p["rm.evans"], pid)
    assert outcome.disposed == [] and set(outcome.waiting) == {f"document {locked}", f"document {frozen}"}
    assert "locked until" in outcome.waiting[f"document {locked}"]
    with services.db.session() as session:
        assert {session.get(Document, d).state for d in (locked, frozen)} == {"awaiting_verification"}


def test_a_paper_volume_past_its_childs_retention_is_disposed_with_a_tombstone(people):
    services, p = people
    with services.db.session() as session:
        user, _ = add_user(session, "bs.paper", role="business_support", actor=ADMIN)
        session.flush()
        paper.register(session, principal_for(user), volume_id="EF111222-V1", child_id="EF111222", kind="volume",
                       title="Volume 1", location="Records store")
        child = session.get(Child, "EF111222")
        add_status(session, child, status="closed", from_date=None, to_date=None, on_date=date(2015, 3, 1), actor=ADMIN)
        add_status(session, child, status="cin", from_date=date(2014, 1, 1), to_date=date(2015, 3, 1), on_date=None,
                   actor=ADMIN)
    with services.db.session() as session:
        [cand] = disposal.review_list(session, p["rm.evans"], services.retention)
        assert (cand.kind, cand.id, cand.retention_until) == ("volume", "EF111222-V1", date(2017, 3, 1))
        pid = disposal.propose(session, p["rm.evans"], services.retention, [("volume", "EF111222-V1")],
                               reason="expired").id
        disposal.decide(session, p["rm.lee"], pid, approve=True, note="ok")
    assert disposal.carry_out(services, p["rm.evans"], pid).disposed == ["volume EF111222-V1"]
    with services.db.session() as session:
        assert session.get(PaperVolume, "EF111222-V1").state == "disposed"
        assert disposal.tombstones(session, p["tm.smith"])[0]["item_id"] == "EF111222-V1"


def test_a_category_hold_names_a_known_type_or_status_so_a_typing_slip_cannot_hold_nothing(people):
    services, p = people
    with services.db.session() as session:
        for scope, slip in (("doc_type", "court order"), ("status", "looked-after")):
            with pytest.raises(ValidationFailed, match="is not a .* escr knows"):
                disposal.set_category_hold(session, p["rm.evans"], scope=scope, value=slip, reason="inquiry",
                                           known_types=services.doctypes.types)
        assert disposal.holds(session, p["rm.evans"]) == []
        classes = disposal.hold_classes(services.doctypes.types)
        assert "court_order" in classes["doc_type"] and {"cla", "adoption", "died"} <= set(classes["status"])
        assert "lac" not in classes["status"]  # an alias of cla: one entry per class
