"""The database boundary: engine, transactions, schema, immutability and full-text search.

This is the only module that knows which database is in use (SQLite embedded, PostgreSQL 15+
through psycopg 3). SQLAlchemy errors are mapped to `DatabaseError` here, so callers never see
driver exceptions; a write the append-only guards refuse becomes a `ProtocolViolation`.

Both databases behave the same for the code above this module:
- timestamps with a time zone come back aware, in UTC (PostgreSQL sessions run in UTC; on
  SQLite they are stored as UTC text and read back with `tzinfo=UTC`);
- the event tables refuse UPDATE and DELETE (a trigger on each database, plus a guard on
  every session that refuses to flush such a change), and `chain_head` only moves forward;
- full-text search uses the database's own engine (PostgreSQL `tsvector` with a GIN index,
  SQLite FTS5), both with English stemming.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    String,
    create_engine,
    event,
    func,
    inspect,
    literal_column,
    make_url,
    select,
    text,
)
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.dialects.sqlite import DATETIME as SQLITE_DATETIME
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker
from sqlalchemy.sql import sqltypes

from escr.errors import DatabaseError, InputRejected, ProtocolViolation
from escr.record.models import ChainHead, Document, DocumentChild, Page
from escr.storage.objectstore import private_dir, private_file

# A condition on a document id column (the documents someone may read), for a search to apply.
DocumentCondition = Callable[[ColumnElement[str]], ColumnElement[bool]]

GENESIS_HASH = "0" * 64
# Marks every refusal by the append-only triggers, so it can be told from other failures.
APPEND_ONLY_MARK = "escr: append-only"
_MIGRATION_LOCK = 0x65736372  # "escr": one schema migration at a time on a PostgreSQL server

_SQLITE_FTS = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS pages_fts USING fts5("
    "text, content='pages', content_rowid='id', tokenize='porter unicode61')",
    """CREATE TRIGGER IF NOT EXISTS pages_fts_ai AFTER INSERT ON pages BEGIN
         INSERT INTO pages_fts(rowid, text) VALUES (new.id, new.text); END""",
    """CREATE TRIGGER IF NOT EXISTS pages_fts_ad AFTER DELETE ON pages BEGIN
         INSERT INTO pages_fts(pages_fts, rowid, text) VALUES ('delete', old.id, old.text); END""",
    """CREATE TRIGGER IF NOT EXISTS pages_fts_au AFTER UPDATE ON pages BEGIN
         INSERT INTO pages_fts(pages_fts, rowid, text) VALUES ('delete', old.id, old.text);
         INSERT INTO pages_fts(rowid, text) VALUES (new.id, new.text); END""",
]
# Matches ranked per PostgreSQL search, and so the most hits it returns (see _PG_SEARCH): finding
# them within one team's documents is most of a search's time at a council's scale (1,000 took
# 400-800 ms at 1,000,000 documents; 200 about 160 ms).
SEARCH_RANK_CANDIDATES = 200
# A search whose words PostgreSQL expects on at least this share of all pages starts from the
# person's children's documents rather than from the full-text index (_from_childrens_documents):
# from there it reads about SEARCH_RANK_CANDIDATES / share of their pages; from the index, every
# match in the record and some twenty times the person's own share of them.
COMMON_MATCH_SHARE = 0.03
_HEADLINE = "'StartSel=[, StopSel=], MaxWords=24, MinWords=8, MaxFragments=2, FragmentDelimiter=...'"
_SNIPPET_BEFORE, _SNIPPET_WINDOW = 120, 360  # characters of page text cut around the first match
_SNIPPET_WORDS_BEFORE, _SNIPPET_WORDS = 8, 24
# PostgreSQL search. Matches come from the GIN index on the stored tsvector (pages.tsv) or, for
# words common in the record, from the person's children's documents (_from_childrens_documents,
# when the planner's estimate says so: _common_words); only the first
# SEARCH_RANK_CANDIDATES of them ({candidates}, within what the person may read) are ranked, by
# the stored vector. ts_headline parses the whole page (about 0.2 ms a page), so the snippet is
# cut in Python from a window of text around the first word starting like a query term
# (regexp_instr, a few microseconds); a page where no such word is found gets PostgreSQL's own
# ts_headline. OFFSET 0 keeps the LATERAL a separate step, so it is computed once per row.
_PG_SEARCH = """
SELECT r.document_id, r.seq, m.at,
       CASE WHEN m.at = 0 THEN ts_headline('english', r.text, r.tsq, """ + _HEADLINE + """)
            ELSE substr(r.text, greatest(1, m.at - :before), :window) END
