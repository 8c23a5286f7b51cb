"""The record: children, scanned files (batches), documents, pages, tags, QC results, events.

The models are plain SQLAlchemy 2.0 declarative classes that run unchanged on SQLite and
PostgreSQL; dialect differences (full-text search) live in `escr.record.database` only.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Computed,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Marks schema objects that exist on PostgreSQL only (SQLite searches through its FTS5 table);
# the model/migration comparison leaves them out on SQLite (escr.record.database.comparison_filter).
POSTGRESQL_ONLY = {"postgresql_only": True}


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Child(Base):
    """One row of the child index imported from the case-management system."""

    __tablename__ = "children"

    child_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    given_names: Mapped[str] = mapped_column(String(200))
    family_name: Mapped[str] = mapped_column(String(200))
    date_of_birth: Mapped[date | None] = mapped_column(Date, index=True)
    nhs_number: Mapped[str | None] = mapped_column(String(10), index=True)
    category: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str | None] = mapped_column(String(32))
    team: Mapped[str | None] = mapped_column(String(64), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The case's final contact (closure), when the export gives it: retention periods run from it.
    final_contact: Mapped[date | None] = mapped_column(Date)

    statuses: Mapped[list[ChildStatus]] = relationship(order_by="ChildStatus.id", cascade="all, delete-orphan")


class Batch(Base):
    """One scanned file as it arrived in the intake folder; may hold several documents."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    claim_id: Mapped[str] = mapped_column(String(64), index=True)
    operator: Mapped[str] = mapped_column(String(128))
    device: Mapped[str] = mapped_column(String(128))
    source_name: Mapped[str] = mapped_column(String(1024))
    media_type: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    page_count: Mapped[int] = mapped_column(Integer)
    producer: Mapped[str | None] = mapped_column(String(256))
    cover_batch_ids: Mapped[list[Any]] = mapped_column(default=list)
    original_key: Mapped[str] = mapped_column(String(256))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    filed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    documents: Mapped[list[Document]] = relationship(back_populates="batch", order_by="Document.seq")


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("batch_id", "seq"),
        Index("ix_documents_state", "state", "created_at"),  # the work queues, oldest first
        Index("ix_documents_type_date", "doc_type", "doc_date"),  # documents of a type, by date
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"))
    seq: Mapped[int] = mapped_column(Integer)
    coversheet_batch_id: Mapped[str | None] = mapped_column(String(64))
    cover_page: Mapped[int | None] = mapped_column(Integer)  # 0-based page of the original
    first_page: Mapped[int] = mapped_column(Integer)
    last_page: Mapped[int] = mapped_column(Integer)
    page_count: Mapped[int] = mapped_column(Integer)
    declared_pages: Mapped[int | None] = mapped_column(Integer)
    doc_type: Mapped[str | None] = mapped_column(String(64))
    doc_date: Mapped[date | None] = mapped_column(Date, index=True)
    third_party: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(32))
    state_reasons: Mapped[list[Any]] = mapped_column(default=list)
    searchable_key: Mapped[str] = mapped_column(String(256))
    searchable_sha256: Mapped[str] = mapped_column(String(64))
    manifest_key: Mapped[str] = mapped_column(String(256))
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    retention_until: Mapped[date | None] = mapped_column(Date, index=True)  # None: keep (depends on a date not yet known)
    indexed_by: Mapped[str | None] = mapped_column(String(128))
    verified_by: Mapped[str | None] = mapped_column(String(128))
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    batch: Mapped[Batch] = relationship(back_populates="documents")
    children: Mapped[list[DocumentChild]] = relationship(back_populates="document", cascade="all")
    pages: Mapped[list[Page]] = relationship(order_by="Page.seq", cascade="all")
    tags: Mapped[list[Tag]] = relationship(order_by="Tag.id", cascade="all")
    qc_results: Mapped[list[QcResult]] = relationship(order_by="QcResult.id", cascade="all")
    candidates: Mapped[list[LinkCandidate]] = relationship(order_by="LinkCandidate.id", cascade="all")
    # A person's legal hold (escr hold set/release, reasons in the events): the objects are kept
    # whatever their retention date says until it is released.
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Bumped by every decision a person makes (index, verify, reject, correct): a decision made on
    # what someone saw at an older version is refused as a conflict (escr.app.verification).
    version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The scan this one replaces (a rescan); the replaced one is `superseded`.
    replaces_id: Mapped[str | None] = mapped_column(String(40), index=True)


