"""The database layer behaves the same on SQLite and PostgreSQL (ESCR_TEST_DATABASE_URL): the
event tables refuse edits, time stamps come back in UTC, search uses the database's own
full-text engine, and the record's usual queries use indexes."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import delete, event, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from escr.errors import DatabaseError, InputRejected, ProtocolViolation
from escr.record import payloads
from escr.record.database import GENESIS_HASH, Database, grant_app_role
from escr.record.events import AccessEvent, Actor, Kind, ProtocolEvent, event_hash, payload_of, record
from escr.record.models import Batch, ChainHead, Document, DocumentChild, Event, Page
from tests.support.databases import tamper_with_events

ALICE = Actor(kind="user", name="v1")


def add_events(db: Database, count: int) -> None:
    with db.session() as session:
        for n in range(count):
            record(session, ProtocolEvent(kind=Kind.VERIFIED, actor=ALICE, document_id=f"D-{n}",
                                          parameters=payloads.Verified(children=[], doc_type=None, third_party=False)))


def chain_breaks(db: Database) -> list[int]:
    """Ids of events whose hash or link to the one before does not hold."""
    with db.session() as session:
        rows = session.scalars(select(Event).order_by(Event.id)).all()
    prev = GENESIS_HASH
    broken = []
    for row in rows:
        if row.prev_hash != prev or event_hash(row.prev_hash, payload_of(row)) != row.hash:
            broken.append(row.id)
        prev = row.hash
    return broken


# --- the event tables are append-only -----------------------------------------------------------


@pytest.mark.parametrize("sql", ["UPDATE events SET actor = 'someone-else'", "DELETE FROM events"])
def test_the_database_refuses_to_edit_or_delete_events(services, sql):
    add_events(services.db, 2)
    with pytest.raises(ProtocolViolation), services.db.session() as session:
        session.execute(text(sql))
    with pytest.raises(SQLAlchemyError, match="append-only"), services.db.engine.begin() as conn:
        conn.execute(text(sql))  # below the data layer: the trigger alone
    with services.db.session() as session:
        assert [e.actor for e in session.scalars(select(Event))] == ["v1", "v1"]


def test_postgresql_refuses_to_truncate_events(services):
    if services.db.dialect != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL's; SQLite has none")
    add_events(services.db, 1)
    with pytest.raises(ProtocolViolation), services.db.session() as session:
        session.execute(text("TRUNCATE events"))
    assert chain_breaks(services.db) == []


def test_a_session_never_flushes_an_edited_or_deleted_event(services):
    """Refused in the data layer, before any SQL reaches the database (SQLite's only line of
    defence besides the trigger and the chain)."""
    add_events(services.db, 1)

    def edit(session):  # type: ignore[no-untyped-def]
        session.scalars(select(Event)).one().actor = "someone-else"

    def remove(session):  # type: ignore[no-untyped-def]
        session.delete(session.scalars(select(Event)).one())

    for change in (edit, remove, lambda s: s.execute(update(Event).values(outcome="changed")),
                   lambda s: s.execute(delete(Event))):
        with pytest.raises(ProtocolViolation) as refused, services.db.session() as session:
            change(session)
        assert refused.value.__cause__ is None, "refused by the database, not by the data layer"
    with services.db.session() as session:
        row = session.scalars(select(Event)).one()
        assert (row.actor, row.outcome) == ("v1", "ok")


def test_chain_head_only_moves_forward(services):
    add_events(services.db, 2)
    with services.db.session() as session:
        first = session.scalars(select(Event).order_by(Event.id)).first()
    for values in ({"last_event_id": first.id, "last_hash": first.hash},  # back to an older event
                   {"last_hash": "f" * 64},  # a hash that is not the newest event's
                   {"last_event_id": first.id + 1000}):  # an event that does not exist
        with pytest.raises(ProtocolViolation), services.db.session() as session:
            session.execute(update(ChainHead).where(ChainHead.id == 1).values(**values))
    with pytest.raises(ProtocolViolation), services.db.session() as session:
        session.delete(session.get(ChainHead, 1))
    add_events(services.db, 1)  # and escr itself still appends
    assert chain_breaks(services.db) == []


def test_tampering_behind_escrs_back_is_still_detected_by_the_chain(services):
    """The owner can switch the guard off (SQLite: drop the trigger); the chain still shows it."""
    add_events(services.db, 3)
    with services.db.session() as session:
        middle = session.scalars(select(Event).order_by(Event.id)).all()[1].id
    tamper_with_events(services.db, "DELETE FROM events WHERE id = :id", {"id": middle})
    assert chain_breaks(services.db) == [middle + 1]


def test_concurrent_writers_never_fork_the_chain(settings, services):
    """Four threads, each with its own session, appending at once: one unbroken chain."""
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        db = Database(settings.resolved_database_url)
        try:
            for i in range(5):
                with db.session() as session:
                    record(session, AccessEvent(actor=Actor(kind="user", name=f"w{n}"), action="view",
                                                document_id=f"D-{n}-{i}"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            db.dispose()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with services.db.session() as session:
        assert session.query(Event).count() == 20
        head = session.get(ChainHead, 1)
        newest = session.scalars(select(Event).order_by(Event.id.desc())).first()
        assert (head.last_event_id, head.last_hash) == (newest.id, newest.hash)
    assert chain_breaks(services.db) == []


def test_the_application_role_can_append_but_never_edit(services, postgres_server):
    """PostgreSQL: escr runs as a role that owns nothing; it reads and appends, and can neither
    edit events nor switch the append-only trigger off."""
    if services.db.dialect != "postgresql":
        pytest.skip("database roles are PostgreSQL's; SQLite relies on file permissions")
    import secrets

    from sqlalchemy import make_url

    role, password = f"{postgres_server.prefix}_app", secrets.token_hex(16)
    owner = services.db.engine
    with owner.begin() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'"))
    try:
        grants = grant_app_role(owner, role)
        assert grants["events"] == ["SELECT", "INSERT"]
        assert grants["chain_head"] == ["SELECT", "UPDATE"]
        owner_url = make_url(services.db.url)
        app_url = owner_url.set(username=role, password=password)
        if "host" in owner_url.query:  # the owner came in over the socket (peer): the app role by password
            app_url = app_url.set(host="127.0.0.1", port=int(owner_url.query.get("port", 5432)),
                                  query={k: v for k, v in owner_url.query.items() if k not in ("host", "port")})
        app_db = Database(app_url.render_as_string(hide_password=False))
        try:
            add_events(app_db, 2)  # the pipeline's work: read, append, move the head
            for sql in ("UPDATE events SET actor = 'x'", "DELETE FROM events",
                        "ALTER TABLE events DISABLE TRIGGER USER", "DROP TABLE events"):
                with pytest.raises((DatabaseError, ProtocolViolation)), app_db.session() as session:
                    session.execute(text(sql))
            app_db.create_schema()  # at head: starts without needing DDL rights
        finally:
            app_db.dispose()
        assert chain_breaks(services.db) == []
    finally:
        with owner.begin() as conn:  # roles are server-wide: leave none behind
            for what in ("ALL TABLES IN SCHEMA public", "ALL SEQUENCES IN SCHEMA public", "SCHEMA public"):
                conn.execute(text(f"REVOKE ALL ON {what} FROM {role}"))
            conn.execute(text(f"DROP ROLE {role}"))


# --- values both databases can hold ----------------------------------------------------------------


@pytest.mark.parametrize(("operator", "code"), [("x" * 129, "value_too_long"), ("bs\x00jones", "nul_character")])
@pytest.mark.parametrize("when", ["added", "changed"])
def test_a_value_postgresql_would_refuse_is_refused_on_both(with_children, operator, code, when):
    """SQLite would store it and PostgreSQL refuse it: both refuse it, the same way, writing nothing."""
    db = with_children.db
    with pytest.raises(InputRejected) as refused, db.session() as session:
        if when == "added":
            file_document(session, "D-1", "AB123456", ["text"], operator=operator)
        else:
            file_document(session, "D-1", "AB123456", ["text"])
            session.flush()
            session.get(Batch, "S-D-1").operator = operator
    assert refused.value.code == code and "batches.operator" in refused.value.message
    assert isinstance(refused.value, DatabaseError)  # callers handling database failures see it too
    with db.session() as session:
        assert session.get(Document, "D-1") is None


# --- time stamps ---------------------------------------------------------------------------------


def test_time_stamps_come_back_in_utc_whatever_zone_they_were_written_in(services):
    written = datetime(2026, 3, 3, 9, 30, tzinfo=timezone(timedelta(hours=1)))
    with services.db.session() as session:
        record(session, ProtocolEvent(kind=Kind.SPLIT, actor=ALICE, at=written, batch_id="S-1",
                                      parameters=payloads.Split(cover_pages=[], cover_batches=[], empty_cover_pages=[], documents=[])))
    with services.db.session() as session:
        at = session.scalars(select(Event.at)).one()
    assert at.tzinfo is not None and at.utcoffset() == timedelta(0)
    assert at == written and at.hour == 8
    assert chain_breaks(services.db) == []


# --- full-text search and indexes ----------------------------------------------------------------


def file_document(session: Any, doc_id: str, child_id: str, texts: list[str], *,
                  doc_type: str = "correspondence", doc_date: date | None = None, operator: str = "bs") -> None:
    """A filed document with its pages, written directly (no OCR needed to test the database)."""
    stamp = datetime.now(UTC)
    session.add(Batch(id=f"S-{doc_id}", sha256=doc_id.ljust(64, "0"), claim_id=f"C-{doc_id}", operator=operator,
                      device="mfd", source_name="scan.pdf", media_type="application/pdf", size_bytes=1,
                      page_count=len(texts), original_key=f"k/{doc_id}", received_at=stamp, filed_at=stamp))
    session.add(Document(id=doc_id, batch_id=f"S-{doc_id}", seq=1, first_page=0, last_page=len(texts) - 1,
                         page_count=len(texts), doc_type=doc_type, doc_date=doc_date, state="verified",
                         searchable_key="s", searchable_sha256="0" * 64, manifest_key="m",
                         manifest_sha256="0" * 64, created_at=stamp, updated_at=stamp))
    session.add(DocumentChild(document_id=doc_id, child_id=child_id, basis="coversheet", linked_by="bs",
                              linked_at=stamp))
    for seq, body in enumerate(texts, 1):
        session.add(Page(document_id=doc_id, seq=seq, source_index=seq - 1, text=body))


def test_search_finds_words_in_any_form_and_shows_where(with_children):
    db = with_children.db
    with db.session() as session:
        file_document(session, "D-1", "AB123456", ["The social worker visited the family on Monday."])
        file_document(session, "D-2", "AB123457", ["School report: attendance is good."])
    with db.session() as session:
        hits = db.search_pages(session, "visits families")
    assert [(h.document_id, h.page_seq) for h in hits] == [("D-1", 1)]
    assert "[visited]" in hits[0].snippet and "[family]" in hits[0].snippet


def test_search_within_a_child_is_narrowed_in_the_database(with_children):
    """Many other children's pages match too; the child's own page is still found."""
    db = with_children.db
    with db.session() as session:
        for n in range(30):
            file_document(session, f"D-other-{n:02}", "AB123457", ["Bruising was seen at school."])
        file_document(session, "D-mine", "AB123456", ["A note: bruising on the left arm."])
    with db.session() as session:
        mine = list(session.scalars(select(DocumentChild.document_id).where(DocumentChild.child_id == "AB123456")))
        hits = db.search_pages(session, "bruising", document_ids=mine, limit=5)
        assert [h.document_id for h in hits] == ["D-mine"]
        readable = [f"D-unknown-{n}" for n in range(70_000)] + mine  # more than any bind-variable limit
        assert [h.document_id for h in db.search_pages(session, "bruising", document_ids=readable)] == ["D-mine"]
        assert db.search_pages(session, "bruising", document_ids=[], limit=5) == []
        assert len(db.search_pages(session, "bruising", limit=5)) == 5


def test_search_puts_the_page_that_matches_best_first(with_children):
    db = with_children.db
    with db.session() as session:
        file_document(session, "D-1", "AB123456", ["The school nurse wrote to the family about lunch."])
        file_document(session, "D-2", "AB123457", ["Bruising seen by the nurse. The bruising was photographed; "
                                                   "bruising on both arms."])
        file_document(session, "D-3", "AB123456", ["A note about bruising, once."])
    with db.session() as session:
        hits = db.search_pages(session, "bruising")
    assert [h.document_id for h in hits] == ["D-2", "D-3"]


def test_search_shows_the_match_from_deep_inside_a_long_page(with_children):
    """The snippet is cut from around the match, wherever it is on the page, in any word form."""
    filler = " ".join(f"routine{n} entry about school attendance." for n in range(300))
    db = with_children.db
    with db.session() as session:
        file_document(session, "D-1", "AB123456", [f"{filler} The families were visited at home. {filler}"])
        file_document(session, "D-2", "AB123457", [f"{filler} Then a well-being check happened. {filler}"])
    with db.session() as session:
        [hit] = db.search_pages(session, "family visits")
        [hyphenated] = db.search_pages(session, "well-being")
    assert "[families]" in hit.snippet and "[visited]" in hit.snippet and "routine" in hit.snippet
    assert len(hit.snippet) < 400
    assert hyphenated.document_id == "D-2" and "[" in hyphenated.snippet


def test_search_over_what_a_caseworker_may_read_keeps_need_to_know(with_children):
    """Another team's pages crowd the index, more than a search ranks; the caseworker's own team's
    pages are still found, best match first, and a third-party page only with the permission."""
    from escr.app import access, retrieval
    from escr.app.access import Principal, Role
    from escr.record.database import SEARCH_RANK_CANDIDATES

    db = with_children.db
    with db.session() as session:
        for n in range(SEARCH_RANK_CANDIDATES + 20):
            file_document(session, f"D-south-{n:03}", "CD654321", ["Bruising was seen at school, bruising again."])
        file_document(session, "D-weak", "AB123457", ["A note about bruising."])
        file_document(session, "D-strong", "AB123456", ["Bruising on both arms; the bruising was photographed."])
        file_document(session, "D-private", "AB123456", ["A neighbour's account of the bruising."])
    with db.session() as session:
        session.get(Document, "D-private").third_party = True
    north = Principal(user_id=1, username="cw.north", display_name="North", role=Role.CASEWORKER,
                      teams=frozenset({"north"}))
    with db.session() as session:
        hits = retrieval.search(session, db, "bruises", actor=north.actor,
                                document_ids=access.readable_document_ids(session, north))
        within_child = retrieval.search(session, db, "bruising", actor=north.actor, child_id="AB123456",
                                        document_ids=access.readable_document_ids(session, north))
        permitted = Principal(**{**north.__dict__, "third_party": True})
        with_permission = retrieval.search(session, db, "bruising", actor=north.actor,
                                           document_ids=access.readable_document_ids(session, permitted))
    assert [h["id"] for h in hits] == ["D-strong", "D-weak"]
    assert "[Bruising]" in hits[0]["snippet"] and hits[0]["children"] == ["AB123456"]
    assert [h["id"] for h in within_child] == ["D-strong"]
    assert sorted(h["id"] for h in with_permission) == ["D-private", "D-strong", "D-weak"]
    with db.session() as session:
        logged = session.scalars(select(Event).where(Event.category == "access").order_by(Event.id)).all()
    assert [e.detail["parameters"]["hits"] for e in logged if e.detail["action"] == "search"] == [2, 1, 3]


def test_a_search_for_a_common_word_finds_the_same_hits_from_the_teams_documents(with_children, monkeypatch):
    """On PostgreSQL a search for a word on many pages starts from the caseworker's children's
    documents instead of the full-text index: the same hits in the same order either way, a
    sibling letter (on two of their children's records) once, another team's pages never."""
    from escr.app import access, retrieval
    from escr.app.access import Principal, Role
    from escr.record import database

    db = with_children.db
    with db.session() as session:
        for n in range(40):
            file_document(session, f"D-south-{n:02}", "CD654321", ["Bruising was seen at school."])
        for n in range(6):
            file_document(session, f"D-north-{n}", ("AB123456", "AB123457")[n % 2],
                          ["Bruising " * (n + 1) + "noted by the school nurse."])
        file_document(session, "D-sibling", "AB123456", ["A letter to the family about bruising, bruising."])
        session.add(DocumentChild(document_id="D-sibling", child_id="AB123457", basis="coversheet", linked_by="bs",
                                  linked_at=datetime.now(UTC)))
    if db.dialect == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("ANALYZE pages"))  # the planner's estimate tells a common word
    north = Principal(user_id=1, username="cw.north", display_name="North", role=Role.CASEWORKER,
                      teams=frozenset({"north"}))
    statements: list[str] = []

    def hits(share: float) -> list[tuple[str, list[str]]]:
        monkeypatch.setattr(database, "COMMON_MATCH_SHARE", share)
        statements.clear()
        with db.session() as session:
            found = retrieval.search(session, db, "bruises", actor=north.actor,
                                     document_ids=access.readable_document_ids(session, north))
        return [(h["id"], h["children"]) for h in found]

    listen = lambda conn, cursor, statement, *args: statements.append(statement)  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listen)
    try:
        from_index = hits(2.0)  # never common: from the full-text index
        assert not any("JOIN LATERAL" in s for s in statements)
        from_children = hits(0.0)  # always common: from the children's documents
        started_from_children = any("JOIN LATERAL" in s for s in statements)
    finally:
        event.remove(db.engine, "before_cursor_execute", listen)
    assert from_children == from_index
    assert sorted(doc for doc, _ in from_index) == [*(f"D-north-{n}" for n in range(6)), "D-sibling"]
    assert from_index[0][0] == "D-north-5"  # the page saying it most often first
    assert dict(from_index)["D-sibling"] == ["AB123456", "AB123457"]
    assert started_from_children == (db.dialect == "postgresql")


def test_search_input_is_never_parsed_as_query_syntax(with_children):
    """Whatever is typed is searched for as plain words: quotes, brackets, operators and a
    trailing star neither fail nor change what is found, and SQL in the box is only words."""
    db = with_children.db
    with db.session() as session:
        file_document(session, "D-1", "AB123456", ['He said "never" (twice) - NEAR the door*'])
        file_document(session, "D-2", "AB123456", ["Left on the doorstep overnight."])
    with db.session() as session:
        found = {query: [h.document_id for h in db.search_pages(session, query)]
                 for query in ['"never', "NEAR(", "door*", "twice)", "AND OR NOT", "'; DROP TABLE pages; --", ""]}
    assert found == {'"never': ["D-1"], "NEAR(": ["D-1"], "door*": ["D-1"], "twice)": ["D-1"],
                     "AND OR NOT": [], "'; DROP TABLE pages; --": [], "": []}
    with db.session() as session:  # the table is still there and still searched
        assert [h.document_id for h in db.search_pages(session, "doorstep")] == ["D-2"]


def plan(db: Database, sql: str, params: dict[str, Any]) -> str:
    """The query plan, with sequential scans made a last resort on PostgreSQL: the question
    is whether an index can serve the query, not what the planner picks for a few rows."""
    with db.engine.begin() as conn:
        if db.dialect == "sqlite":
            rows = conn.execute(text(f"EXPLAIN QUERY PLAN {sql}"), params).all()
            return "\n".join(str(r[-1]) for r in rows)
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        return "\n".join(r[0] for r in conn.execute(text(f"EXPLAIN {sql}"), params))


@pytest.mark.parametrize(("sql", "index"), [
    ("SELECT document_id FROM document_children WHERE child_id = :v", "ix_document_children_child"),
    ("SELECT id FROM documents WHERE doc_type = :v AND doc_date >= '2026-01-01'", "ix_documents_type_date"),
    ("SELECT id FROM documents WHERE doc_date BETWEEN '2026-01-01' AND '2026-03-31'", "ix_documents_doc_date"),
    ("SELECT id FROM documents WHERE state = :v ORDER BY created_at", "ix_documents_state"),
    ("SELECT id FROM events WHERE child_id = :v ORDER BY id", "ix_events_child"),
    ("SELECT id FROM events WHERE document_id = :v ORDER BY id", "ix_events_document"),
    ("SELECT id FROM pages WHERE document_id = :v", "ix_pages_document_id"),
])
def test_queries_by_child_type_and_date_use_indexes(services, sql, index):
    assert index in plan(services.db, sql, {"v": "x"})


def test_full_text_search_uses_the_databases_own_index(with_children):
    db = with_children.db
    with db.session() as session:
        file_document(session, "D-1", "AB123456", ["The social worker visited the family."])
    if db.dialect == "sqlite":
        sql = "SELECT rowid FROM pages_fts WHERE pages_fts MATCH :v"
        assert "VIRTUAL TABLE INDEX" in plan(db, sql, {"v": "visit"})
    else:
        sql = "SELECT id FROM pages p WHERE p.tsv @@ plainto_tsquery('english', :v)"
        assert "ix_pages_tsv" in plan(db, sql, {"v": "visit"})
