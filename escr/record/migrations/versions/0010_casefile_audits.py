"""completed case-file audits

Revision ID: 0010_casefile_audits
Revises: 0009_accounts_tokens

The auditor's judgement per standard, the grading and comments of a case-file audit done in the
browser (seed 004 sections 10-13), kept so that a quarter's audits can be collated per team
(seed 002). Append-only: a grading changed after the manager's right to reply is a new row.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_casefile_audits"
down_revision = "0009_accounts_tokens"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "casefile_audits",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("child_id", sa.String(length=64), nullable=False),
        sa.Column("team", sa.String(length=64), nullable=True),
        sa.Column("worker", sa.String(length=128), nullable=True),
        sa.Column("month", sa.String(length=7), nullable=True),
        sa.Column("audited_on", sa.Date(), nullable=False),
        sa.Column("auditor", sa.String(length=128), nullable=False),
        sa.Column("grading", sa.String(length=32), nullable=False),
        sa.Column("standards", sa.JSON(), nullable=False),
        sa.Column("comments", sa.Text(), nullable=False),
        sa.Column("manager_comments", sa.Text(), nullable=False),
        sa.Column("follow_up", sa.Boolean(), nullable=False),
        sa.Column("revises", sa.Integer(), nullable=True),
        sa.Column("examination_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["child_id"], ["children.child_id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_casefile_audits_child_id"), "casefile_audits", ["child_id"], unique=False)
    op.create_index(op.f("ix_casefile_audits_team"), "casefile_audits", ["team"], unique=False)
    op.create_index(op.f("ix_casefile_audits_audited_on"), "casefile_audits", ["audited_on"], unique=False)

    from escr.record.database import make_append_only

    make_append_only(op.get_bind(), "casefile_audits")  # kept for ever, never edited


def downgrade() -> None:
    raise NotImplementedError("escr records are never downgraded: restore a backup instead")
