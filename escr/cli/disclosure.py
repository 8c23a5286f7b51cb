"""`escr disclosure ...`: subject access and disclosure from the command line (issue 18), as the
signed-in disclosure officer (ESCR_TOKEN or a password), through `escr.app.disclosure`."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from escr.app.disclosure import Disclosures, parse_ref
from escr.cli.common import JsonOpt, UserOpt, _date, _print_json, _services, app, handles_errors, out, signed_in

disclosure_app = typer.Typer(help="Subject access and disclosure: requests, redaction, review, bundles.",
                             no_args_is_help=True)
app.add_typer(disclosure_app, name="disclosure")


def _d(command: str, user: str | None) -> Disclosures:
    services = _services()
    return Disclosures(services, signed_in(services, command, user))


def _show(data: Any, as_json: bool, line: str) -> None:
    if as_json:
        _print_json(data)
    else:
        out.print(line)


@disclosure_app.command("list")
@handles_errors
def list_requests(as_json: JsonOpt = False, user: UserOpt = None) -> None:
    """The requests you prepare or review, the nearest due first."""
    rows = _d("disclosure list", user).requests()
    if as_json:
        _print_json(rows)
        return
    for r in rows:
        out.print(f"{r['ref']}  due {r['due_on']:%d %b %Y}  {r['state_label']}  {', '.join(r['children'])}")
    if not rows:
        out.print("No requests.")


@disclosure_app.command("open")
@handles_errors
def open_request(requester: Annotated[str, typer.Option(help="Who is asking.")],
                 relationship: Annotated[str, typer.Option(help="Their relationship to the child.")],
                 child: Annotated[list[str], typer.Option("--child", help="A child id (repeat for several).")],
                 basis: Annotated[str, typer.Option(help="subject_access, court, agency_sharing, care_leaver, other")]
                 = "subject_access",
                 received: Annotated[str | None, typer.Option(help="Date received (DD/MM/YYYY).")] = None,
                 since: Annotated[str | None, typer.Option(help="Documents dated from (DD/MM/YYYY).")] = None,
                 until: Annotated[str | None, typer.Option(help="Documents dated to (DD/MM/YYYY).")] = None,
                 as_json: JsonOpt = False, user: UserOpt = None) -> None:
    """Open a disclosure request; it is due one calendar month after it was received."""
    r = _d("disclosure open", user).open_request(requester=requester, relationship=relationship, basis=basis,
                                                 child_ids=child, received_on=_date(received),
                                                 period_from=_date(since), period_to=_date(until))
    _show(r, as_json, f"{r['ref']} opened, due {r['due_on']:%d %B %Y}")


@disclosure_app.command("show")
@handles_errors
def show(request: str, as_json: JsonOpt = False, user: UserOpt = None) -> None:
    """A request: its documents, redactions and review."""
    r = _d("disclosure show", user).request(parse_ref(request))
    if as_json:
        _print_json(r)
        return
    out.print(f"{r['ref']}: {r['state_label']}; {len(r['documents'])} documents, {r['pages']} pages; "
              f"{r['applied']} redactions applied, {r['proposed']} proposed")
    for d in r["documents"]:
        out.print(f"  {d['id']}  {d['pages']} pages  {d['applied']} applied  {d['proposed']} proposed"
                  f"{'  reviewed' if d['reviewed'] else ''}")


@disclosure_app.command("propose")
@handles_errors
def propose(request: str, term: Annotated[str | None, typer.Option(help="Find these words everywhere instead.")] = None,
            reason: Annotated[str, typer.Option(help="Exemption reason for --term.")] = "third_party",
            as_json: JsonOpt = False, user: UserOpt = None) -> None:
    """Propose redactions from the pages' words (or of --term everywhere); none applies until accepted."""
    d = _d("disclosure propose", user)
    found = d.search_and_redact(parse_ref(request), term, reason) if term else d.propose(parse_ref(request))
    _show(found, as_json, f"{found['proposed']} redactions proposed")


