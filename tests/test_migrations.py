"""The migrations produce exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from escr.models import Base


def test_migrated_schema_matches_the_models(services):
    with services.db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = [d for d in compare_metadata(context, Base.metadata)
                if not (isinstance(d, tuple) and "pages_fts" in str(d))]
    assert diff == []


def test_upgrade_is_idempotent(services):
    services.db.create_schema()
    services.db.create_schema()
    with services.db.engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() is not None
