"""Alembic environment: runs against the connection escr hands it (`escr db upgrade`).

Run by hand (`alembic -x url=...`) it opens that URL instead; autogenerate leaves the
full-text engine's own objects alone, so a new revision only holds model changes.
"""

from __future__ import annotations

from alembic import context

from escr.record.database import include_in_comparison
from escr.record.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from escr.record.database import Database

    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("no database: run `escr db upgrade`, or alembic -x url=DATABASE_URL")
    db = Database(url)
    try:
        with db.engine.begin() as conn:
            _run(conn)
    finally:
        db.dispose()


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True,
                      include_object=include_in_comparison)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `escr db upgrade`")
run_migrations_online()
