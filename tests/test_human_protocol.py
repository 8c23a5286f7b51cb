"""The human half of the protocol (issue 16): indexing every case, who may open what in which
state, verification that needs seeing, conflicts, withdrawal and rescans, two-person corrections
with a misfiling record, and retention protection that no path loses.

Driven through the REST API and the HTML forms of the real app, on documents filed by the real
intake pipeline (tests.support.web); further documents for one test each are copies of those
rows (same stored objects, new ids), so that no test depends on another's changes.
"""

from __future__ import annotations

import json
import secrets
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from escr.app import accounts
from escr.app.verification import link_rescan_by_coversheet
from escr.record.events import Actor, now
from escr.record.models import (
    Batch,
    Child,
    CorrectionRequest,
    Document,
    DocumentChild,
    DocumentLinkHistory,
    Event,
    Page,
    QcResult,
    Tag,
)
from escr.web import create_app
from tests.support.web import World, csrf_from, open_world, sign_in

SETUP = Actor(kind="user", name="setup")


@pytest.fixture(scope="module")
def world(tmp_path_factory, pytestconfig, postgres_server) -> World:
    yield from open_world(tmp_path_factory, pytestconfig, postgres_server, "human")


@pytest.fixture(scope="module")
def app(world):
    with world.services.db.session() as session:  # a team manager without the third-party permission
        accounts.add_user(session, "tm.plain", role="team_manager", actor=SETUP, teams=("north",),
                          password="correct horse battery staple")
    return create_app(world.services)


@pytest.fixture(scope="module")
def as_user(app, world):
    clients: dict[str, TestClient] = {}

    def client(name: str) -> TestClient:
        if name not in clients:
            with world.services.db.session() as session:
                secret = accounts.create_token(session, accounts.get_user(session, name), "t", actor=SETUP).secret
            clients[name] = TestClient(app, headers={"Authorization": f"Bearer {secret}"})
        return clients[name]

    return client


def code_of(resp) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    return resp.status_code, resp.json()["error"]["code"]


def copy_of(world: World, label: str, *, state: str, children: list[str] | None = None,
            doc_type: str | None = None, third_party: bool | None = None, coversheet: str | None = None,
            named_in_text: list[str] | None = None, own_objects: bool = False) -> str:
    """A new document with the pages, tags and stored objects of a filed one, in `state`
    (`own_objects`: objects of its own, held as an unmatched document's are at filing)."""
    with world.services.db.session() as session:
        src = session.get(Document, world.docs[label])
        stamp, scan = now(), src.batch
        keys = {"original": scan.original_key, "searchable": src.searchable_key, "manifest": src.manifest_key}
        if own_objects:
            for kind in keys:
                data = f"{kind} of a copied document {secrets.token_hex(8)}".encode()
                keys[kind] = f"copies/{secrets.token_hex(8)}.{kind}"
                world.services.store.put_bytes(keys[kind], data, content_type="application/octet-stream")
        batch = Batch(id=f"S-{secrets.token_hex(8)}", sha256=secrets.token_hex(32), claim_id=secrets.token_hex(8),
                      operator=scan.operator, device=scan.device, source_name="copy.pdf", media_type=scan.media_type,
                      size_bytes=scan.size_bytes, page_count=src.page_count, producer=scan.producer,
                      cover_batch_ids=[], original_key=keys["original"], received_at=stamp, filed_at=stamp)
        doc = Document(id=f"D-{secrets.token_hex(8)}", batch_id=batch.id, seq=1, coversheet_batch_id=coversheet,
                       first_page=src.first_page, last_page=src.last_page, page_count=src.page_count,
                       doc_type=doc_type or src.doc_type, doc_date=src.doc_date,
                       third_party=src.third_party if third_party is None else third_party, state=state,
                       state_reasons=[], searchable_key=keys["searchable"], searchable_sha256=src.searchable_sha256,
                       manifest_key=keys["manifest"], manifest_sha256=src.manifest_sha256, created_at=stamp,
                       updated_at=stamp, verified_by="tm.north" if state == "verified" else None,
                       verified_at=stamp if state == "verified" else None)
        session.add_all([batch, doc])
        session.flush()
        for p in src.pages:
            session.add(Page(document_id=doc.id, seq=p.seq, source_index=p.source_index, text=p.text, words=p.words,
                             mean_conf=p.mean_conf, word_count=p.word_count))
        for t in src.tags:
            if t.name == "third_party":
                session.add(Tag(document_id=doc.id, name=t.name, value=t.value, source=t.source,
                                confidence=t.confidence, detail=t.detail, created_at=stamp))
        linked = [c.child_id for c in src.children] if children is None else children
        session.add_all(DocumentChild(document_id=doc.id, child_id=c, basis="coversheet", linked_by="escr",
                                      linked_at=stamp) for c in linked)
        session.add(QcResult(document_id=doc.id, check="identity", status="pass", message="copied",
                             numbers={"linked": linked, "identified_in_text": named_in_text or []}))
        return doc.id


