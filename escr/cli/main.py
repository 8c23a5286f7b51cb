"""The `escr` command line: intake, cover sheets, indexing, verification and retrieval.

Each command builds the settings object once and passes it down. Errors are `EscrError`s
printed as one plain line (and a JSON object with --json) with a non-zero exit.
"""

from __future__ import annotations

import shutil
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Column, Table

from escr.app.labels import label, uk_date
from escr.cli.common import (
    JsonOpt,
    UserOpt,
    VersionOpt,
    _date,
    _print_json,
    _services,
    app,
    children_app,
    day,
    err,
    handles_errors,
    host_operator,
    moment,
    operations,
    out,
    qc_app,
    quarantine_app,
)
from escr.services import configure_logging

EVERYTHING = 10**9  # the CLI prints whole lists: one "page" holds them all


@app.command()
@handles_errors
def watch() -> None:
    """Watch the intake folder and file every scan that arrives, until stopped."""
    from escr.intake.watcher import IntakeWatcher
    from escr.pipelines import intake
    from escr.pipelines.fixity import Housekeeping
    from escr.runtime.distributed import shared_page_ocr
    from escr.runtime.priority import lower_priority

    configure_logging()
    host_operator("watch")
    services = _services()
    lower_priority(services.settings.ocr)  # OCR waits for people: the web app answers first
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
    host_operator("ingest")  # files the scan as the intake does; `--operator` names who scanned the paper
    services = _services()
    claims = {n: claim_copy(f, services.settings.processing_dir, operator=operator, device=device)
              for n, f in enumerate(files) if f.exists() or f.is_symlink()}
    with _ingest_progress(claims, files, show=not as_json and err.is_terminal) as on_progress:
        done = dict(zip(claims, intake.run_all(list(claims.values()), services, on_progress=on_progress),
                        strict=True))
    results = [{"file": str(f), **done[n].as_dict()} if n in done else {"file": str(f), "status": "missing"}
               for n, f in enumerate(files)]
    if as_json:
        _print_json(results)
    else:
        for r in results:
            out.print(f"{r['file']}: [bold]{r['status']}[/bold]")
            for d in r.get("documents", []):
                out.print(f"  {d['id']}  {d['pages']} pages  {d['doc_type'] or '-'}  {day(d['doc_date'])}  "
                          f"children={','.join(d['children']) or '-'}  [bold]{d['state']}[/bold]")
                for reason in d["reasons"]:
                    out.print(f"    - {reason}")
            if r.get("quarantine"):
                out.print(f"  quarantined ({r['quarantine']['code']}): {r['quarantine']['reason']}")
    if any(r["status"] in ("quarantined", "deferred", "missing") for r in results):
        raise typer.Exit(1)


@contextmanager
def _ingest_progress(claims: dict[int, Any], files: list[Path], *, show: bool) -> Iterator[Any]:
    """A bar per file on a terminal (stage, pages done of total); nothing when piped or --json."""
    if not show or not claims:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from escr.app.homes import STAGES

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("pages"),
                  TextColumn("[dim]{task.fields[stage]}"), TimeElapsedColumn(), console=err,
                  transient=False) as bar:
        tasks = {claim.claim_id: bar.add_task(files[n].name, total=None, stage="waiting")
                 for n, claim in claims.items()}

        def update(claim: Any, stage: str, pages_done: int, pages_total: int | None) -> None:
            bar.update(tasks[claim.claim_id], completed=pages_done, total=pages_total,
                       stage=STAGES.get(stage, stage))

        yield update
        for task in tasks.values():
            bar.update(task, stage="done")


@app.command()
@handles_errors
def coversheet(
    child: Annotated[list[str], typer.Option("--child", help="Child id; repeat for siblings.")],
    doc_type: Annotated[str, typer.Option("--doc-type", help="Document type code (see `escr doctypes`).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the PDF.")],
    pages: Annotated[int | None, typer.Option(help="Number of pages of the document behind this sheet.")] = None,
    batch: Annotated[str | None, typer.Option(help="Batch id (default: a new one).")] = None,
    user: UserOpt = None,
) -> None:
    """Print a batch cover sheet for a child: put it on top of the paper and scan it first."""
    batch_id, pdf = operations("coversheet", user).cover_sheet(child, doc_type, pages, print_names=False,
                                                               batch_id=batch)
    output.write_bytes(pdf)
    out.print(f"cover sheet for batch {batch_id} written to {output}")


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
def children_import(file: Path) -> None:
    """Load or update the child index from a CSV export (re-import updates); run on the server."""
    from escr.app import maintenance

    summary = maintenance.import_children(_services(), host_operator("children import"), file)
    out.print(f"children: {summary['added']} added, {summary['updated']} updated, {summary['unchanged']} unchanged")


