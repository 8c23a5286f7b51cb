"""Shared fixtures: a fresh data directory per test, with the real embedded backends."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from escr.services import Services, open_services
from escr.settings import Settings, load_settings
from tests.support.databases import PostgresTestServer

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus" / "scanners"

# Tests never read the developer's own ESCR_* settings, except the ones that point at test servers
# and the soak test's (ESCR_SOAK_*: its length, seed and report; tests/test_soak.py).
for _name in list(os.environ):
    if _name.startswith("ESCR_") and not _name.startswith(("ESCR_TEST_", "ESCR_SOAK_")):
        del os.environ[_name]
# The server for the PostgreSQL pass; each test gets its own database on it (see tests/support/databases.py).
TEST_SERVER_URL = os.environ.get("ESCR_TEST_DATABASE_URL")


@pytest.fixture(autouse=True)
def cached_ocr(request, pytestconfig):
    """Reuse OCR results across runs (and across the SQLite and PostgreSQL passes) in tests that
    are not about OCR itself (see tests/support/ocr_cache.py); tests marked `real_ocr` always run Tesseract."""
    if request.node.get_closest_marker("real_ocr"):
        yield
        return
    from tests.support.ocr_cache import install_ocr_cache

    patch = install_ocr_cache(pytestconfig)
    yield
    patch.undo()


def pytest_collection_modifyitems(config, items):  # type: ignore[no-untyped-def]
    """ESCR_TEST_DATABASE_ONLY=1 (the PostgreSQL pass of .ci/run): run only the tests that can open
    a database on the server, i.e. whose fixtures reach `postgres_server` (through `database_url`,
    `settings`, `services`...); the others never touch one, so they cannot behave differently.

    Browser tests (the `browser` fixture) are left to the SQLite pass: what Chromium draws does not
    depend on the database, the routes behind every page are tested on PostgreSQL through the web
    and API tests (tests/test_web_*.py), and they cost CI three minutes a pass."""
    if not (TEST_SERVER_URL and os.environ.get("ESCR_TEST_DATABASE_ONLY")):
        return
    keep = [i for i in items if "postgres_server" in getattr(i, "fixturenames", ())
            and "browser" not in getattr(i, "fixturenames", ())]
    config.hook.pytest_deselected(items=[i for i in items if i not in keep])
    items[:] = keep


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresTestServer | None]:
    """The PostgreSQL server named by ESCR_TEST_DATABASE_URL, or None: SQLite only."""
    if not TEST_SERVER_URL:
        yield None
        return
    server = PostgresTestServer.connect(TEST_SERVER_URL)  # unreachable: every database test fails
    yield server
    server.close()


@pytest.fixture
def database_url(postgres_server: PostgresTestServer | None, monkeypatch) -> Iterator[str | None]:
    """A database of the test's own: a fresh PostgreSQL database when a server is configured (also
    handed to subprocesses as ESCR_TEST_DATABASE_URL), else None for SQLite under the test's home."""
    if postgres_server is None:
        yield None
        return
    url = postgres_server.create()
    monkeypatch.setenv("ESCR_TEST_DATABASE_URL", url)
    yield url
    postgres_server.drop(url)


@pytest.fixture
def empty_database_url(postgres_server: PostgresTestServer | None, tmp_path: Path) -> Iterator[str]:
    """A database with no schema yet, on the same kind of server as `database_url`."""
    if postgres_server is None:
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    url = postgres_server.create(empty=True)
    yield url
    postgres_server.drop(url)


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    return load_settings(home=tmp_path / "home", stable_seconds=0.5, rescan_seconds=1.0,
                         database_url=database_url)


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    services = open_services(settings)
    yield services
    services.db.dispose()  # before the test's database is dropped


@pytest.fixture
def children_csv(tmp_path: Path) -> Path:
    from tests.support.scans import CHILDREN_CSV

    path = tmp_path / "children.csv"
    path.write_text(CHILDREN_CSV)
    return path


@pytest.fixture
def with_children(services: Services, children_csv: Path) -> Services:
    from escr.record.children import import_children, read_children_csv
    from escr.record.events import Actor

    with services.db.session() as session:
        import_children(session, read_children_csv(children_csv), actor=Actor(kind="user", name="admin"))
    return services