def allocate(world: World, child_id: str, username: str | None) -> None:
    with world.services.db.session() as session:
        accounts.allocate(session, child_id, username, actor=SETUP)


def protocol_events(world: World, doc_id: str) -> list[Event]:
    with world.services.db.session() as session:
        return list(session.scalars(select(Event).where(Event.document_id == doc_id, Event.category == "protocol")
                                    .order_by(Event.id)))


def links_of(world: World, doc_id: str) -> list[str]:
    with world.services.db.session() as session:
        return sorted(session.scalars(select(DocumentChild.child_id).where(DocumentChild.document_id == doc_id)))


# --- 1. indexing, every case ----------------------------------------------------------------------


def test_the_browser_form_indexes_a_document_with_no_candidate_to_siblings_typed_in(app, world):
    """The work page sends no `children` when the pipeline found none: the typed ids are enough."""
    doc = copy_of(world, "unmatched", state="needs_indexing", children=[])
    browser = TestClient(app)
    sign_in(browser, "bs.jones")
    token = csrf_from(browser.get(f"/documents/{doc}/work").text)
    saved = browser.post(f"/documents/{doc}/index", follow_redirects=False, data={
        "csrf_token": token, "other_children": "AB123456, AB123457", "doc_type": "correspondence",
        "doc_date": "2026-02-02"})
    assert saved.status_code == 303, saved.text[:300]
    page = browser.get(saved.headers["location"]).text
    assert "waits for verification by someone else" in page
    assert links_of(world, doc) == ["AB123456", "AB123457"]  # siblings: one link each


def test_the_work_page_looks_a_child_up_and_its_form_files_the_document_to_them(app, world):
    doc = copy_of(world, "unmatched", state="needs_indexing", children=[])
    browser = TestClient(app)
    sign_in(browser, "bs.jones")
    page = browser.get(f"/documents/{doc}/work", params={"find": "Okonkwo 30/11/2011"}).text
    assert 'name="children" value="CD654321"' in page and "Jayden Okonkwo" in page
    saved = browser.post(f"/documents/{doc}/index", follow_redirects=False, data={
        "csrf_token": csrf_from(page), "children": "CD654321", "doc_type": "correspondence"})
    assert saved.status_code == 303
    assert links_of(world, doc) == ["CD654321"]


def test_reindexing_before_verification_replaces_the_links_logs_both_and_rechecks_identity(world, as_user):
    """A wrong candidate, then a child outside the candidates: links move, history kept, QC re-run."""
    doc = copy_of(world, "referral", state="awaiting_verification", named_in_text=["AB123456"])
    bs = as_user("bs.jones")
    moved = bs.post(f"/api/v1/documents/{doc}/index", json={"children": ["CD654321"], "doc_type": "referral"})
    assert moved.status_code == 200, moved.text
    assert links_of(world, doc) == ["CD654321"]
    shown = bs.get(f"/api/v1/documents/{doc}").json()
    assert any("identifies a different child" in r for r in shown["state_reasons"])  # identity QC failed
    assert shown["qc"][-1]["check"] == "identity" and shown["qc"][-1]["status"] == "fail"
    indexed = [e for e in protocol_events(world, doc) if e.kind == "indexed"][-1]
    assert indexed.detail["parameters"]["before"]["children"] == ["AB123456"]
    assert indexed.detail["parameters"]["after"]["children"] == ["CD654321"]
    assert (indexed.detail["parameters"]["removed"], indexed.detail["parameters"]["added"]) == (["AB123456"],
                                                                                                 ["CD654321"])
    with world.services.db.session() as session:
        history = session.scalars(select(DocumentLinkHistory).where(DocumentLinkHistory.document_id == doc)).all()
        assert [(h.child_id, h.basis, h.unlinked_by, h.reason) for h in history] == [
            ("AB123456", "coversheet", "bs.jones", "reindexed")]
    back = bs.post(f"/api/v1/documents/{doc}/index", json={"children": ["AB123456"], "doc_type": "referral"})
    assert back.status_code == 200
    again = bs.get(f"/api/v1/documents/{doc}").json()
    assert again["state_reasons"] == []  # identity agrees again
    assert [q["status"] for q in again["qc"] if q["check"] == "identity"] == ["pass"]  # the stale failure is gone
    assert "fail" in [q["status"] for q in again["qc_earlier"] if q["check"] == "identity"]  # and kept


