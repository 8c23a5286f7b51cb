"""The fixity pipeline: the provenance checks over the store, in order, each object read once.

`STAGES` reads top to bottom: the anchors first (the evidence outside the database), then the
chain against them, then every scan (its rows against the chained log, its protocol steps, its
objects' bytes), then the store against the database. `escr fixity` runs it on demand, for
everything or a part; the watcher runs it over everything on a schedule with alerting on, so a
failure is raised as it is found (seed 003: the Director must be told at once if a file goes
missing): an ERROR log line with ids, a `fixity_alert` protocol event, and the configured
alert command. Each run is recorded (`fixity_runs` and a `fixity_checked` event); the findings
of earlier runs date each new finding ("last seen intact ...").
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from escr.errors import EscrError, NotFound
from escr.provenance import anchors as anchor_io
from escr.provenance import checks as fixity
from escr.provenance.checks import Code, Finding, Scope, Tally
from escr.record import payloads
from escr.record.events import AccessEvent, Actor, Kind, ProtocolEvent, now, record
from escr.record.models import Batch, ChainAnchor, Child, Document, DocumentChild, FixityRun
from escr.services import Services

log = logging.getLogger("escr.provenance.checks")

HISTORY_RUNS = 30  # earlier whole-store runs consulted to date a finding
RECORDED_FINDINGS = 1000  # finding identities kept on the run's row; the count is always exact


@dataclass(frozen=True)
class PastRun:
    id: int
    started_at: datetime
    identities: frozenset[tuple[str, str]]


@dataclass
class FixityContext:
    services: Services
    scope: Scope
    actor: Actor
    trigger: str  # server | schedule | auditor | report
    alert: Callable[[Finding], None] | None = None
    started_at: datetime = field(default_factory=now)
    tally: Tally = field(default_factory=Tally)
    history: list[PastRun] = field(default_factory=list)
    anchors: list[anchor_io.Anchor] = field(default_factory=list)
    anchor_keys: set[str] = field(default_factory=set)
    findings: list[Finding] = field(default_factory=list)
    run_id: int | None = None

    @property
    def chunk(self) -> int:
        return self.services.settings.provenance.chunk_size

    def emit(self, finding: Finding, *, alert: bool = True) -> None:
        dated = date_finding(finding, self.history)
        self.findings.append(dated)
        if alert and self.alert is not None:
            self.alert(dated)


@dataclass
class FixityResult:
    run_id: int | None
    scope: Scope
    trigger: str
    started_at: datetime
    finished_at: datetime
    tally: Tally
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        by_code: dict[str, int] = {}
        for f in self.findings:
            by_code[str(f.code)] = by_code.get(str(f.code), 0) + 1
        return {"ok": self.ok, "run_id": self.run_id, "scope": self.scope.as_dict(), "trigger": self.trigger,
                "started_at": self.started_at.isoformat(), "finished_at": self.finished_at.isoformat(),
                "checked": {"events": self.tally.events_checked, "documents": self.tally.documents_checked,
                            "objects": self.tally.objects_checked, "bytes": self.tally.bytes_read,
                            "anchors": self.tally.anchors_checked},
                "findings_by_code": by_code, "findings": [f.as_dict() for f in self.findings],
                "notes": self.tally.notes}


def date_finding(finding: Finding, history: list[PastRun]) -> Finding:
    """Narrow "since when" with earlier runs: reported since run X, last seen intact at run Y."""
    first_reported = None
    for run in history:  # newest first
        if (str(finding.code), finding.where) in run.identities:
            first_reported = run.started_at
            continue
        if finding.since is None or run.started_at >= finding.since:
            return replace(finding, since=run.started_at, first_reported=first_reported,
                           since_basis=f"last seen intact by fixity run {run.id}")
        break
    return replace(finding, first_reported=first_reported)


# --- the stages, in order ----------------------------------------------------------------------


def check_scope(ctx: FixityContext) -> None:
    """A scope naming a child or document that does not exist is an error, not a clean result."""
    with ctx.services.db.session() as session:
        if ctx.scope.document_id is not None and session.get(Document, ctx.scope.document_id) is None:
            raise NotFound(f"no document {ctx.scope.document_id}")
        if ctx.scope.child_id is not None and session.get(Child, ctx.scope.child_id) is None:
            raise NotFound(f"no child {ctx.scope.child_id} in the child index")
        if ctx.scope.scan_id is not None and session.get(Batch, ctx.scope.scan_id) is None:
            raise NotFound(f"no scan {ctx.scope.scan_id}")


def load_history(ctx: FixityContext) -> None:
    with ctx.services.db.session() as session:
        runs = session.scalars(select(FixityRun).order_by(FixityRun.id.desc()).limit(HISTORY_RUNS * 4)).all()
        whole = [r for r in runs if (r.scope or {}).get("whole") and r.findings_count <= len(r.findings)]
        ctx.history = [PastRun(r.id, r.started_at if r.started_at.tzinfo else r.started_at.replace(tzinfo=UTC),
                               frozenset((f["code"], f["where"]) for f in r.findings))
                       for r in whole[:HISTORY_RUNS]]


def read_anchor_objects(ctx: FixityContext) -> None:
    """Every anchor object, read once; those that cannot be trusted are findings and are not used."""
    settings = ctx.services.settings
    key = anchor_io.anchor_key(settings)
    stored = list(anchor_io.read_anchors(ctx.services.store, settings.anchor, key))
    ctx.anchor_keys = {s.key for s in stored}
    ctx.anchors = [s.anchor for s in stored if s.anchor is not None and s.problem in (None, "unverifiable")]
    for finding in fixity.check_anchor_objects(stored, ctx.tally):
        ctx.emit(finding)
    with ctx.services.db.session() as session:
        listed = session.scalar(select(func.count(ChainAnchor.id))) or 0
    unverifiable = any(s.problem == "unverifiable" for s in stored)  # reported just above
    for finding in fixity.check_anchor_key(key_available=key is not None or unverifiable,
                                           exposed=anchor_io.key_file_exposed(settings),
                                           anchors_listed=max(listed, len(stored))):
        ctx.emit(finding)


def check_chain_tail(ctx: FixityContext) -> None:
    """Anchors whose own `anchored` event is gone: the end of the log was cut."""
    for finding in fixity.check_anchored_events(ctx.services.db, ctx.anchors):
        ctx.emit(finding)


def check_anchor_index(ctx: FixityContext) -> None:
    for finding in fixity.check_anchor_index(ctx.services.db, ctx.anchor_keys):
        ctx.emit(finding)


def check_chain(ctx: FixityContext) -> None:
    first, last = fixity.event_bounds(ctx.services.db, ctx.scope, ctx.anchors)
    if not ctx.scope.whole:
        ctx.tally.notes.append(f"chain checked from event {first or 1} to "
                               f"{'the head' if last is None else f'event {last}'}")
    for finding in fixity.check_chain(ctx.services.db, ctx.anchors, ctx.tally, first_event_id=first,
                                      last_event_id=last, chunk=ctx.chunk):
        ctx.emit(finding)


def check_filed_records(ctx: FixityContext) -> None:
    if ctx.scope.names_record:
        return  # a deleted row cannot be found by its child or id; the whole-store run finds it
    for finding in fixity.check_filed_records_exist(ctx.services.db, ctx.tally, chunk=ctx.chunk):
        ctx.emit(finding)


def check_scans(ctx: FixityContext) -> None:
    """Per scan: its rows against the log, its protocol steps, then each of its objects once."""
    for scan in fixity.iter_scans(ctx.services.db, ctx.scope, chunk=max(1, ctx.chunk // 5)):
        for finding in fixity.check_record_against_log(scan):
            ctx.emit(finding)
        for finding in fixity.check_protocol(scan):
            ctx.emit(finding)
        for finding in fixity.check_objects(ctx.services.store, scan, ctx.tally):
            ctx.emit(finding)


def check_store_against_database(ctx: FixityContext) -> None:
    """Objects no row names. Rechecked at the end, so a scan being filed right now is not reported."""
    if not ctx.scope.whole:
        ctx.tally.notes.append("objects not named by any row are looked for only when checking everything")
        return
    settings = ctx.services.settings
    ignore = [settings.anchor.prefix, *settings.provenance.ignore_prefixes]
    candidates = [f.object_key for f in fixity.check_unreferenced(ctx.services.db, ctx.services.store,
                                                                  ignore_prefixes=ignore, chunk=ctx.chunk)]
    still = []
    for start in range(0, len(candidates), ctx.chunk):
        still += fixity.unreferenced_keys(ctx.services.db, [k for k in candidates[start:start + ctx.chunk] if k])
    for key in still:
        ctx.emit(Finding(Code.OBJECT_UNREFERENCED, "an object in the store that no scan or document in the "
                         "database names", f"object {key}", None, "", object_key=key))


def record_run(ctx: FixityContext) -> None:
    """The run itself is part of the audit trail: who checked what, when, and what was found."""
    finished = now()
    identities = [f.identity for f in ctx.findings[:RECORDED_FINDINGS]]
    by_code: dict[str, int] = {}
    for f in ctx.findings:
        by_code[str(f.code)] = by_code.get(str(f.code), 0) + 1
    with ctx.services.db.session() as session:
        run = FixityRun(started_at=ctx.started_at, finished_at=finished, trigger=ctx.trigger, actor=ctx.actor.name,
                        scope={**ctx.scope.as_dict(), "whole": ctx.scope.whole},
                        events_checked=ctx.tally.events_checked, documents_checked=ctx.tally.documents_checked,
                        objects_checked=ctx.tally.objects_checked, bytes_read=ctx.tally.bytes_read,
                        findings_count=len(ctx.findings), findings=identities)
        session.add(run)
        session.flush()
        ctx.run_id = run.id
        record(session, ProtocolEvent(
            kind=Kind.FIXITY_CHECKED, actor=ctx.actor, outcome="ok" if not ctx.findings else "findings",
            document_id=ctx.scope.document_id, child_id=ctx.scope.child_id,
            parameters=payloads.FixityChecked(
                run_id=run.id, trigger=ctx.trigger, scope=payloads.FixityScope(**ctx.scope.as_dict()),
                events=ctx.tally.events_checked, documents=ctx.tally.documents_checked,
                objects=ctx.tally.objects_checked, bytes=ctx.tally.bytes_read, findings=len(ctx.findings),
                by_code=by_code)))
        if ctx.scope.names_record:
            _log_access(session, ctx)


def _log_access(session: Any, ctx: FixityContext) -> None:
    """Checking a child's, a document's or a scan's record is a use of it (seed 003): one event per child."""
    if ctx.scope.child_id is not None:
        children: list[str | None] = [ctx.scope.child_id]
    else:
        docs = (select(Document.id).where(Document.id == ctx.scope.document_id) if ctx.scope.document_id
                else select(Document.id).where(Document.batch_id == ctx.scope.scan_id))
        children = sorted(set(session.scalars(select(DocumentChild.child_id)
                                              .where(DocumentChild.document_id.in_(docs))))) or [None]
    for child_id in children:
        record(session, AccessEvent(actor=ctx.actor, action="provenance", child_id=child_id,
                                    document_id=ctx.scope.document_id, parameters={"check": "fixity"}))


