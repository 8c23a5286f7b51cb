"""people's decisions: row version, rescans, link history, two-person corrections

Revision ID: 0008_human_corrections
Revises: 0007_seeds_record

Re-indexing and corrections move documents between children; every earlier link is kept in
`document_link_history`, a correction waits in `correction_requests` for a second person, a
rescan names the scan it replaces, and `documents.version` lets two people deciding at once be
told of the conflict instead of one decision silently overwriting the other.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_human_corrections"
down_revision = "0007_seeds_record"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("replaces_id", sa.String(length=40), nullable=True))
        batch_op.create_index(batch_op.f("ix_documents_replaces_id"), ["replaces_id"], unique=False)
    op.create_table(
        "document_link_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("document_id", sa.String(length=40), nullable=False),
        sa.Column("child_id", sa.String(length=64), nullable=False),
        sa.Column("basis", sa.String(length=32), nullable=False),
        sa.Column("linked_by", sa.String(length=128), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("unlinked_by", sa.String(length=128), nullable=False),
        sa.Column("unlinked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_document_link_history_document_id"), "document_link_history", ["document_id"])
    op.create_table(
        "correction_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("document_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("misfiling", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_correction_requests_document_id"), "correction_requests", ["document_id"])

    from escr.record.database import make_append_only

    make_append_only(op.get_bind(), "document_link_history")  # earlier links are never rewritten


def downgrade() -> None:
    raise NotImplementedError("escr records are never downgraded: restore a backup instead")
