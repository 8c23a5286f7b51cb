"""The `escr` command line: intake, cover sheets, indexing, verification and retrieval.

Each command builds the settings object once and passes it down. Errors are `EscrError`s
printed as one plain line (and a JSON object with --json) with a non-zero exit.
"""

from __future__ import annotations

import shutil
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Column, Table

from escr.cli.common import (
    JsonOpt,
    UserOpt,
    _actor,
    _date,
    _print_json,
    _services,
    _settings,
    _user,
    app,
    children_app,
    handles_errors,
    out,
    qc_app,
    quarantine_app,
)
from escr.record.events import Actor
from escr.services import configure_logging


@app.command()
@handles_errors
def watch() -> None:
    """Watch the intake folder and file every scan that arrives, until stopped."""
    from escr.intake.watcher import IntakeWatcher
    from escr.pipelines import intake
    from escr.pipelines.fixity import Housekeeping
    from escr.runtime.distributed import shared_page_ocr

    configure_logging()
    services = _services()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with shared_page_ocr(services.settings) as page_ocr:  # files in flight share the cores' OCR slots
        IntakeWatcher(services.settings, lambda claim: intake.run(claim, services, page_ocr=page_ocr),
                      housekeeping=Housekeeping(services)).run(stop)  # chain anchors, scheduled fixity runs


@app.command()
@handles_errors
def ingest(
    files: Annotated[list[Path], typer.Argument(help="Scanned files to file now.", exists=False)],
    operator: Annotated[str, typer.Option(help="Who scanned the paper.")],
    device: Annotated[str, typer.Option(help="The scanner or MFD used.")] = "unspecified",
    as_json: JsonOpt = False,
) -> None:
    """Run the intake pipeline once on FILE(s), in the foreground (the file itself is left in place)."""
    from escr.intake.receipt import claim_copy
    from escr.pipelines import intake

    configure_logging("WARNING")
    services = _services()
    claims = {n: claim_copy(f, services.settings.processing_dir, operator=operator, device=device)
              for n, f in enumerate(files) if f.exists() or f.is_symlink()}
    done = dict(zip(claims, intake.run_all(list(claims.values()), services), strict=True))
    results = [{"file": str(f), **done[n].as_dict()} if n in done else {"file": str(f), "status": "missing"}
               for n, f in enumerate(files)]
    if as_json:
        _print_json(results)
    else:
        for r in results:
            out.print(f"{r['file']}: [bold]{r['status']}[/bold]")
            for d in r.get("documents", []):
                out.print(f"  {d['id']}  {d['pages']} pages  {d['doc_type'] or '-'}  {d['doc_date'] or '-'}  "
                          f"children={','.join(d['children']) or '-'}  [bold]{d['state']}[/bold]")
                for reason in d["reasons"]:
                    out.print(f"    - {reason}")
            if r.get("quarantine"):
                out.print(f"  quarantined ({r['quarantine']['code']}): {r['quarantine']['reason']}")
    if any(r["status"] in ("quarantined", "deferred", "missing") for r in results):
        raise typer.Exit(1)


@app.command()
@handles_errors
def coversheet(
    child: Annotated[list[str], typer.Option("--child", help="Child id; repeat for siblings.")],
    doc_type: Annotated[str, typer.Option("--doc-type", help="Document type code (see `escr doctypes`).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the PDF.")],
    pages: Annotated[int | None, typer.Option(help="Number of pages of the document behind this sheet.")] = None,
    batch: Annotated[str | None, typer.Option(help="Batch id (default: a new one).")] = None,
) -> None:
    """Print a batch cover sheet for a child: put it on top of the paper and scan it first."""
    from escr.errors import NotFound
    from escr.pages.coversheet import CoverSheet, new_batch_id, render_coversheet_pdf
    from escr.record.models import Child

    services = _services()
    if doc_type not in services.doctypes.types:
        raise NotFound(f"unknown document type {doc_type}; see `escr doctypes`")
    with services.db.session() as session:
        missing = [c for c in child if session.get(Child, c) is None]
    if missing:
        raise NotFound(f"children not in the child index: {', '.join(missing)}")
    sheet = CoverSheet(batch or new_batch_id(), tuple(child), doc_type, pages)
    render_coversheet_pdf(sheet, output)
    out.print(f"cover sheet for batch {sheet.batch_id} written to {output}")


@app.command()
def doctypes() -> None:
    """List the document types and whether their paper original must be kept."""
    services = _services()
    table = Table("code", "label", "keep original")
    for code, t in services.doctypes.types.items():
        table.add_row(code, t.label, "yes" if t.keep_original else "")
    out.print(table)


