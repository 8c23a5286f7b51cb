"""The intake pipeline: one scanned file, from the intake folder to children's records.

`file_scan` below is the controlled-scanning protocol in order; read it top to bottom. It runs
in two parts. The file check (`receive` to `prepare_pdf`) takes the file in and may refuse it;
what passes is a `CheckedScan`, with nothing missing, and every later stage takes that. Each
stage is a small function that calls into `escr` and notes a protocol event. Nothing is written
to the database or removed from `processing/` until every object is durably stored, so a crash
at any point leaves the file filed exactly once or still waiting to be processed.
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
from typing import Any, Concatenate, ParamSpec, TypeVar

from escr.app.scanner_checks import qc_for as scanner_qc
from escr.app.timeliness import stamped_arrival
from escr.app.verification import link_rescan_by_coversheet
from escr.errors import DatabaseError, EscrError, InputRejected
from escr.indexing.matching import MatchResult, match_child
from escr.indexing.tagging import Tag as TextTag
from escr.indexing.tagging import tag_text
from escr.intake.preflight import PreflightReport, preflight, too_large
from escr.intake.quarantine import quarantine
from escr.intake.receipt import REFUSALS, Claim, Receipt, Refused, hash_claim, release
from escr.pages import qc
from escr.pages.coversheet import CoverSheet
from escr.pages.ocr import PageJob
from escr.pages.readings import PageReading, PageShelf
from escr.pages.searchable import SearchablePage, build_searchable_pdf, images_to_pdf
from escr.pages.split import DocumentPlan, split_batch
from escr.record import filing, payloads
from escr.record.children import DbChildLookup
from escr.record.events import Actor, Kind, ProtocolEvent, now, record
from escr.record.states import DocumentState
from escr.runtime import metrics
from escr.runtime.distributed import LocalPageOcr, PageOcr, open_page_ocr, shared_page_ocr
from escr.services import Services
from escr.storage.objectstore import StoredObject, content_key, private_dir, sha256_file

log = logging.getLogger("escr.intake")

P = ParamSpec("P")
T = TypeVar("T")


class AlreadyFiled(Exception):
    """This very claim was filed before a crash removed its intake file: only clean up."""


@dataclass
class Intake:
    """One file's run through the pipeline: what every stage may use, and what it leaves behind
    for the result, whatever stage the file reaches (events, timings, progress)."""

    services: Services
    claim: Claim
    work_dir: Path
    page_ocr: PageOcr | None = None  # who OCRs the pages (run() picks it from settings); None = local pool
    on_progress: Callable[[Claim, str, int, int | None], None] | None = None
    events: list[ProtocolEvent] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage, for metrics and benchmarks
    receipt: Receipt | Refused | None = None  # what `receive` found, once it has run
    pages_total: int | None = None  # known after the file check
    pages_read: int = 0
    documents: list[DocumentWork] = field(default_factory=list)  # once split, for the metrics

    @property
    def sha256(self) -> str | None:
        return self.receipt.sha256 if isinstance(self.receipt, Receipt) else None

    @property
    def scan_id(self) -> str:
        return scan_id(self.claim, self.sha256)

    @property
    def operator(self) -> Actor:
        return Actor(kind="operator", name=self.claim.operator)

    def stage(self, step: Callable[Concatenate[Intake, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run one stage: say so in the progress file, and time it."""
        self.progress(step.__name__, self.pages_read)
        started = time.perf_counter()
        answer = step(self, *args, **kwargs)
        self.timings[step.__name__] = time.perf_counter() - started
        return answer

    def progress(self, stage: str, pages_done: int = 0) -> None:
        """Say where this file is (stage, pages done of total) in `progress.json` of its work folder,
        for the intake home, and to `on_progress` (the CLI's progress bar)."""
        total = self.pages_total
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


def scan_id(claim: Claim, sha256: str | None) -> str:
    return f"S-{sha256[:16]}" if sha256 else f"S-claim-{claim.claim_id}"


