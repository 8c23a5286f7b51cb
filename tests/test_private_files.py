"""Owner-only data (issue 20): the data directory, the SQLite database and its WAL, stored objects,
processing/ and quarantine are the service account's alone, even under a umask of 000."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from escr.services import open_services
from escr.settings import load_settings
from tests.support.intake import ingest
from tests.support.scans import text_page, write_pdf


@pytest.fixture
def open_umask():
    previous = os.umask(0)
    yield
    os.umask(previous)


def others_can_reach(path: Path) -> bool:
    return bool(os.lstat(path).st_mode & 0o077)


def test_everything_escr_creates_is_owner_only_whatever_the_umask(tmp_path, database_url, open_umask):
    home = tmp_path / "data" / "escr"
    services = open_services(load_settings(home=home, database_url=database_url))
    try:
        scan = write_pdf([text_page(["Letter to the family", "Date: 12 January 2026"], dpi=300,
                                    size_inches=(4.13, 5.83))], tmp_path / "scan.pdf")
        assert ingest(services, scan).status == "filed"
        bad = tmp_path / "notes.txt"
        bad.write_text("not a scan")
        assert ingest(services, bad).status == "quarantined"
        created = [home, *home.rglob("*")]
        exposed = [str(p.relative_to(tmp_path)) for p in created
                   if others_can_reach(p) and not stat.S_ISLNK(os.lstat(p).st_mode)]
        assert exposed == []
        assert stat.S_IMODE(os.stat(home).st_mode) == 0o700
        assert not others_can_reach(tmp_path / "data")  # a parent escr made for its home, too
        stored = [p for p in (home / "store").rglob("*") if p.is_file() and ".locks" not in p.parts]
        assert stored and all(stat.S_IMODE(os.stat(p).st_mode) == 0o400 for p in stored)
        if database_url is None:
            database = home / "escr.sqlite3"
            assert stat.S_IMODE(os.stat(database).st_mode) == 0o600
            assert (home / "escr.sqlite3-wal").exists() and not others_can_reach(home / "escr.sqlite3-wal")
    finally:
        services.db.dispose()


def test_an_existing_database_left_readable_by_others_is_tightened(tmp_path, open_umask):
    home = tmp_path / "home"
    home.mkdir()
    database = home / "escr.sqlite3"
    database.touch(mode=0o644)
    os.chmod(database, 0o644)
    services = open_services(load_settings(home=home))
    services.db.dispose()
    assert stat.S_IMODE(os.stat(database).st_mode) == 0o600