@children_app.command("import")
@handles_errors
def children_import(file: Path, user: UserOpt = None) -> None:
    """Load or update the child index from a CSV export (re-import updates)."""
    from escr.record.children import import_children, read_children_csv
    from escr.record.retention_updates import retention_hook

    services = _services()
    rows = read_children_csv(file)
    actor = Actor(kind="user", name=_user(services.settings, user))
    with services.db.session() as session:
        summary = import_children(session, rows, actor=actor,
                                  on_retention_change=retention_hook(services.store, services.retention, actor))
    out.print(f"children: {summary.added} added, {summary.updated} updated, {summary.unchanged} unchanged")


@app.command()
@handles_errors
def documents(
    child: Annotated[str, typer.Option("--child", help="Child id.")],
    doc_type: Annotated[str | None, typer.Option("--type")] = None,
    since: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    until: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    user: UserOpt = None, as_json: JsonOpt = False,
) -> None:
    """A child's scanned documents in date order."""
    from escr.app.retrieval import list_documents

    services = _services()
    with services.db.session() as session:
        docs = list_documents(session, child, actor=_actor(services, user), doc_type=doc_type,
                              since=_date(since), until=_date(until))
    if as_json:
        _print_json(docs)
        return
    table = Table("date", "type", "pages", "state", Column("document", no_wrap=True), title=f"Documents of {child}")
    for d in docs:
        table.add_row(d["doc_date"] or "undated", d["doc_type"] or "-", str(d["pages"]), d["state"], d["id"])
    out.print(table)