class DocumentChild(Base):
    """A document filed to a child's record; siblings' documents have one row per child."""

    __tablename__ = "document_children"
    # A child's record: index-only lookups of the child's documents.
    __table_args__ = (Index("ix_document_children_child", "child_id", "document_id"),)

    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    child_id: Mapped[str] = mapped_column(ForeignKey("children.child_id"), primary_key=True)
    basis: Mapped[str] = mapped_column(String(32))  # coversheet | child_id | nhs_number | name_dob | person
    linked_by: Mapped[str] = mapped_column(String(128))
    linked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    document: Mapped[Document] = relationship(back_populates="children")


class DocumentLinkHistory(Base):
    """A link of a document to a child that was removed (re-indexing or an approved correction):
    every earlier link stays here, with who made and who ended it, and why."""

    __tablename__ = "document_link_history"
    __append_only__ = True  # the database refuses UPDATE and DELETE (see escr.record.database)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), index=True)
    child_id: Mapped[str] = mapped_column(String(64))
    basis: Mapped[str] = mapped_column(String(32))
    linked_by: Mapped[str] = mapped_column(String(128))
    linked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    unlinked_by: Mapped[str] = mapped_column(String(128))
    unlinked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(String(64))  # reindexed | corrected | rejected | withdrawn


class CorrectionRequest(Base):
    """A change to a verified document (children, type, date) asked for by one person with a
    reason and applied only when a second person approves it (escr.app.corrections)."""

    __tablename__ = "correction_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))  # pending | approved | refused
    reason: Mapped[str] = mapped_column(Text)
    changes: Mapped[dict[str, Any]] = mapped_column(default=dict)  # children, doc_type, doc_date, before
    requested_by: Mapped[str] = mapped_column(String(128))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_note: Mapped[str | None] = mapped_column(Text)
    # Who opened the document while it was filed to a wrong child (from the access log), for the
    # council's data-breach assessment: [{"child_id", "actor", "first", "last", "opened"}].
    misfiling: Mapped[list[Any]] = mapped_column(default=list)


class LinkCandidate(Base):
    """A child the pipeline considered but could not link on its own, for a person to choose."""

    __tablename__ = "link_candidates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), index=True)
    child_id: Mapped[str] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float)
    reasons: Mapped[list[Any]] = mapped_column(default=list)


class Page(Base):
    __tablename__ = "pages"
    __table_args__ = (
        UniqueConstraint("document_id", "seq"),
        # PostgreSQL full-text search (migration 0005): the page's tsvector, computed once when the
        # row is written, so matching and ranking never re-parse the text; GIN-indexed. Not mapped
        # (excluded below): the ORM never reads or writes it, and on SQLite it does not exist.
        Column("tsv", TSVECTOR, Computed("to_tsvector('english'::regconfig, text)", persisted=True),
               info=POSTGRESQL_ONLY),
        Index("ix_pages_tsv", "tsv", postgresql_using="gin", info=POSTGRESQL_ONLY),
    )
    __mapper_args__ = {"exclude_properties": ["tsv"]}

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)  # 1-based within the document
    source_index: Mapped[int] = mapped_column(Integer)  # 0-based within the original file
    text: Mapped[str] = mapped_column(Text, default="")
    words: Mapped[list[Any]] = mapped_column(default=list)  # [[word, confidence], ...]
    mean_conf: Mapped[float | None] = mapped_column(Float)
    word_count: Mapped[int] = mapped_column(Integer, default=0)
    rotation: Mapped[int] = mapped_column(Integer, default=0)
    skew_deg: Mapped[float | None] = mapped_column(Float)
    dpi_x: Mapped[float | None] = mapped_column(Float)
    dpi_y: Mapped[float | None] = mapped_column(Float)
    blank: Mapped[bool] = mapped_column(Boolean, default=False)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(String(512))
    source: Mapped[str] = mapped_column(String(128))
    confidence: Mapped[float] = mapped_column(Float)
    detail: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class QcResult(Base):
    __tablename__ = "qc_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), index=True)
    check: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(8))  # pass | warn | fail
    numbers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    message: Mapped[str] = mapped_column(String(512))


