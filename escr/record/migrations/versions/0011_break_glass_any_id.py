"""break-glass rows for any child id, not only ids in the child index

Revision ID: 0011_break_glass_any_id
Revises: 0010_casefile_audits

A break-glass access to an id that is not in the child index is recorded like any other (and
flagged to its reviewer), so asking for one cannot tell a caseworker which ids exist. The row
therefore no longer references the children table.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_break_glass_any_id"
down_revision = "0010_casefile_audits"
branch_labels = None
depends_on = None

_CONVENTION = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # SQLite's constraint has no name: batch mode rebuilds the table, naming it by convention.
        with op.batch_alter_table("break_glass", naming_convention=_CONVENTION, recreate="always") as batch_op:
            batch_op.drop_constraint("fk_break_glass_child_id_children", type_="foreignkey")
        return
    for fk in sa.inspect(bind).get_foreign_keys("break_glass"):
        if fk["referred_table"] == "children" and fk.get("name"):
            op.drop_constraint(fk["name"], "break_glass", type_="foreignkey")


def downgrade() -> None:
    raise NotImplementedError("escr records are never downgraded: restore a backup instead")
