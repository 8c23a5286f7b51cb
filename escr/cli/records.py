"""`escr status`, `escr examination`, `escr volume`, `escr disposal`, `escr arrival`,
`escr timeliness`, `escr coversheets`, `escr scanner-check`: the record as the seeds keep it
(issue 19; docs/records.md names the seed section each implements).

Every command signs in (ESCR_TOKEN or a password) and calls `escr.app.keeping`, the same front
door as the web pages; the rules decide who may do what.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from escr.app.keeping import Keeping
from escr.cli.common import JsonOpt, UserOpt, _date, _print_json, _services, app, day, handles_errors, out, signed_in

status_app = typer.Typer(help="A child's status history (seed 001 sections 17-18).", no_args_is_help=True)
exam_app = typer.Typer(help="Managers' file examinations (seed 003 section 4).", no_args_is_help=True)
volume_app = typer.Typer(help="Paper volumes and originals of a child's file: moves and losses (seed 001 "
                              "sections 1, 7, 22-23).", no_args_is_help=True)
disposal_app = typer.Typer(help="Disposal review, two-person approval, category holds (seed 003 appendix 3).",
                           no_args_is_help=True)
cover_app = typer.Typer(help="The cover-sheet register and batch manifests (protocol steps 2 and 6).",
                        no_args_is_help=True)
scanner_app = typer.Typer(help="The scanner check per device per day (protocol step 1).", no_args_is_help=True)
app.add_typer(status_app, name="status")
app.add_typer(exam_app, name="examination")
app.add_typer(volume_app, name="volume")
app.add_typer(disposal_app, name="disposal")
app.add_typer(cover_app, name="coversheets")
app.add_typer(scanner_app, name="scanner-check")

DateOpt = Annotated[str | None, typer.Option(help="DD/MM/YYYY.")]


def _keeping(command: str, user: str | None) -> Keeping:
    services = _services()
    return Keeping(services, signed_in(services, command, user))


def _say(text: str) -> None:
    out.print(text, highlight=False, markup=False)


def _show(data: Any, as_json: bool, text: str) -> None:
    if as_json:
        _print_json(data)
    else:
        _say(text)


# --- status history ------------------------------------------------------------------------------


@status_app.command("list")
@handles_errors
def status_list(child: str, user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """The child's status history, oldest first."""
    rows = _keeping("status list", user).statuses(child)
    if as_json:
        _print_json(rows)
        return
    if not rows:
        _say(f"{child}: no status history")
    for r in rows:
        span = r.get("on_date") or f"{r.get('from_date') or '?'} to {r.get('to_date') or 'now'}"
        _say(f"{r['status']:<12} {span:<26} ({r.get('source', '-')})")


