"""saved views: a person's named chronology filters

Revision ID: 0013_saved_views
Revises: 0012_disclosure

A saved view holds a chronology's filters (document types, period, state, third-party, text,
sort) under a name, for its owner only; it never holds access (issue 17).
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_saved_views"
down_revision = "0012_disclosure"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "saved_views",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("child_id", sa.String(length=64), nullable=True),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "name", name="uq_saved_views_user_name"),
    )
    op.create_index(op.f("ix_saved_views_user_id"), "saved_views", ["user_id"], unique=False)


def downgrade() -> None:
    raise NotImplementedError("escr records are never downgraded: restore a backup instead")