@dataclass(frozen=True)
class CheckedScan:
    """A file that passed the file check. Every later stage takes one; nothing in it is missing."""

    claim: Claim
    receipt: Receipt  # its SHA-256 and size, taken before anything else read it
    report: PreflightReport
    pdf_path: Path  # the file itself when a PDF, else its images wrapped, not re-encoded, in one

    @property
    def sha256(self) -> str:
        return self.receipt.sha256

    @property
    def id(self) -> str:
        return scan_id(self.claim, self.sha256)


@dataclass
class DocumentWork:
    """One document of the scan, filled in stage by stage."""

    plan: DocumentPlan
    id: str
    reading_copy: Path  # where its searchable PDF is built in the work folder
    ocr: list[PageReading] = field(default_factory=list)
    text_tags: list[TextTag] = field(default_factory=list)
    doc_type: str | None = None
    doc_date: date | None = None
    third_party: bool = False
    match: MatchResult | None = None
    links: dict[str, str] = field(default_factory=dict)  # child id -> basis
    link_reasons: list[str] = field(default_factory=list)
    retention_until: date | None = None  # None: keep (no date known yet)
    qc: list[qc.CheckResult] = field(default_factory=list)
    state: DocumentState = DocumentState.NEEDS_INDEXING  # one of FILING_STATES, decided by decide_states
    reasons: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n\f\n".join(page.text for page in self.ocr)


@dataclass(frozen=True)
class Split:
    """The scan's pages, and the documents its cover sheets divide it into."""

    pages: dict[int, PageReading]  # source page index -> its reading
    covers: dict[int, CoverSheet]  # source page index -> the cover sheet read there
    empty_covers: tuple[int, ...]
    documents: list[DocumentWork]


@dataclass(frozen=True)
class StoredDocument:
    searchable: StoredObject
    manifest: StoredObject


@dataclass(frozen=True)
class StoredScan:
    """Every object of the scan, stored, read back and locked."""

    original: StoredObject
    documents: dict[str, StoredDocument]  # document id -> its objects


# --- the protocol, in order -------------------------------------------------------------------


def file_scan(intake: Intake) -> Split:
    """The controlled-scanning protocol, one stage after another."""
    # The file check: a file refused here is quarantined with its reason.
    received = intake.stage(receive)
    receipt = intake.stage(refuse_unsafe_paths, received)
    intake.stage(refuse_duplicates, receipt)
    report = intake.stage(check_file, receipt)
    scan = CheckedScan(intake.claim, receipt, report, intake.stage(prepare_pdf, report))
    # From here every stage takes the checked scan, or the documents made from it.
    pages = intake.stage(read_pages, scan)
    split = intake.stage(split_into_documents, scan, pages)
    intake.stage(note_page_text, split)
    intake.stage(build_reading_copies, scan, split)
    intake.stage(tag_documents, split)
    intake.stage(link_documents, split)
    intake.stage(decide_retention, split)
    intake.stage(check_quality, scan, split)
    intake.stage(decide_states, split)
    stored = intake.stage(store_objects, scan, split)
    intake.stage(file_records, scan, split, stored)
    intake.stage(release_intake_file, scan)
    return split


# --- the file check ---------------------------------------------------------------------------


def receive(intake: Intake) -> Receipt | Refused:
    """Receipt checksum first, before anything else reads the file."""
    claim = intake.claim
    intake.receipt = received = hash_claim(claim, max_bytes=intake.services.settings.preflight.max_file_bytes)
    intake.note(Kind.RECEIVED, actor=intake.operator,
                parameters=payloads.Received(operator=claim.operator, device=claim.device,
                                             intake_path=str(claim.relpath), size_bytes=received.size,
                                             claim_id=claim.claim_id, received_at=claim.received_at.isoformat()),
                inputs=payloads.OriginalInput(original=intake.sha256 or ""))
    return received


