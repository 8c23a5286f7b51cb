"""users, roles, teams and API tokens (web app)

Revision ID: 0002_accounts
Revises: 0001_initial
Filled in by the web-app issue; empty until then so the revision chain stays fixed.
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0002_accounts"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    raise NotImplementedError("escr records are never downgraded: restore a backup instead")
