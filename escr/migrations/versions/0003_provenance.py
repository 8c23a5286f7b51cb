"""chain anchors, paper custody, disposition and audit samples

Revision ID: 0003_provenance
Revises: 0002_accounts
Filled in by the provenance issue; empty until then so the revision chain stays fixed.
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0003_provenance"
down_revision = "0002_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    raise NotImplementedError("escr records are never downgraded: restore a backup instead")
