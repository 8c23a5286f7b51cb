"""`escr fixity`, `escr anchor`, `escr report`, `escr paper ...`, `escr audit ...`.

Provenance for auditors: checks that exit non-zero on any finding, certificates of scanning,
the paper original's custody and disposition, and case-file audit support.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from escr import clock
from escr.app import casefile, maintenance, stewardship
from escr.cli.common import (
    JsonOpt,
    UserOpt,
    _date,
    _print_json,
    _services,
    app,
    day,
    err,
    handles_errors,
    host_operator,
    out,
    signed_in,
    stage_progress,
)

paper_app = typer.Typer(help="The paper originals: custody moves, QA hold and disposition.", no_args_is_help=True)
audit_app = typer.Typer(help="Case-file audit: evidence for the 14 standards, the monthly sample.",
                        no_args_is_help=True)
app.add_typer(paper_app, name="paper")  # registered when escr.cli.main imports this module
app.add_typer(audit_app, name="audit")

DateOpt = Annotated[str | None, typer.Option(help="DD/MM/YYYY (default: today).")]


def _say(text: str) -> None:
    """One line of output, never re-wrapped (keys and hashes stay whole) nor colour-guessed."""
    out.print(text, highlight=False, soft_wrap=True)


def _today(value: str | None) -> date:
    return _date(value) or clock.today("UTC")


def _print_findings(result: Any) -> None:
    tally = result.tally
    head = "no findings" if result.ok else f"{len(result.findings)} finding(s)"
    _say(f"escr fixity: [bold]{head}[/bold] (run {result.run_id}; checked {tally.events_checked} events, "
              f"{tally.anchors_checked} anchors, {tally.documents_checked} documents, {tally.objects_checked} objects, "
              f"{tally.bytes_read} bytes)")
    for f in result.findings:
        since = f"{day(f.since)} ({f.since_basis})" if f.since else "unknown"
        _say(f"  [red]{f.code}[/red] {f.what}\n    where: {f.where}\n    since: {since}")
    for note in tally.notes:
        _say(f"  note: {note}")


@app.command("fixity")
@handles_errors
def fixity(
    child: Annotated[str | None, typer.Option("--child", help="Only this child's documents.")] = None,
    doc: Annotated[str | None, typer.Option("--doc", help="Only this document.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Only scans received and events since DD/MM/YYYY.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Only scans received and events up to DD/MM/YYYY "
                                              "(that day included); with --since, a period.")] = None,
    scheduled: Annotated[bool, typer.Option("--scheduled", help="The scheduled whole-store run (for cron or a "
                                            "timer): alerts auditors on each finding.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check the log chain and anchors, every object's SHA-256, the protocol steps, store against database.

    Exits 1 when anything is found; each finding says what, where and since when.
    """
    period = since or until
    if sum(v is not None for v in (child, doc, period)) > 1:
        raise typer.BadParameter("give at most one of --child, --doc, or a period (--since, --until)")
    if scheduled and any(v is not None for v in (child, doc, period)):
        raise typer.BadParameter("--scheduled checks the whole store: give no --child, --doc, --since or --until")
    with stage_progress("Fixity run" if scheduled else "Fixity check",
                        show=not as_json and err.is_terminal) as on_progress:
        result = maintenance.fixity_check(_services(), host_operator("fixity"), child_id=child, document_id=doc,
                                          since=_date(since), until=_date(until), scheduled=scheduled,
                                          on_progress=on_progress)
    if as_json:
        _print_json(result.as_dict())
    else:
        _print_findings(result)
    if not result.ok:
        raise typer.Exit(1)


@app.command()
@handles_errors
def anchor(as_json: JsonOpt = False) -> None:
    """Anchor the event chain's head to the object store now."""
    written = maintenance.anchor_now(_services(), host_operator("anchor"))
    if as_json:
        _print_json(written.as_dict())
    else:
        _say(f"anchored event {written.event_id} ({written.event_count} events, {written.method}) "
                  f"as {written.key}")


