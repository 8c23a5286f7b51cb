"""browser sign-ins kept on the server

Revision ID: 0006_web_sessions
Revises: 0005_search_vector

The session cookie used to carry the user id and a last-seen stamp, so every request re-sent it:
a slow answer begun before a form was saved could put back the cookie as it was, losing the
saved form's notice, or a sign-out. A sign-in is now a row here, the cookie holds its random id.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_web_sessions"
down_revision = "0005_search_vector"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id_sha256", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id_sha256"),
    )
    op.create_index(op.f("ix_web_sessions_user_id"), "web_sessions", ["user_id"], unique=False)


def downgrade() -> None:
    raise NotImplementedError("escr records are never downgraded: restore a backup instead")