STAGES: tuple[Callable[[FixityContext], None], ...] = (
    check_scope,
    load_history,
    read_anchor_objects,
    check_anchor_index,
    check_chain,
    check_chain_tail,
    check_filed_records,
    check_scans,
    check_store_against_database,
    record_run,
)


# What each stage checks, in words, for a progress bar on a terminal.
STAGE_WORDS = {"check_scope": "Checking the scope", "load_history": "Reading past runs",
               "read_anchor_objects": "Reading the anchors", "check_anchor_index": "Checking the anchors",
               "check_chain": "Checking the event chain", "check_chain_tail": "Checking the chain's newest events",
               "check_filed_records": "Checking filed records", "check_scans": "Checking every object's hash",
               "check_store_against_database": "Comparing the store with the database",
               "record_run": "Recording the run"}


def run(services: Services, scope: Scope | None = None, *, actor: Actor | None = None, trigger: str = "server",
        alert: Callable[[Finding], None] | None = None,
        on_progress: Callable[[int, int, str, Tally], None] | None = None) -> FixityResult:
    """All the stages in order; `on_progress(done, total, stage in words, tally)` before each and at the end."""
    ctx = FixityContext(services=services, scope=scope or Scope(), actor=actor or Actor.system(), trigger=trigger,
                        alert=alert)
    for n, stage in enumerate(STAGES):
        if on_progress:
            on_progress(n, len(STAGES), STAGE_WORDS.get(stage.__name__, stage.__name__), ctx.tally)
        stage(ctx)
    if on_progress:
        on_progress(len(STAGES), len(STAGES), "Done", ctx.tally)
    result = FixityResult(ctx.run_id, ctx.scope, trigger, ctx.started_at, now(), ctx.tally, ctx.findings)
    level = logging.INFO if result.ok else logging.ERROR
    log.log(level, "fixity run=%s trigger=%s findings=%s events=%s documents=%s objects=%s bytes=%s",
            result.run_id, trigger, len(result.findings), ctx.tally.events_checked, ctx.tally.documents_checked,
            ctx.tally.objects_checked, ctx.tally.bytes_read)
    return result