@status_app.command("add")
@handles_errors
def status_add(
    child: str,
    status: Annotated[str, typer.Option(help="cin, s47, cp, cla, care_leaver, adoption, closed or died.")],
    from_date: Annotated[str | None, typer.Option("--from", help="Start, DD/MM/YYYY.")] = None,
    to_date: Annotated[str | None, typer.Option("--to", help="End, DD/MM/YYYY (empty: ongoing).")] = None,
    on: Annotated[str | None, typer.Option(help="The order, final contact or death date, DD/MM/YYYY.")] = None,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a period or a dated status; the child's documents' retention is recomputed (never shortened)."""
    result = _keeping("status add", user).add_status(child, status=status, from_date=_date(from_date),
                                                     to_date=_date(to_date), on_date=_date(on))
    _show(result, as_json, f"{child}: {status} recorded; {result['retention_changes']} retention date(s) changed")


# --- file examinations ---------------------------------------------------------------------------


@exam_app.command("add")
@handles_errors
def exam_add(
    child: str,
    kind: Annotated[str, typer.Option(help="supervision, review or audit.")],
    purpose: Annotated[str, typer.Option(help="Why the file was examined.")],
    notes: Annotated[str, typer.Option(help="What was found or decided.")] = "",
    on: DateOpt = None,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a manager's examination of a child's file (append-only)."""
    result = _keeping("examination add", user).examine(child, kind=kind, purpose=purpose, notes=notes,
                                                        examined_on=_date(on))
    _show(result, as_json, f"examination {result['id']} recorded on {child}'s file")


@exam_app.command("list")
@handles_errors
def exam_list(child: str, user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """The examinations of a child's file, newest first."""
    rows = _keeping("examination list", user).examinations(child)
    if as_json:
        _print_json(rows)
        return
    if not rows:
        _say(f"{child}: no examinations recorded")
    for r in rows:
        _say(f"{r['examined_on']}  {r['kind']:<11} {r['examined_by']:<16} {r['purpose']}")


# --- paper volumes and originals ------------------------------------------------------------------


@volume_app.command("register")
@handles_errors
def volume_register(
    volume_id: str,
    child: Annotated[str, typer.Option(help="The child's id.")],
    title: Annotated[str, typer.Option(help="e.g. 'Volume 2' or 'Adoption order'.")],
    location: Annotated[str, typer.Option(help="Where it is now, e.g. 'Records store, bay 4'.")],
    kind: Annotated[str, typer.Option(help="volume or original.")] = "volume",
    contents: Annotated[str, typer.Option(help="What it holds.")] = "",
    doc_type: Annotated[str | None, typer.Option(help="For an original: its document type.")] = None,
    covers_from: Annotated[str | None, typer.Option("--from", help="First date it covers, DD/MM/YYYY.")] = None,
    covers_to: Annotated[str | None, typer.Option("--to", help="Last date it covers, DD/MM/YYYY.")] = None,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a volume of a child's paper file, or a document kept in original."""
    result = _keeping("volume register", user).register_volume(
        volume_id=volume_id, child_id=child, kind=kind, title=title, location=location, contents=contents,
        doc_type=doc_type, covers_from=_date(covers_from), covers_to=_date(covers_to))
    _show(result, as_json, f"{kind} {volume_id} of {child} registered at {location}")


@volume_app.command("list")
@handles_errors
def volume_list(child: str, user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Every component of a child's file and where each one is now."""
    data = _keeping("volume list", user).components(child)
    if as_json:
        _print_json(data)
        return
    for v in data["paper"]:
        span = f"{v['covers_from'] or '?'} to {v['covers_to'] or '?'}" if v["kind"] == "volume" else v["doc_type"] or ""
        _say(f"{v['kind']:<8} {v['id']:<16} {v['title']:<24} {span:<24} {v['state']:<10} at {v['location']}")
    _say(f"{len(data['documents'])} electronic document(s) on the record")
    for i in data["open_incidents"]:
        _say(f"OPEN INCIDENT {i['id']}: {i['volume_id']} reported {i['kind']} by {i['reported_by']}")


@volume_app.command("show")
@handles_errors
def volume_show(volume_id: str, user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """One volume or original: where it is, its moves and incidents."""
    v = _keeping("volume show", user).volume(volume_id)
    if as_json:
        _print_json(v)
        return
    _say(f"{v['kind']} {v['id']} of {v['child_id']}: {v['title']} - {v['state']} at {v['location']}")
    for m in v["moves"]:
        done = f"confirmed by {m['confirmed_by']}" if m["confirmed_by"] else "NOT CONFIRMED"
        _say(f"  move {m['move_id']}: {m['sender']} -> {m['recipient']} ({m['purpose']}) {day(m['moved_at'])} {done}")
    for i in v["incidents"]:
        _say(f"  incident {i['id']}: {i['kind']}, {'closed: ' + i['outcome'] if i['closed_at'] else 'open'}")


@volume_app.command("link")
@handles_errors
def volume_link(doc: str, volume_id: str, user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Record that a scanned document's paper came from this volume."""
    result = _keeping("volume link", user).link_document(doc, volume_id)
    _show(result, as_json, f"{doc}: paper from {volume_id}")


@volume_app.command("out")
@handles_errors
def volume_out(
    volume_id: str,
    to: Annotated[str, typer.Option("--to", help="Who or where it goes.")],
    authorised_by: Annotated[str, typer.Option(help="The manager (user name) who authorised the removal.")],
    due_back: Annotated[str, typer.Option(help="Agreed return date, DD/MM/YYYY.")],
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Book a volume or original out: a named manager's authority and a due-back date are required."""
    due = _date(due_back)
    assert due is not None
    m = _keeping("volume out", user).book_out(volume_id, recipient=to, authorised_by=authorised_by, due_back=due)
    _show(m, as_json, f"move {m['move_id']}: {volume_id} booked out to {to}, due back {m['due_back']}; "
                      "the receiver confirms arrival")


@volume_app.command("in")
@handles_errors
def volume_in(volume_id: str, to: Annotated[str, typer.Option("--to", help="Where it is returned to.")],
              user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Book a volume back in; it is in place once the receiver confirms arrival."""
    m = _keeping("volume in", user).book_in(volume_id, to=to)
    _show(m, as_json, f"move {m['move_id']}: {volume_id} on its way back to {to}; the receiver confirms arrival")


@volume_app.command("confirm")
@handles_errors
def volume_confirm(move_id: int, user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Confirm a volume's arrival (never by whoever booked the move)."""
    m = _keeping("volume confirm", user).confirm_move(move_id)
    _show(m, as_json, f"move {move_id}: arrival at {m['recipient']} confirmed")


@volume_app.command("overdue")
@handles_errors
def volume_overdue(user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Volumes and originals past their due-back date or not confirmed as arrived. Exits 1 if any."""
    rows = _keeping("volume overdue", user).overdue()
    if as_json:
        _print_json(rows)
    else:
        if not rows:
            _say("no volume or original is overdue")
        for r in rows:
            what = "arrival not confirmed" if r["problem"] == "unconfirmed" else f"due back {r['due_back']}"
            _say(f"{r['paper_ref']:<16} {r['child_id']:<10} {r['title']:<24} {r['recipient']:<20} {what} "
                 f"({r['days']} days)")
    if rows:
        raise typer.Exit(1)


@volume_app.command("lost")
@handles_errors
def volume_lost(
    volume_id: str,
    kind: Annotated[str, typer.Option(help="missing or stolen.")],
    description: Annotated[str, typer.Option(help="What happened, where it was last seen.")],
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Report a volume or original missing or stolen: an incident opens and people are told at once."""
    r = _keeping("volume lost", user).report_loss(volume_id, kind=kind, description=description)
    n = r["notified"]
    _show(r, as_json, f"incident {r['incident_id']} opened: {volume_id} {kind}; alert command {n.get('command')}, "
                      f"e-mail {n.get('email')} ({n.get('recipients', 0)} recipient(s))")


@volume_app.command("follow-up")
@handles_errors
def volume_follow_up(incident: int, note: Annotated[str, typer.Option(help="What was done.")],
                     user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Add a follow-up to an open incident."""
    r = _keeping("volume follow-up", user).follow_up(incident, note)
    _show(r, as_json, f"follow-up {r['follow_up_id']} added to incident {incident}")


@volume_app.command("close")
@handles_errors
def volume_close(
    incident: int,
    outcome: Annotated[str, typer.Option(help="found, recovered or not_found.")],
    location: Annotated[str | None, typer.Option(help="Where the paper is now (found or recovered).")] = None,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Close an incident (team managers and records managers)."""
    r = _keeping("volume close", user).close_incident(incident, outcome=outcome, location=location)
    _show(r, as_json, f"incident {incident} closed: {outcome}")


# --- disposal --------------------------------------------------------------------------------------


@disposal_app.command("review")
@handles_errors
def disposal_review(user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Records whose retention has passed and that nothing holds."""
    rows = _keeping("disposal review", user).disposal_review()
    if as_json:
        _print_json(rows)
        return
    if not rows:
        _say("nothing is due for disposal")
    for r in rows:
        _say(f"{r['kind']:<9} {r['id']:<24} {','.join(r['child_ids']):<20} {r['doc_type'] or '-':<24} "
             f"kept until {r['retention_until']}")


@disposal_app.command("propose")
@handles_errors
def disposal_propose(
    reason: Annotated[str, typer.Option(help="Why these records may go.")],
    doc: Annotated[list[str] | None, typer.Option("--doc", help="A document id (repeat).")] = None,
    volume: Annotated[list[str] | None, typer.Option("--volume", help="A paper volume id (repeat).")] = None,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Propose items of the review list for disposal (records managers); a second person approves."""
    items = [("document", d) for d in doc or []] + [("volume", v) for v in volume or []]
    r = _keeping("disposal propose", user).propose_disposal(items, reason=reason)
    _show(r, as_json, f"proposal {r['proposal_id']}: {len(r['items'])} item(s) proposed; waiting for approval")


@disposal_app.command("decide")
@handles_errors
def disposal_decide(
    proposal: int,
    note: Annotated[str, typer.Option(help="Why.")],
    approve: Annotated[bool, typer.Option("--approve/--refuse", help="Approve or refuse.")],
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Approve or refuse a proposal (not its proposer)."""
    r = _keeping("disposal decide", user).decide_disposal(proposal, approve=approve, note=note)
    _show(r, as_json, f"proposal {proposal} {r['state']}")


@disposal_app.command("carry-out")
@handles_errors
def disposal_carry_out(proposal: int, user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Dispose of an approved proposal's items whose locks have expired; writes the certificate."""
    r = _keeping("disposal carry-out", user).carry_out_disposal(proposal)
    if as_json:
        _print_json(r)
        return
    _say(f"proposal {proposal}: {len(r['disposed'])} disposed; certificate {r['certificate_key'] or '-'}")
    for item, why in r["waiting"].items():
        _say(f"  waiting: {item}: {why}")


@disposal_app.command("tombstones")
@handles_errors
def disposal_tombstones(item: Annotated[str | None, typer.Option(help="Only this item id.")] = None,
                        user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """What is kept for ever of disposed records."""
    rows = _keeping("disposal tombstones", user).tombstones(item)
    if as_json:
        _print_json(rows)
        return
    for t in rows:
        _say(f"{t['kind']:<9} {t['item_id']:<24} disposed {day(t['disposed_at'])} proposal {t['proposal_id']} "
             f"({t['proposed_by']} / {t['approved_by']})")


@disposal_app.command("holds")
@handles_errors
def disposal_holds(user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """The category-wide holds in force."""
    rows = _keeping("disposal holds", user).holds()
    if as_json:
        _print_json(rows)
        return
    if not rows:
        _say("no category hold is in force")
    for h in rows:
        _say(f"hold {h['id']}: {h['scope']} = {h['value']} since {day(h['set_at'])} ({h['set_by']}): {h['reason']}")


@disposal_app.command("hold")
@handles_errors
def disposal_hold(
    scope: Annotated[str, typer.Option(help="doc_type or status.")],
    value: Annotated[str, typer.Option(help="The document type or child status held.")],
    reason: Annotated[str, typer.Option(help="e.g. the inquiry's destruction freeze.")],
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Stop disposal of a whole class of records at once (records managers)."""
    r = _keeping("disposal hold", user).set_hold(scope=scope, value=value, reason=reason)
    _show(r, as_json, f"hold {r['hold_id']}: nothing with {scope} {r['value']} is disposed of")


@disposal_app.command("release")
@handles_errors
def disposal_release(hold: int, reason: Annotated[str, typer.Option(help="Why it ends.")],
                     user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Release a category hold."""
    r = _keeping("disposal release", user).release_hold(hold, reason=reason)
    _show(r, as_json, f"hold {hold} released")


# --- timeliness ------------------------------------------------------------------------------------


@app.command("arrival")
@handles_errors
def arrival(
    ref: Annotated[str, typer.Argument(help="A cover-sheet batch id or a document id.")],
    on: Annotated[str, typer.Option(help="The day the paper reached the office, DD/MM/YYYY.")],
    source: Annotated[str, typer.Option(help="officer (your entry) or cover_stamp (read off the stamp).")] = "officer",
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record when paper arrived in the office (business support)."""
    day = _date(on)
    assert day is not None
    r = _keeping("arrival", user).record_arrival(ref, day, source=source)
    _show(r, as_json, f"{ref}: arrived {r['arrived_on']} ({source})")


@app.command("timeliness")
@handles_errors
def timeliness_report(
    month: Annotated[str, typer.Option(help="YYYY-MM (default: this month).")] = "",
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Also write the report as CSV to this file.")] = None,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Working days from arrival to verified, per team, for paper that arrived in the month."""
    r = _keeping("timeliness", user).timeliness(month)
    if csv_out is not None:
        csv_out.write_text(r["csv"])
    if as_json:
        _print_json({k: v for k, v in r.items() if k != "csv"})
        return
    if not r["teams"]:
        _say(f"{month}: no paper with an arrival date")
    for t in r["teams"]:
        _say(f"{t['team']:<12} items {t['items']:>4}  verified {t['completed']:>4}  median {t['median_days']}  "
             f"90th {t['p90_days']}  over {r['target_working_days']} days {t['over_target']}  waiting {t['waiting']}")


# --- cover-sheet register and batch manifest --------------------------------------------------------


@cover_app.command("unscanned")
@handles_errors
def cover_unscanned(days: Annotated[int | None, typer.Option(help="Printed at least this many days ago.")] = None,
                    user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Cover sheets printed but not scanned. Exits 1 if any."""
    r = _keeping("coversheets unscanned", user).unscanned(days)
    if as_json:
        _print_json(r)
    else:
        if not r["items"]:
            _say(f"every cover sheet printed {r['days']} or more days ago has been scanned")
        for i in r["items"]:
            _say(f"{i['cover_batch_id']:<12} printed {day(i['printed_at'])} by {i['printed_by']:<16} "
                 f"{','.join(i['children'])} {i['doc_type']}")
    if r["items"]:
        raise typer.Exit(1)


@cover_app.command("manifest")
@handles_errors
def cover_manifest(batch: str, user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """A batch's declared pages against what was found, and items listed missing."""
    m = _keeping("coversheets manifest", user).manifest(batch)
    if as_json:
        _print_json(m)
        return
    for key, value in m.items():
        _say(f"{key}: {value}")


@cover_app.command("missing")
@handles_errors
def cover_missing(batch: str, description: Annotated[str, typer.Option(help="What is missing.")],
                  pages: Annotated[int | None, typer.Option(help="How many pages.")] = None,
                  user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """List an item of a batch as missing (accounted for, not found)."""
    m = _keeping("coversheets missing", user).list_missing(batch, description=description, pages=pages)
    _show(m, as_json, f"{batch}: missing item listed; reconciled: {m.get('reconciled')}")


# --- scanner check -----------------------------------------------------------------------------------


@scanner_app.command("target")
@handles_errors
def scanner_target(output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the PDF.")],
                   user: UserOpt = None) -> None:
    """Write escr's test target (PDF) to print and scan."""
    _keeping("scanner-check target", user)
    output.write_bytes(Keeping.scanner_target())
    _say(f"test target written to {output}: print it at 100%, scan it on the device, then run "
         "`escr scanner-check run`")


@scanner_app.command("run")
@handles_errors
def scanner_run(scan: Path, device: Annotated[str, typer.Option(help="The scanner's name, as intake sees it.")],
                user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Measure a scanned test target and log the day's check for the device. Exits 1 if it failed."""
    r = _keeping("scanner-check run", user).run_scanner_check(device, scan)
    if as_json:
        _print_json(r)
    else:
        _say(f"scanner check {r['id']} for {device} on {r['day']}: {'PASSED' if r['passed'] else 'FAILED'}")
        for f in r["failures"]:
            _say(f"  {f}")
    if not r["passed"]:
        raise typer.Exit(1)


@scanner_app.command("list")
@handles_errors
def scanner_list(device: Annotated[str | None, typer.Option(help="Only this device.")] = None,
                 user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Scanner checks, newest first."""
    rows = _keeping("scanner-check list", user).scanner_checks(device)
    if as_json:
        _print_json(rows)
        return
    for c in rows:
        _say(f"{c['day']}  {c['device']:<20} {'pass' if c['passed'] else 'FAIL':<5} check {c['id']} "
             f"by {c['checked_by']}")