def refuse_unsafe_paths(intake: Intake, received: Receipt | Refused) -> Receipt:
    """Refuse what must not be read (a link, a pipe, a path outside the intake, a file too large);
    the receipt of a file that may be read goes on."""
    claim = intake.claim
    if isinstance(received, Refused):
        problem = received.problem
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
            raise too_large(received.size, intake.services.settings.preflight)
        raise InputRejected(problem, *REFUSALS[problem])
    if len(claim.operator) > 128 or len(claim.device) > 128 or len(str(claim.relpath)) > 1024:
        raise InputRejected("path_too_long", "The folder or file name is too long to record who scanned it on what.",
                            "Use a shorter scan-to-folder profile name (at most 128 characters) and retry.")
    return received


def refuse_duplicates(intake: Intake, receipt: Receipt) -> None:
    with intake.services.db.session() as session:
        existing = filing.earlier_scan(session, receipt.sha256)
    if existing is None:
        return
    if existing.claim_id == intake.claim.claim_id:
        raise AlreadyFiled(existing.id)
    raise InputRejected("duplicate", f"This file is identical to scan {existing.id}, already filed on "
                        f"{existing.filed_at:%d %B %Y}; it was not filed twice.",
                        "Nothing to do if it was scanned twice by mistake: discard it.")


def check_file(intake: Intake, receipt: Receipt) -> PreflightReport:
    report = preflight(intake.claim.path, limits=intake.services.settings.preflight)
    intake.pages_total = report.page_count
    intake.note(Kind.PREFLIGHT, parameters=payloads.Preflight(
        media_type=report.media_type, page_count=report.page_count,
        producer=report.producer, notes=list(report.notes),
        active_content_removed=list(report.removed),
        pages=[payloads.PreflightPage(index=p.index, dpi=[p.dpi_x, p.dpi_y], colour=p.colour, encoding=p.encoding,
                                      size_pt=[round(p.width_pt, 1), round(p.height_pt, 1)]) for p in report.pages]),
                inputs=payloads.OriginalInput(original=receipt.sha256))
    return report


def prepare_pdf(intake: Intake, report: PreflightReport) -> Path:
    """Images are wrapped, not re-encoded, into a PDF that the reading copy is built on."""
    if report.media_type == "application/pdf":
        return intake.claim.path
    unknown_dpi = any(p.dpi_x is None for p in report.pages)
    return images_to_pdf(intake.claim.path, report.media_type, intake.work_dir / "wrapped.pdf",
                         assumed_dpi=intake.services.settings.ocr.max_dpi if unknown_dpi else None)


# --- the checked scan, page by page and document by document ----------------------------------


def read_pages(intake: Intake, scan: CheckedScan) -> dict[int, PageReading]:
    """Every page rendered once, over every core here or over every worker: a cover sheet is
    read from its code and not OCRed; any other page is measured and, unless blank, OCRed."""
    settings = intake.services.settings
    jobs = [PageJob(path=scan.pdf_path, media_type="application/pdf", index=i,
                    dpi=_ocr_dpi(scan.report, i, settings.ocr.min_dpi, settings.ocr.max_dpi,
                                 settings.ocr.max_render_pixels), key=i, find_cover=True)
            for i in range(scan.report.page_count)]
    page_ocr = intake.page_ocr or LocalPageOcr(settings.ocr, settings.ocr_workers)
    shelf = PageShelf(intake.work_dir / "pages")  # words and text layers wait on disk, not in memory
    pages: dict[int, PageReading] = {}
    for job, page in page_ocr(jobs, scope=intake.claim.claim_id):
        pages[job.index] = shelf.keep(job.index, page)
        intake.pages_read = len(pages)
        intake.progress("read_pages", len(pages))
    return pages


