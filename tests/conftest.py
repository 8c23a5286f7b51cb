"""Shared fixtures: a fresh data directory per test, with the real embedded backends."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from escr.services import Services, open_services
from escr.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus" / "scanners"

# Tests never read the developer's own ESCR_* settings, except the ones that point at test servers.
for _name in list(os.environ):
    if _name.startswith("ESCR_") and not _name.startswith("ESCR_TEST_"):
        del os.environ[_name]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(home=tmp_path / "home", stable_seconds=0.5, rescan_seconds=1.0,
                         database_url=os.environ.get("ESCR_TEST_DATABASE_URL"))


@pytest.fixture
def services(settings: Settings) -> Services:
    return open_services(settings)


@pytest.fixture
def children_csv(tmp_path: Path) -> Path:
    from tests.scans import CHILDREN_CSV

    path = tmp_path / "children.csv"
    path.write_text(CHILDREN_CSV)
    return path


@pytest.fixture
def with_children(services: Services, children_csv: Path) -> Services:
    from escr.children import import_children, read_children_csv
    from escr.events import Actor

    with services.db.session() as session:
        import_children(session, read_children_csv(children_csv), actor=Actor(kind="user", name="admin"))
    return services
