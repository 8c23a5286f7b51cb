"""The intake pipeline: one scanned file, from the intake folder to children's records.

`STAGES` below is the controlled-scanning protocol in order; read it top to bottom. Each stage
is a small function of the context that calls into `escr` and notes a protocol event. Nothing
is written to the database or removed from `processing/` until every object is durably stored,
so a crash at any point leaves the file filed exactly once or still waiting to be processed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select

from escr.app.scanner_checks import qc_for as scanner_qc
from escr.app.timeliness import stamped_arrival
from escr.app.verification import link_rescan_by_coversheet
from escr.errors import DatabaseError, EscrError, InputRejected
from escr.indexing.matching import MatchResult, match_child
from escr.indexing.tagging import Tag as TextTag
from escr.indexing.tagging import tag_text
from escr.intake.preflight import PreflightReport, preflight, too_large
from escr.intake.quarantine import quarantine
from escr.intake.receipt import REFUSALS, Claim, hash_claim, release
from escr.pages import qc
from escr.pages.coversheet import CoverSheet
from escr.pages.ocr import PageJob
from escr.pages.readings import PageReading, PageShelf
from escr.pages.searchable import SearchablePage, build_searchable_pdf, images_to_pdf
from escr.pages.split import DocumentPlan, split_batch
from escr.record import payloads
from escr.record.children import DbChildLookup
from escr.record.events import Actor, Kind, ProtocolEvent, now, record
from escr.record.models import Batch, Child, Document, DocumentChild, LinkCandidate, Page, QcResult, Tag
from escr.record.states import DocumentState
from escr.runtime import metrics
from escr.runtime.distributed import LocalPageOcr, PageOcr, open_page_ocr, shared_page_ocr
from escr.services import Services
from escr.storage.objectstore import StoredObject, content_key, private_dir, sha256_file

log = logging.getLogger("escr.intake")

PAGE_ROWS_PER_FLUSH = 25  # page rows written together, then let go of



class AlreadyFiled(Exception):
    """This very claim was filed before a crash removed its intake file: only clean up."""


@dataclass
class DocumentWork:
    plan: DocumentPlan
    id: str
    ocr: list[PageReading] = field(default_factory=list)
    searchable_path: Path | None = None
    text_tags: list[TextTag] = field(default_factory=list)
    doc_type: str | None = None
    doc_date: date | None = None
    third_party: bool = False
    match: MatchResult | None = None
    links: dict[str, str] = field(default_factory=dict)  # child id -> basis
    link_reasons: list[str] = field(default_factory=list)
    retention_until: date | None = None
    qc: list[qc.CheckResult] = field(default_factory=list)
    state: DocumentState | None = None  # one of FILING_STATES, set by decide_states
    reasons: list[str] = field(default_factory=list)
    searchable: StoredObject | None = None
    manifest: StoredObject | None = None

    @property
    def text(self) -> str:
        return "\n\f\n".join(page.text for page in self.ocr)


@dataclass
class IntakeContext:
    services: Services
    claim: Claim
    work_dir: Path
    events: list[ProtocolEvent] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage, for metrics and benchmarks
    report: PreflightReport | None = None
    pdf_path: Path | None = None
    pages: dict[int, PageReading] = field(default_factory=dict)  # source page index -> its reading
    covers: dict[int, CoverSheet] = field(default_factory=dict)
    empty_covers: tuple[int, ...] = ()
    documents: list[DocumentWork] = field(default_factory=list)
    original: StoredObject | None = None
    page_ocr: PageOcr | None = None  # who OCRs the pages (run() picks it from settings); None = local pool
    on_progress: Callable[[Claim, str, int, int | None], None] | None = None

    @property
    def scan_id(self) -> str:
        return f"S-{self.claim.sha256[:16]}" if self.claim.sha256 else f"S-claim-{self.claim.claim_id}"

    @property
    def operator(self) -> Actor:
        return Actor(kind="operator", name=self.claim.operator)

    def progress(self, stage: str, pages_done: int = 0) -> None:
        """Say where this file is (stage, pages done of total) in `progress.json` of its work folder,
        for the intake home, and to `on_progress` (the CLI's progress bar)."""
        total = self.report.page_count if self.report is not None else None
        try:
            tmp = self.work_dir / "progress.json.tmp"
            tmp.write_text(json.dumps({"stage": stage, "pages_done": pages_done, "pages_total": total}))
            tmp.replace(self.work_dir / "progress.json")
        except OSError:  # progress is a courtesy: never a reason to stop filing
            pass
        if self.on_progress is not None:
            self.on_progress(self.claim, stage, pages_done, total)

    def note(self, kind: Kind, *, actor: Actor | None = None, **fields: Any) -> None:
        """Remember a protocol event; they are written together when the file is filed."""
        self.events.append(ProtocolEvent(kind=kind, actor=actor or Actor.system(), batch_id=self.scan_id,
                                         software=self.services.software, **fields))


# --- the stages, in protocol order ------------------------------------------------------------


def receive(ctx: IntakeContext) -> None:
    """Receipt checksum first, before anything else reads the file."""
    hash_claim(ctx.claim, max_bytes=ctx.services.settings.preflight.max_file_bytes)
    ctx.note(Kind.RECEIVED, actor=ctx.operator,
             parameters=payloads.Received(operator=ctx.claim.operator, device=ctx.claim.device,
                                          intake_path=str(ctx.claim.relpath), size_bytes=ctx.claim.size,
                                          claim_id=ctx.claim.claim_id, received_at=ctx.claim.received_at.isoformat()),
             inputs=payloads.OriginalInput(original=ctx.claim.sha256 or ""))


def refuse_unsafe_paths(ctx: IntakeContext) -> None:
    problem = ctx.claim.problem
    if problem == "symlink":
        raise InputRejected("symlink", "This is a link to another file, not a scan; it was not followed.",
                            "Scan to the intake folder directly; remove the link.")
    if problem == "escapes_intake":
        raise InputRejected("outside_intake", "This file's path leads outside the intake folder.",
                            "Scan into the intake folder itself.")
    if problem == "no_operator":
        raise InputRejected("no_operator", "The file was put straight in the intake folder, so it does not say who scanned it.",
                            "Scan from your own profile folder (intake/<your name>/); then retry.")
    if problem == "too_large":
        raise too_large(ctx.claim.size, ctx.services.settings.preflight)
    if problem in REFUSALS:
        raise InputRejected(problem, *REFUSALS[problem])
    claim = ctx.claim
    if len(claim.operator) > 128 or len(claim.device) > 128 or len(str(claim.relpath)) > 1024:
        raise InputRejected("path_too_long", "The folder or file name is too long to record who scanned it on what.",
                            "Use a shorter scan-to-folder profile name (at most 128 characters) and retry.")


def refuse_duplicates(ctx: IntakeContext) -> None:
    with ctx.services.db.session() as session:
        existing = session.scalars(select(Batch).where(Batch.sha256 == ctx.claim.sha256)).first()
    if existing is None:
        return
    if existing.claim_id == ctx.claim.claim_id:
        raise AlreadyFiled(existing.id)
    raise InputRejected("duplicate", f"This file is identical to scan {existing.id}, already filed on "
                        f"{existing.filed_at:%d %B %Y}; it was not filed twice.",
                        "Nothing to do if it was scanned twice by mistake: discard it.")


def check_file(ctx: IntakeContext) -> None:
    ctx.report = preflight(ctx.claim.path, limits=ctx.services.settings.preflight)
    ctx.note(Kind.PREFLIGHT, parameters=payloads.Preflight(
        media_type=ctx.report.media_type, page_count=ctx.report.page_count,
        producer=ctx.report.producer, notes=list(ctx.report.notes),
        active_content_removed=list(ctx.report.removed),
        pages=[payloads.PreflightPage(index=p.index, dpi=[p.dpi_x, p.dpi_y], colour=p.colour, encoding=p.encoding,
                                      size_pt=[round(p.width_pt, 1), round(p.height_pt, 1)]) for p in ctx.report.pages]),
             inputs=payloads.OriginalInput(original=ctx.claim.sha256 or ""))


def prepare_pdf(ctx: IntakeContext) -> None:
    """Images are wrapped, not re-encoded, into a PDF that the reading copy is built on."""
    assert ctx.report is not None
    if ctx.report.media_type == "application/pdf":
        ctx.pdf_path = ctx.claim.path
    else:
        unknown_dpi = any(p.dpi_x is None for p in ctx.report.pages)
        ctx.pdf_path = images_to_pdf(ctx.claim.path, ctx.report.media_type, ctx.work_dir / "wrapped.pdf",
                                     assumed_dpi=ctx.services.settings.ocr.max_dpi if unknown_dpi else None)


def read_pages(ctx: IntakeContext) -> None:
    """Every page rendered once, over every core here or over every worker: a cover sheet is
    read from its code and not OCRed; any other page is measured and, unless blank, OCRed."""
    assert ctx.report is not None and ctx.pdf_path is not None
    settings = ctx.services.settings
    jobs = [PageJob(path=ctx.pdf_path, media_type="application/pdf", index=i,
                    dpi=_ocr_dpi(ctx.report, i, settings.ocr.min_dpi, settings.ocr.max_dpi,
                                 settings.ocr.max_render_pixels), key=i, find_cover=True)
            for i in range(ctx.report.page_count)]
    page_ocr = ctx.page_ocr or LocalPageOcr(settings.ocr, settings.ocr_workers)
    shelf = PageShelf(ctx.work_dir / "pages")  # words and text layers wait on disk, not in memory
    for job, page in page_ocr(jobs, scope=ctx.claim.claim_id):
        ctx.pages[job.key] = shelf.keep(job.index, page)
        ctx.progress("read_pages", len(ctx.pages))
    ctx.covers = {i: page.cover for i, page in ctx.pages.items() if page.cover is not None}


def split_into_documents(ctx: IntakeContext) -> None:
    assert ctx.report is not None
    result = split_batch(ctx.report.page_count, ctx.covers)
    ctx.empty_covers = result.empty_covers
    seed = ctx.claim.sha256 or ""
    ctx.documents = [
        DocumentWork(plan=plan, id="D-" + hashlib.sha256(f"{seed}:{plan.seq}".encode()).hexdigest()[:16],
                     ocr=[ctx.pages[i] for i in plan.pages])
        for plan in result.documents
    ]
    ctx.note(Kind.SPLIT, outcome="ok" if not result.empty_covers else "empty_cover_sheets", parameters={
        "cover_pages": sorted(ctx.covers), "cover_batches": sorted({c.batch_id for c in ctx.covers.values()}),
        "empty_cover_pages": list(result.empty_covers),
        "documents": [{"id": d.id, "pages": list(d.plan.pages), "cover_page": d.plan.cover_index,
                       "declared_pages": d.plan.cover.declared_pages if d.plan.cover else None}
                      for d in ctx.documents]})


def note_page_text(ctx: IntakeContext) -> None:
    """Each document's OCR, in the log after the split that made the document."""
    settings = ctx.services.settings
    for doc in ctx.documents:
        ctx.note(Kind.OCR, document_id=doc.id, parameters=payloads.Ocr(
            language=settings.ocr.language,
            pages=[payloads.OcrPageLog(index=i, dpi=p.dpi, rotation=p.rotation, blank=p.blank,
                                       mean_conf=None if p.mean_conf is None else round(p.mean_conf, 1),
                                       words=p.word_count, tesseract_runs=p.tesseract_runs)
                   for i, p in zip(doc.plan.pages, doc.ocr, strict=True)]))


def build_reading_copies(ctx: IntakeContext) -> None:
    assert ctx.pdf_path is not None
    for doc in ctx.documents:
        out = ctx.work_dir / f"{doc.id}.pdf"
        pages = [SearchablePage(i, page) for i, page in zip(doc.plan.pages, doc.ocr, strict=True)]
        doc.searchable_path = build_searchable_pdf(ctx.pdf_path, pages, out)


def tag_documents(ctx: IntakeContext) -> None:
    settings = ctx.services.settings
    for doc in ctx.documents:
        cover = doc.plan.cover
        doc.text_tags = tag_text(doc.text, catalogue=ctx.services.doctypes,
                                 child_id_pattern=settings.child_id_pattern, today=now().date(),
                                 declared_type=cover.doc_type if cover is not None else None)
        by_name = {t.name: t for t in doc.text_tags}
        if cover is not None:
            doc.doc_type = cover.doc_type
            doc.text_tags.insert(0, TextTag("doc_type", cover.doc_type, "coversheet", 1.0))
            doc.text_tags.extend(TextTag("child_id", c, "coversheet", 1.0) for c in cover.child_ids)
        elif "doc_type" in by_name:
            doc.doc_type = by_name["doc_type"].value
        if "doc_date" in by_name:
            doc.doc_date = date.fromisoformat(by_name["doc_date"].value)
        doc.third_party = "third_party" in by_name  # a phrase, or the (declared) type's default
        ctx.note(Kind.TAGGED, document_id=doc.id, parameters={
            "tags": [{"name": t.name, "source": t.source, "confidence": round(t.confidence, 3)}
                     for t in doc.text_tags],
            "doc_type": doc.doc_type, "doc_date": doc.doc_date.isoformat() if doc.doc_date else None,
            "third_party": doc.third_party})


def link_documents(ctx: IntakeContext) -> None:
    """Link to the children on the cover sheet, else to one child the text identifies beyond doubt."""
    with ctx.services.db.session() as session:
        lookup = DbChildLookup(session)
        for doc in ctx.documents:
            doc.match = match_child([t for t in doc.text_tags if t.source != "coversheet"], doc.text, lookup)
            cover = doc.plan.cover
            if cover is not None:
                known = {c.child_id for c in lookup.by_ids(cover.child_ids)}
                doc.links = {c: "coversheet" for c in cover.child_ids if c in known}
                unknown = [c for c in cover.child_ids if c not in known]
                if unknown:
                    doc.links = {}
                    doc.link_reasons.append(f"cover sheet names children not in the child index: {', '.join(unknown)}")
            elif doc.match.status == "linked":
                doc.links = {c: doc.match.basis for c in doc.match.linked}
            else:
                doc.link_reasons.append(f"no child identified beyond doubt ({doc.match.status})")
            doc.retention_until = _retention(ctx.services, session, doc.links)
            ctx.note(Kind.LINKED if doc.links else Kind.NEEDS_INDEXING, document_id=doc.id,
                     outcome="linked" if doc.links else doc.match.status,
                     parameters={"children": doc.links, "text_match": doc.match.status,
                                 "retention_until": doc.retention_until.isoformat() if doc.retention_until else None,
                                 "candidates": [c.child_id for c in doc.match.candidates]})


def check_quality(ctx: IntakeContext) -> None:
    assert ctx.report is not None
    thresholds = ctx.services.settings.qc
    with ctx.services.db.session() as session:  # protocol step 1: the device's scanner check that day
        scanner = qc.CheckResult(**scanner_qc(session, ctx.services.settings.records, ctx.claim.device,
                                              ctx.claim.received_at.date()))
    for doc in ctx.documents:
        facts = [_page_facts(ctx.report, seq, i, page)
                 for seq, (i, page) in enumerate(zip(doc.plan.pages, doc.ocr, strict=True), start=1)]
        doc_type = ctx.services.doctypes.types.get(doc.doc_type or "")
        declared = doc.plan.cover.declared_pages if doc.plan.cover else None
        doc.qc = qc.check_document(facts, declared_pages=declared, thresholds=thresholds,
                                   ocr_expected=doc_type.ocr_expected if doc_type else True)
        doc.qc.append(scanner)
        doc.qc.append(qc.check_identity(list(doc.links), doc.match))
        ctx.note(Kind.QC, document_id=doc.id, outcome=qc.overall(doc.qc), parameters={
            "checks": [{"check": r.check, "status": r.status, "numbers": r.numbers} for r in doc.qc]})


def decide_states(ctx: IntakeContext) -> None:
    """QC failures first (rescan before indexing), then indexing, then the verifier's queue."""
    for doc in ctx.documents:
        failures = [r.message for r in doc.qc if r.status == qc.FAIL]
        if failures:
            doc.state, doc.reasons = DocumentState.QC_FAILED, failures + doc.link_reasons
        elif not doc.links or not doc.doc_type:
            doc.state = DocumentState.NEEDS_INDEXING
            doc.reasons = doc.link_reasons + ([] if doc.doc_type else ["document type not recognised"])
        else:
            doc.state, doc.reasons = DocumentState.AWAITING_VERIFICATION, []


def store_objects(ctx: IntakeContext) -> None:
    """Original, reading copies and manifests, each read back and locked before anything refers to it.

    Each object is retained until its document's date (None: keep, under a legal hold until the
    date is known); the original, shared by every document of the scan, until the longest."""
    store, claim = ctx.services.store, ctx.claim
    assert claim.sha256 is not None and ctx.report is not None
    original_until = ctx.services.retention.longest(d.retention_until for d in ctx.documents)
    ctx.original = store.put_file(content_key("originals", claim.sha256, _suffix(ctx.report.media_type)),
                                  claim.path, sha256=claim.sha256, content_type=ctx.report.media_type,
                                  retain_until=original_until)
    for doc in ctx.documents:
        assert doc.searchable_path is not None
        sha = sha256_file(doc.searchable_path)
        doc.searchable = store.put_file(content_key("searchable", sha, ".pdf"), doc.searchable_path,
                                        sha256=sha, content_type="application/pdf", retain_until=doc.retention_until)
        manifest = _manifest(ctx, doc)
        doc.manifest = store.put_bytes(content_key("manifests", hashlib.sha256(manifest).hexdigest(), ".json"),
                                       manifest, content_type="application/json", retain_until=doc.retention_until)
        versions = {f"{name}_version": obj.version for name, obj in
                    (("original", ctx.original), ("searchable", doc.searchable), ("manifest", doc.manifest)) if obj.version}
        ctx.note(Kind.STORED, document_id=doc.id,
                 parameters=payloads.Stored(
                     store=doc.searchable.location.split("/")[0],
                     retention_until=doc.retention_until.isoformat() if doc.retention_until else None,
                     original_retention_until=original_until.isoformat() if original_until else None,
                     lock_mode=getattr(store, "lock_mode", None)),
                 inputs=payloads.OriginalInput(original=claim.sha256 or ""),
                 outputs=payloads.StoredOutputs(original=ctx.original.key, searchable=doc.searchable.key,
                                                searchable_sha256=doc.searchable.sha256, manifest=doc.manifest.key,
                                                manifest_sha256=doc.manifest.sha256, **versions))


def file_records(ctx: IntakeContext) -> None:
    """One transaction: the scan, its documents, pages, tags, QC, links and every protocol event."""
    claim, report, stamp = ctx.claim, ctx.report, now()
    assert report is not None and ctx.original is not None and claim.sha256 is not None
    with ctx.services.db.session() as session:
        session.add(Batch(id=ctx.scan_id, sha256=claim.sha256, claim_id=claim.claim_id, operator=claim.operator,
                          device=claim.device, source_name=str(claim.relpath), media_type=report.media_type,
                          size_bytes=claim.size, page_count=report.page_count, producer=report.producer,
                          cover_batch_ids=sorted({c.batch_id for c in ctx.covers.values()}),
                          original_key=ctx.original.key, received_at=claim.received_at, filed_at=stamp))
        session.flush()
        for doc in ctx.documents:
            session.add(_document_row(ctx, doc, stamp))
        session.flush()
        for doc in ctx.documents:
            _add_page_rows(session, ctx, doc)
        for doc in ctx.documents:
            ctx.note(Kind.FILED, document_id=doc.id, outcome=doc.state,
                     parameters={"state": doc.state, "reasons": doc.reasons, "children": sorted(doc.links)})
        _note_stamped_arrivals(ctx, session)
        for event in ctx.events:
            record(session, event)
        for doc in ctx.documents:  # a rescan under a rejected or withdrawn scan's cover sheet replaces it
            link_rescan_by_coversheet(session, doc.id)


def _note_stamped_arrivals(ctx: IntakeContext, session: Any) -> None:
    """The "received" date stamped on each cover sheet becomes its batch's arrival (timeliness)."""
    for i in sorted(ctx.covers):
        stamped = ctx.pages[i].stamp
        if stamped is None:
            continue
        ref = ctx.covers[i].batch_id
        row = stamped_arrival(session, ref, stamped, scanned_on=ctx.claim.received_at.date(),
                              recorded_by=ctx.claim.operator)
        ctx.note(Kind.PAPER_ARRIVAL, outcome="cover_stamp" if row is not None else "cover_stamp_not_used",
                 parameters={"ref": ref, "arrived_on": stamped.isoformat(), "cover_page": i, "old": None})


def release_intake_file(ctx: IntakeContext) -> None:
    release(ctx.claim)


STAGES: tuple[Callable[[IntakeContext], None], ...] = (
    receive,
    refuse_unsafe_paths,
    refuse_duplicates,
    check_file,
    prepare_pdf,
    read_pages,
    split_into_documents,
    note_page_text,
    build_reading_copies,
    tag_documents,
    link_documents,
    check_quality,
    decide_states,
    store_objects,
    file_records,
    release_intake_file,
)


# --- running it -------------------------------------------------------------------------------


@dataclass
class IntakeResult:
    claim_id: str
    status: str  # filed | quarantined | deferred
    scan_id: str | None = None
    sha256: str | None = None
    documents: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    quarantine: dict[str, Any] | None = None
    timings: dict[str, float] | None = None
    window: tuple[float, float] | None = None  # wall clock (epoch s) from receipt to filed

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def run(claim: Claim, services: Services, *, page_ocr: PageOcr | None = None,
        on_progress: Callable[[Claim, str, int, int | None], None] | None = None) -> IntakeResult:
    """Take one claimed file through every stage; bad input is quarantined, outages deferred.

    Pages are OCRed by `page_ocr` when given, else by what the settings ask for: this process's
    thread pool, or Celery workers when a broker is configured.
    """
    work_dir = services.settings.home / "work" / claim.claim_id
    with ExitStack() as stack:
        stack.enter_context(_SAME_SIZE.held(_size_of(claim.path)))
        if page_ocr is None:
            page_ocr = stack.enter_context(open_page_ocr(services.settings))
        ctx = IntakeContext(services=services, claim=claim, work_dir=work_dir, page_ocr=page_ocr,
                            on_progress=on_progress)
        result = _run_stages(ctx)
    metrics.observe_intake(result, timings=ctx.timings, executor=page_ocr.name,
                           pages=[page for doc in ctx.documents for page in doc.ocr])
    return result


class _KeyedLocks:
    """One lock per key while anyone holds or waits for it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[object, tuple[threading.Lock, int]] = {}

    @contextmanager
    def held(self, key: object) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)


# Files of the same size are never taken side by side: two copies of one scan arriving together
# must meet as a duplicate in `refuse_duplicates`, not race each other to the database.
_SAME_SIZE = _KeyedLocks()


def _size_of(path: Path) -> int:
    try:
        return path.lstat().st_size
    except OSError:
        return -1


def run_all(claims: Sequence[Claim], services: Services, *,
            on_progress: Callable[[Claim, str, int, int | None], None] | None = None) -> list[IntakeResult]:
    """Several files at once (`batches_in_flight`), as the watcher takes them, in the order given.

    They share one set of OCR slots, so while one file's last page is read and it is tagged,
    stored and filed, the next file's pages already keep the other cores busy.
    """
    with shared_page_ocr(services.settings) as page_ocr, \
            ThreadPoolExecutor(max(1, services.settings.batches_in_flight), thread_name_prefix="intake") as pool:
        return list(pool.map(lambda claim: run(claim, services, page_ocr=page_ocr, on_progress=on_progress), claims))


def _run_stages(ctx: IntakeContext) -> IntakeResult:
    claim, work_dir = ctx.claim, ctx.work_dir
    private_dir(work_dir)  # reading copies in the making hold personal data
    started_at = time.time()
    try:
        for stage in STAGES:
            ctx.progress(stage.__name__, len(ctx.pages))
            started = time.perf_counter()
            stage(ctx)
            ctx.timings[stage.__name__] = time.perf_counter() - started
        result = _filed_result(ctx)
        result.window = (round(started_at, 3), round(time.time(), 3))
        log.info("filed claim=%s scan=%s documents=%s", claim.claim_id, result.scan_id,
                 " ".join(f"{d['id']}:{d['state']}" for d in result.documents))
        return result
    except AlreadyFiled:
        release(claim)
        return IntakeResult(claim.claim_id, "filed", ctx.scan_id, claim.sha256, warnings=["already filed before a restart"])
    except InputRejected as rejection:
        return _quarantine(ctx, rejection)
    except EscrError as exc:
        if not exc.transient:
            return _quarantine(ctx, InputRejected(exc.code, f"escr could not process this file: {exc.message}",
                                                  "Check the file opens; retry it from quarantine, or tell the system administrator."))
        # An outage (storage, database, broker, a file unreadable just now): nothing is wrong with the scan.
        log.error("deferred claim=%s: %s (%s); the file waits in processing/ for a retry",
                  claim.claim_id, exc.code, type(exc.__cause__ or exc).__name__)
        return IntakeResult(claim.claim_id, "deferred", ctx.scan_id, claim.sha256, warnings=[exc.message])
    except Exception as exc:  # a bug must not lose the file or stop the watcher
        log.error("internal error on claim=%s: %s\n%s", claim.claim_id, type(exc).__name__,
                  "".join(traceback.format_tb(exc.__traceback__)))
        return _quarantine(ctx, InputRejected("internal_error", f"escr failed on this file ({type(exc).__name__}); "
                                              "it has been kept unchanged.", "Tell the system administrator; retry it from quarantine after a fix."))
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def _quarantine(ctx: IntakeContext, rejection: InputRejected) -> IntakeResult:
    claim = ctx.claim
    ctx.note(Kind.QUARANTINED, outcome=rejection.code, parameters={"reason": rejection.message})
    try:
        with ctx.services.db.session() as session:
            for event in ctx.events:
                record(session, event)
    except DatabaseError as exc:  # the reason file beside the scan still says why
        log.error("could not log quarantine of claim=%s: %s", claim.claim_id, exc.code)
    target = quarantine(claim, rejection, ctx.services.settings.quarantine_dir)
    return IntakeResult(claim.claim_id, "quarantined", ctx.scan_id if claim.sha256 else None, claim.sha256,
                        quarantine={"code": rejection.code, "reason": rejection.message,
                                    "what_to_do": rejection.action, "path": str(target)})


def _filed_result(ctx: IntakeContext) -> IntakeResult:
    warnings = [f"cover sheet on page {i + 1} is followed by no pages" for i in ctx.empty_covers]
    docs = [{"id": d.id, "seq": d.plan.seq, "pages": len(d.plan.pages), "doc_type": d.doc_type,
             "doc_date": d.doc_date.isoformat() if d.doc_date else None, "children": sorted(d.links),
             "state": d.state, "reasons": d.reasons, "qc": {r.check: r.status for r in d.qc}}
            for d in ctx.documents]
    return IntakeResult(ctx.claim.claim_id, "filed", ctx.scan_id, ctx.claim.sha256, docs, warnings,
                        timings={k: round(v, 4) for k, v in ctx.timings.items()})


def _retention(services: Services, session: Any, child_ids: Any) -> date | None:
    """Keep until the longest period of any linked child's category; unknown means keep."""
    from escr.record.retention_updates import keep_until

    return keep_until(services.retention, (session.get(Child, c) for c in child_ids))


def _ocr_dpi(report: PreflightReport, index: int, min_dpi: int, max_dpi: int, max_pixels: int) -> int:
    """Native resolution within the OCR range, and never a render larger than `max_pixels`."""
    from escr.pages.imaging import ocr_dpi

    page = report.pages[index]
    dpi = ocr_dpi(page.dpi_x, page.dpi_y, min_dpi=min_dpi, max_dpi=max_dpi)
    area_in2 = (page.width_pt / 72) * (page.height_pt / 72)
    return max(1, min(dpi, int((max_pixels / area_in2) ** 0.5))) if area_in2 > 0 else dpi


def _page_facts(report: PreflightReport, seq: int, index: int, page: PageReading) -> qc.PageFacts:
    info = report.pages[index]
    return qc.PageFacts(seq=seq, dpi_x=info.dpi_x, dpi_y=info.dpi_y, blank=page.blank,
                        dark_fraction=page.metrics.dark_fraction, p1=page.metrics.p1, skew_deg=page.skew_deg,
                        mean_conf=page.mean_conf, word_count=page.word_count, rotation=page.rotation)


def _suffix(media_type: str) -> str:
    return {"application/pdf": ".pdf", "image/tiff": ".tif", "image/jpeg": ".jpg", "image/png": ".png"}[media_type]


def _manifest(ctx: IntakeContext, doc: DocumentWork) -> bytes:
    """The document's provenance in one JSON object stored beside it; deterministic per input."""
    import json

    assert ctx.original is not None and doc.searchable is not None
    body = {
        "document_id": doc.id, "scan_id": ctx.scan_id, "seq": doc.plan.seq,
        "original": {"key": ctx.original.key, "sha256": ctx.claim.sha256, "media_type": ctx.report.media_type if ctx.report else None},
        "searchable": {"key": doc.searchable.key, "sha256": doc.searchable.sha256},
        "pages": list(doc.plan.pages), "cover_page": doc.plan.cover_index,
        "cover_sheet": doc.plan.cover.__dict__ if doc.plan.cover else None,
        "operator": ctx.claim.operator, "device": ctx.claim.device,
        "received_at": ctx.claim.received_at.isoformat(), "software": ctx.services.software,
        "doc_type": doc.doc_type, "doc_date": doc.doc_date.isoformat() if doc.doc_date else None,
        "children": doc.links, "state_at_filing": doc.state,
        "retention_until": doc.retention_until.isoformat() if doc.retention_until else None,
        "qc": [{"check": r.check, "status": r.status, "numbers": r.numbers} for r in doc.qc],
    }
    return json.dumps(body, sort_keys=True, indent=1, default=list).encode()


def _add_page_rows(session: Any, ctx: IntakeContext, doc: DocumentWork) -> None:
    """The document's page rows, a page's words read from the work folder at a time: written in
    the filing transaction and let go of, so a long file is never held whole."""
    assert ctx.report is not None
    batch: list[Page] = []
    for seq, (i, p) in enumerate(zip(doc.plan.pages, doc.ocr, strict=True), start=1):
        batch.append(Page(
            document_id=doc.id, seq=seq, source_index=i, text=p.text, words=[[w.text, round(w.conf, 1)] for w in p.words],
            mean_conf=p.mean_conf, word_count=p.word_count, rotation=p.rotation, skew_deg=p.skew_deg,
            dpi_x=ctx.report.pages[i].dpi_x, dpi_y=ctx.report.pages[i].dpi_y, blank=p.blank,
            metrics={"mean": p.metrics.mean, "dark_fraction": p.metrics.dark_fraction,
                     "ink_fraction": p.metrics.ink_fraction, "p1": p.metrics.p1, "p99": p.metrics.p99}))
        if len(batch) == PAGE_ROWS_PER_FLUSH or seq == len(doc.plan.pages):
            session.add_all(batch)
            session.flush()
            for row in batch:
                session.expunge(row)
            batch = []


def _document_row(ctx: IntakeContext, doc: DocumentWork, stamp: Any) -> Document:
    assert ctx.report is not None and doc.searchable is not None and doc.manifest is not None
    row = Document(
        id=doc.id, batch_id=ctx.scan_id, seq=doc.plan.seq,
        coversheet_batch_id=doc.plan.cover.batch_id if doc.plan.cover else None,
        cover_page=doc.plan.cover_index, first_page=doc.plan.pages[0], last_page=doc.plan.pages[-1],
        page_count=len(doc.plan.pages), declared_pages=doc.plan.cover.declared_pages if doc.plan.cover else None,
        doc_type=doc.doc_type, doc_date=doc.doc_date, third_party=doc.third_party, state=doc.state,
        retention_until=doc.retention_until,
        state_reasons=doc.reasons, searchable_key=doc.searchable.key, searchable_sha256=doc.searchable.sha256,
        manifest_key=doc.manifest.key, manifest_sha256=doc.manifest.sha256, created_at=stamp, updated_at=stamp)
    row.tags = [Tag(name=t.name, value=t.value, source=t.source, confidence=t.confidence, detail=t.detail,
                    created_at=stamp) for t in doc.text_tags]
    row.qc_results = [QcResult(check=r.check, status=r.status, numbers=r.numbers, message=r.message) for r in doc.qc]
    row.children = [DocumentChild(child_id=c, basis=b, linked_by="escr", linked_at=stamp) for c, b in doc.links.items()]
    if doc.match is not None and not doc.links:
        row.candidates = [LinkCandidate(child_id=c.child_id, score=c.score, reasons=list(c.reasons))
                          for c in doc.match.candidates]
    return row