@children_app.command("find")
@handles_errors
def children_find(query: Annotated[str, typer.Argument(help="A child id, an NHS number, or a name and date of birth.")],
                  user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Find a child to index a document to: by id, NHS number, or name and date of birth."""
    found = operations("children find", user).find_children(query, 0, EVERYTHING).items
    if as_json:
        _print_json(found)
        return
    table = Table(Column("child", no_wrap=True), "name", "born", "NHS number", "team")
    for c in found:
        table.add_row(c["child_id"], f"{c['given_names']} {c['family_name']}", uk_date(c["date_of_birth"], empty="unknown"),
                      c["nhs_number"] or "-", c["team"] or "-")
    out.print(table if found else f"no child found for {escape(query)}")


@app.command()
@handles_errors
def documents(
    child: Annotated[str, typer.Option("--child", help="Child id.")],
    doc_type: Annotated[str | None, typer.Option("--type")] = None,
    since: Annotated[str | None, typer.Option(help="DD/MM/YYYY")] = None,
    until: Annotated[str | None, typer.Option(help="DD/MM/YYYY")] = None,
    view: Annotated[str | None, typer.Option("--view", help="Open one of your saved views (`escr views list`).")] = None,
    user: UserOpt = None, as_json: JsonOpt = False,
) -> None:
    """A child's scanned documents in date order (with --view, as your saved view shows them)."""
    o = operations("documents", user)
    if view is not None:
        if doc_type or since or until:
            raise typer.BadParameter("--view holds its own filters: leave out --type, --since and --until")
        from escr.app.reading import Reader

        docs = Reader(o.services, o.p).chronology(child, view=view, offset=0, limit=EVERYTHING)["documents"].items
    else:
        docs = o.child_documents(child, doc_type=doc_type, since=_date(since), until=_date(until), offset=0,
                                 limit=EVERYTHING).items
    if as_json:
        _print_json(docs)
        return
    table = Table("date", "type", "pages", "state", Column("document", no_wrap=True),
                  title=f"Documents of {child}" + (f", view {escape(view)}" if view else ""))
    for d in docs:
        table.add_row(day(d["doc_date"], "undated"), d["doc_type"] or "-", str(d["pages"]), d["state"], d["id"])
    out.print(table)


@app.command()
@handles_errors
def show(doc: str, user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """A document's metadata, tags, QC results and who verified it."""
    ops = operations("show", user)
    data = ops.document(doc)
    if as_json:
        _print_json(data)
        return
    shown = {**data, "doc_date": day(data["doc_date"], "undated"), "verified_at": moment(ops, data["verified_at"])}
    for key in ("id", "doc_type", "doc_date", "pages", "state", "children", "third_party", "operator", "device",
                "indexed_by", "verified_by", "verified_at", "version", "replaces", "replaced_by"):
        out.print(f"[bold]{key}[/bold]: {shown[key]}")
    for f in data["fields"]:  # what a verifier checks against the pages, least certain first
        value = f["child"] if f["field"] == "child" and f["child"] else f["value"]
        if isinstance(value, dict):
            value = (f"{value['child_id']} {value['given_names']} {value['family_name']}, born "
                     f"{uk_date(value['date_of_birth'], empty='unknown')}, NHS number {value['nhs_number'] or '-'}")
        confidence = "-" if f["confidence"] is None else f"{f['confidence']:.2f}"
        out.print(f"  {label(f['field'], 'indexed_field').lower()}: {escape(str(value))} "
                  f"({label(f['source'], 'field_source').lower()}{' ' + f['by'] if f['by'] else ''}; confidence {confidence})")
    for v in data["versions"]:
        out.print(f"  scan of this paper: {v['id']} ({v['state']}){' - current' if v['current'] else ''}")
    for h in data["earlier_links"]:
        out.print(f"  earlier link: {h['child_id']} ({h['reason']} by {h['unlinked_by']} at {moment(ops, h['unlinked_at'])})")
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
    stream, _, _ = operations("get", user).open_content(doc, original=original)
    with stream, open(output, "wb") as fh:
        shutil.copyfileobj(stream, fh)
    out.print(f"written {output}")


@app.command()
@handles_errors
def search(
    text: str, child: Annotated[str | None, typer.Option("--child")] = None,
    user: UserOpt = None, as_json: JsonOpt = False,
) -> None:
    """Full-text search of the scanned documents you may open."""
    hits = operations("search", user).search(text, child_id=child, offset=0, limit=EVERYTHING).items
    if as_json:
        _print_json(hits)
        return
    for h in hits:
        out.print(f"{h['id']} p{h['page']} {h['doc_type'] or '-'} {day(h['doc_date'])}: {escape(h['snippet'])}")


@app.command()
@handles_errors
def provenance(doc: str, user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Every protocol event of a document, in order, with hashes."""
    ops = operations("provenance", user)
    data = ops.provenance(doc, 0, EVERYTHING)
    data["events"] = data["events"].items
    if as_json:
        _print_json(data)
        return
    o = data["original"]
    out.print(f"original sha256 {o['sha256']}  scanned by {o['operator']} on {o['device']} at {moment(ops, o['received_at'])}")
    for e in data["events"]:
        out.print(f"{e['seq']:>6} {e['at']} {e['kind']:<15} {e['actor']:<24} {e['outcome']}")


@app.command()
@handles_errors
def queue(
    state: Annotated[str | None, typer.Option(help="needs_indexing, qc_failed, awaiting_verification, ...")] = None,
    user: UserOpt = None, as_json: JsonOpt = False,
) -> None:
    """Documents waiting for business support: indexing, QC failures, verification."""
    docs = operations("queue", user).queue(state, 0, EVERYTHING).items
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
    doc_date: Annotated[str | None, typer.Option("--date", help="DD/MM/YYYY")] = None,
    version: VersionOpt = None, user: UserOpt = None,
) -> None:
    """Index a document by hand: pick its child(ren) and type; again, before verification, to
    correct it (the links are replaced; the old ones are kept in its history)."""
    state = operations("index", user).index(doc, child_ids=child, doc_type=doc_type, doc_date=_date(doc_date),
                                            version=version)
    out.print(f"{doc} indexed; now {state}")


@qc_app.command("verify")
@handles_errors
def qc_verify(doc: str, version: VersionOpt = None, user: UserOpt = None) -> None:
    """Verify a document (you must not be its scanner or indexer)."""
    o = operations("qc verify", user)
    o.decide(doc, "verify", version=version)
    out.print(f"{doc} verified by {o.p.username}")


@qc_app.command("reject")
@handles_errors
def qc_reject(doc: str, reason: Annotated[str, typer.Option()], version: VersionOpt = None,
              user: UserOpt = None) -> None:
    """Reject a scan: the paper must be rescanned (it leaves the child's record)."""
    operations("qc reject", user).decide(doc, "reject", reason=reason, version=version)
    out.print(f"{doc} rejected")


@qc_app.command("accept")
@handles_errors
def qc_accept(doc: str, reason: Annotated[str, typer.Option()], user: UserOpt = None) -> None:
    """Accept a scan despite an automated QC failure, with a reason."""
    state = operations("qc accept", user).decide(doc, "accept_qc", reason=reason)
    out.print(f"{doc} QC failure accepted; now {state}")


@quarantine_app.command("list")
@handles_errors
def quarantine_list(user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Quarantined files with the reason and what to do."""
    entries = operations("quarantine list", user).quarantine_entries()
    if as_json:
        _print_json(entries)
        return
    for e in entries:
        out.print(f"{e['claim_id']}  {e['intake_path']}  [bold]{e['code']}[/bold]: {e['reason']}\n    what to do: {e['what_to_do']}")


@quarantine_app.command("retry")
@handles_errors
def quarantine_retry(claim_ids: Annotated[list[str], typer.Argument(help="One or more claim ids (at most 100).",
                                                                     show_default=False)],
                     user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Put quarantined files back into the intake folder for another try (each logged).

    Each file is retried on its own; one that cannot be is named with the reason and the
    command exits 1 after trying the others."""
    o = operations("quarantine retry", user)
    if len(claim_ids) == 1:
        done = {"returned": [{"claim_id": claim_ids[0], "returned_to": o.retry_quarantined(claim_ids[0])}],
                "refused": []}
    else:
        done = o.retry_many_quarantined(claim_ids)
    if as_json:
        _print_json(done)
    else:
        for r in done["returned"]:
            out.print(f"returned to intake: {escape(r['returned_to'])}", highlight=False)
        for r in done["refused"]:
            err.print(f"not retried: {escape(r['claim_id'])}: {escape(r['why'])}", highlight=False)
    if done["refused"]:
        raise typer.Exit(1)


@app.command()
@handles_errors
def purpose(
    reason: Annotated[str, typer.Option("--reason", help="Why you need to open it (at least 10 characters).")],
    doc: Annotated[str | None, typer.Option("--doc", help="A document id.")] = None,
    child: Annotated[str | None, typer.Option("--child", help="A child id: every document of the child.")] = None,
    user: UserOpt = None,
) -> None:
    """Auditors: record why you need to open a document (or a child's documents); it expires."""
    until = operations("purpose", user).record_purpose(reason, document_id=doc, child_id=child)
    out.print(f"purpose recorded; you may open {'document ' + doc if doc else f'the documents of {child}'} "
              f"until {until}")


@app.command("break-glass")
@handles_errors
def break_glass(
    child: Annotated[str, typer.Option("--child", help="The child whose record you must see now.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (at least 10 characters); an auditor reviews it.")],
    user: UserOpt = None,
) -> None:
    """Caseworkers and team managers: open one other child's record for a while, with a reason (flagged)."""
    ops = operations("break-glass", user)
    glass = ops.break_glass(child, reason)
    out.print(f"break-glass access {glass['id']} to {child} until {moment(ops, glass['expires_at'])}; flagged for review")


@app.command("access-log")
@handles_errors
def access_log(
    child: Annotated[str | None, typer.Option("--child")] = None,
    of_user: Annotated[str | None, typer.Option("--of", help="Only this person's uses.")] = None,
    since: Annotated[str | None, typer.Option(help="DD/MM/YYYY")] = None,
    until: Annotated[str | None, typer.Option(help="DD/MM/YYYY")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 100,
    user: UserOpt = None, as_json: JsonOpt = False,
) -> None:
    """Auditors: who used which child's record, when, how and why (newest first)."""
    rows = operations("access-log", user).access_log(0, limit, child_id=child, user=of_user, since=_date(since),
                                                     until=_date(until), action=None, outcome=None).items
    if as_json:
        _print_json(rows)
        return
    for e in rows:
        out.print(f"{e['seq']:>6} {e['at']} {e['actor']:<20} {e['action'] or '-':<10} {e['child_id'] or '-':<10} "
                  f"{e['document_id'] or '-':<20} {e['outcome']}", highlight=False)


# Each subcommand module adds its commands to the apps in escr.cli.common when imported.
import escr.cli.corrections  # noqa: E402,F401  (registers qc withdraw, third-party, rescan, corrections)
import escr.cli.db  # noqa: E402,F401  (registers `escr db`)
import escr.cli.disclosure  # noqa: E402,F401  (registers `escr disclosure`)
import escr.cli.provenance  # noqa: E402,F401  (registers fixity, anchor, report, paper, audit)
import escr.cli.records  # noqa: E402,F401  (registers status, examination, volume, disposal, timeliness, ...)
import escr.cli.storage  # noqa: E402,F401  (registers `escr hold`, `escr retention`)
import escr.cli.views  # noqa: E402,F401  (registers `escr views`)
import escr.cli.web  # noqa: E402,F401  (registers serve, run, users, teams, tokens, quarantine discard)
import escr.cli.worker  # noqa: E402,F401  (registers `escr worker`)
