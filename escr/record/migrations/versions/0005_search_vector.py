"""full-text search: a stored tsvector per page on PostgreSQL

Revision ID: 0005_search_vector
Revises: 0004_storage

PostgreSQL keeps each page's `to_tsvector('english', text)` in a generated column (`pages.tsv`)
with a GIN index (`ix_pages_tsv`), replacing the expression index of 0001: ranking a match then
reads the stored vector instead of parsing the page text again. Adding the column rewrites the
pages table once (every page's text is parsed). SQLite keeps its FTS5 table: nothing changes.
"""

from alembic import op

revision = "0005_search_vector"
down_revision = "0004_storage"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from escr.record.database import install_search_vector

    install_search_vector(op.get_bind())


def downgrade() -> None:
    raise NotImplementedError("escr records are never downgraded: restore a backup instead")