@app.command()
@handles_errors
def show(doc: str, user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """A document's metadata, tags, QC results and who verified it."""
    from escr.app.retrieval import show_document

    services = _services()
    with services.db.session() as session:
        data = show_document(session, doc, actor=_actor(services, user))
    if as_json:
        _print_json(data)
        return
    for key in ("id", "doc_type", "doc_date", "pages", "state", "children", "third_party", "operator", "device",
                "indexed_by", "verified_by", "verified_at"):
        out.print(f"[bold]{key}[/bold]: {data[key]}")
    for reason in data["state_reasons"]:
        out.print(f"  reason: {reason}")
    for q in data["qc"]:
        out.print(f"  qc {q['check']}: {q['status']} - {q['message']}")


@app.command()
@handles_errors
def get(
    doc: str,
    output: Annotated[Path, typer.Option("-o", "--output")],
    original: Annotated[bool, typer.Option("--original", help="The untouched scan instead of the reading copy.")] = False,
    user: UserOpt = None,
) -> None:
    """Save a document's searchable PDF (or the as-scanned original) to a file."""
    from escr.app.retrieval import open_document

    services = _services()
    with services.db.session() as session:
        stream, _ = open_document(session, services.store, doc, actor=_actor(services, user), original=original)
    with stream, open(output, "wb") as fh:
        shutil.copyfileobj(stream, fh)
    out.print(f"written {output}")


@app.command()
@handles_errors
def search(
    text: str, child: Annotated[str | None, typer.Option("--child")] = None,
    user: UserOpt = None, as_json: JsonOpt = False,
) -> None:
    """Full-text search of scanned documents."""
    from escr.app.retrieval import search as run_search

    services = _services()
    with services.db.session() as session:
        hits = run_search(session, services.db, text, actor=_actor(services, user), child_id=child)
    if as_json:
        _print_json(hits)
        return
    for h in hits:
        out.print(f"{h['id']} p{h['page']} {h['doc_type'] or '-'} {h['doc_date'] or '-'}: {escape(h['snippet'])}")


@app.command()
@handles_errors
def provenance(doc: str, user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Every protocol event of a document, in order, with hashes."""
    from escr.app.retrieval import provenance as get_provenance

    services = _services()
    with services.db.session() as session:
        data = get_provenance(session, doc, actor=_actor(services, user))
    if as_json:
        _print_json(data)
        return
    o = data["original"]
    out.print(f"original sha256 {o['sha256']}  scanned by {o['operator']} on {o['device']} at {o['received_at']}")
    for e in data["events"]:
        out.print(f"{e['seq']:>6} {e['at']} {e['kind']:<15} {e['actor']:<24} {e['outcome']}")


@app.command()
@handles_errors
def queue(
    state: Annotated[str | None, typer.Option(help="needs_indexing, qc_failed, awaiting_verification, ...")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Documents waiting for business support: indexing, QC failures, verification."""
    from sqlalchemy import select

    from escr.record.models import Document
    from escr.record.states import QUEUE_STATES

    services = _services()
    with services.db.session() as session:
        stmt = select(Document).where(Document.state.in_([state] if state else QUEUE_STATES))
        docs = [{"id": d.id, "state": d.state, "doc_type": d.doc_type, "pages": d.page_count,
                 "operator": d.batch.operator, "received_at": d.batch.received_at.isoformat(), "reasons": d.state_reasons}
                for d in session.scalars(stmt.order_by(Document.created_at))]
    if as_json:
        _print_json(docs)
        return
    table = Table(Column("document", no_wrap=True), "state", "type", "pages", "scanned by", "reasons")
    for d in docs:
        table.add_row(d["id"], d["state"], d["doc_type"] or "-", str(d["pages"]), d["operator"], "; ".join(d["reasons"]))
    out.print(table)


@app.command()
@handles_errors
def index(
    doc: str,
    child: Annotated[list[str], typer.Option("--child", help="Child id; repeat for siblings.")],
    doc_type: Annotated[str, typer.Option("--doc-type")],
    doc_date: Annotated[str | None, typer.Option("--date", help="YYYY-MM-DD")] = None,
    user: UserOpt = None,
) -> None:
    """Index a document by hand: pick its child(ren) and type."""
    from escr.app.verification import index_document
    from escr.record.retention_updates import retention_hook

    services = _services()
    with services.db.session() as session:
        d = index_document(session, doc, user=_user(services.settings, user), child_ids=child, doc_type=doc_type,
                           known_types=list(services.doctypes.types), doc_date=_date(doc_date),
                           on_retention_change=retention_hook(services.store, services.retention,
                                                              _actor(services, user), reason="indexed by hand"))
        out.print(f"{d.id} indexed; now {d.state}")


@qc_app.command("verify")
@handles_errors
def qc_verify(doc: str, user: UserOpt = None) -> None:
    """Verify a document (you must not be its scanner or indexer)."""
    from escr.app.verification import verify_document

    services = _services()
    with services.db.session() as session:
        d = verify_document(session, doc, user=_user(services.settings, user))
        out.print(f"{d.id} verified by {d.verified_by}")


@qc_app.command("reject")
@handles_errors
def qc_reject(doc: str, reason: Annotated[str, typer.Option()], user: UserOpt = None) -> None:
    """Reject a scan: the paper must be rescanned."""
    from escr.app.verification import reject_document

    services = _services()
    with services.db.session() as session:
        d = reject_document(session, doc, user=_user(services.settings, user), reason=reason)
        out.print(f"{d.id} rejected")


@qc_app.command("accept")
@handles_errors
def qc_accept(doc: str, reason: Annotated[str, typer.Option()], user: UserOpt = None) -> None:
    """Accept a scan despite an automated QC failure, with a reason."""
    from escr.app.verification import accept_qc_failure

    services = _services()
    with services.db.session() as session:
        d = accept_qc_failure(session, doc, user=_user(services.settings, user), reason=reason)
        out.print(f"{d.id} QC failure accepted; now {d.state}")


@quarantine_app.command("list")
def quarantine_list(as_json: JsonOpt = False) -> None:
    """Quarantined files with the reason and what to do."""
    from escr.intake.quarantine import list_quarantine

    settings = _settings()
    entries = [{"claim_id": e.claim_id, "path": str(e.path), **e.reason} for e in list_quarantine(settings.quarantine_dir)]
    if as_json:
        _print_json(entries)
        return
    for e in entries:
        out.print(f"{e['claim_id']}  {e['intake_path']}  [bold]{e['code']}[/bold]: {e['reason']}\n    what to do: {e['what_to_do']}")


@quarantine_app.command("retry")
@handles_errors
def quarantine_retry(claim_id: str, user: UserOpt = None) -> None:
    """Put a quarantined file back into the intake folder for another try (logged)."""
    from escr.intake.quarantine import retry

    services = _services()
    target = retry(claim_id, quarantine_dir=services.settings.quarantine_dir, intake_dir=services.settings.intake_dir,
                   db=services.db, actor=_actor(services, user))
    out.print(f"returned to intake: {target}")


# Each subcommand module adds its commands to the apps in escr.cli.common when imported.
import escr.cli.db  # noqa: E402,F401  (registers `escr db`)
import escr.cli.provenance  # noqa: E402,F401  (registers verify, anchor, fixity, report, paper, audit)
import escr.cli.storage  # noqa: E402,F401  (registers `escr hold`, `escr retention`)
import escr.cli.web  # noqa: E402,F401  (registers serve, run, users, teams, quarantine discard)
import escr.cli.worker  # noqa: E402,F401  (registers `escr worker`)
