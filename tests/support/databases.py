"""Throwaway PostgreSQL databases for the test suite: one per test, copied from a migrated template.

`ESCR_TEST_DATABASE_URL` names a database on the test server that the suite may connect to
(the role needs CREATEDB, and CREATEROLE for the app-role test). The suite creates
`escr_test_<pid>_tmpl`, migrates it to head once, and gives each test its own copy
(`CREATE DATABASE ... TEMPLATE`, a file-level copy that is much quicker than migrating), dropped
when the test ends. A server that cannot be reached is an error, never a skip.
"""

from __future__ import annotations

import itertools
import os
import re
from concurrent.futures import Future, ThreadPoolExecutor

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from escr.record.database import Database

_OURS = re.compile(r"^escr_test_(\d+)_")


class PostgresTestServer:
    """Creates and drops the per-test databases; one per test session."""

    def __init__(self, url: str) -> None:
        self.url: URL = make_url(url)
        self.prefix = f"escr_test_{os.getpid()}"
        self._numbers = itertools.count(1)
        self._template: str | None = None
        self._admin: Engine = create_engine(self.url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        self._dropper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drop-test-db")
        self._pending: list[Future[None]] = []
        self._drop_stale()

    @classmethod
    def connect(cls, url: str) -> PostgresTestServer:
        """The server, or a test failure that says what is wrong (never a skip)."""
        import pytest

        parsed = make_url(url)
        if parsed.get_backend_name() != "postgresql":
            pytest.fail("ESCR_TEST_DATABASE_URL must be a postgresql+psycopg:// URL (SQLite is always tested)")
        try:
            return cls(url)
        except SQLAlchemyError as exc:
            pytest.fail(f"ESCR_TEST_DATABASE_URL ({parsed.render_as_string(hide_password=True)}) cannot be "
                        f"used: {type(exc).__name__}: {str(exc.orig if hasattr(exc, 'orig') else exc).strip()}")

    def url_for(self, database: str) -> str:
        return self.url.set(database=database).render_as_string(hide_password=False)

    def create(self, *, empty: bool = False) -> str:
        """A new database at the newest migration (or with no schema at all); returns its URL."""
        name = f"{self.prefix}_{next(self._numbers)}"
        template = "template1" if empty else self._ensure_template()
        self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.url_for(name)

    def drop(self, url: str) -> None:
        """Dropped in the background: the next test need not wait for it."""
        name = make_url(url).database
        self._pending.append(self._dropper.submit(self._execute, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        for job in self._pending:
            job.result()
        self._dropper.shutdown()
        if self._template:
            self._execute(f'DROP DATABASE IF EXISTS "{self._template}" WITH (FORCE)')
        self._admin.dispose()

    def _ensure_template(self) -> str:
        if self._template is None:
            name = f"{self.prefix}_tmpl"
            self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self._execute(f'CREATE DATABASE "{name}"')
            db = Database(self.url_for(name))
            try:
                db.create_schema()
            finally:
                db.engine.dispose()  # a template must have no open connections to be copied
            self._template = name
        return self._template

    def _drop_stale(self) -> None:
        """Databases left by an earlier run that was killed (its process is gone)."""
        if self.url.host not in (None, "", "127.0.0.1", "localhost", "::1"):
            return  # pids are only meaningful on this machine
        with self._admin.connect() as conn:
            names = conn.scalars(text("SELECT datname FROM pg_database WHERE datname LIKE 'escr\\_test\\_%'")).all()
            roles = conn.scalars(text("SELECT rolname FROM pg_roles WHERE rolname LIKE 'escr\\_test\\_%'")).all()
        for name in names:
            match = _OURS.match(name)
            if match and not os.path.exists(f"/proc/{match.group(1)}"):
                self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for role in roles:  # after the databases, which held the roles' grants
            match = _OURS.match(role)
            if match and not os.path.exists(f"/proc/{match.group(1)}"):
                self._execute(f'DROP ROLE IF EXISTS "{role}"')

    def _execute(self, sql: str) -> None:
        with self._admin.connect() as conn:
            conn.execute(text(sql))


def tamper_with_events(db: Database, sql: str, params: dict[str, object] | None = None) -> None:
    """Run `sql` on the events table as its owner would, with the append-only trigger switched
    off for the moment: the tampering the hash chain exists to reveal."""
    from escr.record.database import make_append_only

    with db.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER events_no_update")
            conn.exec_driver_sql("DROP TRIGGER events_no_delete")
            conn.execute(text(sql), params or {})
            make_append_only(conn, "events")
        else:
            conn.exec_driver_sql("ALTER TABLE events DISABLE TRIGGER USER")
            conn.execute(text(sql), params or {})
            conn.exec_driver_sql("ALTER TABLE events ENABLE TRIGGER USER")