FROM (SELECT c.document_id, c.seq, c.text, q.tsq, ts_rank_cd(c.tsv, q.tsq) AS rank
      FROM (SELECT plainto_tsquery('english', :q) AS tsq) q, LATERAL ({candidates}) c
      ORDER BY rank DESC, c.document_id, c.seq LIMIT :limit) r,
     LATERAL (SELECT regexp_instr(r.text, :pattern, 1, 1, 0, 'i') AS at OFFSET 0) m
ORDER BY r.rank DESC, r.document_id, r.seq
"""
_NAMED_POSTGRESQL = PGDialect(paramstyle="named")  # compiles a scope into the text above (no bind casts)
# Migration 0001's expression index; 0005 replaces it with the stored vector below.
_POSTGRES_FTS = [
    "CREATE INDEX IF NOT EXISTS ix_pages_fts ON pages USING gin (to_tsvector('english', text))",
]
_POSTGRES_TSV = [
    "ALTER TABLE pages ADD COLUMN tsv tsvector GENERATED ALWAYS AS (to_tsvector('english'::regconfig, text)) STORED",
    "CREATE INDEX ix_pages_tsv ON pages USING gin (tsv)",
    "DROP INDEX IF EXISTS ix_pages_fts",
]

_POSTGRES_REFUSE = f"""
CREATE OR REPLACE FUNCTION escr_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '{APPEND_ONLY_MARK}: % refused on %', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END $$"""
_POSTGRES_CHAIN_HEAD = f"""
CREATE OR REPLACE FUNCTION escr_chain_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.id <> OLD.id OR NEW.last_event_id <= OLD.last_event_id
     OR NEW.last_event_id <> (SELECT max(id) FROM events)
     OR NOT EXISTS (SELECT 1 FROM events WHERE id = NEW.last_event_id AND hash = NEW.last_hash) THEN
    RAISE EXCEPTION '{APPEND_ONLY_MARK}: chain_head only moves forward to the newest event'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$"""
_SQLITE_CHAIN_HEAD = f"""
CREATE TRIGGER IF NOT EXISTS chain_head_forward BEFORE UPDATE ON chain_head
WHEN NEW.id <> OLD.id OR NEW.last_event_id <= OLD.last_event_id
  OR NEW.last_event_id <> (SELECT max(id) FROM events)
  OR NOT EXISTS (SELECT 1 FROM events WHERE id = NEW.last_event_id AND hash = NEW.last_hash)
BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MARK}: chain_head only moves forward to the newest event'); END"""


class UnstorableValue(InputRejected, DatabaseError):
    """A value no database may hold (too long for its column, or with a NUL): bad input, found by
    the database layer. Callers that quarantine bad input or handle database failures both see it."""


def refuse_unsearchable(query: str) -> None:
    """A search text with a NUL character is the searcher's mistake, not a database failure:
    PostgreSQL refuses NUL in any text and SQLite's full-text query syntax cannot hold one."""
    if "\x00" in query:
        raise InputRejected("nul_character", "The search contains a NUL character, which cannot be searched for.",
                            "Remove it and search again.")


