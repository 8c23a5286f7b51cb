"""object retention and legal holds

Revision ID: 0004_storage
Revises: 0003_provenance

A person's legal hold on a document, and the final contact of a child's case (closure), from
which the retention periods of children in need and S47 enquiries run.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_storage"
down_revision = "0003_provenance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("legal_hold", sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table("children", schema=None) as batch_op:
        batch_op.add_column(sa.Column("final_contact", sa.Date(), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("escr records are never downgraded: restore a backup instead")