def test_the_form_finds_a_child_by_id_nhs_number_or_name_and_date_of_birth(as_user):
    bs = as_user("bs.jones")
    for query in ("AB123456", "943 476 5919", "Whitfield 14/06/2015", "Amelia 14 June 2015"):
        found = bs.get("/api/v1/children", params={"q": query}).json()["items"]
        assert [c["child_id"] for c in found] == ["AB123456"], query


# --- 2. what opens to whom, by state ---------------------------------------------------------------


def test_before_verification_content_opens_to_intake_verifiers_and_the_allocated_worker_marked(world, as_user):
    doc = copy_of(world, "referral", state="awaiting_verification")
    caseworker, manager = as_user("cw.north"), as_user("tm.plain")
    assert caseworker.get(f"/api/v1/documents/{doc}").status_code == 200  # the details are listed
    assert code_of(caseworker.get(f"/api/v1/documents/{doc}/content")) == (403, "not_yet_verified")
    assert doc not in [h["id"] for h in caseworker.get("/api/v1/search?q=bruising").json()["items"]]
    opened = manager.get(f"/api/v1/documents/{doc}/content")  # the child's team manager
    assert opened.status_code == 200 and "not-yet-verified" in opened.headers["content-disposition"]
    assert manager.get(f"/api/v1/documents/{doc}").json()["content"]["not_yet_verified"] is True
    assert as_user("bs.jones").get(f"/api/v1/documents/{doc}/content").status_code == 200
    allocate(world, "AB123456", "cw.south")  # allocated worker from another team
    try:
        south = as_user("cw.south")
        assert south.get(f"/api/v1/documents/{doc}/content").status_code == 200
        hits = south.get("/api/v1/search?q=bruising").json()["items"]
        assert (doc, True) in [(h["id"], h["not_yet_verified"]) for h in hits]
    finally:
        allocate(world, "AB123456", None)


def test_a_rejected_scan_leaves_the_record_and_opens_to_intake_roles_only(world, as_user):
    doc = copy_of(world, "referral", state="awaiting_verification")
    manager = as_user("tm.north")
    assert doc in [h["id"] for h in manager.get("/api/v1/search?q=bruising").json()["items"]]
    rejected = as_user("bs.jones").post(f"/api/v1/documents/{doc}/reject",
                                        json={"reason": "another family's letter"})
    assert rejected.json()["state"] == "rejected"
    assert code_of(manager.get(f"/api/v1/documents/{doc}/content")) == (403, "not_in_record")
    assert code_of(manager.get(f"/api/v1/documents/{doc}/pages/1")) == (403, "not_in_record")
    assert doc not in [h["id"] for h in manager.get("/api/v1/search?q=bruising").json()["items"]]
    listed = manager.get("/api/v1/children/AB123456/documents?limit=200").json()["items"]
    assert doc not in [d["id"] for d in listed]  # out of the chronology
    assert as_user("bs.jones").get(f"/api/v1/documents/{doc}/content").status_code == 200


def test_rejecting_a_letter_unlinks_it_so_the_wrong_team_loses_even_its_details(world, as_user):
    """A letter rejected as another family's leaves the child's record; whose it was stays in the history."""
    doc = copy_of(world, "referral", state="awaiting_verification")
    caseworker, bs = as_user("cw.north"), as_user("bs.jones")
    assert caseworker.get(f"/api/v1/documents/{doc}").status_code == 200  # listed to the child's team
    bs.post(f"/api/v1/documents/{doc}/reject", json={"reason": "another family's letter"})
    assert links_of(world, doc) == []
    assert code_of(caseworker.get(f"/api/v1/documents/{doc}")) == (403, "not_in_record")
    shown = bs.get(f"/api/v1/documents/{doc}").json()
    assert [(h["child_id"], h["reason"], h["unlinked_by"]) for h in shown["earlier_links"]] == [
        ("AB123456", "rejected", "bs.jones")]
    rejected = [e for e in protocol_events(world, doc) if e.kind == "rejected"][-1]
    assert rejected.detail["parameters"]["unlinked"] == ["AB123456"]


