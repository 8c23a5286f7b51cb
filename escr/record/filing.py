"""Filing a scan in the record: its rows, built from plain values the intake pipeline hands over.

The pipeline (`escr.pipelines.intake`) decides everything about a scan and its documents; this
module only turns those decisions into rows of `escr.record.models`, inside the one transaction
the pipeline opens in `file_records`, and answers the two questions the pipeline asks the
record before that (was this file filed already; how long must a document be kept).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from escr.indexing.matching import Candidate
from escr.indexing.tagging import Tag as TextTag
from escr.pages.qc import CheckResult
from escr.pages.readings import PageReading
from escr.record.models import Batch, Child, Document, DocumentChild, LinkCandidate, Page, QcResult, Tag
from escr.record.retention import RetentionSchedule
from escr.record.retention_updates import keep_until
from escr.record.states import DocumentState

PAGE_ROWS_PER_FLUSH = 25  # page rows written together, then let go of


@dataclass(frozen=True)
class EarlierScan:
    """A scan already filed with the same SHA-256."""

    id: str
    claim_id: str
    filed_at: datetime


@dataclass(frozen=True)
class NewScan:
    """The row of one scanned file (a `Batch`)."""

    id: str
    sha256: str
    claim_id: str
    operator: str
    device: str
    source_name: str
    media_type: str
    size_bytes: int
    page_count: int
    producer: str | None
    cover_batch_ids: list[str]
    original_key: str
    received_at: datetime


@dataclass(frozen=True)
class NewPage:
    """One page of a document: its reading (words read from the work folder only when written)
    and the resolution the file declared for it."""

    source_index: int
    reading: PageReading
    dpi_x: float | None
    dpi_y: float | None


@dataclass(frozen=True)
class NewDocument:
    """One document of the scan with everything decided about it, and where its objects are stored."""

    id: str
    seq: int
    coversheet_batch_id: str | None
    cover_page: int | None
    declared_pages: int | None
    doc_type: str | None
    doc_date: date | None
    third_party: bool
    state: DocumentState
    reasons: list[str]
    retention_until: date | None
    searchable_key: str
    searchable_sha256: str
    manifest_key: str
    manifest_sha256: str
    tags: Sequence[TextTag]
    qc: Sequence[CheckResult]
    children: Mapping[str, str]  # child id -> basis of the link
    candidates: Sequence[Candidate]  # kept only when no child is linked
    pages: Sequence[NewPage]


def earlier_scan(session: Session, sha256: str) -> EarlierScan | None:
    """The scan already filed with this SHA-256, if any."""
    row = session.scalars(select(Batch).where(Batch.sha256 == sha256)).first()
    return None if row is None else EarlierScan(row.id, row.claim_id, row.filed_at)


def retention_until(session: Session, schedule: RetentionSchedule, child_ids: Iterable[str]) -> date | None:
    """Keep until the longest period of any linked child's category; unknown (or no child) means keep."""
    return keep_until(schedule, (session.get(Child, c) for c in child_ids))


def add_scan(session: Session, scan: NewScan, documents: Sequence[NewDocument], stamp: datetime) -> None:
    """The scan's row, its documents' rows (tags, QC, links, candidates) and their page rows."""
    session.add(Batch(id=scan.id, sha256=scan.sha256, claim_id=scan.claim_id, operator=scan.operator,
                      device=scan.device, source_name=scan.source_name, media_type=scan.media_type,
                      size_bytes=scan.size_bytes, page_count=scan.page_count, producer=scan.producer,
                      cover_batch_ids=scan.cover_batch_ids, original_key=scan.original_key,
                      received_at=scan.received_at, filed_at=stamp))
    session.flush()
    for doc in documents:
        session.add(_document_row(scan.id, doc, stamp))
    session.flush()
    for doc in documents:
        _add_page_rows(session, doc)


def _document_row(scan_id: str, doc: NewDocument, stamp: datetime) -> Document:
    row = Document(
        id=doc.id, batch_id=scan_id, seq=doc.seq, coversheet_batch_id=doc.coversheet_batch_id,
        cover_page=doc.cover_page, first_page=doc.pages[0].source_index, last_page=doc.pages[-1].source_index,
        page_count=len(doc.pages), declared_pages=doc.declared_pages,
        doc_type=doc.doc_type, doc_date=doc.doc_date, third_party=doc.third_party, state=doc.state,
        retention_until=doc.retention_until,
        state_reasons=doc.reasons, searchable_key=doc.searchable_key, searchable_sha256=doc.searchable_sha256,
        manifest_key=doc.manifest_key, manifest_sha256=doc.manifest_sha256, created_at=stamp, updated_at=stamp)
    row.tags = [Tag(name=t.name, value=t.value, source=t.source, confidence=t.confidence, detail=t.detail,
                    created_at=stamp) for t in doc.tags]
    row.qc_results = [QcResult(check=r.check, status=r.status, numbers=r.numbers, message=r.message) for r in doc.qc]
    row.children = [DocumentChild(child_id=c, basis=b, linked_by="escr", linked_at=stamp) for c, b in doc.children.items()]
    if not doc.children:
        row.candidates = [LinkCandidate(child_id=c.child_id, score=c.score, reasons=list(c.reasons))
                          for c in doc.candidates]
    return row


def _add_page_rows(session: Session, doc: NewDocument) -> None:
    """The document's page rows, a page's words read from the work folder at a time: written in
    the filing transaction and let go of, so a long file is never held whole."""
    batch: list[Page] = []
    for seq, page in enumerate(doc.pages, start=1):
        p = page.reading
        batch.append(Page(
            document_id=doc.id, seq=seq, source_index=page.source_index, text=p.text,
            words=[[w.text, round(w.conf, 1)] for w in p.words],
            mean_conf=p.mean_conf, word_count=p.word_count, rotation=p.rotation, skew_deg=p.skew_deg,
            dpi_x=page.dpi_x, dpi_y=page.dpi_y, blank=p.blank,
            metrics={"mean": p.metrics.mean, "dark_fraction": p.metrics.dark_fraction,
                     "ink_fraction": p.metrics.ink_fraction, "p1": p.metrics.p1, "p99": p.metrics.p99}))
        if len(batch) == PAGE_ROWS_PER_FLUSH or seq == len(doc.pages):
            session.add_all(batch)
            session.flush()
            for row in batch:
                session.expunge(row)
            batch = []