class Event(Base):
    """An append-only protocol or access event; each carries the hash of the one before it.

    `__append_only__`: the database refuses UPDATE and DELETE (see escr.record.database)."""

    __tablename__ = "events"
    __append_only__ = True
    __table_args__ = (Index("ix_events_document", "document_id", "id"), Index("ix_events_child", "child_id", "id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    category: Mapped[str] = mapped_column(String(16))  # protocol | access
    kind: Mapped[str] = mapped_column(String(32), index=True)
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    batch_id: Mapped[str | None] = mapped_column(String(40), index=True)
    document_id: Mapped[str | None] = mapped_column(String(40))
    child_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class ChainHead(Base):
    """One row naming the newest event, locked while appending so the chain never forks."""

    __tablename__ = "chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_event_id: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))


# --- Accounts and need-to-know access (web app and API; migration 0002_accounts) -------------


class Team(Base):
    """A social-work team; children belong to one through the child index's `team` column."""

    __tablename__ = "teams"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class User(Base):
    """A person who signs in. One role; teams through TeamMembership."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(128), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))  # business_support | caseworker | team_manager | auditor | administrator
    password_hash: Mapped[str | None] = mapped_column(String(256))  # argon2id; None: SSO or tokens only
    third_party_access: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)  # bumped to end every sign-in
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set by an administrator's password reset: the next sign-in must choose a new password first.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    memberships: Mapped[list[TeamMembership]] = relationship(cascade="all, delete-orphan")


class TeamMembership(Base):
    __tablename__ = "team_memberships"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    team_code: Mapped[str] = mapped_column(ForeignKey("teams.code"), primary_key=True, index=True)
    added_by: Mapped[str] = mapped_column(String(128))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ChildAllocation(Base):
    """A child allocated to a named worker, on top of the team the child index gives."""

    __tablename__ = "child_allocations"

    child_id: Mapped[str] = mapped_column(ForeignKey("children.child_id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    allocated_by: Mapped[str] = mapped_column(String(128))
    allocated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ApiToken(Base):
    """A per-user API token; only its SHA-256 is kept, the token itself is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # the first characters, to tell tokens apart
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    scope: Mapped[str] = mapped_column(String(8), default="write", server_default="write")  # read | write | admin
    revoked_reason: Mapped[str | None] = mapped_column(String(32))  # by_owner | password_reset | disabled | ...


class SavedView(Base):
    """A person's named filters for a chronology (types, period, state, third-party, text, sort).

    Filters only, never access: opening one still goes through need-to-know and is logged as any
    read. `child_id` is the record it was saved from, so it opens there in one click; its filters
    apply to any child's chronology. A view belongs to its owner alone (escr.app.saved_views)."""

    __tablename__ = "saved_views"
    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_saved_views_user_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    child_id: Mapped[str | None] = mapped_column(String(64))
    filters: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SignInThrottle(Base):
    """Failed sign-ins counted per client address and per account-from-that-address, with back-off.

    The key is the SHA-256 of "client:<address>" or "account:<name>|<address>", so the table holds
    no user names or addresses in clear and an unknown name is counted exactly like a real one.
    Nobody elsewhere can lock an account: a stranger's failures slow down only the stranger.
    """

    __tablename__ = "sign_in_throttle"

    key_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebSession(Base):
    """A browser sign-in, kept on the server so that signing out ends it for good.

    The cookie carries only a random session id (its SHA-256 is the key here), a CSRF token and
    pending notices; when a sign-in started, was last used and ended live here, so an ordinary
    request never rewrites the cookie and cannot undo another request's change to it.
    """

    __tablename__ = "web_sessions"

    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    epoch: Mapped[int] = mapped_column(Integer)  # the user's session epoch at sign-in
    via: Mapped[str] = mapped_column(String(16))  # session | sso
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    end_reason: Mapped[str | None] = mapped_column(String(32))  # signed_out | idle | expired | rights_changed


class BreakGlass(Base):
    """An emergency access to one child outside the user's teams: reason stated, flagged for review."""

    __tablename__ = "break_glass"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # Not a reference to the children table: an id outside the index is recorded like any other,
    # so break-glass cannot tell anyone which ids exist (the reviewer is told it was not there).
    child_id: Mapped[str] = mapped_column(String(64), index=True)
    reason: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reviewed_by: Mapped[str | None] = mapped_column(String(128))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    review_outcome: Mapped[str | None] = mapped_column(String(32))  # justified | not_justified
    review_note: Mapped[str | None] = mapped_column(Text)


class AuditPurpose(Base):
    """An auditor's stated purpose, which opens the content of one document or one child's documents."""

    __tablename__ = "audit_purposes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    child_id: Mapped[str | None] = mapped_column(String(64), index=True)
    document_id: Mapped[str | None] = mapped_column(String(40), index=True)
    purpose: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# --- Provenance: chain anchors, fixity runs, paper custody and disposition, audit samples -------
# (migration 0003_provenance)


class ChainAnchor(Base):
    """Index of the chain-head anchors written to the object store; the objects are the evidence."""

    __tablename__ = "chain_anchors"
    __append_only__ = True  # the database refuses UPDATE and DELETE (see escr.record.database)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    object_key: Mapped[str] = mapped_column(String(256), unique=True)
    event_id: Mapped[int] = mapped_column(Integer, index=True)
    head_hash: Mapped[str] = mapped_column(String(64))
    event_count: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(16))  # hmac-sha256 | sha256
    digest: Mapped[str] = mapped_column(String(64))
    location: Mapped[str] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class FixityRun(Base):
    """One run of the fixity checks: what it covered and what it found (ids and codes only)."""

    __tablename__ = "fixity_runs"
    __append_only__ = True  # the database refuses UPDATE and DELETE (see escr.record.database)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    trigger: Mapped[str] = mapped_column(String(16))  # schedule | server | auditor | report; "verify" before 2026-12
    actor: Mapped[str] = mapped_column(String(128))
    scope: Mapped[dict[str, Any]] = mapped_column(default=dict)
    events_checked: Mapped[int] = mapped_column(Integer, default=0)
    documents_checked: Mapped[int] = mapped_column(Integer, default=0)
    objects_checked: Mapped[int] = mapped_column(Integer, default=0)
    bytes_read: Mapped[int] = mapped_column(BigInteger, default=0)  # a whole store is far more than 2 GiB
    findings_count: Mapped[int] = mapped_column(Integer, default=0)
    findings: Mapped[list[Any]] = mapped_column(default=list)  # [{"code": ..., "where": ...}]


class PaperMove(Base):
    """A batch of paper moved from one person or place to another (seed 001, sections 22-23)."""

    __tablename__ = "paper_moves"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    paper_ref: Mapped[str] = mapped_column(String(64), index=True)  # cover-sheet batch id or scan id
    purpose: Mapped[str] = mapped_column(String(32))  # to_scanning | to_archive | return | other
    sender: Mapped[str] = mapped_column(String(128))
    recipient: Mapped[str] = mapped_column(String(128))
    authorised_by: Mapped[str | None] = mapped_column(String(128))
    due_back: Mapped[date | None] = mapped_column(Date)
    moved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_by: Mapped[str] = mapped_column(String(128))
    confirmed_by: Mapped[str | None] = mapped_column(String(128))
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PaperDisposition(Base):
    """What became of a document's paper original after scanning: destroyed or returned."""

    __tablename__ = "paper_dispositions"
    __append_only__ = True  # the database refuses UPDATE and DELETE (see escr.record.database)

    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    action: Mapped[str] = mapped_column(String(16))  # destroyed | returned
    at: Mapped[date] = mapped_column(Date)
    by: Mapped[str] = mapped_column(String(128))
    method: Mapped[str | None] = mapped_column(String(128))  # e.g. cross-cut shredding by contractor
    certificate_ref: Mapped[str | None] = mapped_column(String(128))  # the contractor's certificate
    returned_to: Mapped[str | None] = mapped_column(String(200))
    recorded_by: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditSelection(Base):
    """The file picked for a worker's monthly case-file audit (seed 004, sections 4 and 12)."""

    __tablename__ = "audit_selections"
    __append_only__ = True  # the database refuses UPDATE and DELETE (see escr.record.database)
    __table_args__ = (UniqueConstraint("month", "worker"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    worker: Mapped[str] = mapped_column(String(128))  # username of the allocated worker
    child_id: Mapped[str] = mapped_column(ForeignKey("children.child_id"), index=True)
    candidates: Mapped[int] = mapped_column(Integer)  # files the pick was made from
    selected_by: Mapped[str] = mapped_column(String(128))
    selected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CasefileAudit(Base):
    """An auditor's completed case-file audit of a child's file (seed 004 sections 10-13; seed 002):
    the judgement and comment per standard, beside the evidence column as it stood, the grading
    and the overall comments. A changed grading (after the manager's right to reply) is a new
    row naming the one it revises, so what was first judged stays on the record."""

    __tablename__ = "casefile_audits"
    __append_only__ = True  # the database refuses UPDATE and DELETE (see escr.record.database)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    child_id: Mapped[str] = mapped_column(ForeignKey("children.child_id"), index=True)
    team: Mapped[str | None] = mapped_column(String(64), index=True)  # the child's team when audited
    worker: Mapped[str | None] = mapped_column(String(128))  # the allocated worker when audited
    month: Mapped[str | None] = mapped_column(String(7))  # the sample month it answers (YYYY-MM), if any
    audited_on: Mapped[date] = mapped_column(Date, index=True)
    auditor: Mapped[str] = mapped_column(String(128))
    grading: Mapped[str] = mapped_column(String(32))  # good | requires_improvement | inadequate
    standards: Mapped[list[Any]] = mapped_column(default=list)  # [{number, judgement, comment, evidence}]
    comments: Mapped[str] = mapped_column(Text, default="")
    manager_comments: Mapped[str] = mapped_column(Text, default="")
    follow_up: Mapped[bool] = mapped_column(Boolean, default=False)  # immediate follow-up recommended
    revises: Mapped[int | None] = mapped_column(Integer)  # the audit whose grading this one changes
    examination_id: Mapped[int | None] = mapped_column(Integer)  # the note on the child's file
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# --- The record as the seeds keep it: status history, paper volumes and originals, incidents,
# disposal, timeliness, file examinations (issue 19; migration 0007_seeds_record) ---------------


class ChildStatus(Base):
    """One period of a child's status (seed 001 sections 17-18): several may hold at once.

    `on_date` is the date the status is about: the adoption order, the final contact of a closure,
    the date of death. `source` says who keeps the row: the child index import replaces its own
    rows, a person's entries are never overwritten by an import."""

    __tablename__ = "child_statuses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    child_id: Mapped[str] = mapped_column(ForeignKey("children.child_id"), index=True)
    status: Mapped[str] = mapped_column(String(32))  # cin | s47 | cp | cla | care_leaver | adoption | closed | died
    from_date: Mapped[date | None] = mapped_column(Date)
    to_date: Mapped[date | None] = mapped_column(Date)
    on_date: Mapped[date | None] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(16))  # import | person
    recorded_by: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PaperVolume(Base):
    """A component of a child's file kept on paper: a volume of the paper file, or a document kept
    in original (court order, adoption papers, the child's own letters) (seed 001 sections 1, 7)."""

    __tablename__ = "paper_volumes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    child_id: Mapped[str] = mapped_column(ForeignKey("children.child_id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # volume | original
    title: Mapped[str] = mapped_column(String(200))
    contents: Mapped[str] = mapped_column(Text, default="")
    doc_type: Mapped[str | None] = mapped_column(String(64))
    covers_from: Mapped[date | None] = mapped_column(Date)
    covers_to: Mapped[date | None] = mapped_column(Date)
    location: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))  # in_place | booked_out | missing | stolen | disposed
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DocumentVolume(Base):
    """The paper volume a scanned document's paper came from."""

    __tablename__ = "document_volumes"

    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    volume_id: Mapped[str] = mapped_column(ForeignKey("paper_volumes.id"), index=True)
    recorded_by: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PaperIncident(Base):
    """A volume or original reported missing or stolen (seed 003: the Director is told at once)."""

    __tablename__ = "paper_incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    volume_id: Mapped[str] = mapped_column(ForeignKey("paper_volumes.id"), index=True)
    child_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # missing | stolen
    description: Mapped[str] = mapped_column(Text)
    reported_by: Mapped[str] = mapped_column(String(128))
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    notified: Mapped[dict[str, Any]] = mapped_column(default=dict)  # what each channel said
    closed_by: Mapped[str | None] = mapped_column(String(128))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(32))  # found | not_found | recovered

    follow_ups: Mapped[list[IncidentFollowUp]] = relationship(order_by="IncidentFollowUp.id", cascade="all")