@dataclass(frozen=True)
class PageHit:
    document_id: str
    page_seq: int
    snippet: str


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine = _make_engine(url)
        except SQLAlchemyError as exc:
            raise DatabaseError(f"cannot open database: {type(exc).__name__}") from exc
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        event.listen(self._sessions, "before_flush", _before_flush)
        event.listen(self._sessions, "do_orm_execute", _refuse_bulk_changes_to_append_only)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def create_schema(self) -> None:
        """Bring the schema to the newest migration; safe to run on every start."""
        upgrade_schema(self.engine)

    def revisions(self) -> tuple[str | None, str]:
        """(the schema's current migration, the newest one escr ships)."""
        return current_revision(self.engine), head_revision()

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on any error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except SQLAlchemyError as exc:
            session.rollback()
            raise _translate(exc, "database operation failed") from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def search_pages(
        self, session: Session, query: str, *, document_ids: Sequence[str] | None = None,
        scope: DocumentCondition | None = None, scope_children: Select[tuple[str]] | None = None,
        limit: int = 50,
    ) -> list[PageHit]:
        """Full-text search over page text with the database's own engine, best matches first.

        `document_ids` and `scope` (a condition on a document id column: the documents a person
        may read) narrow the search inside the database, so a child's or a team's hits are never
        crowded out by others'. `scope_children`, when given, holds every child whose documents
        `scope` admits: on PostgreSQL a search for a word common in the record starts from their
        documents. At most SEARCH_RANK_CANDIDATES hits, on both databases."""
        refuse_unsearchable(query)
        if document_ids is not None and not document_ids:
            return []
        params: dict[str, Any] = {"limit": min(limit, SEARCH_RANK_CANDIDATES)}
        where = ""
        if self.dialect == "sqlite":
            if scope is not None:  # the embedded database: a small record, the ids go as one parameter
                allowed = set(session.scalars(select(Document.id).where(scope(Document.id))))
                document_ids = allowed if document_ids is None else allowed.intersection(document_ids)
                if not document_ids:
                    return []
            if document_ids is not None:  # one parameter, however many documents (no variable limit)
                where = " AND p.document_id IN (SELECT value FROM json_each(:ids))"
                params["ids"] = json.dumps(list(document_ids))
            stmt = text(
                "SELECT p.document_id, p.seq, snippet(pages_fts, 0, '[', ']', '...', 12) "
                "FROM pages_fts JOIN pages p ON p.id = pages_fts.rowid "
                f"WHERE pages_fts MATCH :q{where} ORDER BY rank, p.document_id, p.seq LIMIT :limit"
            )
            params["q"] = _fts5_query(query)
            try:
                rows = session.execute(stmt, params).all()
            except SQLAlchemyError as exc:
                raise DatabaseError(f"search failed: {type(exc).__name__}") from exc
            return [PageHit(r[0], r[1], " ".join(r[2].split())) for r in rows]  # one line, like a search result
        stems = _pg_query_stems(session, query)
        if not stems:  # only stop words, or nothing a word can be made of: nothing can match
            return []
        prefixes = _stem_prefixes(stems)
        pages = Page.__table__.alias("p")
        candidates = select(pages.c.document_id, pages.c.seq, pages.c.text, pages.c.tsv).where(
            pages.c.tsv.op("@@")(literal_column("q.tsq")))
        if document_ids is not None:  # one array parameter, however many documents
            candidates = candidates.where(text("p.document_id = ANY(:ids)"))
            params["ids"] = list(document_ids)
        if scope is not None:
            candidates = candidates.where(scope(pages.c.document_id))
            if scope_children is not None and document_ids is None and _common_words(session, query):
                candidates = _from_childrens_documents(candidates, pages, scope_children)
        compiled = candidates.limit(SEARCH_RANK_CANDIDATES).compile(
            dialect=_NAMED_POSTGRESQL, compile_kwargs={"render_postcompile": True})
        params = {**compiled.params, **params}  # the scope's values; ours (the ids) as given
        params.update(q=query, pattern=_word_start_pattern(prefixes), before=_SNIPPET_BEFORE,
                      window=_SNIPPET_WINDOW)
        try:
            rows = session.execute(text(_PG_SEARCH.format(candidates=compiled.string)), params).all()
        except SQLAlchemyError as exc:
            raise DatabaseError(f"search failed: {type(exc).__name__}") from exc
        return [PageHit(r[0], r[1], " ".join(r[3].split()) if r[2] == 0  # no word found: ts_headline's
                        else _snippet(r[3], prefixes, cut=r[2] > 1 + _SNIPPET_BEFORE)) for r in rows]


# --- schema ------------------------------------------------------------------------------------


def alembic_config():  # type: ignore[no-untyped-def]
    """Alembic's configuration for escr's migrations (upgrades here; the migration tests read it)."""
    from alembic.config import Config

    config = Config()
    # A path, not "escr:migrations": resolving a package resource breaks under some editable installs.
    config.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    return config


