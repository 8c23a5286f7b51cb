"""The record: children, scanned files (batches), documents, pages, tags, QC results, events.

The models are plain SQLAlchemy 2.0 declarative classes that run unchanged on SQLite and
PostgreSQL; dialect differences (full-text search) live in `escr.database` only.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


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
    __table_args__ = (UniqueConstraint("batch_id", "seq"), Index("ix_documents_state", "state"))

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"))
    seq: Mapped[int] = mapped_column(Integer)
    coversheet_batch_id: Mapped[str | None] = mapped_column(String(64))
    cover_page: Mapped[int | None] = mapped_column(Integer)  # 0-based page of the original
    first_page: Mapped[int] = mapped_column(Integer)
    last_page: Mapped[int] = mapped_column(Integer)
    page_count: Mapped[int] = mapped_column(Integer)
    declared_pages: Mapped[int | None] = mapped_column(Integer)
    doc_type: Mapped[str | None] = mapped_column(String(64), index=True)
    doc_date: Mapped[date | None] = mapped_column(Date, index=True)
    third_party: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(32))
    state_reasons: Mapped[list[Any]] = mapped_column(default=list)
    searchable_key: Mapped[str] = mapped_column(String(256))
    searchable_sha256: Mapped[str] = mapped_column(String(64))
    manifest_key: Mapped[str] = mapped_column(String(256))
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    retention_until: Mapped[date | None] = mapped_column(Date)  # None: keep (depends on a date not yet known)
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


class DocumentChild(Base):
    """A document filed to a child's record; siblings' documents have one row per child."""

    __tablename__ = "document_children"

    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    child_id: Mapped[str] = mapped_column(ForeignKey("children.child_id"), primary_key=True, index=True)
    basis: Mapped[str] = mapped_column(String(32))  # coversheet | child_id | nhs_number | name_dob | person
    linked_by: Mapped[str] = mapped_column(String(128))
    linked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    document: Mapped[Document] = relationship(back_populates="children")


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
    __table_args__ = (UniqueConstraint("document_id", "seq"),)

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
    """An append-only protocol or access event; each carries the hash of the one before it."""

    __tablename__ = "events"
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