def split_into_documents(intake: Intake, scan: CheckedScan, pages: dict[int, PageReading]) -> Split:
    covers = {i: page.cover for i, page in pages.items() if page.cover is not None}
    result = split_batch(scan.report.page_count, covers)
    documents = []
    for plan in result.documents:
        doc_id = "D-" + hashlib.sha256(f"{scan.sha256}:{plan.seq}".encode()).hexdigest()[:16]
        documents.append(DocumentWork(plan=plan, id=doc_id, reading_copy=intake.work_dir / f"{doc_id}.pdf",
                                      ocr=[pages[i] for i in plan.pages]))
    intake.documents = documents
    intake.note(Kind.SPLIT, outcome="ok" if not result.empty_covers else "empty_cover_sheets",
                parameters=payloads.Split(
                    cover_pages=sorted(covers), cover_batches=sorted({c.batch_id for c in covers.values()}),
                    empty_cover_pages=list(result.empty_covers),
                    documents=[payloads.SplitDocument(
                        id=d.id, pages=list(d.plan.pages), cover_page=d.plan.cover_index,
                        declared_pages=d.plan.cover.declared_pages if d.plan.cover else None) for d in documents]))
    return Split(pages=pages, covers=covers, empty_covers=result.empty_covers, documents=documents)


def note_page_text(intake: Intake, split: Split) -> None:
    """Each document's OCR, in the log after the split that made the document."""
    settings = intake.services.settings
    for doc in split.documents:
        intake.note(Kind.OCR, document_id=doc.id, parameters=payloads.Ocr(
            language=settings.ocr.language,
            pages=[payloads.OcrPageLog(index=i, dpi=p.dpi, rotation=p.rotation, blank=p.blank,
                                       mean_conf=None if p.mean_conf is None else round(p.mean_conf, 1),
                                       words=p.word_count, tesseract_runs=p.tesseract_runs)
                   for i, p in zip(doc.plan.pages, doc.ocr, strict=True)]))


def build_reading_copies(intake: Intake, scan: CheckedScan, split: Split) -> None:
    for doc in split.documents:
        pages = [SearchablePage(i, page) for i, page in zip(doc.plan.pages, doc.ocr, strict=True)]
        build_searchable_pdf(scan.pdf_path, pages, doc.reading_copy)