class IncidentFollowUp(Base):
    __tablename__ = "incident_follow_ups"
    __append_only__ = True

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("paper_incidents.id"), index=True)
    note: Mapped[str] = mapped_column(Text)
    by: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CategoryHold(Base):
    """A hold on a whole class of records (a public inquiry's destruction freeze): by document
    type or by child status; nothing of the class is disposed of while it is active."""

    __tablename__ = "category_holds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(16))  # doc_type | status
    value: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    set_by: Mapped[str] = mapped_column(String(128))
    set_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    released_by: Mapped[str | None] = mapped_column(String(128))
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DisposalProposal(Base):
    """Records proposed for disposal by a records manager, approved by a second person."""

    __tablename__ = "disposal_proposals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    items: Mapped[list[Any]] = mapped_column(default=list)  # [{"kind": "document"|"volume", "id": ...}]
    reason: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))  # proposed | approved | refused | disposed
    proposed_by: Mapped[str] = mapped_column(String(128))
    proposed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disposed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    certificate_key: Mapped[str | None] = mapped_column(String(256))
    certificate_sha256: Mapped[str | None] = mapped_column(String(64))


class Tombstone(Base):
    """What is kept for ever of a disposed record: ids, hashes, type, dates, who decided."""

    __tablename__ = "tombstones"
    __append_only__ = True

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_kind: Mapped[str] = mapped_column(String(16))  # document | volume
    item_id: Mapped[str] = mapped_column(String(64), index=True)
    child_ids: Mapped[list[Any]] = mapped_column(default=list)
    doc_type: Mapped[str | None] = mapped_column(String(64))
    hashes: Mapped[dict[str, Any]] = mapped_column(default=dict)  # object key -> sha256
    dates: Mapped[dict[str, Any]] = mapped_column(default=dict)  # document date, filed, retention
    proposal_id: Mapped[int] = mapped_column(Integer, index=True)
    proposed_by: Mapped[str] = mapped_column(String(128))
    approved_by: Mapped[str] = mapped_column(String(128))
    disposed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PaperArrival(Base):
    """When paper reached the office: the cover sheet's date stamp or an officer's entry.
    `ref` is a cover-sheet batch id or a document id (a document's own entry wins)."""

    __tablename__ = "paper_arrivals"

    ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    arrived_on: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(16))  # cover_stamp | officer
    recorded_by: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FileExamination(Base):
    """A manager's examination of a child's file: supervision, review or audit (seed 003 s. 4)."""

    __tablename__ = "file_examinations"
    __append_only__ = True

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    child_id: Mapped[str] = mapped_column(ForeignKey("children.child_id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # supervision | review | audit
    purpose: Mapped[str] = mapped_column(Text)
    notes: Mapped[str] = mapped_column(Text)
    examined_on: Mapped[date] = mapped_column(Date)
    examined_by: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CoverSheetPrint(Base):
    """The cover-sheet register: every printed sheet (DOMAIN protocol step 2), so sheets printed
    but never scanned can be listed, and a batch's declared contents checked against what came."""

    __tablename__ = "coversheet_prints"

    batch_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    child_ids: Mapped[list[Any]] = mapped_column(default=list)
    doc_type: Mapped[str] = mapped_column(String(64))
    declared_pages: Mapped[int | None] = mapped_column(Integer)
    printed_by: Mapped[str] = mapped_column(String(128))
    printed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class ManifestMissing(Base):
    """An item of a cover-sheet batch listed as missing (DOMAIN protocol step 6)."""

    __tablename__ = "manifest_missing"
    __append_only__ = True

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cover_batch_id: Mapped[str] = mapped_column(String(64), index=True)
    description: Mapped[str] = mapped_column(Text)
    pages: Mapped[int | None] = mapped_column(Integer)
    listed_by: Mapped[str] = mapped_column(String(128))
    listed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ScannerCheck(Base):
    """A device's scanner check on one day (DOMAIN protocol step 1): the test target as scanned,
    its measurements, and whether they passed."""

    __tablename__ = "scanner_checks"
    __append_only__ = True
    __table_args__ = (Index("ix_scanner_checks_device_day", "device", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device: Mapped[str] = mapped_column(String(128))
    day: Mapped[date] = mapped_column(Date)
    passed: Mapped[bool] = mapped_column(Boolean)
    measures: Mapped[dict[str, Any]] = mapped_column(default=dict)
    failures: Mapped[list[Any]] = mapped_column(default=list)
    scan_key: Mapped[str] = mapped_column(String(256))  # the scanned target, kept as evidence
    scan_sha256: Mapped[str] = mapped_column(String(64))
    checked_by: Mapped[str] = mapped_column(String(128))
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# --- Subject access and disclosure (issue 18; migration 0012_disclosure) -----------------------


class DisclosureRequest(Base):
    """A request for copies of children's records (subject access, a court, another agency, a
    care leaver's own file): who asked, on what basis, for what, by when, and how far it has got.
    Redactions, page reviews and the exported bundle hang off it (escr.app.disclosure)."""

    __tablename__ = "disclosure_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    requester: Mapped[str] = mapped_column(String(200))
    requester_relationship: Mapped[str] = mapped_column(String(64))  # self | parent | court | agency | ...
    basis: Mapped[str] = mapped_column(String(32))  # subject_access | court | agency_sharing | care_leaver | other
    child_ids: Mapped[list[Any]] = mapped_column(default=list)
    document_ids: Mapped[list[Any] | None] = mapped_column(JSON)  # None: every verified document in scope
    period_from: Mapped[date | None] = mapped_column(Date)
    period_to: Mapped[date | None] = mapped_column(Date)
    received_on: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date, index=True)
    extension_reason: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), index=True)  # preparing | in_review | approved | disclosed | closed
    prepared_by: Mapped[str] = mapped_column(String(128), index=True)
    reviewer: Mapped[str | None] = mapped_column(String(128), index=True)
    review_note: Mapped[str | None] = mapped_column(Text)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    bundle_key: Mapped[str | None] = mapped_column(String(256))
    bundle_sha256: Mapped[str | None] = mapped_column(String(64))
    bundle_pages: Mapped[int | None] = mapped_column(Integer)
    exported_by: Mapped[str | None] = mapped_column(String(128))
    exported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=0)  # bumped by every change to the bundle
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Redaction(Base):
    """One area, page or whole document kept out of a disclosure bundle, with its exemption.

    Areas are fractions of the page as displayed (x0, y0 top left; x1, y1 bottom right; 0..1), as Mayan's
    redaction layer keeps them, so they hold at any rendering resolution. A proposal made by
    escr (`source` other than "person") is applied only once a person accepts it."""

    __tablename__ = "redactions"
    __table_args__ = (Index("ix_redactions_request_doc", "request_id", "document_id", "page"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("disclosure_requests.id"))
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"))
    page: Mapped[int | None] = mapped_column(Integer)  # 1-based; None: the whole document
    scope: Mapped[str] = mapped_column(String(16))  # area | page | document
    x0: Mapped[float | None] = mapped_column(Float)
    y0: Mapped[float | None] = mapped_column(Float)
    x1: Mapped[float | None] = mapped_column(Float)
    y1: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(32))  # an exemption code (settings.disclosure.exemptions)
    status: Mapped[str] = mapped_column(String(16))  # proposed | accepted | rejected | removed
    source: Mapped[str] = mapped_column(String(32))  # person | other_child | nhs_number | phone | email | ...
    why: Mapped[str] = mapped_column(String(512), default="")
    confidence: Mapped[float | None] = mapped_column(Float)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DisclosureReview(Base):
    """A reviewer's check of one document of a bundle: every page seen, at the bundle's version."""

    __tablename__ = "disclosure_reviews"
    __table_args__ = (UniqueConstraint("request_id", "document_id", "reviewer", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("disclosure_requests.id"), index=True)
    document_id: Mapped[str] = mapped_column(String(40))
    reviewer: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    pages: Mapped[int] = mapped_column(Integer)
    reviewed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CopyGiven(Base):
    """A copy of records given to someone (seed 003 appendix 4, "copies given"): who received
    what, when, how, on which basis, by whom, with the bundle's hash. Kept for ever."""

    __tablename__ = "copies_given"
    __append_only__ = True

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int | None] = mapped_column(Integer, index=True)
    child_ids: Mapped[list[Any]] = mapped_column(default=list)
    document_ids: Mapped[list[Any]] = mapped_column(default=list)
    recipient: Mapped[str] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(32))  # post | secure_email | collected | in_person | court
    basis: Mapped[str] = mapped_column(String(32))
    redacted: Mapped[bool] = mapped_column(Boolean, default=False)
    bundle_sha256: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")
    given_on: Mapped[date] = mapped_column(Date)
    given_by: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CopyGivenChild(Base):
    """Which children's records a copy came from: the disclosure log on each child's record."""

    __tablename__ = "copies_given_children"
    __append_only__ = True

    copy_id: Mapped[int] = mapped_column(ForeignKey("copies_given.id"), primary_key=True)
    child_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