def test_third_party_documents_open_to_the_allocated_worker_and_team_manager(world, as_user):
    doc = copy_of(world, "third_party", state="verified")
    caseworker = as_user("cw.north")  # the child's team, no permission, not allocated
    assert code_of(caseworker.get(f"/api/v1/documents/{doc}/content")) == (403, "third_party_permission_required")
    assert doc not in [h["id"] for h in caseworker.get("/api/v1/search?q=confidence").json()["items"]]
    assert as_user("tm.plain").get(f"/api/v1/documents/{doc}/content").status_code == 200  # their team manager
    allocate(world, "AB123456", "cw.north")
    try:
        assert caseworker.get(f"/api/v1/documents/{doc}/content").status_code == 200
        assert doc in [h["id"] for h in caseworker.get("/api/v1/search?q=confidence").json()["items"]]
    finally:
        allocate(world, "AB123456", None)


def test_the_third_party_flag_follows_the_type_and_a_person_sets_or_clears_it_with_a_reason(world, as_user):
    doc = copy_of(world, "unmatched", state="needs_indexing", children=[], third_party=False)
    bs = as_user("bs.jones")
    bs.post(f"/api/v1/documents/{doc}/index", json={"children": ["AB123456"], "doc_type": "police_report"})
    assert bs.get(f"/api/v1/documents/{doc}").json()["third_party"] is True  # the type's default
    # Business support without the permission can no longer open it, so cannot re-index it either.
    assert code_of(bs.post(f"/api/v1/documents/{doc}/index", json={"children": ["AB123456"],
                                                                   "doc_type": "correspondence"})) == (
        403, "cannot_see_to_decide")
    manager = as_user("tm.north")
    manager.post(f"/api/v1/documents/{doc}/index", json={"children": ["AB123456"], "doc_type": "correspondence"})
    assert manager.get(f"/api/v1/documents/{doc}").json()["third_party"] is False

    short = manager.post(f"/api/v1/documents/{doc}/third-party", json={"third_party": True, "reason": "police"})
    assert code_of(short) == (422, "reason_required")
    reason = "neighbour's account given in confidence"
    assert manager.post(f"/api/v1/documents/{doc}/third-party",
                        json={"third_party": True, "reason": reason}).json()["third_party"] is True
    changed = [e for e in protocol_events(world, doc) if e.kind == "third_party_changed"]
    assert [(e.actor, e.outcome, e.detail["parameters"]["reason"]) for e in changed] == [("tm.north", "set", reason)]
    cleared = manager.post(f"/api/v1/documents/{doc}/third-party",
                           json={"third_party": False, "reason": "the family's own account, not a third party"})
    assert cleared.json()["third_party"] is False


# --- 3. verification means seeing ----------------------------------------------------------------


def test_decisions_are_never_offered_to_nor_taken_from_someone_who_cannot_open_the_pages(world, as_user):
    doc = copy_of(world, "third_party", state="awaiting_verification")
    bs = as_user("bs.jones")  # business support without the third-party permission
    shown = bs.get(f"/api/v1/documents/{doc}").json()
    assert shown["content"]["allowed"] is False
    assert not {"verify", "reject", "accept_qc", "index"} & set(shown["actions"])
    assert code_of(bs.post(f"/api/v1/documents/{doc}/verify")) == (403, "cannot_see_to_decide")
    assert code_of(bs.post(f"/api/v1/documents/{doc}/reject", json={"reason": "unseen"})) == (
        403, "cannot_see_to_decide")
    assert [e.kind for e in protocol_events(world, doc)] == []  # nothing happened
    assert as_user("tm.north").post(f"/api/v1/documents/{doc}/verify").json()["state"] == "verified"


def test_third_party_documents_wait_in_the_queue_of_verifiers_who_may_open_them(world, as_user):
    doc = copy_of(world, "third_party", state="awaiting_verification")
    queued = as_user("bs.jones").get("/api/v1/queue?state=awaiting_verification&limit=200").json()["items"]
    assert doc not in [d["id"] for d in queued]
    queued = as_user("tm.north").get("/api/v1/queue?state=awaiting_verification&limit=200").json()["items"]
    assert doc in [d["id"] for d in queued]