# --- alerting and the schedule -----------------------------------------------------------------


class Alerter:
    """Raises each finding at once: an ERROR line (ids only), a protocol event, the alert command."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def __call__(self, finding: Finding) -> None:
        log.error("FIXITY ALERT code=%s where=%s document=%s scan=%s event=%s since=%s",
                  finding.code, finding.where, finding.document_id or "-", finding.batch_id or "-",
                  finding.event_id or "-", finding.since.isoformat() if finding.since else "-")
        try:
            with self.services.db.session() as session:
                record(session, ProtocolEvent(kind=Kind.FIXITY_ALERT, actor=Actor.system(), outcome=str(finding.code),
                                              batch_id=finding.batch_id, document_id=finding.document_id,
                                              parameters=payloads.FixityAlert(**finding.as_dict())))
        except EscrError as exc:
            log.error("could not log fixity alert code=%s: %s", finding.code, exc.code)
        command = self.services.settings.provenance.alert_command
        if command:
            try:
                subprocess.run(command, input=json.dumps(finding.as_dict()).encode(), timeout=60, check=True,
                               capture_output=True)
            except (OSError, subprocess.SubprocessError) as exc:
                log.error("alert command failed for code=%s: %s", finding.code, type(exc).__name__)


def fixity_due(services: Services, at: datetime) -> bool:
    """One interval after the last scheduled run (or after the first event, before any run)."""
    hours = services.settings.provenance.fixity_interval_hours
    if hours <= 0:
        return False
    with services.db.session() as session:
        last = session.scalar(select(func.max(FixityRun.started_at)).where(FixityRun.trigger == "schedule"))
        since = last or anchor_io.first_event_at(session)
    if since is None:
        return False
    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    return at - since >= timedelta(hours=hours)


class Housekeeping:
    """Called from the watcher's loop: anchors the chain and starts fixity runs when they are due.

    Cheap when nothing is due (one look per `look_every_s`); a fixity run goes on its own
    thread so intake is never held up, and only one runs at a time.
    """

    def __init__(self, services: Services, *, look_every_s: float = 60.0) -> None:
        self.services = services
        self.look_every_s = look_every_s
        self._next_look = 0.0
        self._fixity: threading.Thread | None = None

    def __call__(self) -> None:
        mono = time.monotonic()
        if mono < self._next_look:
            return
        self._next_look = mono + self.look_every_s
        anchor_io.write_anchor(self.services)
        if (self._fixity is None or not self._fixity.is_alive()) and fixity_due(self.services, now()):
            self._fixity = threading.Thread(target=self._run_fixity, name="fixity", daemon=True)
            self._fixity.start()

    def _run_fixity(self) -> None:
        try:
            run(self.services, Scope(), trigger="schedule", alert=Alerter(self.services))
        except EscrError as exc:
            log.error("scheduled fixity run failed: %s", exc.code)
        except Exception as exc:  # the watcher must keep watching
            log.error("scheduled fixity run failed: %s", type(exc).__name__)
