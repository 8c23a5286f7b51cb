"""scoped API tokens, forced password change, sign-in throttling

Revision ID: 0009_accounts_tokens
Revises: 0008_human_corrections

API tokens carry a scope (read, write, admin) and the reason they were revoked; a password reset
by an administrator makes the next sign-in choose a new password; failed sign-ins are counted
per client address and per account from that address (with back-off) instead of locking the
account, so a stranger can no longer lock anyone out. Existing tokens keep working as "write".
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_accounts_tokens"
down_revision = "0008_human_corrections"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scope", sa.String(length=8), server_default="write", nullable=False))
        batch_op.add_column(sa.Column("revoked_reason", sa.String(length=32), nullable=True))
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("must_change_password", sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
    op.create_table(
        "sign_in_throttle",
        sa.Column("key_sha256", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_sha256"),
    )
    op.create_index(op.f("ix_sign_in_throttle_last_failure_at"), "sign_in_throttle", ["last_failure_at"],
                    unique=False)


def downgrade() -> None:
    raise NotImplementedError("escr records are never downgraded: restore a backup instead")
