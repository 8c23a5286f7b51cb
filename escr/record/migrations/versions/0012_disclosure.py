"""subject access and disclosure: requests, redactions, reviews, copies given

Revision ID: 0012_disclosure
Revises: 0011_break_glass_any_id

A disclosure request (subject access, court, another agency, a care leaver's own file), the
redactions proposed and made on its pages with their exemption reasons, a second person's review
of each document, and the log of copies given (append-only; seed 003 appendix 4).
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_disclosure"
down_revision = "0011_break_glass_any_id"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('copies_given',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=True),
    sa.Column('child_ids', sa.JSON(), nullable=False),
    sa.Column('document_ids', sa.JSON(), nullable=False),
    sa.Column('recipient', sa.String(length=200), nullable=False),
    sa.Column('method', sa.String(length=32), nullable=False),
    sa.Column('basis', sa.String(length=32), nullable=False),
    sa.Column('redacted', sa.Boolean(), nullable=False),
    sa.Column('bundle_sha256', sa.String(length=64), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('given_on', sa.Date(), nullable=False),
    sa.Column('given_by', sa.String(length=128), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_copies_given_request_id'), 'copies_given', ['request_id'], unique=False)
    op.create_table('disclosure_requests',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('requester', sa.String(length=200), nullable=False),
    sa.Column('requester_relationship', sa.String(length=64), nullable=False),
    sa.Column('basis', sa.String(length=32), nullable=False),
    sa.Column('child_ids', sa.JSON(), nullable=False),
    sa.Column('document_ids', sa.JSON(), nullable=True),
    sa.Column('period_from', sa.Date(), nullable=True),
    sa.Column('period_to', sa.Date(), nullable=True),
    sa.Column('received_on', sa.Date(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('extension_reason', sa.Text(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('prepared_by', sa.String(length=128), nullable=False),
    sa.Column('reviewer', sa.String(length=128), nullable=True),
    sa.Column('review_note', sa.Text(), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('bundle_key', sa.String(length=256), nullable=True),
    sa.Column('bundle_sha256', sa.String(length=64), nullable=True),
    sa.Column('bundle_pages', sa.Integer(), nullable=True),
    sa.Column('exported_by', sa.String(length=128), nullable=True),
    sa.Column('exported_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_disclosure_requests_due_on'), 'disclosure_requests', ['due_on'], unique=False)
    op.create_index(op.f('ix_disclosure_requests_prepared_by'), 'disclosure_requests', ['prepared_by'], unique=False)
    op.create_index(op.f('ix_disclosure_requests_reviewer'), 'disclosure_requests', ['reviewer'], unique=False)
    op.create_index(op.f('ix_disclosure_requests_state'), 'disclosure_requests', ['state'], unique=False)
    op.create_table('copies_given_children',
    sa.Column('copy_id', sa.Integer(), nullable=False),
    sa.Column('child_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['copy_id'], ['copies_given.id'], ),
    sa.PrimaryKeyConstraint('copy_id', 'child_id')
    )
    op.create_index(op.f('ix_copies_given_children_child_id'), 'copies_given_children', ['child_id'], unique=False)
    op.create_table('disclosure_reviews',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('document_id', sa.String(length=40), nullable=False),
    sa.Column('reviewer', sa.String(length=128), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('pages', sa.Integer(), nullable=False),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['disclosure_requests.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('request_id', 'document_id', 'reviewer', 'version')
    )
    op.create_index(op.f('ix_disclosure_reviews_request_id'), 'disclosure_reviews', ['request_id'], unique=False)
    op.create_table('redactions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('document_id', sa.String(length=40), nullable=False),
    sa.Column('page', sa.Integer(), nullable=True),
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('x0', sa.Float(), nullable=True),
    sa.Column('y0', sa.Float(), nullable=True),
    sa.Column('x1', sa.Float(), nullable=True),
    sa.Column('y1', sa.Float(), nullable=True),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('why', sa.String(length=512), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=True),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.String(length=128), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], ),
    sa.ForeignKeyConstraint(['request_id'], ['disclosure_requests.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_redactions_request_doc', 'redactions', ['request_id', 'document_id', 'page'], unique=False)

    from escr.record.database import make_append_only

    bind = op.get_bind()
    for table in ("copies_given", "copies_given_children"):
        make_append_only(bind, table)  # the disclosure log is kept for ever, never edited


def downgrade() -> None:
    raise NotImplementedError("escr records are never downgraded: restore a backup instead")