def test_a_verifier_who_corrects_the_index_becomes_its_indexer_so_another_person_verifies(world, as_user):
    doc = copy_of(world, "referral", state="awaiting_verification")
    manager = as_user("tm.north")
    assert "index" in manager.get(f"/api/v1/documents/{doc}").json()["actions"]
    fixed = manager.post(f"/api/v1/documents/{doc}/index",
                         json={"children": ["AB123456"], "doc_type": "correspondence", "doc_date": "2026-03-04"})
    assert fixed.status_code == 200
    shown = manager.get(f"/api/v1/documents/{doc}").json()
    assert (shown["doc_type"], shown["doc_date"], shown["indexed_by"]) == ("correspondence", "2026-03-04", "tm.north")
    assert code_of(manager.post(f"/api/v1/documents/{doc}/verify")) == (409, "protocol_violation")
    assert as_user("bs.jones").post(f"/api/v1/documents/{doc}/verify").json()["state"] == "verified"


def test_a_verifier_cannot_file_to_another_teams_child_nor_learn_which_ids_exist(world, as_user):
    doc = copy_of(world, "referral", state="awaiting_verification")
    manager = as_user("tm.north")
    answers = [manager.post(f"/api/v1/documents/{doc}/index", json={"children": [child], "doc_type": "referral"})
               for child in ("CD654321", "ZZ999999")]  # another team's child; an id no child has
    assert [a.status_code for a in answers] == [403, 403]
    assert answers[0].json()["error"]["message"].replace("CD654321", "X") == \
        answers[1].json()["error"]["message"].replace("ZZ999999", "X")
    assert manager.get(f"/api/v1/documents/{doc}").json()["children"] == ["AB123456"]  # nothing moved
    # Business support index to any child in the index.
    assert as_user("bs.jones").post(f"/api/v1/documents/{doc}/index",
                                    json={"children": ["CD654321"], "doc_type": "referral"}).status_code == 200


def test_two_people_deciding_at_once_the_second_gets_a_conflict_and_nothing_of_it_is_applied(world, as_user):
    doc = copy_of(world, "referral", state="awaiting_verification")
    bs, manager = as_user("bs.jones"), as_user("tm.north")
    seen_by_bs = bs.get(f"/api/v1/documents/{doc}").json()["version"]
    seen_by_tm = manager.get(f"/api/v1/documents/{doc}").json()["version"]
    assert manager.post(f"/api/v1/documents/{doc}/verify?version={seen_by_tm}").status_code == 200
    late = bs.post(f"/api/v1/documents/{doc}/reject?version={seen_by_bs}", json={"reason": "page 2 cut off"})
    assert code_of(late) == (409, "conflict")
    assert "changed by someone else" in late.json()["error"]["message"]
    shown = bs.get(f"/api/v1/documents/{doc}").json()
    assert (shown["state"], shown["verified_by"], shown["state_reasons"]) == ("verified", "tm.north", [])
    assert [e.kind for e in protocol_events(world, doc)] == ["verified"]


def test_two_transactions_deciding_at_once_leave_one_decision_and_a_conflict(world):
    """The guarded UPDATE: the second transaction read the document before the first committed."""
    from escr.app.verification import reject_document, verify_document
    from escr.errors import Conflict

    doc = copy_of(world, "referral", state="awaiting_verification")
    db = world.services.db
    if db.dialect != "postgresql":
        pytest.skip("SQLite lets one writer in at a time (BEGIN IMMEDIATE): the API test above covers it")
    with db.session() as second:
        seen = second.get(Document, doc)  # what the second person saw (kept: the session holds it weakly)
        assert seen.state == "awaiting_verification"
        with db.session() as first:
            verify_document(first, doc, user="tm.north")
        with pytest.raises(Conflict):
            reject_document(second, doc, user="bs.jones", reason="page 2 cut off")
    with db.session() as session:
        row = session.get(Document, doc)
        assert (row.state, row.verified_by, row.state_reasons) == ("verified", "tm.north", [])
    assert [e.kind for e in protocol_events(world, doc)] == ["verified"]


# --- 4. withdrawal and rescans ---------------------------------------------------------------------


