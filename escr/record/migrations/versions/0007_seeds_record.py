"""the record as the seeds keep it: status history, paper volumes, incidents, disposal, timeliness

Revision ID: 0007_seeds_record
Revises: 0006_web_sessions

Issue 19: a child's status history (retention runs from it), the paper file's volumes and
originals with their incidents, disposal proposals and the tombstones kept for ever, category
holds, when paper arrived, managers' file examinations, the cover-sheet register, items of a
batch listed as missing, and each device's daily scanner checks.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_seeds_record"
down_revision = "0006_web_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('category_holds',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('value', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('set_by', sa.String(length=128), nullable=False),
    sa.Column('set_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('released_by', sa.String(length=128), nullable=True),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('coversheet_prints',
    sa.Column('batch_id', sa.String(length=64), nullable=False),
    sa.Column('child_ids', sa.JSON(), nullable=False),
    sa.Column('doc_type', sa.String(length=64), nullable=False),
    sa.Column('declared_pages', sa.Integer(), nullable=True),
    sa.Column('printed_by', sa.String(length=128), nullable=False),
    sa.Column('printed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('batch_id')
    )
    op.create_index(op.f('ix_coversheet_prints_printed_at'), 'coversheet_prints', ['printed_at'], unique=False)
    op.create_table('disposal_proposals',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('proposed_by', sa.String(length=128), nullable=False),
    sa.Column('proposed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.String(length=128), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('disposed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('certificate_key', sa.String(length=256), nullable=True),
    sa.Column('certificate_sha256', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('manifest_missing',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('cover_batch_id', sa.String(length=64), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('pages', sa.Integer(), nullable=True),
    sa.Column('listed_by', sa.String(length=128), nullable=False),
    sa.Column('listed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_manifest_missing_cover_batch_id'), 'manifest_missing', ['cover_batch_id'], unique=False)
    op.create_table('paper_arrivals',
    sa.Column('ref', sa.String(length=64), nullable=False),
    sa.Column('arrived_on', sa.Date(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('recorded_by', sa.String(length=128), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('ref')
    )
    op.create_table('scanner_checks',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('device', sa.String(length=128), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('passed', sa.Boolean(), nullable=False),
    sa.Column('measures', sa.JSON(), nullable=False),
    sa.Column('failures', sa.JSON(), nullable=False),
    sa.Column('scan_key', sa.String(length=256), nullable=False),
    sa.Column('scan_sha256', sa.String(length=64), nullable=False),
    sa.Column('checked_by', sa.String(length=128), nullable=False),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_scanner_checks_device_day', 'scanner_checks', ['device', 'day'], unique=False)
    op.create_table('tombstones',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('item_kind', sa.String(length=16), nullable=False),
    sa.Column('item_id', sa.String(length=64), nullable=False),
    sa.Column('child_ids', sa.JSON(), nullable=False),
    sa.Column('doc_type', sa.String(length=64), nullable=True),
    sa.Column('hashes', sa.JSON(), nullable=False),
    sa.Column('dates', sa.JSON(), nullable=False),
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.Column('proposed_by', sa.String(length=128), nullable=False),
    sa.Column('approved_by', sa.String(length=128), nullable=False),
    sa.Column('disposed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_tombstones_item_id'), 'tombstones', ['item_id'], unique=False)
    op.create_index(op.f('ix_tombstones_proposal_id'), 'tombstones', ['proposal_id'], unique=False)
    op.create_table('child_statuses',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('child_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('from_date', sa.Date(), nullable=True),
    sa.Column('to_date', sa.Date(), nullable=True),
    sa.Column('on_date', sa.Date(), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('recorded_by', sa.String(length=128), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['child_id'], ['children.child_id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_child_statuses_child_id'), 'child_statuses', ['child_id'], unique=False)
    op.create_table('file_examinations',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('child_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('purpose', sa.Text(), nullable=False),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('examined_on', sa.Date(), nullable=False),
    sa.Column('examined_by', sa.String(length=128), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['child_id'], ['children.child_id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_file_examinations_child_id'), 'file_examinations', ['child_id'], unique=False)
    op.create_table('paper_volumes',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('child_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('contents', sa.Text(), nullable=False),
    sa.Column('doc_type', sa.String(length=64), nullable=True),
    sa.Column('covers_from', sa.Date(), nullable=True),
    sa.Column('covers_to', sa.Date(), nullable=True),
    sa.Column('location', sa.String(length=200), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('legal_hold', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['child_id'], ['children.child_id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_paper_volumes_child_id'), 'paper_volumes', ['child_id'], unique=False)
    op.create_table('document_volumes',
    sa.Column('document_id', sa.String(length=40), nullable=False),
    sa.Column('volume_id', sa.String(length=64), nullable=False),
    sa.Column('recorded_by', sa.String(length=128), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], ),
    sa.ForeignKeyConstraint(['volume_id'], ['paper_volumes.id'], ),
    sa.PrimaryKeyConstraint('document_id')
    )
    op.create_index(op.f('ix_document_volumes_volume_id'), 'document_volumes', ['volume_id'], unique=False)
    op.create_table('paper_incidents',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('volume_id', sa.String(length=64), nullable=False),
    sa.Column('child_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('reported_by', sa.String(length=128), nullable=False),
    sa.Column('reported_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('notified', sa.JSON(), nullable=False),
    sa.Column('closed_by', sa.String(length=128), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['volume_id'], ['paper_volumes.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_paper_incidents_child_id'), 'paper_incidents', ['child_id'], unique=False)
    op.create_index(op.f('ix_paper_incidents_volume_id'), 'paper_incidents', ['volume_id'], unique=False)
    op.create_table('incident_follow_ups',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('by', sa.String(length=128), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['paper_incidents.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_incident_follow_ups_incident_id'), 'incident_follow_ups', ['incident_id'], unique=False)

    from escr.record.database import make_append_only

    bind = op.get_bind()
    for table in ("tombstones", "incident_follow_ups", "file_examinations", "manifest_missing",
                  "scanner_checks"):
        make_append_only(bind, table)  # kept for ever, never edited


def downgrade() -> None:
    raise NotImplementedError("escr records are never downgraded: restore a backup instead")
