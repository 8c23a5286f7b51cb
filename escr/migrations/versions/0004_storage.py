"""object retention and legal holds

Revision ID: 0004_storage
Revises: 0003_provenance
Filled in by the production-deployment issue; empty until then so the revision chain stays fixed.
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0004_storage"
down_revision = "0003_provenance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    raise NotImplementedError("escr records are never downgraded: restore a backup instead")