@disclosure_app.command("redact")
@handles_errors
def redact(request: str, document: str, reason: Annotated[str, typer.Option(help="Exemption reason code.")],
           page: Annotated[int | None, typer.Option(help="Page of the document (1-based).")] = None,
           box: Annotated[str | None, typer.Option(help="x0,y0,x1,y1 as fractions of the page (0-1).")] = None,
           whole: Annotated[str, typer.Option(help="area, page or document")] = "area",
           as_json: JsonOpt = False, user: UserOpt = None) -> None:
    """Redact an area of a page, a whole page or a whole document."""
    corners = None
    if box:
        parts = box.split(",")
        if len(parts) != 4:
            raise typer.BadParameter("--box takes four numbers: x0,y0,x1,y1")
        corners = tuple(float(p) for p in parts)
    red = _d("disclosure redact", user).redact(parse_ref(request), document, reason=reason, page=page,
                                               box=corners, whole=whole)  # type: ignore[arg-type]
    _show(red, as_json, f"redaction {red['id']} applied")


@disclosure_app.command("decide")
@handles_errors
def decide(request: str, action: Annotated[str, typer.Argument(help="accept, reject, remove or reason")],
           ids: Annotated[list[int], typer.Argument(help="Redaction ids.")],
           reason: Annotated[str | None, typer.Option(help="Exemption reason to give them.")] = None,
           user: UserOpt = None) -> None:
    """Accept or reject proposals, remove applied redactions, or change their reason."""
    changed = _d("disclosure decide", user).decide(parse_ref(request), ids, action, reason=reason)
    out.print(f"{changed} redactions changed")


@disclosure_app.command("submit")
@handles_errors
def submit(request: str, reviewer: Annotated[str, typer.Option(help="Another disclosure officer.")],
           user: UserOpt = None) -> None:
    """Send the bundle for review by a second disclosure officer."""
    _d("disclosure submit", user).submit(parse_ref(request), reviewer)
    out.print(f"sent to {reviewer} for review")


@disclosure_app.command("review")
@handles_errors
def review(request: str, document: str, user: UserOpt = None) -> None:
    """As the reviewer: you have checked every page of this document."""
    _d("disclosure review", user).review_document(parse_ref(request), document)
    out.print(f"{document} reviewed")


@disclosure_app.command("approve")
@handles_errors
def approve(request: str, note: Annotated[str, typer.Option()] = "", user: UserOpt = None) -> None:
    """As the reviewer: approve the bundle (never your own)."""
    _d("disclosure approve", user).approve(parse_ref(request), note)
    out.print("approved")


@disclosure_app.command("return")
@handles_errors
def return_bundle(request: str, note: Annotated[str, typer.Option(help="What must change.")], user: UserOpt = None) -> None:
    """As the reviewer: return the bundle to its preparer."""
    _d("disclosure return", user).return_bundle(parse_ref(request), note)
    out.print("returned to the preparer")


@disclosure_app.command("export")
@handles_errors
def export(request: str, output: Annotated[Path | None, typer.Option("-o", "--output", help="Also write it here.")] = None,
           as_json: JsonOpt = False, user: UserOpt = None) -> None:
    """Export the approved bundle (redactions burnt in) and record its hash."""
    d = _d("disclosure export", user)
    r = d.export(parse_ref(request))
    if output is not None:
        stream, _ = d.open_bundle(parse_ref(request))
        with stream, output.open("wb") as fh:
            shutil.copyfileobj(stream, fh)
    _show(r, as_json, f"{r['ref']}: {r['bundle_pages']} pages, SHA-256 {r['bundle_sha256']}")


@disclosure_app.command("get")
@handles_errors
def get(request: str, output: Annotated[Path, typer.Option("-o", "--output")],
        schedule: Annotated[bool, typer.Option(help="The redaction schedule as CSV instead.")] = False,
        user: UserOpt = None) -> None:
    """Download the exported bundle, or its redaction schedule."""
    d = _d("disclosure get", user)
    if schedule:
        output.write_text(d.schedule_csv(parse_ref(request)))
    else:
        stream, _ = d.open_bundle(parse_ref(request))
        with stream, output.open("wb") as fh:
            shutil.copyfileobj(stream, fh)
    out.print(f"written to {output}")


@disclosure_app.command("give")
@handles_errors
def give(request: str, recipient: Annotated[str, typer.Option(help="Who received it.")],
         method: Annotated[str, typer.Option(help="post, secure_email, collected, in_person, court")],
         on: Annotated[str | None, typer.Option(help="Date given (DD/MM/YYYY); today if left out.")] = None,
         note: Annotated[str, typer.Option()] = "", user: UserOpt = None) -> None:
    """Record the copy given (on each child's record and in the access log)."""
    given: date | None = _date(on)
    c = _d("disclosure give", user).record_disclosure(parse_ref(request), recipient=recipient, method=method,
                                                      given_on=given, note=note)
    out.print(f"copy {c['id']} recorded")