def test_the_scanner_withdraws_their_own_scan_and_a_rescan_supersedes_it(world, as_user):
    old = copy_of(world, "referral", state="awaiting_verification", coversheet="B-RESCAN01")
    refused = as_user("bs.jones").post(f"/api/v1/documents/{old}/withdraw", json={"reason": "pages out of order"})
    assert code_of(refused) == (409, "protocol_violation")  # only the scanner withdraws; others reject
    scanner = as_user("bs.scanner")
    withdrawn = scanner.post(f"/api/v1/documents/{old}/withdraw", json={"reason": "pages out of order"})
    assert withdrawn.json()["state"] == "withdrawn"
    assert [(e.kind, e.actor) for e in protocol_events(world, old)] == [("withdrawn", "bs.scanner")]
    assert links_of(world, old) == []  # out of the record: no child lists it any more

    new = copy_of(world, "referral", state="awaiting_verification", coversheet="B-RESCAN01")
    with world.services.db.session() as session:  # what the pipeline calls for a filed document
        replaced = link_rescan_by_coversheet(session, new)
        assert replaced is not None and replaced.id == old
    assert scanner.get(f"/api/v1/documents/{old}").json()["state"] == "superseded"
    assert as_user("bs.jones").get(f"/api/v1/documents/{new}").json()["replaces"] == old
    manager = as_user("tm.north")
    chronology = [d["id"] for d in manager.get("/api/v1/children/AB123456/documents?limit=200").json()["items"]]
    assert new in chronology and old not in chronology
    trail = as_user("aud.one").get(f"/api/v1/documents/{old}/provenance").json()["events"]["items"]
    assert [e["kind"] for e in trail][-2:] == ["withdrawn", "superseded"]  # kept in the audit trail
    assert code_of(manager.get(f"/api/v1/documents/{old}")) == (403, "not_in_record")


def test_a_person_links_a_rescan_to_the_rejected_scan_it_replaces(world, as_user):
    old = copy_of(world, "referral", state="rejected")
    new = copy_of(world, "referral", state="awaiting_verification")
    bs = as_user("bs.jones")
    linked = bs.post(f"/api/v1/documents/{new}/replaces", json={"replaces": old})
    assert linked.json()["replaced_state"] == "superseded"
    again = bs.post(f"/api/v1/documents/{new}/replaces", json={"replaces": old})
    assert again.status_code == 409


def test_a_rescan_is_a_new_version_beside_the_old_and_the_record_shows_which_is_current(app, world, as_user):
    first = copy_of(world, "referral", state="rejected")
    second = copy_of(world, "referral", state="awaiting_verification")
    bs = as_user("bs.jones")
    with world.services.db.session() as session:
        objects = {d: session.get(Document, d).searchable_sha256 for d in (first, second)}
    bs.post(f"/api/v1/documents/{second}/replaces", json={"replaces": first})
    shown = bs.get(f"/api/v1/documents/{first}").json()
    assert shown["replaced_by"] == second
    assert [(v["id"], v["state"], v["current"]) for v in shown["versions"]] == [
        (first, "superseded", False), (second, "awaiting_verification", True)]
    assert bs.get(f"/api/v1/documents/{second}").json()["versions"] == shown["versions"]
    with world.services.db.session() as session:  # nothing stored was rewritten: both scans are kept
        assert {d: session.get(Document, d).searchable_sha256 for d in (first, second)} == objects
    browser = TestClient(app)
    sign_in(browser, "bs.jones")
    page = browser.get(f"/documents/{first}").text
    assert "Scans of this paper" in page and "the current version" in page
    assert f'The rescan that replaces it is <a class="mono" href="/documents/{second}">' in page
    assert f"scan of this paper: {second} (awaiting_verification) - current" in escr(world, "show", first,
                                                                                       as_="bs.jones")
    # A rescan rejected in its turn leaves no current version until the paper is scanned again.
    assert bs.post(f"/api/v1/documents/{second}/reject", json={"reason": "the rescan is blurred too"}).status_code == 200
    assert not any(v["current"] for v in bs.get(f"/api/v1/documents/{first}").json()["versions"])


# --- 5. correcting a verified document -------------------------------------------------------------


