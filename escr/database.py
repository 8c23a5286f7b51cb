"""The database boundary: engine, transactions, schema, and full-text search.

This is the only module that knows which database is in use. SQLAlchemy errors are
mapped to `DatabaseError` here, so callers never see driver exceptions.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, create_engine, event, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from escr.errors import DatabaseError
from escr.models import ChainHead

GENESIS_HASH = "0" * 64

_SQLITE_FTS = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS pages_fts USING fts5(text, content='pages', content_rowid='id')",
    """CREATE TRIGGER IF NOT EXISTS pages_fts_ai AFTER INSERT ON pages BEGIN
         INSERT INTO pages_fts(rowid, text) VALUES (new.id, new.text); END""",
    """CREATE TRIGGER IF NOT EXISTS pages_fts_ad AFTER DELETE ON pages BEGIN
         INSERT INTO pages_fts(pages_fts, rowid, text) VALUES ('delete', old.id, old.text); END""",
    """CREATE TRIGGER IF NOT EXISTS pages_fts_au AFTER UPDATE ON pages BEGIN
         INSERT INTO pages_fts(pages_fts, rowid, text) VALUES ('delete', old.id, old.text);
         INSERT INTO pages_fts(rowid, text) VALUES (new.id, new.text); END""",
]
_POSTGRES_FTS = [
    "CREATE INDEX IF NOT EXISTS ix_pages_fts ON pages USING gin (to_tsvector('english', text))",
]


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

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def create_schema(self) -> None:
        """Bring the schema to the newest migration; safe to run on every start."""
        upgrade_schema(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on any error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except SQLAlchemyError as exc:
            session.rollback()
            raise DatabaseError(f"database operation failed: {type(exc).__name__}") from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def search_pages(
        self, session: Session, query: str, *, document_ids: Sequence[str] | None = None, limit: int = 50
    ) -> list[PageHit]:
        """Full-text search over page text with the database's own engine."""
        try:
            if self.dialect == "sqlite":
                stmt = text(
                    "SELECT p.document_id, p.seq, snippet(pages_fts, 0, '[', ']', '...', 12) "
                    "FROM pages_fts JOIN pages p ON p.id = pages_fts.rowid "
                    "WHERE pages_fts MATCH :q ORDER BY rank LIMIT :limit"
                )
                rows = session.execute(stmt, {"q": _fts5_query(query), "limit": limit * 4}).all()
            else:
                tsq = "plainto_tsquery('english', :q)"
                stmt = text(
                    f"SELECT p.document_id, p.seq, ts_headline('english', p.text, {tsq}) FROM pages p "
                    f"WHERE to_tsvector('english', p.text) @@ {tsq} LIMIT :limit"
                )
                rows = session.execute(stmt, {"q": query, "limit": limit * 4}).all()
        except SQLAlchemyError as exc:
            raise DatabaseError(f"search failed: {type(exc).__name__}") from exc
        hits = [PageHit(r[0], r[1], r[2]) for r in rows]
        if document_ids is not None:
            allowed = set(document_ids)
            hits = [h for h in hits if h.document_id in allowed]
        return hits[:limit]


def upgrade_schema(engine: Engine) -> None:
    """Run the Alembic migrations shipped in `escr/migrations` up to head."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "escr:migrations")
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        raise DatabaseError(f"schema migration failed: {type(exc).__name__}") from exc


def install_search(connection: Connection) -> None:
    """The database's own full-text engine over page text (called from a migration)."""
    for ddl in _SQLITE_FTS if connection.dialect.name == "sqlite" else _POSTGRES_FTS:
        connection.execute(text(ddl))


def seed_chain_head(connection: Connection) -> None:
    connection.execute(ChainHead.__table__.insert().values(id=1, last_event_id=0, last_hash=GENESIS_HASH))


def _fts5_query(query: str) -> str:
    """Quote each term so user input is never parsed as FTS5 syntax."""
    terms = [t.replace('"', '""') for t in query.split() if t.strip()]
    return " ".join(f'"{t}"' for t in terms) or '""'


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

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
    return create_engine(url, pool_pre_ping=True)


def chain_head_for_update(session: Session) -> ChainHead:
    head = session.execute(select(ChainHead).where(ChainHead.id == 1).with_for_update()).scalar_one()
    return head