def head_revision() -> str:
    """The newest migration escr ships. Each revision is named after its file (0013_saved_views.py)
    and follows the one before it in file order (tests/test_migrations.py holds both), so the
    newest file names it: no need to import Alembic, which adds about 0.15 s to every start."""
    return max(p.stem for p in (Path(__file__).with_name("migrations") / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at (Alembic's own table), None for a database escr never set up."""
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError as exc:
        raise DatabaseError(f"cannot read the schema version: {type(exc).__name__}") from exc


def upgrade_schema(engine: Engine) -> None:
    """Run the Alembic migrations shipped in `escr/record/migrations` up to head, in one transaction.

    Nothing is written when the schema is already at head, so a role without DDL rights (the
    application role on PostgreSQL) can start escr once the owner has run `escr db upgrade`."""
    if current_revision(engine) == head_revision():
        return
    from alembic import command

    config = alembic_config()
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":  # two processes starting at once
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        raise DatabaseError(
            f"schema migration failed ({type(exc).__name__}): run `escr db upgrade` as the database owner"
        ) from exc


def comparison_filter(dialect: str) -> Callable[[Any, str | None, str, bool, Any], bool]:
    """Alembic's `include_object` for comparing models with a database of this dialect: the
    full-text engine's own tables are left out, and the models' PostgreSQL-only objects
    (`escr.record.models.POSTGRESQL_ONLY`) too, except on PostgreSQL, where they must exist."""
    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if type_ == "table" and name is not None and name.startswith("pages_fts"):
            return False
        postgresql_only = bool(getattr(obj, "info", {}).get("postgresql_only"))
        return not (postgresql_only and not reflected and dialect != "postgresql")
    return include


def include_in_comparison(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """`comparison_filter` when the dialect is not known (autogenerate in escr/record/migrations/env.py):
    a PostgreSQL-only object missing from the database is not reported."""
    return comparison_filter("sqlite")(obj, name, type_, reflected, compare_to)


def install_search(connection: Connection) -> None:
    """The database's own full-text engine over page text (called from a migration)."""
    for ddl in _SQLITE_FTS if connection.dialect.name == "sqlite" else _POSTGRES_FTS:
        connection.execute(text(ddl))


def install_search_vector(connection: Connection) -> None:
    """PostgreSQL: each page's tsvector stored and GIN-indexed, so ranking never re-parses text
    (migration 0005). SQLite's FTS5 table already holds its index: nothing to do there."""
    if connection.dialect.name == "postgresql":
        for ddl in _POSTGRES_TSV:
            connection.execute(text(ddl))


def make_append_only(connection: Connection, table: str) -> None:
    """Make `table` refuse UPDATE, DELETE (and TRUNCATE) for every role (called from a migration).

    On PostgreSQL only the table's owner can lift this (`ALTER TABLE ... DISABLE TRIGGER`),
    and the application role is not the owner; on SQLite the file's permissions stand in for
    roles and the session guard in this module refuses such writes before they reach SQL."""
    if connection.dialect.name == "sqlite":
        for op in ("UPDATE", "DELETE"):
            connection.execute(text(
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MARK}: {op} refused on {table}'); END"))
        return
    connection.execute(text(_POSTGRES_REFUSE))
    connection.execute(text(
        f"CREATE TRIGGER escr_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION escr_refuse_change()"))
    connection.execute(text(
        f"CREATE TRIGGER escr_append_only_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION escr_refuse_change()"))


def install_chain_head_guard(connection: Connection) -> None:
    """`chain_head` may only move forward, to the newest event and its hash, and never be deleted."""
    if connection.dialect.name == "sqlite":
        connection.execute(text(_SQLITE_CHAIN_HEAD))
        connection.execute(text(
            "CREATE TRIGGER IF NOT EXISTS chain_head_no_delete BEFORE DELETE ON chain_head "
            f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MARK}: DELETE refused on chain_head'); END"))
        return
    connection.execute(text(_POSTGRES_REFUSE))
    connection.execute(text(_POSTGRES_CHAIN_HEAD))
    connection.execute(text(
        "CREATE TRIGGER escr_chain_head_forward BEFORE UPDATE ON chain_head "
        "FOR EACH ROW EXECUTE FUNCTION escr_chain_head_forward()"))
    connection.execute(text(
        "CREATE TRIGGER escr_chain_head_no_delete BEFORE DELETE ON chain_head "
        "FOR EACH ROW EXECUTE FUNCTION escr_refuse_change()"))
    connection.execute(text(
        "CREATE TRIGGER escr_chain_head_no_truncate BEFORE TRUNCATE ON chain_head "
        "FOR EACH STATEMENT EXECUTE FUNCTION escr_refuse_change()"))


def seed_chain_head(connection: Connection) -> None:
    connection.execute(ChainHead.__table__.insert().values(id=1, last_event_id=0, last_hash=GENESIS_HASH))


def append_only_tables(connection: Connection) -> list[str]:
    """The tables the append-only trigger guards, read from the database itself."""
    if connection.dialect.name == "sqlite":
        rows = connection.execute(text(
            "SELECT DISTINCT tbl_name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%\\_no\\_update' ESCAPE '\\'"))
    else:
        rows = connection.execute(text(
            "SELECT DISTINCT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname = 'escr_append_only' AND c.relnamespace = 'public'::regnamespace"))
    return sorted(r[0] for r in rows)


def grant_app_role(engine: Engine, role: str) -> dict[str, list[str]]:
    """Give the application's PostgreSQL role exactly what escr needs, and nothing on the schema.

    Read and write on the record's tables; read and append only on the event tables (no UPDATE,
    DELETE or TRUNCATE); read and move forward on chain_head; read on alembic_version. The role
    owns nothing, so it can neither alter tables nor disable the append-only triggers. Run after
    every upgrade (`escr db upgrade --app-role ROLE`) so new tables get their grants too."""
    if engine.dialect.name != "postgresql":
        raise DatabaseError("database roles exist on PostgreSQL only; SQLite relies on file permissions")
    if not role.replace("_", "").isalnum():
        raise DatabaseError("role names are letters, digits and underscores only")
    try:
        with engine.begin() as conn:
            if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first() is None:
                raise DatabaseError(f"no role {role}: create it first (see docs/deployment.md, PostgreSQL)")
            tables = conn.scalars(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")).all()
            append_only = set(append_only_tables(conn))
            plan: dict[str, list[str]] = {}
            conn.execute(text(f'GRANT USAGE ON SCHEMA public TO "{role}"'))
            conn.execute(text(f'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{role}"'))
            for table in tables:
                if table == "alembic_version":
                    privileges = ["SELECT"]
                elif table in append_only:
                    privileges = ["SELECT", "INSERT"]
                elif table == "chain_head":
                    privileges = ["SELECT", "UPDATE"]
                else:
                    privileges = ["SELECT", "INSERT", "UPDATE", "DELETE"]
                conn.execute(text(f'GRANT {", ".join(privileges)} ON "{table}" TO "{role}"'))
                plan[table] = privileges
            conn.execute(text(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{role}"'))
            return plan
    except SQLAlchemyError as exc:
        raise DatabaseError(f"granting the application role failed: {type(exc).__name__}") from exc


# --- the event chain ---------------------------------------------------------------------------


def chain_head_for_update(session: Session) -> ChainHead:
    """The chain's head, locked until the transaction ends (SQLite: the write lock already is).

    `populate_existing` re-reads the locked row even when this session loaded it before, so a
    stale copy can never fork the chain."""
    stmt = select(ChainHead).where(ChainHead.id == 1).with_for_update().execution_options(populate_existing=True)
    return session.execute(stmt).scalar_one()


def _is_append_only(obj: object) -> bool:
    return bool(getattr(type(obj), "__append_only__", False))


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    _refuse_changing_append_only(session)
    _refuse_values_the_database_cannot_hold(session)


def _refuse_values_the_database_cannot_hold(session: Session) -> None:
    """A string longer than its column, or holding a NUL character: PostgreSQL refuses both and
    SQLite would store them, so both refuse here, before any SQL, with the same clear error. It
    is the input's fault, so it is an `InputRejected` as well as a `DatabaseError` (the intake
    pipeline quarantines the scan with this reason instead of retrying it for ever)."""
    for obj in (*session.new, *session.dirty):
        state = inspect(obj)
        changed = None if state.pending else set(state.committed_state)  # an update: its changes only
        for prop in state.mapper.column_attrs:
            if changed is not None and prop.key not in changed:
                continue
            value = state.dict.get(prop.key)
            if not isinstance(value, str):
                continue
            column_type = prop.columns[0].type
            if not isinstance(column_type, String):
                continue
            table = state.mapper.local_table.name
            if column_type.length is not None and len(value) > column_type.length:
                raise UnstorableValue(
                    "value_too_long", f"A value for {table}.{prop.key} is longer than the "
                    f"{column_type.length} characters the record allows.",
                    "Shorten it (for a scan: the operator or device folder name, or the file name) and try again.")
            if "\x00" in value:
                raise UnstorableValue(
                    "nul_character", f"A value for {table}.{prop.key} contains a NUL character.",
                    "Remove the NUL character and try again.")


def _refuse_changing_append_only(session: Session) -> None:
    """The data-layer guard: a session never flushes an edit or deletion of an event."""
    for obj in session.deleted:
        if _is_append_only(obj) or isinstance(obj, ChainHead):
            raise ProtocolViolation(f"{type(obj).__tablename__} rows are append-only: deleting one is refused",
                                    code="append_only")
    for obj in session.dirty:
        if _is_append_only(obj) and session.is_modified(obj):
            raise ProtocolViolation(f"{type(obj).__tablename__} rows are append-only: editing one is refused",
                                    code="append_only")


def _refuse_bulk_changes_to_append_only(state: ORMExecuteState) -> None:
    if (state.is_update or state.is_delete) and any(
        getattr(m.class_, "__append_only__", False) for m in state.all_mappers
    ):
        raise ProtocolViolation("event rows are append-only: bulk UPDATE or DELETE is refused", code="append_only")


def _translate(exc: SQLAlchemyError, what: str) -> Exception:
    if isinstance(exc, DBAPIError) and APPEND_ONLY_MARK in str(exc.orig):
        return ProtocolViolation("the database refused to change an append-only table", code="append_only")
    return DatabaseError(f"{what}: {type(exc).__name__}")


# --- search helpers ------------------------------------------------------------------------------


def _common_words(session: Session, query: str) -> bool:
    """Does PostgreSQL expect the query to match at least COMMON_MATCH_SHARE of all pages (its own
    estimate, from the statistics ANALYZE keeps of the page vectors' words; no page is read)?"""
    try:
        plan = session.execute(text("EXPLAIN (FORMAT JSON) SELECT 1 FROM pages WHERE tsv @@ plainto_tsquery('english', :q)"),
                               {"q": query}).scalar_one()
        pages = session.execute(text("SELECT reltuples FROM pg_class WHERE oid = 'pages'::regclass")).scalar_one()
    except SQLAlchemyError as exc:
        raise DatabaseError(f"search failed: {type(exc).__name__}") from exc
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return pages > 0 and plan[0]["Plan"]["Plan Rows"] >= COMMON_MATCH_SHARE * pages


def _from_childrens_documents(candidates: Select[Any], pages: Any, children: Select[tuple[str]]) -> Select[Any]:
    """`candidates` found from the documents of `children`, child by child, instead of from the
    full-text index: a word on a tenth of the record's pages is on a tenth of theirs, so a few
    hundred of their pages hold enough matches, where the index would list every match in the
    record first (over 300,000 at 1,000,000 documents) for the scope to throw most away. A
    document of two such children (a sibling letter) is taken once, with the first of them."""
    known = children.subquery("k")
    link, earlier = DocumentChild.__table__.alias("l"), DocumentChild.__table__.alias("l2")
    first_of_known = ~select(earlier.c.child_id).where(
        earlier.c.document_id == link.c.document_id, earlier.c.child_id < link.c.child_id,
        earlier.c.child_id == func.any(func.array(children.scalar_subquery()))).exists()  # listed once, if asked
    per_child = (candidates.join(link, link.c.document_id == pages.c.document_id)
                 .where(link.c.child_id == known.c[0], first_of_known)
                 .offset(0)  # one child at a time: the planner may not turn it into a join over all of them
                 .lateral("c"))
    return select(per_child).select_from(known).join(per_child, literal_column("true"))


def _pg_query_stems(session: Session, query: str) -> list[str]:
    """The lexemes PostgreSQL makes of the query (English stems, stop words dropped)."""
    try:
        return list(session.execute(text("SELECT tsvector_to_array(to_tsvector('english', :q))"),
                                    {"q": query}).scalar_one())
    except SQLAlchemyError as exc:
        raise DatabaseError(f"search failed: {type(exc).__name__}") from exc


def _stem_prefixes(stems: Sequence[str]) -> list[str]:
    """What words of a stem start with: the stem, less a final "i" or "e" ("famili" -> "famil",
    for "family" and "families"; "abus" stays, for "abuse")."""
    return sorted({stem[:-1] if len(stem) > 3 and stem[-1] in "ie" else stem for stem in stems})


def _word_start_pattern(prefixes: Sequence[str]) -> str:
    """A PostgreSQL regular expression for a word starting with one of the prefixes."""
    escaped = ("".join(ch if ch.isalnum() else "\\" + ch for ch in p) for p in prefixes)
    return "\\m(" + "|".join(escaped) + ")"


_PUNCTUATION = "\"'()[]{}<>.,;:!?*"


def _is_query_word(word: str, prefixes: tuple[str, ...]) -> bool:
    """A word starting with a query term's prefix, followed by at most an ending's worth of
    letters ("visited" for "visit", not "visitation"): what the snippet marks."""
    word = word.lower()
    return word.startswith(prefixes) and any(
        word.startswith(p) and len(word) - len(p) <= (5 if len(p) > 3 else 3) for p in prefixes)


def _snippet(window: str, prefixes: Sequence[str], *, cut: bool) -> str:
    """About 24 words of `window` around the first query word, query words in [brackets], like
    ts_headline's; `cut`: the window starts inside the page (its first word may be partial)."""
    starts = tuple(prefixes)
    words = window.split()
    if cut and len(words) > 1:
        words = words[1:]
    if len(window) >= _SNIPPET_WINDOW and len(words) > 1:
        words = words[:-1]  # may be cut off too
    first = next((i for i, w in enumerate(words) if _is_query_word(w.strip(_PUNCTUATION), starts)), 0)
    start = max(0, first - _SNIPPET_WORDS_BEFORE)
    shown = []
    for word in words[start:start + _SNIPPET_WORDS]:
        core = word.strip(_PUNCTUATION)
        if core and _is_query_word(core, starts):
            at = word.index(core)
            word = f"{word[:at]}[{core}]{word[at + len(core):]}"
        shown.append(word)
    return " ".join(shown)


def _fts5_query(query: str) -> str:
    """Quote each term so user input is never parsed as FTS5 syntax."""
    terms = [t.replace('"', '""') for t in query.split() if t.strip()]
    return " ".join(f'"{t}"' for t in terms) or '""'


# --- engines -------------------------------------------------------------------------------------


class _UtcSqliteDateTime(SQLITE_DATETIME):
    """`timestamptz` on SQLite: an aware value is stored as UTC and read back with tzinfo=UTC."""

    def bind_processor(self, dialect):  # type: ignore[no-untyped-def]
        inner = super().bind_processor(dialect)
        if not self.timezone:
            return inner

        def process(value: datetime | None) -> Any:
            if value is not None and value.tzinfo is not None:
                value = value.astimezone(UTC).replace(tzinfo=None)
            return inner(value) if inner else value

        return process

    def result_processor(self, dialect, coltype):  # type: ignore[no-untyped-def]
        inner = super().result_processor(dialect, coltype)
        if not self.timezone:
            return inner

        def process(value: Any) -> datetime | None:
            value = inner(value) if inner else value
            return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

        return process


def _private_sqlite_file(database: str | None) -> None:
    """The SQLite file is created owner-only before SQLite opens it, whatever the umask; SQLite
    gives its WAL and shared-memory files the database file's own permissions. Files already
    there are tightened: they hold children's records."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    try:
        private_dir(path.parent)
        private_file(path)
        for suffix in ("-wal", "-shm", "-journal"):
            extra = path.with_name(path.name + suffix)
            if extra.exists() and extra.stat().st_mode & 0o077:
                os.chmod(extra, 0o600)
    except OSError as exc:
        raise DatabaseError(f"cannot open database: {exc.strerror}") from exc


def _make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    if parsed.get_backend_name() == "postgresql":
        # psycopg 3 whatever the URL says; sessions in UTC, so timestamps read back the same
        # whatever the server's time zone. No JIT: escr's queries are short look-ups, and
        # compiling one (when the planner's estimate crosses jit_above_cost, as a search over a
        # million pages does) costs tens of milliseconds it never wins back.
        return create_engine(parsed.set(drivername="postgresql+psycopg"), pool_pre_ping=True,
                             connect_args={"options": "-c timezone=UTC -c jit=off"})
    raise DatabaseError("escr supports sqlite:/// and postgresql+psycopg:// database URLs")


def _sqlite_engine(url: str) -> Engine:
    _private_sqlite_file(make_url(url).database)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
    engine.dialect.colspecs = {**engine.dialect.colspecs, sqltypes.DateTime: _UtcSqliteDateTime}

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # let SQLAlchemy's begin hook issue BEGIN
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=FULL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn):  # type: ignore[no-untyped-def]
        # Writers take the lock up front, so appending to the event chain never races.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
