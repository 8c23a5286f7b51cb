"""The rows a filed scan becomes: the scan, its documents with their tags, QC results, links and
candidate children, and their pages.

The intake pipeline decides everything; this module only turns its decisions into ORM rows, in
the one filing transaction the caller holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.orm import Session

from escr.indexing.matching import MatchResult
from escr.indexing.tagging import Tag as TextTag
from escr.intake.preflight import PreflightReport
from escr.intake.receipt import Claim, Receipt
from escr.pages.qc import CheckResult
from escr.pages.readings import PageReading
from escr.pages.split import DocumentPlan
from escr.record.models import Batch, Document, DocumentChild, LinkCandidate, Page, QcResult, Tag
from escr.record.states import FILING_STATES, DocumentState
from escr.storage.objectstore import StoredObject

PAGE_ROWS_PER_FLUSH = 25  # page rows written together, then let go of


@dataclass(frozen=True)
class FiledDocument:
    """What the intake decided about one document, as the record keeps it."""

    id: str
    plan: DocumentPlan
    doc_type: str | None
    doc_date: date | None
    third_party: bool
    state: DocumentState
    reasons: Sequence[str]
    retention_until: date | None
    tags: Sequence[TextTag]
    qc: Sequence[CheckResult]
    links: Mapping[str, str]  # child id -> basis
    match: MatchResult | None
    searchable: StoredObject
    manifest: StoredObject
    pages: Sequence[PageReading]


def add_scan(session: Session, *, scan_id: str, claim: Claim, receipt: Receipt, report: PreflightReport,
             cover_batch_ids: Sequence[str], original: StoredObject, filed_at: datetime) -> None:
    session.add(Batch(id=scan_id, sha256=receipt.sha256, claim_id=claim.claim_id, operator=claim.operator,
                      device=claim.device, source_name=str(claim.relpath), media_type=report.media_type,
                      size_bytes=receipt.size, page_count=report.page_count, producer=report.producer,
                      cover_batch_ids=sorted(cover_batch_ids), original_key=original.key,
                      received_at=claim.received_at, filed_at=filed_at))
    session.flush()


def add_document(session: Session, *, scan_id: str, doc: FiledDocument, stamp: datetime) -> None:
    """The document row with its tags, QC results, links (or candidates when unlinked)."""
    if doc.state not in FILING_STATES:
        raise ValueError(f"the intake files no document as {doc.state}")
    plan, cover = doc.plan, doc.plan.cover
    row = Document(
        id=doc.id, batch_id=scan_id, seq=plan.seq, coversheet_batch_id=cover.batch_id if cover else None,
        cover_page=plan.cover_index, first_page=plan.pages[0], last_page=plan.pages[-1],
        page_count=len(plan.pages), declared_pages=cover.declared_pages if cover else None,
        doc_type=doc.doc_type, doc_date=doc.doc_date, third_party=doc.third_party, state=doc.state,
        retention_until=doc.retention_until, state_reasons=list(doc.reasons),
        searchable_key=doc.searchable.key, searchable_sha256=doc.searchable.sha256,
        manifest_key=doc.manifest.key, manifest_sha256=doc.manifest.sha256, created_at=stamp, updated_at=stamp)
    row.tags = [Tag(name=t.name, value=t.value, source=t.source, confidence=t.confidence, detail=t.detail,
                    created_at=stamp) for t in doc.tags]
    row.qc_results = [QcResult(check=r.check, status=r.status, numbers=r.numbers, message=r.message) for r in doc.qc]
    row.children = [DocumentChild(child_id=c, basis=b, linked_by="escr", linked_at=stamp) for c, b in doc.links.items()]
    if doc.match is not None and not doc.links:
        row.candidates = [LinkCandidate(child_id=c.child_id, score=c.score, reasons=list(c.reasons))
                          for c in doc.match.candidates]
    session.add(row)


def add_pages(session: Session, *, doc: FiledDocument, report: PreflightReport) -> None:
    """The document's page rows, a page's words read from the work folder at a time: written in
    the filing transaction and let go of, so a long file is never held whole."""
    batch: list[Page] = []
    for seq, (i, p) in enumerate(zip(doc.plan.pages, doc.pages, strict=True), start=1):
        batch.append(Page(
            document_id=doc.id, seq=seq, source_index=i, text=p.text, words=[[w.text, round(w.conf, 1)] for w in p.words],
            mean_conf=p.mean_conf, word_count=p.word_count, rotation=p.rotation, skew_deg=p.skew_deg,
            dpi_x=report.pages[i].dpi_x, dpi_y=report.pages[i].dpi_y, blank=p.blank,
            metrics={"mean": p.metrics.mean, "dark_fraction": p.metrics.dark_fraction,
                     "ink_fraction": p.metrics.ink_fraction, "p1": p.metrics.p1, "p99": p.metrics.p99}))
        if len(batch) == PAGE_ROWS_PER_FLUSH or seq == len(doc.plan.pages):
            session.add_all(batch)
            session.flush()
            for row in batch:
                session.expunge(row)
            batch = []