def tag_documents(intake: Intake, split: Split) -> None:
    settings = intake.services.settings
    for doc in split.documents:
        cover = doc.plan.cover
        doc.text_tags = tag_text(doc.text, catalogue=intake.services.doctypes,
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
        intake.note(Kind.TAGGED, document_id=doc.id, parameters=payloads.Tagged(
            tags=[payloads.TagFound(name=t.name, source=t.source, confidence=round(t.confidence, 3))
                  for t in doc.text_tags],
            doc_type=doc.doc_type, doc_date=doc.doc_date.isoformat() if doc.doc_date else None,
            third_party=doc.third_party))


def link_documents(intake: Intake, split: Split) -> None:
    """Link to the children on the cover sheet, else to one child the text identifies beyond doubt."""
    with intake.services.db.session() as session:
        lookup = DbChildLookup(session)
        for doc in split.documents:
            doc.match = match = match_child([t for t in doc.text_tags if t.source != "coversheet"], doc.text, lookup)
            cover = doc.plan.cover
            if cover is not None:
                known = {c.child_id for c in lookup.by_ids(cover.child_ids)}
                doc.links = {c: "coversheet" for c in cover.child_ids if c in known}
                unknown = [c for c in cover.child_ids if c not in known]
                if unknown:
                    doc.links = {}
                    doc.link_reasons.append(f"cover sheet names children not in the child index: {', '.join(unknown)}")
            elif match.status == "linked":
                doc.links = {c: match.basis for c in match.linked}
            else:
                doc.link_reasons.append(f"no child identified beyond doubt ({match.status})")
            intake.note(Kind.LINKED if doc.links else Kind.NEEDS_INDEXING, document_id=doc.id,
                        outcome="linked" if doc.links else match.status,
                        parameters=payloads.Linked(children=doc.links, text_match=match.status,
                                                   candidates=[c.child_id for c in match.candidates]))


def decide_retention(intake: Intake, split: Split) -> None:
    """Each document is kept until the longest period of any linked child's category; with no
    child, or a child whose period is not yet known, it is kept (no date)."""
    with intake.services.db.session() as session:
        for doc in split.documents:
            doc.retention_until = filing.retention_until(session, intake.services.retention, doc.links)


def check_quality(intake: Intake, scan: CheckedScan, split: Split) -> None:
    services = intake.services
    with services.db.session() as session:  # protocol step 1: the device's scanner check that day
        scanner = qc.CheckResult(**scanner_qc(session, services.settings.records, scan.claim.device,
                                              scan.claim.received_at.date()))
    for doc in split.documents:
        facts = [_page_facts(scan.report, seq, i, page)
                 for seq, (i, page) in enumerate(zip(doc.plan.pages, doc.ocr, strict=True), start=1)]
        doc_type = services.doctypes.types.get(doc.doc_type or "")
        declared = doc.plan.cover.declared_pages if doc.plan.cover else None
        doc.qc = qc.check_document(facts, declared_pages=declared, thresholds=services.settings.qc,
                                   ocr_expected=doc_type.ocr_expected if doc_type else True)
        doc.qc.append(scanner)
        doc.qc.append(qc.check_identity(list(doc.links), doc.match))
        intake.note(Kind.QC, document_id=doc.id, outcome=qc.overall(doc.qc), parameters=payloads.Qc(
            checks=[payloads.QcCheck(check=r.check, status=r.status, numbers=r.numbers) for r in doc.qc]))


def decide_states(intake: Intake, split: Split) -> None:
    """QC failures first (rescan before indexing), then indexing, then the verifier's queue."""
    for doc in split.documents:
        failures = [r.message for r in doc.qc if r.status == qc.FAIL]
        if failures:
            doc.state, doc.reasons = DocumentState.QC_FAILED, failures + doc.link_reasons
        elif not doc.links or not doc.doc_type:
            doc.state = DocumentState.NEEDS_INDEXING
            doc.reasons = doc.link_reasons + ([] if doc.doc_type else ["document type not recognised"])
        else:
            doc.state, doc.reasons = DocumentState.AWAITING_VERIFICATION, []


def store_objects(intake: Intake, scan: CheckedScan, split: Split) -> StoredScan:
    """Original, reading copies and manifests, each read back and locked before anything refers to it.

    Each object is retained until its document's date (None: keep, under a legal hold until the
    date is known); the original, shared by every document of the scan, until the longest."""
    store, media_type = intake.services.store, scan.report.media_type
    original_until = intake.services.retention.longest(d.retention_until for d in split.documents)
    original = store.put_file(content_key("originals", scan.sha256, _suffix(media_type)), scan.claim.path,
                              sha256=scan.sha256, content_type=media_type, retain_until=original_until)
    stored: dict[str, StoredDocument] = {}
    for doc in split.documents:
        sha = sha256_file(doc.reading_copy)
        searchable = store.put_file(content_key("searchable", sha, ".pdf"), doc.reading_copy,
                                    sha256=sha, content_type="application/pdf", retain_until=doc.retention_until)
        body = _manifest(intake, scan, doc, original, searchable)
        manifest = store.put_bytes(content_key("manifests", hashlib.sha256(body).hexdigest(), ".json"),
                                   body, content_type="application/json", retain_until=doc.retention_until)
        stored[doc.id] = StoredDocument(searchable, manifest)
        versions = {f"{name}_version": obj.version for name, obj in
                    (("original", original), ("searchable", searchable), ("manifest", manifest)) if obj.version}
        intake.note(Kind.STORED, document_id=doc.id,
                    parameters=payloads.Stored(
                        store=searchable.location.split("/")[0],
                        retention_until=doc.retention_until.isoformat() if doc.retention_until else None,
                        original_retention_until=original_until.isoformat() if original_until else None,
                        lock_mode=getattr(store, "lock_mode", None)),
                    inputs=payloads.OriginalInput(original=scan.sha256),
                    outputs=payloads.StoredOutputs(original=original.key, searchable=searchable.key,
                                                   searchable_sha256=searchable.sha256, manifest=manifest.key,
                                                   manifest_sha256=manifest.sha256, **versions))
    return StoredScan(original, stored)


def file_records(intake: Intake, scan: CheckedScan, split: Split, stored: StoredScan) -> None:
    """One transaction: the scan, its documents, pages, tags, QC, links and every protocol event."""
    claim, report = scan.claim, scan.report
    new_scan = filing.NewScan(
        id=scan.id, sha256=scan.sha256, claim_id=claim.claim_id, operator=claim.operator, device=claim.device,
        source_name=str(claim.relpath), media_type=report.media_type, size_bytes=scan.receipt.size,
        page_count=report.page_count, producer=report.producer,
        cover_batch_ids=sorted({c.batch_id for c in split.covers.values()}), original_key=stored.original.key,
        received_at=claim.received_at)
    documents = [_new_document(scan, doc, stored.documents[doc.id]) for doc in split.documents]
    with intake.services.db.session() as session:
        filing.add_scan(session, new_scan, documents, now())
        for doc in split.documents:
            intake.note(Kind.FILED, document_id=doc.id, outcome=doc.state,
                        parameters=payloads.Filed(state=doc.state, reasons=doc.reasons, children=sorted(doc.links)))
        _note_stamped_arrivals(intake, scan, split, session)
        for event in intake.events:
            record(session, event)
        for doc in split.documents:  # a rescan under a rejected or withdrawn scan's cover sheet replaces it
            link_rescan_by_coversheet(session, doc.id)


def release_intake_file(intake: Intake, scan: CheckedScan) -> None:
    release(scan.claim)


def _new_document(scan: CheckedScan, doc: DocumentWork, stored: StoredDocument) -> filing.NewDocument:
    cover = doc.plan.cover
    return filing.NewDocument(
        id=doc.id, seq=doc.plan.seq, coversheet_batch_id=cover.batch_id if cover else None,
        cover_page=doc.plan.cover_index, declared_pages=cover.declared_pages if cover else None,
        doc_type=doc.doc_type, doc_date=doc.doc_date, third_party=doc.third_party, state=doc.state,
        reasons=doc.reasons, retention_until=doc.retention_until,
        searchable_key=stored.searchable.key, searchable_sha256=stored.searchable.sha256,
        manifest_key=stored.manifest.key, manifest_sha256=stored.manifest.sha256,
        tags=doc.text_tags, qc=doc.qc, children=doc.links,
        candidates=doc.match.candidates if doc.match is not None else (),
        pages=[filing.NewPage(i, page, scan.report.pages[i].dpi_x, scan.report.pages[i].dpi_y)
               for i, page in zip(doc.plan.pages, doc.ocr, strict=True)])


def _note_stamped_arrivals(intake: Intake, scan: CheckedScan, split: Split, session: Any) -> None:
    """The "received" date stamped on each cover sheet becomes its batch's arrival (timeliness)."""
    for i in sorted(split.covers):
        stamped = split.pages[i].stamp
        if stamped is None:
            continue
        ref = split.covers[i].batch_id
        row = stamped_arrival(session, ref, stamped, scanned_on=scan.claim.received_at.date(),
                              recorded_by=scan.claim.operator)
        intake.note(Kind.PAPER_ARRIVAL, outcome="cover_stamp" if row is not None else "cover_stamp_not_used",
                    parameters=payloads.PaperArrival(ref=ref, arrived_on=stamped.isoformat(), cover_page=i, old=None))


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
        intake = Intake(services=services, claim=claim, work_dir=work_dir, page_ocr=page_ocr,
                        on_progress=on_progress)
        result = _run(intake)
    metrics.observe_intake(result, timings=intake.timings, executor=page_ocr.name,
                           pages=[page for doc in intake.documents for page in doc.ocr])
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


def _run(intake: Intake) -> IntakeResult:
    claim, work_dir = intake.claim, intake.work_dir
    private_dir(work_dir)  # reading copies in the making hold personal data
    started_at = time.time()
    try:
        split = file_scan(intake)
        result = _filed_result(intake, split)
        result.window = (round(started_at, 3), round(time.time(), 3))
        log.info("filed claim=%s scan=%s documents=%s", claim.claim_id, result.scan_id,
                 " ".join(f"{d['id']}:{d['state']}" for d in result.documents))
        return result
    except AlreadyFiled:
        release(claim)
        return IntakeResult(claim.claim_id, "filed", intake.scan_id, intake.sha256,
                            warnings=["already filed before a restart"])
    except InputRejected as rejection:
        return _quarantine(intake, rejection)
    except EscrError as exc:
        if not exc.transient:
            return _quarantine(intake, InputRejected(exc.code, f"escr could not process this file: {exc.message}",
                                                     "Check the file opens; retry it from quarantine, or tell the system administrator."))
        # An outage (storage, database, broker, a file unreadable just now): nothing is wrong with the scan.
        log.error("deferred claim=%s: %s (%s); the file waits in processing/ for a retry",
                  claim.claim_id, exc.code, type(exc.__cause__ or exc).__name__)
        return IntakeResult(claim.claim_id, "deferred", intake.scan_id, intake.sha256, warnings=[exc.message])
    except Exception as exc:  # a bug must not lose the file or stop the watcher
        log.error("internal error on claim=%s: %s\n%s", claim.claim_id, type(exc).__name__,
                  "".join(traceback.format_tb(exc.__traceback__)))
        return _quarantine(intake, InputRejected("internal_error", f"escr failed on this file ({type(exc).__name__}); "
                                                 "it has been kept unchanged.", "Tell the system administrator; retry it from quarantine after a fix."))
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def _quarantine(intake: Intake, rejection: InputRejected) -> IntakeResult:
    claim, sha256 = intake.claim, intake.sha256
    intake.note(Kind.QUARANTINED, outcome=rejection.code, parameters=payloads.Reason(reason=rejection.message))
    try:
        with intake.services.db.session() as session:
            for event in intake.events:
                record(session, event)
    except DatabaseError as exc:  # the reason file beside the scan still says why
        log.error("could not log quarantine of claim=%s: %s", claim.claim_id, exc.code)
    target = quarantine(claim, rejection, intake.services.settings.quarantine_dir, receipt=intake.receipt)
    return IntakeResult(claim.claim_id, "quarantined", intake.scan_id if sha256 else None, sha256,
                        quarantine={"code": rejection.code, "reason": rejection.message,
                                    "what_to_do": rejection.action, "path": str(target)})


def _filed_result(intake: Intake, split: Split) -> IntakeResult:
    warnings = [f"cover sheet on page {i + 1} is followed by no pages" for i in split.empty_covers]
    docs = [{"id": d.id, "seq": d.plan.seq, "pages": len(d.plan.pages), "doc_type": d.doc_type,
             "doc_date": d.doc_date.isoformat() if d.doc_date else None, "children": sorted(d.links),
             "state": d.state, "reasons": d.reasons, "qc": {r.check: r.status for r in d.qc}}
            for d in split.documents]
    return IntakeResult(intake.claim.claim_id, "filed", intake.scan_id, intake.sha256, docs, warnings,
                        timings={k: round(v, 4) for k, v in intake.timings.items()})


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


def _manifest(intake: Intake, scan: CheckedScan, doc: DocumentWork, original: StoredObject,
              searchable: StoredObject) -> bytes:
    """The document's provenance in one JSON object stored beside it; deterministic per input."""
    claim = scan.claim
    body = {
        "document_id": doc.id, "scan_id": scan.id, "seq": doc.plan.seq,
        "original": {"key": original.key, "sha256": scan.sha256, "media_type": scan.report.media_type},
        "searchable": {"key": searchable.key, "sha256": searchable.sha256},
        "pages": list(doc.plan.pages), "cover_page": doc.plan.cover_index,
        "cover_sheet": doc.plan.cover.__dict__ if doc.plan.cover else None,
        "operator": claim.operator, "device": claim.device,
        "received_at": claim.received_at.isoformat(), "software": intake.services.software,
        "doc_type": doc.doc_type, "doc_date": doc.doc_date.isoformat() if doc.doc_date else None,
        "children": doc.links, "state_at_filing": doc.state,
        "retention_until": doc.retention_until.isoformat() if doc.retention_until else None,
        "qc": [{"check": r.check, "status": r.status, "numbers": r.numbers} for r in doc.qc],
    }
    return json.dumps(body, sort_keys=True, indent=1, default=list).encode()
