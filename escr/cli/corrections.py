"""`escr qc withdraw`, `escr third-party`, `escr rescan`, `escr corrections ...`.

Putting right what was filed wrong, from the command line, by the same rules as the web pages:
a scanner withdraws their own scan, a verifier sets or clears the third-party flag, business
support link a rescan to the scan it replaces, and a verified document is corrected by two
people (one asks with a reason, another approves).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from escr.cli.common import JsonOpt, UserOpt, VersionOpt, _date, _print_json, app, handles_errors, operations, out, qc_app

corrections_app = typer.Typer(help="Correcting a verified document: one person asks, a second approves.",
                              no_args_is_help=True)
app.add_typer(corrections_app, name="corrections")  # registered when escr.cli.main imports this module

@qc_app.command("withdraw")
@handles_errors
def qc_withdraw(doc: str, reason: Annotated[str, typer.Option(help="Why it must be rescanned.")],
                version: VersionOpt = None, user: UserOpt = None) -> None:
    """Withdraw your own scan for a rescan (the scanner only; anyone else rejects it)."""
    operations("qc withdraw", user).decide(doc, "withdraw", reason=reason, version=version)
    out.print(f"{doc} withdrawn for a rescan")


@app.command("third-party")
@handles_errors
def third_party(
    doc: str,
    flag: Annotated[bool, typer.Option("--set/--clear", help="Set or clear the third-party flag.")],
    reason: Annotated[str, typer.Option(help="Why (logged with the change).")],
    version: VersionOpt = None, user: UserOpt = None,
) -> None:
    """Set or clear a document's third-party flag, with a reason (a verifier who may open it)."""
    on = operations("third-party", user).set_third_party(doc, on=flag, reason=reason, version=version)
    out.print(f"{doc} is {'now' if on else 'no longer'} flagged as holding third-party information")


@app.command("rescan")
@handles_errors
def rescan(doc: str, replaces: Annotated[str, typer.Option(help="The rejected or withdrawn scan it replaces.")],
           user: UserOpt = None) -> None:
    """Link a rescan to the scan it replaces; that one is superseded (kept in the audit trail)."""
    state = operations("rescan", user).link_rescan(doc, replaces)
    out.print(f"{doc} replaces {replaces}, which is now {state}")


def _print_request(row: dict[str, Any]) -> None:
    changes = ", ".join(f"{k}: {row['changes']['before'].get(k)} -> {v}"
                        for k, v in row["changes"].items() if k != "before")
    out.print(f"correction {row['id']} of {row['document_id']}: {row['status']} (asked by {row['requested_by']}: "
              f"{row['reason']}) {changes}", highlight=False)
    for entry in row.get("misfiling") or []:
        people = ", ".join(f"{p['actor']} ({p['opened']})" for p in entry["people"]) or "nobody"
        out.print(f"  misfiling record: while filed to {entry['child_id']}, opened by {people}", highlight=False)


@corrections_app.command("ask")
@handles_errors
def corrections_ask(
    doc: str,
    reason: Annotated[str, typer.Option(help="Why the document is wrong.")],
    child: Annotated[list[str] | None, typer.Option("--child", help="The right child id; repeat for siblings.")] = None,
    doc_type: Annotated[str | None, typer.Option("--doc-type", help="The right type.")] = None,
    doc_date: Annotated[str | None, typer.Option("--date", help="The right date, DD/MM/YYYY.")] = None,
    user: UserOpt = None, as_json: JsonOpt = False,
) -> None:
    """Ask for a verified document to be moved to other children, or given another type or date."""
    row = operations("corrections ask", user).request_correction(doc, reason=reason, child_ids=child or None,
                                                                 doc_type=doc_type, doc_date=_date(doc_date))
    if as_json:
        _print_json(row)
        return
    _print_request(row)
    out.print("nothing changes until a second person approves it (`escr corrections approve`)")


@corrections_app.command("list")
@handles_errors
def corrections_list(
    doc: Annotated[str | None, typer.Option("--doc", help="One document's corrections, whatever their status.")] = None,
    user: UserOpt = None, as_json: JsonOpt = False,
) -> None:
    """Corrections waiting for you to approve or refuse (or, with --doc, one document's)."""
    o = operations("corrections list", user)
    rows = o.corrections(doc) if doc else o.corrections_waiting()
    if as_json:
        _print_json(rows)
        return
    for row in rows:
        _print_request(row)
    if not rows:
        out.print("no corrections" if doc else "no correction is waiting for you")


@corrections_app.command("approve")
@handles_errors
def corrections_approve(request_id: int, note: Annotated[str, typer.Option(help="A note (optional).")] = "",
                        user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Approve a correction someone else asked for: the document moves, the misfiling record is kept."""
    row = operations("corrections approve", user).decide_correction(request_id, approve=True, note=note)
    if as_json:
        _print_json(row)
        return
    _print_request(row)


@corrections_app.command("refuse")
@handles_errors
def corrections_refuse(request_id: int, reason: Annotated[str, typer.Option(help="Why it is refused.")],
                       user: UserOpt = None) -> None:
    """Refuse a correction someone else asked for, with a reason."""
    row = operations("corrections refuse", user).decide_correction(request_id, approve=False, note=reason)
    _print_request(row)