def test_a_misfiled_document_moves_with_two_people_and_a_misfiling_record(world, as_user):
    doc = copy_of(world, "south", state="verified", children=["AB123456"])  # the south letter, misfiled north
    caseworker, manager = as_user("cw.north"), as_user("tm.plain")
    assert caseworker.get(f"/api/v1/documents/{doc}/content").status_code == 200  # read while misfiled
    with world.services.db.session() as session:
        sha_before = session.get(Document, doc).searchable_sha256
    asked = caseworker.post(f"/api/v1/documents/{doc}/corrections",
                            json={"reason": "letter about Jayden Okonkwo, not Amelia", "children": ["CD654321"]})
    assert asked.status_code == 201, asked.text
    request_id = asked.json()["id"]
    assert links_of(world, doc) == ["AB123456"]  # nothing moves on one person's word
    assert code_of(caseworker.post(f"/api/v1/corrections/{request_id}/approve", json={})) == (403, "role_forbidden")
    approved = manager.post(f"/api/v1/corrections/{request_id}/approve", json={"note": "checked the letter"})
    assert approved.status_code == 200, approved.text
    assert links_of(world, doc) == ["CD654321"]
    # Access through the old link ends at once; the right team may read it now.
    assert code_of(caseworker.get(f"/api/v1/documents/{doc}/content")) == (403, "not_your_team")
    assert as_user("cw.south").get(f"/api/v1/documents/{doc}/content").status_code == 200
    misfiling = approved.json()["misfiling"]
    assert [m["child_id"] for m in misfiling] == ["AB123456"]
    assert "cw.north" in [p["actor"] for p in misfiling[0]["people"]]
    with world.services.db.session() as session:
        assert session.get(Document, doc).searchable_sha256 == sha_before  # objects never rewritten
        history = session.scalars(select(DocumentLinkHistory).where(DocumentLinkHistory.document_id == doc)).all()
        assert [(h.child_id, h.reason, h.unlinked_by) for h in history] == [("AB123456", "corrected", "tm.plain")]
        assert session.get(CorrectionRequest, request_id).decided_by == "tm.plain"
    kinds = [e.kind for e in protocol_events(world, doc)]
    assert kinds[:2] == ["correction_requested", "correction_approved"] and "misfiling_recorded" in kinds
    listed = as_user("cw.south").get(f"/api/v1/documents/{doc}/corrections").json()
    assert [(c["status"], c["requested_by"]) for c in listed] == [("approved", "cw.north")]


def test_the_two_person_correction_through_the_html_forms(app, world):
    doc = copy_of(world, "south", state="verified", children=["AB123456"])
    asker, approver = TestClient(app), TestClient(app)
    sign_in(asker, "cw.north")
    sign_in(approver, "tm.plain")
    page = asker.get(f"/documents/{doc}").text  # opened while misfiled: goes in the misfiling record
    assert "Ask for the correction" in page
    asked = asker.post(f"/documents/{doc}/corrections", follow_redirects=False, data={
        "csrf_token": csrf_from(page), "reason": "letter about another family's child", "children": "CD654321"})
    assert asked.status_code == 303
    waiting = approver.get("/corrections").text  # what waits for a second person
    assert f'href="/documents/{doc}#corrections"' in waiting and "Children: AB123456 &rarr; CD654321" in waiting
    page = approver.get(f"/documents/{doc}").text
    assert "pending" in page and "Approve correction" in page
    request_id = int(page.split('action="/corrections/')[1].split("/")[0])
    done = approver.post(f"/corrections/{request_id}/approve", follow_redirects=False,
                         data={"csrf_token": csrf_from(page), "note": "checked against the letter"})
    assert done.status_code == 303
    assert links_of(world, doc) == ["CD654321"]
    assert "Not allowed" in asker.get(f"/documents/{doc}").text  # the old link gave access; no longer
    south = TestClient(app)
    sign_in(south, "cw.south")
    page = south.get(f"/documents/{doc}").text
    assert "Misfiling record: while filed to AB123456, opened by cw.north" in page