@app.command()
@handles_errors
def report(
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the report.")],
    doc: Annotated[str | None, typer.Option("--doc", help="A document id.")] = None,
    batch: Annotated[str | None, typer.Option("--batch", help="A scan id (S-...) or cover-sheet batch id.")] = None,
    child: Annotated[str | None, typer.Option("--child", help="A child id: every document of the child.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="html, pdf or json.")] = "html",
    user: UserOpt = None,
) -> None:
    """Certificate of scanning (provenance report) for a document, a batch or a child."""
    from escr.provenance.certificate import FORMATS

    if fmt not in FORMATS:
        raise typer.BadParameter(f"--format must be one of {', '.join(FORMATS)}")
    services = _services()
    data = stewardship.certificate(services, signed_in(services, "report", user), document_id=doc, batch=batch,
                                   child_id=child)
    stewardship.write_certificate(data, fmt, output)
    state = "fixity check passed" if data["verification"]["ok"] else "FIXITY FINDINGS - see the report"
    _say(f"{fmt} report for {data['summary']['documents']} document(s) written to {output} ({state})")
    if not data["verification"]["ok"]:
        raise typer.Exit(1)


# --- escr paper --------------------------------------------------------------------------------


@paper_app.command("due")
@handles_errors
def paper_due(
    show_all: Annotated[bool, typer.Option("--all", help="Every verified document's paper, not only what is due.")] = False,
    today: DateOpt = None,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Paper whose QA hold is over and which may now be destroyed (keep-originals never are)."""
    services = _services()
    rows = stewardship.paper_statuses(services, signed_in(services, "paper due", user), today=_today(today),
                                      due_only=not show_all)
    if as_json:
        _print_json(rows)
        return
    if not rows:
        _say("no paper is due for destruction")
    for r in rows:
        _say(f"{r['document_id']}  scan {r['scan_id']}  batch {r['cover_batch_id'] or '-'}  "
                  f"{r['doc_type'] or '-'}  [bold]{r['status']}[/bold]: {r['reason']}"
                  + (f"  at {r['location']}" if r["location"] else ""))


@paper_app.command("destroy")
@handles_errors
def paper_destroy(
    docs: Annotated[list[str], typer.Argument(help="Document ids whose paper was destroyed.")],
    method: Annotated[str, typer.Option(help="How, e.g. 'cross-cut shredding, contractor'.")],
    certificate: Annotated[str, typer.Option(help="The destruction certificate's reference.")],
    by: Annotated[str | None, typer.Option(help="Who destroyed it (default: you).")] = None,
    on: Annotated[str | None, typer.Option(help="When, DD/MM/YYYY (default: today).")] = None,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record the destruction of paper originals (all or none: each must be due)."""
    services = _services()
    done = stewardship.destroy_paper(services, signed_in(services, "paper destroy", user), docs, by=by,
                                     method=method, certificate=certificate, today=_today(None), on=_date(on))
    if as_json:
        _print_json(done)
        return
    _say(f"destruction recorded for {len(done)} document(s)")


@paper_app.command("return")
@handles_errors
def paper_return(
    docs: Annotated[list[str], typer.Argument(help="Document ids whose paper was returned.")],
    to: Annotated[str, typer.Option("--to", help="To whom (the sender or owner of the paper).")],
    by: Annotated[str | None, typer.Option(help="Who returned it (default: you).")] = None,
    on: Annotated[str | None, typer.Option(help="When, DD/MM/YYYY (default: today).")] = None,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record that paper originals were returned after their QA hold."""
    services = _services()
    done = stewardship.return_paper(services, signed_in(services, "paper return", user), docs, to=to, by=by,
                                    today=_today(None), on=_date(on))
    if as_json:
        _print_json(done)
        return
    _say(f"return recorded for {len(done)} document(s)")


@paper_app.command("move")
@handles_errors
def paper_move(
    paper_ref: Annotated[str, typer.Argument(help="The paper batch: cover-sheet batch id or scan id.")],
    sender: Annotated[str, typer.Option("--from", help="Who or where the paper leaves.")],
    recipient: Annotated[str, typer.Option("--to", help="Who or where it goes.")],
    purpose: Annotated[str, typer.Option(help="to_scanning, to_archive, return or other.")] = "other",
    authorised_by: Annotated[str | None, typer.Option(help="The manager who authorised a removal.")] = None,
    due_back: Annotated[str | None, typer.Option(help="Agreed return date, DD/MM/YYYY.")] = None,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Book a batch of paper out to someone or somewhere; it stays unconfirmed until arrival is confirmed."""
    services = _services()
    result = stewardship.move_paper(services, signed_in(services, "paper move", user), paper_ref, sender=sender,
                                    recipient=recipient, purpose=purpose, authorised_by=authorised_by,
                                    due_back=_date(due_back))
    if as_json:
        _print_json(result)
        return
    _say(
        f"move {result['move_id']}: {paper_ref} from {sender} to {recipient}; awaiting confirmation of arrival")


@paper_app.command("confirm")
@handles_errors
def paper_confirm(
    move_id: Annotated[int, typer.Argument(help="The move's number (see `escr paper unconfirmed`).")],
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Confirm that a batch of paper arrived (not by its sender)."""
    services = _services()
    result = stewardship.confirm_paper(services, signed_in(services, "paper confirm", user), move_id)
    if as_json:
        _print_json(result)
        return
    _say(f"move {move_id} confirmed as arrived")


@paper_app.command("unconfirmed")
@handles_errors
def paper_unconfirmed(user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Moves whose arrival nobody has confirmed, and removals past their agreed return date. Exits 1 if any."""
    services = _services()
    rows = stewardship.unconfirmed_paper(services, signed_in(services, "paper unconfirmed", user))
    if as_json:
        _print_json(rows)
    else:
        if not rows:
            _say("every move of paper is confirmed")
        for r in rows:
            what = "not confirmed as arrived" if r["problem"] == "unconfirmed" else f"due back {r['due_back']}"
            _say(f"move {r['move_id']}  {r['paper_ref']}  {r['sender']} -> {r['recipient']}  {day(r['moved_at'])}  "
                      f"[bold]{what}[/bold] ({r['days']} days)")
    if rows:
        raise typer.Exit(1)


# --- escr audit --------------------------------------------------------------------------------


@audit_app.command("casefile")
@handles_errors
def audit_casefile(
    child: Annotated[str, typer.Option("--child", help="The child id.")],
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The 14 standards with their evidence column filled from the child's verified documents."""
    services = _services()
    result = stewardship.casefile_audit(services, signed_in(services, "audit casefile", user), child,
                                        today=_today(None))
    if as_json:
        _print_json(result.as_dict())
        return
    _say(f"[bold]Case-file audit: {result.child_id}[/bold] team {result.team or '-'}, "
              f"allocated worker {result.allocated_worker or '-'}, status {result.status or '-'}, as of "
              f"{day(result.as_of)} ({result.verified_documents} verified documents, "
              f"{result.awaiting_verification} awaiting verification)")
    for k in result.key_documents:
        state = "missing" if not k.present else ("up to date" if k.up_to_date else f"older than {k.max_age_days} days")
        _say(f"  {k.name}: {day(k.latest)} [bold]{state}[/bold]")
    for s in result.standards:
        _say(f"{s.number}. {s.question}")
        for line in s.column:
            _say(f"     {line}")


@audit_app.command("record")
@handles_errors
def audit_record(
    child: Annotated[str, typer.Option("--child", help="The child id.")],
    judge: Annotated[list[str], typer.Option("--judge", help="A standard's judgement, NUMBER=yes|no|na; once per standard.")],
    grading: Annotated[str, typer.Option("--grading", help="good, requires_improvement or inadequate.")],
    overall: Annotated[str, typer.Option("--overall", help="The overall comments.")] = "",
    comment: Annotated[list[str] | None, typer.Option("--comment", help="A standard's comment, NUMBER=TEXT.")] = None,
    manager_comments: Annotated[str, typer.Option("--manager-comments", help="The team manager's reply.")] = "",
    follow_up: Annotated[bool, typer.Option("--follow-up", help="Immediate follow-up is recommended.")] = False,
    revises: Annotated[int | None, typer.Option("--revises", help="The audit this one revises (after the reply).")] = None,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a completed case-file audit: every one of the 14 standards judged, and a grading."""
    services = _services()
    judgements, comments = _numbered(judge, "--judge"), _numbered(comment or [], "--comment")
    done = casefile.record_audit(services, signed_in(services, "audit record", user), child,
                                 judgements={n: v.strip().lower() for n, v in judgements.items()}, comments=comments,
                                 grading=grading.strip().lower(), overall=overall, manager_comments=manager_comments,
                                 follow_up=follow_up, revises=revises)
    if as_json:
        _print_json(done)
        return
    _say(f"case-file audit {done['id']} of {child} recorded: {done['grading_label']}; "
         "a note that the file was audited is on the child's file")


def _numbered(values: list[str], option: str) -> dict[int, str]:
    """`3=yes` pairs into {3: "yes"}; anything else is a usage error naming the option."""
    out: dict[int, str] = {}
    for value in values:
        number, sep, text = value.partition("=")
        if not sep or not number.strip().isdigit():
            raise typer.BadParameter(f"{value!r}: write NUMBER=VALUE, for example 3=yes", param_hint=option)
        out[int(number)] = text
    return out


@audit_app.command("collation")
@handles_errors
def audit_collation(
    quarter: Annotated[str | None, typer.Option("--quarter", help="YYYY-Qn (default: this quarter).")] = None,
    csv: Annotated[bool, typer.Option("--csv", help="Print the CSV for the quarterly report.")] = False,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A quarter's case-file audits collated per team: completion, gradings, standards not met."""
    services = _services()
    data = casefile.collation(services, signed_in(services, "audit collation", user), quarter)
    if csv:
        typer.echo(casefile.collation_csv(data), nl=False)
        return
    if as_json:
        _print_json(data)
        return
    _say(f"[bold]{data['label']}[/bold]")
    for t in (*data["teams"], data["all"]):
        grades = ", ".join(f"{g['count']} {g['label'].lower()}" for g in t["gradings"])
        rate = f" ({t['completion']}%)" if t["completion"] is not None else ""
        _say(f"{t['team']}: {t['completed']} of {t['selected']} audited{rate}; {grades}")


@audit_app.command("sample")
@handles_errors
def audit_sample(
    month: Annotated[str, typer.Option("--month", help="YYYY-MM.")],
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Pick and record one file per worker for the month, none prepared in the previous 12 months."""
    services = _services()
    result = stewardship.audit_sample(services, signed_in(services, "audit sample", user), month)
    if as_json:
        _print_json(result.as_dict())
        return
    for s in result.selected:
        _say(f"{s['worker']}: {s['child_id']} (from {s['candidates']} eligible files)")
    for s in result.already:
        _say(f"{s['worker']}: {s['child_id']} (selected earlier for {month})")
    for worker in result.no_eligible_file:
        _say(f"{worker}: no file eligible (all prepared in the last 12 months)")
