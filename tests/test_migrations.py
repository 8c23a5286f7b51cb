"""The migrations produce exactly the schema the models describe, on SQLite and on PostgreSQL;
`escr db upgrade` builds it on an empty database and does nothing the second time."""

from __future__ import annotations

import json
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from typer.testing import CliRunner

from escr.cli.main import app
from escr.record.database import Database, alembic_config, comparison_filter, head_revision
from escr.record.models import Base


def schema_differences(db: Database) -> list[object]:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": comparison_filter(connection.dialect.name)})
        return compare_metadata(context, Base.metadata)


def test_migrated_schema_matches_the_models(services):
    assert schema_differences(services.db) == []


def test_upgrade_is_idempotent(services):
    services.db.create_schema()
    services.db.create_schema()
    with services.db.engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == head_revision()


def test_the_newest_migration_file_is_alembic_s_head():
    """escr finds the head from the file names, without Alembic: that holds only while every
    revision is named after its file and follows the file before it."""
    scripts = ScriptDirectory.from_config(alembic_config())
    files = sorted(scripts.walk_revisions(), key=lambda s: Path(s.path).stem)
    assert [s.revision for s in files] == [Path(s.path).stem for s in files], "name each revision after its file"
    assert [s.down_revision for s in files] == [None, *(s.revision for s in files[:-1])], \
        "each migration must follow the one in the file before it"
    assert scripts.get_current_head() == head_revision()


def escr_db(args: list[str], url: str, tmp_path) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(app, ["db", *args], env={"ESCR_DATABASE_URL": url, "ESCR_HOME": str(tmp_path)})
    return result.exit_code, result.stdout


def test_escr_db_upgrade_builds_an_empty_database_and_is_idempotent(empty_database_url, tmp_path):
    code, out = escr_db(["current", "--json"], empty_database_url, tmp_path)
    assert code == 1 and json.loads(out)["current"] is None

    code, out = escr_db(["upgrade", "--json"], empty_database_url, tmp_path)
    assert code == 0, out
    assert json.loads(out)["was"] is None and json.loads(out)["now"] == head_revision()

    code, out = escr_db(["upgrade", "--json"], empty_database_url, tmp_path)
    assert code == 0 and json.loads(out)["was"] == head_revision()

    code, out = escr_db(["current"], empty_database_url, tmp_path)
    assert code == 0 and "up to date" in out

    db = Database(empty_database_url)
    try:
        assert schema_differences(db) == []
    finally:
        db.dispose()