def escr(world: World, *args: str, as_: str) -> str:
    """`escr ARGS` signed in as an existing user of the world (ESCR_TOKEN); returns its output."""
    from typer.testing import CliRunner

    from escr.cli.main import app as cli_app
    from tests.support.cli import cli_env

    result = CliRunner().invoke(cli_app, list(args), env=cli_env(world.services, as_), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_cli_moves_a_misfiled_document_before_and_after_verification(world, as_user):
    """Re-indexing before verification, and the two-person correction after it, on the command line."""
    early = copy_of(world, "referral", state="awaiting_verification")
    escr(world, "index", early, "--child", "CD654321", "--doc-type", "referral", as_="bs.jones")
    assert links_of(world, early) == ["CD654321"]
    assert "earlier link: AB123456 (reindexed by bs.jones" in escr(world, "show", early, as_="bs.jones")

    doc = copy_of(world, "south", state="verified", children=["AB123456"])  # verified, then found misfiled
    escr(world, "get", doc, "-o", str(world.home / f"{doc}.pdf"), as_="cw.north")  # read while misfiled
    asked = escr(world, "corrections", "ask", doc, "--reason", "letter about Jayden, not Amelia",
                 "--child", "CD654321", "--json", as_="cw.north")
    request_id = json.loads(asked)["id"]
    assert links_of(world, doc) == ["AB123456"]  # one person's word moves nothing
    waiting = escr(world, "corrections", "list", as_="tm.plain")
    assert f"correction {request_id} of {doc}: pending" in waiting
    done = escr(world, "corrections", "approve", str(request_id), "--note", "checked the letter", as_="tm.plain")
    assert "misfiling record: while filed to AB123456, opened by cw.north" in done
    assert links_of(world, doc) == ["CD654321"]
    assert code_of(as_user("cw.north").get(f"/api/v1/documents/{doc}/content")) == (403, "not_your_team")
    assert "no correction is waiting for you" in escr(world, "corrections", "list", as_="tm.plain")


def test_the_cli_withdraws_sets_the_third_party_flag_and_links_a_rescan(world):
    old = copy_of(world, "referral", state="awaiting_verification")
    escr(world, "qc", "withdraw", old, "--reason", "pages out of order", as_="bs.scanner")
    new = copy_of(world, "referral", state="awaiting_verification")
    assert "which is now superseded" in escr(world, "rescan", new, "--replaces", old, as_="bs.jones")
    escr(world, "third-party", new, "--set", "--reason", "a neighbour's account in confidence", as_="tm.north")
    with world.services.db.session() as session:
        assert (session.get(Document, old).state, session.get(Document, new).third_party) == ("superseded", True)


def test_the_cli_finds_a_child_to_index_to_and_shows_each_field_with_its_source(world):
    by_name = escr(world, "children", "find", "Okonkwo 30/11/2011", as_="bs.jones")
    assert "CD654321" in by_name and "Jayden Okonkwo" in by_name and "30 November 2011" in by_name
    assert "AB123456" in escr(world, "children", "find", "9434765919", as_="bs.jones")  # by NHS number
    doc = copy_of(world, "unmatched", state="needs_indexing", children=[])
    escr(world, "index", doc, "--child", "CD654321", "--doc-type", "correspondence", as_="bs.jones")
    shown = escr(world, "show", doc, as_="bs.scanner")
    assert "child: CD654321 Jayden Okonkwo, born 30 November 2011, NHS number 4010232137" in shown
    assert "(typed by a person bs.jones; confidence 1.00)" in shown


def test_the_person_who_asked_cannot_approve_and_a_refusal_needs_a_reason(world, as_user):
    doc = copy_of(world, "referral", state="verified")
    manager = as_user("tm.north")
    asked = manager.post(f"/api/v1/documents/{doc}/corrections",
                         json={"reason": "the date is the referral's receipt", "doc_date": "2026-03-02"})
    request_id = asked.json()["id"]
    assert code_of(manager.post(f"/api/v1/corrections/{request_id}/approve", json={})) == (409, "protocol_violation")
    other = as_user("tm.plain")
    assert code_of(other.post(f"/api/v1/corrections/{request_id}/refuse", json={"reason": "no"})) == (
        422, "reason_required")
    refused = other.post(f"/api/v1/corrections/{request_id}/refuse", json={"reason": "the letter is dated 3 March"})
    assert refused.json()["status"] == "refused"
    assert manager.get(f"/api/v1/documents/{doc}").json()["doc_date"] == "2026-03-03"


# --- 6. retention protection ---------------------------------------------------------------------


def test_indexing_to_a_closed_case_past_its_date_keeps_the_objects_held_for_review(world, as_user):
    from escr.provenance import paper

    with world.services.db.session() as session:
        session.add(Child(child_id="GH000001", given_names="Test", family_name="Closed", category="cin",
                          status="closed", team="north", date_of_birth=date(2001, 1, 1),
                          final_contact=date(2010, 1, 1), updated_at=now()))
    doc = copy_of(world, "unmatched", state="needs_indexing", children=[], own_objects=True)
    indexed = as_user("bs.jones").post(f"/api/v1/documents/{doc}/index",
                                       json={"children": ["GH000001"], "doc_type": "correspondence"})
    assert indexed.status_code == 200, indexed.text
    store = world.services.store
    held = [e for e in protocol_events(world, doc) if e.kind == "legal_hold_set"]
    assert held and held[-1].outcome == "held_for_review"
    with world.services.db.session() as session:
        row = session.get(Document, doc)
        assert row.retention_until is not None and row.retention_until < date.today()
        assert row.legal_hold  # held until a person reviews it
        for key in (row.searchable_key, row.manifest_key, row.batch.original_key):
            assert store.get_retention(key).protects(date.today()), key
        # A legal hold blocks the paper's destruction too.
        row.state, row.verified_at = "verified", now() - timedelta(days=400)
        status = paper.paper_status(row, keep=frozenset(), settings=world.settings.provenance, today=date.today())
        assert status.status == "legal_hold"
        session.rollback()
