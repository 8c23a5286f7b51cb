"""chain anchors, fixity runs, paper custody, disposition and audit samples

Revision ID: 0003_provenance
Revises: 0002_accounts
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_provenance"
down_revision = "0002_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chain_anchors",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("object_key", sa.String(length=256), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("location", sa.String(length=1024), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("object_key"),
    )
    with op.batch_alter_table("chain_anchors", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chain_anchors_event_id"), ["event_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_chain_anchors_created_at"), ["created_at"], unique=False)

    op.create_table(
        "fixity_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("scope", sa.JSON(), nullable=False),
        sa.Column("events_checked", sa.Integer(), nullable=False),
        sa.Column("documents_checked", sa.Integer(), nullable=False),
        sa.Column("objects_checked", sa.Integer(), nullable=False),
        sa.Column("bytes_read", sa.BigInteger(), nullable=False),
        sa.Column("findings_count", sa.Integer(), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("fixity_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fixity_runs_started_at"), ["started_at"], unique=False)

    op.create_table(
        "paper_moves",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("paper_ref", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("sender", sa.String(length=128), nullable=False),
        sa.Column("recipient", sa.String(length=128), nullable=False),
        sa.Column("authorised_by", sa.String(length=128), nullable=True),
        sa.Column("due_back", sa.Date(), nullable=True),
        sa.Column("moved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=128), nullable=False),
        sa.Column("confirmed_by", sa.String(length=128), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("paper_moves", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_paper_moves_paper_ref"), ["paper_ref"], unique=False)

    op.create_table(
        "paper_dispositions",
        sa.Column("document_id", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("at", sa.Date(), nullable=False),
        sa.Column("by", sa.String(length=128), nullable=False),
        sa.Column("method", sa.String(length=128), nullable=True),
        sa.Column("certificate_ref", sa.String(length=128), nullable=True),
        sa.Column("returned_to", sa.String(length=200), nullable=True),
        sa.Column("recorded_by", sa.String(length=128), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"]),
        sa.PrimaryKeyConstraint("document_id"),
    )

    op.create_table(
        "audit_selections",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("worker", sa.String(length=128), nullable=False),
        sa.Column("child_id", sa.String(length=64), nullable=False),
        sa.Column("candidates", sa.Integer(), nullable=False),
        sa.Column("selected_by", sa.String(length=128), nullable=False),
        sa.Column("selected_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["child_id"], ["children.child_id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("month", "worker"),
    )
    with op.batch_alter_table("audit_selections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_selections_child_id"), ["child_id"], unique=False)

    from escr.record.database import make_append_only

    for table in ("chain_anchors", "fixity_runs", "paper_dispositions", "audit_selections"):
        make_append_only(op.get_bind(), table)  # records of checks and of what became of the paper


def downgrade() -> None:
    raise NotImplementedError("escr records are never downgraded: restore a backup instead")
