"""The auditor's tools in the browser (issue 17): provenance with a verdict, integrity checks,
paper custody and the access log's activity.

An auditor must be able to say in one sentence whether a scanned document can be relied on
instead of its paper, then show why. So the provenance answer leads with a verdict made of the
checks an inspector would ask about - the events' hashes recomputed and chained, the events
sealed by an anchor, four-eyes kept, the stored files' SHA-256 recomputed by a fixity run - and
then tells the protocol events as steps in words, with their fields on demand. Integrity checks
for a child, a document or a period run the same fixity pipeline as `escr fixity` (each run is
recorded and logged) and explain each finding in plain English with what to do.

The web pages and the API only render these answers.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from escr.app import access, labels
from escr.app.access import AccessDenied, Can, Principal, Role, require, require_change
from escr.app.operations import Operations
from escr.clock import as_utc, iso
from escr.errors import InvalidState, NotFound, ValidationFailed
from escr.record import payloads
from escr.record.events import AccessEvent, event_hash, payload_of, record
from escr.record.models import (
    ChainAnchor,
    Child,
    Document,
    DocumentChild,
    Event,
    FixityRun,
    PaperMove,
    PaperVolume,
)
from escr.record.states import PAPER_LOSSES, PaperState
from escr.services import Services

log = logging.getLogger("escr.app.auditing")

# --- findings in words --------------------------------------------------------------------------

# Each finding code of escr.provenance.checks: what it means, and what to do about it.
FINDINGS: dict[str, tuple[str, str, str]] = {
    "event_altered": ("An event was changed after it was written",
                      "Its fields no longer give the hash recorded with it, so someone edited the log.",
                      "Treat the event's content as unreliable; restore the events table from a backup and "
                      "compare."),
    "chain_broken": ("The chain of events is broken",
                     "An event does not carry the hash of the one before it: one of them was altered and "
                     "rehashed, or replaced.",
                     "Compare the two events with a backup; report it as a security incident."),
    "events_missing": ("Events were deleted",
                       "Event numbers are skipped where the chain breaks.",
                       "Restore the missing events from a backup; report it as a security incident."),
    "chain_head_mismatch": ("The end of the log was cut or extended",
                            "The chain head names another last event than the log ends with.",
                            "Compare the log's end with the newest anchor and a backup."),
    "anchor_mismatch": ("The log no longer matches an anchor",
                        "An anchored event now has another hash or position: the events table was rewritten.",
                        "The anchors are the evidence: restore the log from a backup taken before the rewrite."),
    "anchored_event_missing": ("An anchored event is gone",
                               "An anchor names an event that is no longer in the log.",
                               "Restore the log from a backup; report it as a security incident."),
    "anchor_invalid": ("An anchor's seal fails",
                       "An anchor object cannot be read, or its seal does not match: it was altered.",
                       "Check the anchor key and the object store's legal hold."),
    "anchor_missing": ("An anchor is missing from the store",
                       "The database lists an anchor whose object is gone.",
                       "Check the object store's retention settings and who can delete from it."),
    "anchor_unsealed": ("Anchors are not sealed with a key",
                        "Plain SHA-256 anchors can be re-made by whoever can write the store.",
                        "Set ESCR_ANCHOR__KEY so that new anchors are sealed (HMAC-SHA256)."),
    "anchor_key_missing": ("The anchor key is not available",
                           "The anchors are sealed, and escr has no key to check the seals with.",
                           "Give the server its anchor key (ESCR_ANCHOR__KEY)."),
    "anchor_key_exposed": ("The anchor key is readable by others",
                           "The key file can be read by users other than its owner.",
                           "Restrict the key file to its owner (chmod 600) and consider a new key."),
    "chain_tail_cut": ("The end of the log was cut",
                       "An anchor's own 'anchored' event is gone.",
                       "Restore the log's end from a backup; report it as a security incident."),
    "object_missing": ("A stored file is missing",
                       "An original scan, reading copy or manifest is gone from the object store.",
                       "Restore the file from the store's backup or replica; the paper may need rescanning."),
    "object_altered": ("A stored file was changed",
                       "Its SHA-256 is no longer the one logged when it was received.",
                       "Restore the file from a backup or replica; do not rely on the changed copy."),
    "object_unreadable": ("A stored file cannot be read",
                          "The object store refused or failed to return it.",
                          "Check the object store; run the check again when it answers."),
    "record_disagrees_with_log": ("A database row disagrees with the log",
                                  "A row's key, hash or verifier differs from the chained event: the row was edited.",
                                  "Trust the chained event; correct the row from a backup."),
    "manifest_disagrees": ("A manifest disagrees with the record",
                           "The stored JSON manifest names other hashes or people than the record.",
                           "Compare the manifest with the chained events."),
    "step_missing": ("A step of the scanning protocol is missing",
                     "A filed document did not pass every protocol step (received, checked, split, read, "
                     "indexed, quality-checked, stored, filed).",
                     "Look at the document's provenance; rescan it if a step cannot be shown."),
    "steps_out_of_order": ("Protocol steps happened out of order",
                           "A document's steps are not in the order the protocol sets.",
                           "Look at the document's provenance for what happened."),
    "four_eyes_violated": ("Four-eyes was not kept",
                           "The document was verified, or its quality failure accepted, by the person who "
                           "scanned or indexed it.",
                           "Have someone else verify the document again."),
    "document_missing": ("A filed document's row is gone",
                         "The log says a document was filed, and there is no row for it.",
                         "Restore the row from a backup; the stored files may still be there."),
    "object_unreferenced": ("A stored file that no record names",
                            "The store holds an object no scan or document in the database names.",
                            "Find out where it came from: a row deleted, or a file written by hand."),
}


def explain(code: str | None) -> dict[str, str]:
    """A finding code as a title, a meaning and what to do (unknown codes still read as words)."""
    title, meaning, action = FINDINGS.get(code or "", (labels.words(code), "", "See docs/provenance.md."))
    return {"code": code or "", "title": title, "meaning": meaning, "action": action}




# --- provenance with a verdict ------------------------------------------------------------------

# Each protocol step as a sentence a person reads; the fields stay one click away.
STEPS: dict[str, str] = {
    "received": "The scanned file arrived and its SHA-256 fingerprint was taken before anything read it.",
    "duplicate": "The file was found to be a copy of one already filed.",
    "preflight": "The file was checked: a readable PDF or image, no unsafe content.",
    "quarantined": "The file was set aside in quarantine.",
    "quarantine_released": "The file was released from quarantine to be tried again.",
    "split": "The scan was split into documents at its cover sheets.",
    "ocr": "The pages were read by OCR to make the text searchable.",
    "tagged": "The document's type, date and identifiers were found.",
    "linked": "The document was matched to the child.",
    "needs_indexing": "No child could be matched beyond doubt: the document waited for a person to index it.",
    "qc": "Image quality was checked (resolution, blank pages, skew, legibility).",
    "stored": "The original, the reading copy and the manifest were stored and read back to check their hashes.",
    "filed": "The document was filed in the record.",
    "indexed": "A person indexed the document.",
    "qc_accepted": "A person accepted a quality-check failure, with a reason.",
    "verified": "A second person checked the document against the paper and verified it.",
    "rejected": "The document was rejected for rescanning.",
    "withdrawn": "The document was withdrawn for a rescan.",
    "superseded": "The document was replaced by a rescan.",
    "third_party_changed": "The third-party flag was changed.",
    "correction_requested": "A correction was asked for.",
    "correction_approved": "A correction was approved by a second person.",
    "correction_refused": "A correction was refused.",
    "misfiling_recorded": "A misfiling was recorded.",
    "fixity_checked": "A fixity check recomputed the stored files' hashes.",
    "fixity_alert": "A fixity check raised an alert.",
    "paper_moved": "The paper was moved.",
    "paper_arrived": "The paper's arrival was confirmed.",
    "paper_destroyed": "The paper original was destroyed, with a certificate.",
    "paper_returned": "The paper original was returned.",
    "retention_changed": "The retention date changed.",
    "retention_not_shortened": "A shorter retention date was refused: dates are never shortened.",
    "legal_hold_set": "A legal hold was set.",
    "legal_hold_released": "A legal hold was released.",
    "volume_linked": "The paper volume it came from was recorded.",
    "scanner_checked": "The scanner's daily check was recorded.",
}


# Short names for the steps, where the code's own words would read badly ("Ocr", "Qc").
STEP_TITLES: dict[str, str] = {
    "preflight": "File checked", "split": "Split into documents", "ocr": "Text read (OCR)",
    "tagged": "Type and date found", "linked": "Matched to the child", "needs_indexing": "Waiting for indexing",
    "qc": "Quality checked", "qc_accepted": "Quality failure accepted", "fixity_checked": "Fixity checked",
    "third_party_changed": "Third-party flag changed", "volume_linked": "Paper volume recorded",
}
# Outcomes that mean something went wrong at that step; others are the step's ordinary result.
BAD_OUTCOMES = frozenset({"denied", "fail", "failed", "error", "findings", "rejected", "quarantined", "refused"})
OUTCOME_WORDS = {"ok": "", "pass": "Passed", "warn": "Passed with warnings", "fail": "Failed",
                 "findings": "Problems found", "linked": "", "filed": ""}


def _outcome_words(outcome: str) -> str:
    if outcome in OUTCOME_WORDS:
        return OUTCOME_WORDS[outcome]
    return labels.label(outcome, "document_state")


def _as_modelled(kind: str, detail: dict[str, Any]) -> dict[str, Any]:
    """The event's parts read through their kind's models (escr.record.payloads), so a step shows
    the facts the certificate and the fixity check read; a row that no longer fits (altered: the
    verdict says so) is shown as it is stored, not blanked."""
    shape = payloads.SHAPES.get(kind)
    models: dict[str, type[payloads.Payload] | None] = {
        "parameters": shape.parameters if shape else None, "inputs": shape.inputs if shape else None,
        "outputs": shape.outputs if shape else None, "software": payloads.Software}
    read = dict(detail)
    try:
        for part, model in models.items():
            logged = payloads.read(model, detail.get(part)) if model else None
            if logged is not None:
                read[part] = logged.as_json()
    except payloads.PayloadMismatch as exc:
        log.warning("a %s event does not fit its payload model: %s", kind, exc)
        return detail
    return read


def _event_fields(kind: str, detail: Any) -> list[tuple[str, str]]:
    """An event's recorded fields in words: its parameters by name, the software as one line."""
    if not isinstance(detail, dict):
        return _detail_pairs(detail)
    detail = _as_modelled(kind, detail)
    pairs: list[tuple[str, str]] = []
    for key in sorted(detail):
        value = detail[key]
        if key == "parameters" and isinstance(value, dict):
            pairs += _detail_pairs(value)
        elif key == "software" and isinstance(value, dict):
            if value:
                pairs.append(("Software", ", ".join(f"{k} {v}" for k, v in sorted(value.items()))))
        elif value not in ({}, [], None):
            pairs += _detail_pairs(value, f"{labels.words(key)} / ")
    return pairs


def _detail_pairs(detail: Any, prefix: str = "") -> list[tuple[str, str]]:
    """An event's fields as (name, value) lines, nested names joined, for the 'details' view."""
    pairs: list[tuple[str, str]] = []
    if isinstance(detail, dict):
        for key in sorted(detail):
            pairs += _detail_pairs(detail[key], f"{prefix}{labels.words(str(key))} / " if prefix
                                   else f"{labels.words(str(key))} / ")
        return pairs
    name = prefix.rstrip(" /") or "Value"
    if isinstance(detail, list):
        if all(not isinstance(v, dict | list) for v in detail):
            return [(name, ", ".join(str(v) for v in detail) or "none")]
        for i, v in enumerate(detail, start=1):
            pairs += _detail_pairs(v, f"{prefix}{i} / ")
        return pairs
    return [(name, "-" if detail is None else _moment_words(str(detail)))]


def _moment_words(text: str) -> str:
    """A recorded ISO moment as a UK date and local time with the zone; anything else unchanged."""
    if len(text) >= 19 and text[4] == "-" and text[10] == "T":
        try:
            return labels.local_time(datetime.fromisoformat(text)) + f" ({text})"
        except ValueError:
            return text
    return text


def _who(actor: str) -> str:
    kind, _, name = actor.partition(":")
    return {"operator": f"{name} (scanning operator)", "system": "escr (automatic)"}.get(kind, name or actor)


def provenance_view(services: Services, principal: Principal, doc_id: str) -> dict[str, Any]:
    """The document's provenance: a verdict first, then each protocol event as a step in words.

    Whoever may see the document's metadata may see this (the read is logged as a provenance
    read, as the table view's is)."""
    data = Operations(services, principal).provenance(doc_id, 0, 10_000)
    events = data["events"].items
    ids = [e["seq"] for e in events]
    with services.db.session() as session:
        doc = session.get(Document, doc_id)
        if doc is None:
            raise NotFound(f"document {doc_id} not found")
        verdict = _verdict(session, doc, ids)
    steps = [{"seq": e["seq"], "at": e["at"], "kind": e["kind"],
              "title": STEP_TITLES.get(e["kind"], labels.words(e["kind"])),
              "sentence": STEPS.get(e["kind"], labels.words(e["kind"]) + "."), "who": _who(e["actor"]),
              "outcome": e["outcome"], "outcome_words": _outcome_words(e["outcome"]),
              "ok": e["outcome"] not in BAD_OUTCOMES,
              "detail": _event_fields(e["kind"], e["detail"]), "hash": e["hash"], "prev_hash": e["prev_hash"]}
             for e in events]
    return {"document": data["document"], "original": data["original"], "verdict": verdict, "steps": steps}


def _verdict(session: Session, doc: Document, event_ids: list[int]) -> dict[str, Any]:
    rows = session.scalars(select(Event).where(Event.id.in_(event_ids)).order_by(Event.id)).all() if event_ids else []
    altered, unlinked = [], []
    for row in rows:
        if event_hash(row.prev_hash, payload_of(row)) != row.hash:
            altered.append(row.id)
        before = session.scalar(select(Event.hash).where(Event.id < row.id).order_by(Event.id.desc()).limit(1))
        if before is not None and before != row.prev_hash:
            unlinked.append(row.id)
    chain = {"ok": not altered and not unlinked, "events": len(rows), "altered": altered, "unlinked": unlinked}
    last = max(event_ids) if event_ids else None
    anchor = session.scalars(select(ChainAnchor).order_by(ChainAnchor.event_id.desc()).limit(1)).first()
    sealed = anchor is not None and last is not None and anchor.event_id >= last
    anchored = {"ok": sealed, "at": iso(anchor.created_at) if anchor else None,
                "event": anchor.event_id if anchor else None, "method": anchor.method if anchor else None,
                "last_event": last}
    kinds = {r.kind: r for r in rows}
    operator = doc.batch.operator
    verifier = kinds["verified"].actor if "verified" in kinds else None
    indexer = doc.indexed_by
    same = verifier is not None and verifier.casefold() in {operator.casefold(), (indexer or "").casefold()}
    four_eyes = {"ok": verifier is not None and not same, "verified": verifier is not None,
                 "verifier": verifier, "operator": operator, "indexer": indexer}
    fixity = _last_fixity_of(session, doc)
    checks = [chain["ok"], anchored["ok"], four_eyes["ok"], fixity["ok"]]
    state = "ok" if all(checks) else ("bad" if not chain["ok"] or fixity["state"] == "bad" or same else "pending")
    return {"state": state, "chain": chain, "anchor": anchored, "four_eyes": four_eyes, "fixity": fixity}


def _last_fixity_of(session: Session, doc: Document) -> dict[str, Any]:
    """The newest fixity run that covered this document, and whether it found anything in it."""
    children = set(session.scalars(select(DocumentChild.child_id).where(DocumentChild.document_id == doc.id)))
    received = as_utc(doc.batch.received_at)
    for run in session.scalars(select(FixityRun).order_by(FixityRun.id.desc()).limit(200)):
        scope = run.scope or {}
        since, until = scope.get("since"), scope.get("until")
        covers = (scope.get("whole") or scope.get("document_id") == doc.id or scope.get("child_id") in children
                  or scope.get("scan_id") == doc.batch_id
                  or ((since or until) and not scope.get("child_id") and not scope.get("document_id")
                      and received is not None and (since is None or received.date() >= date.fromisoformat(since))
                      and (until is None or received.date() <= date.fromisoformat(until))))
        if not covers:
            continue
        mine = [f for f in (run.findings or []) if doc.id in str(f.get("where")) or doc.batch_id in str(f.get("where"))]
        return {"ok": not mine, "state": "bad" if mine else "ok", "run": run.id, "at": iso(run.finished_at),
                "findings": [{**explain(f.get("code")), "where": f.get("where")} for f in mine]}
    return {"ok": False, "state": "never", "run": None, "at": None, "findings": []}


# --- integrity: fixity runs -----------------------------------------------------------------------


def _scope_words(scope: dict[str, Any]) -> str:
    if scope.get("whole"):
        return "The whole record"
    if scope.get("document_id"):
        return f"Document {scope['document_id']}"
    if scope.get("child_id"):
        return f"Child {scope['child_id']}"
    if scope.get("scan_id"):
        return f"Scan {scope['scan_id']}"
    since, until = scope.get("since"), scope.get("until")
    if since and until:
        return f"Received {labels.uk_date(since)} to {labels.uk_date(until)}"
    if since:
        return f"Received since {labels.uk_date(since)}"
    if until:
        return f"Received up to {labels.uk_date(until)}"
    return "-"


def refuse_backwards_period(since: date | None, until: date | None) -> None:
    """A period whose end is before its start is a mistake in what was typed, not an empty check."""
    if since is not None and until is not None and until < since:
        raise ValidationFailed(f"the period ends ({labels.uk_date(until)}) before it starts "
                               f"({labels.uk_date(since)}): the end date must be the same day as the start or later")


def _run_dict(run: FixityRun) -> dict[str, Any]:
    return {"id": run.id, "started_at": iso(run.started_at), "finished_at": iso(run.finished_at),
            "trigger": {"schedule": "Scheduled", "server": "On the server", "verify": "On the server",  # verify: before 2026-12
                        "auditor": "From the browser"}.get(
                run.trigger, labels.words(run.trigger)),
            "by": run.actor, "scope": _scope_words(run.scope or {}), "events": run.events_checked,
            "documents": run.documents_checked, "objects": run.objects_checked, "bytes": run.bytes_read,
            "findings_count": run.findings_count, "ok": run.findings_count == 0,
            "findings": [{**explain(f.get("code")), "where": f.get("where")} for f in (run.findings or [])]}


def fixity_runs(services: Services, principal: Principal, *, limit: int = 20, child_id: str | None = None,
                document_id: str | None = None) -> list[dict[str, Any]]:
    """The newest fixity runs, whoever started them, with their findings explained; with a child
    or a document, only the runs that covered it (whole-store runs included)."""
    require(principal, Can.AUDIT)
    with services.db.session() as session:
        if not (child_id or document_id):
            runs = session.scalars(select(FixityRun).order_by(FixityRun.id.desc()).limit(limit)).all()
            return [_run_dict(r) for r in runs]
        children = {child_id} if child_id else set(session.scalars(
            select(DocumentChild.child_id).where(DocumentChild.document_id == document_id)))
        found = []
        for run in session.scalars(select(FixityRun).order_by(FixityRun.id.desc()).limit(2000)):
            scope = run.scope or {}
            if scope.get("whole") or scope.get("child_id") in children or (
                    document_id and scope.get("document_id") == document_id):
                found.append(_run_dict(run))
                if len(found) >= limit:
                    break
        return found


def fixity_run(services: Services, principal: Principal, run_id: int) -> dict[str, Any]:
    require(principal, Can.AUDIT)
    with services.db.session() as session:
        run = session.get(FixityRun, run_id)
        if run is None:
            raise NotFound(f"no fixity run {run_id}")
        return _run_dict(run)


def check_integrity(services: Services, principal: Principal, *, child_id: str | None = None,
                    document_id: str | None = None, since: date | None = None,
                    until: date | None = None) -> dict[str, Any]:
    """Run the fixity checks now for a child, a document, or what was received in a period
    (from `since`, up to and including `until`; either end may be left open).

    The same pipeline as `escr fixity`: the run is recorded (fixity_runs, a fixity_checked
    event) and a named record's check is logged as a use of it. The whole store is left to the
    scheduled run, which can take hours."""
    require(principal, Can.AUDIT)
    require_change(principal)
    from escr.pipelines import fixity
    from escr.provenance.checks import Scope

    given = [v for v in (child_id, document_id, since or until) if v]
    if len(given) != 1:
        raise ValidationFailed("choose one: a child, a document, or the period in which scans were received")
    if since is not None and since > datetime.now(UTC).date():
        raise ValidationFailed("the start date is in the future")
    refuse_backwards_period(since, until)
    with services.db.session() as session:
        if child_id:
            access.child_grant(session, principal, child_id)
        if document_id and session.get(Document, document_id) is None:
            raise NotFound(f"document {document_id} not found")
    result = fixity.run(services, Scope(child_id=child_id or None, document_id=document_id or None, since=since,
                                        until=until), actor=principal.actor, trigger="auditor")
    if result.run_id is None:
        raise InvalidState("the check did not record its run")
    return fixity_run(services, principal, result.run_id)


# --- paper custody ---------------------------------------------------------------------------------

PAPER_STATES = {"in_place": "In its place", "booked_out": "Booked out", "missing": "Missing",
                "stolen": "Stolen", "disposed": "Disposed of"}
MOVE_PURPOSES = {"to_scanning": "To scanning", "to_archive": "To the archive", "return": "Returned",
                 "other": "Other"}


def _paper_reader(principal: Principal) -> None:
    if principal.role not in (Role.AUDITOR, Role.BUSINESS_SUPPORT, Role.TEAM_MANAGER):
        raise AccessDenied(f"the {principal.role} role does not keep paper files", code="role_forbidden")


def _move_dict(m: PaperMove, today: date) -> dict[str, Any]:
    overdue = m.due_back is not None and m.due_back < today
    return {"id": m.id, "paper_ref": m.paper_ref, "purpose": MOVE_PURPOSES.get(m.purpose, labels.words(m.purpose)),
            "sender": m.sender, "recipient": m.recipient, "authorised_by": m.authorised_by,
            "due_back": iso(m.due_back), "moved_at": iso(m.moved_at), "recorded_by": m.recorded_by,
            "confirmed_by": m.confirmed_by, "confirmed_at": iso(m.confirmed_at),
            "overdue_days": (today - m.due_back).days if overdue and m.due_back else 0}


def paper_custody(services: Services, principal: Principal, *, child_id: str | None = None,
                  today: date | None = None) -> dict[str, Any]:
    """Where each paper volume and original is, its last move, when it is due back and what is
    overdue; and batches of scanned paper whose arrival nobody has confirmed."""
    _paper_reader(principal)
    today = today or datetime.now(UTC).date()
    with services.db.session() as session:
        stmt = select(PaperVolume)
        if principal.role is Role.TEAM_MANAGER:
            stmt = stmt.where(PaperVolume.child_id.in_(select(Child.child_id).where(
                Child.team.in_(sorted(principal.teams)))))
        if child_id:
            access.child_grant(session, principal, child_id)
            stmt = stmt.where(PaperVolume.child_id == child_id)
        volumes = session.scalars(stmt.order_by(PaperVolume.child_id, PaperVolume.id).limit(1000)).all()
        refs = [v.id for v in volumes]
        moves: dict[str, list[PaperMove]] = {}
        if refs:
            for m in session.scalars(select(PaperMove).where(PaperMove.paper_ref.in_(refs))
                                     .order_by(PaperMove.moved_at, PaperMove.id)):
                moves.setdefault(m.paper_ref, []).append(m)
        items: list[dict[str, Any]] = []
        for v in volumes:
            history = moves.get(v.id, [])
            last = history[-1] if history else None
            out = last is not None and v.state == PaperState.BOOKED_OUT
            due = last.due_back if out and last is not None else None
            if out and last is not None and last.purpose == "return" and len(history) > 1:
                due = None  # on its way back: waiting for the receiver to confirm
            items.append({"id": v.id, "child_id": v.child_id, "kind": "Volume" if v.kind == "volume" else "Original",
                          "title": v.title, "location": v.location, "state": v.state,
                          "state_label": PAPER_STATES.get(v.state, labels.words(v.state)),
                          "with": last.recipient if out and last is not None else None,
                          "due_back": iso(due), "overdue_days": (today - due).days if due and due < today else 0,
                          "unconfirmed": last is not None and last.confirmed_at is None,
                          "moves": [_move_dict(m, today) for m in reversed(history)]})
        batches = [] if child_id else [
            _move_dict(m, today) for m in session.scalars(
                select(PaperMove).where(PaperMove.confirmed_at.is_(None),
                                        PaperMove.paper_ref.not_in(select(PaperVolume.id)))
                .order_by(PaperMove.moved_at).limit(200))]
        record(session, AccessEvent(actor=principal.actor, action="list", child_id=child_id,
                                    parameters={"target": "paper_custody", "volumes": len(items)}))
    overdue = [i for i in items if i["overdue_days"] > 0]
    return {"items": items, "overdue": overdue, "unconfirmed": [i for i in items if i["unconfirmed"]],
            "batches_unconfirmed": batches, "booked_out": sum(1 for i in items if i["state"] == PaperState.BOOKED_OUT),
            "lost": sum(1 for i in items if i["state"] in PAPER_LOSSES), "today": today.isoformat()}


# --- the access log's activity ----------------------------------------------------------------------

ACTIVITY_MAX_DAYS = 92


def access_activity(services: Services, principal: Principal, *, days: int = 30, zone: str = labels.DEFAULT_TIMEZONE,
                    today: date | None = None) -> dict[str, Any]:
    """Uses of children's records per day (local days) over the last `days`: allowed, refused and
    by break-glass, for the auditors' chart and its table. Reading it is logged like the log."""
    require(principal, Can.AUDIT)
    if not 1 <= days <= ACTIVITY_MAX_DAYS:
        raise ValidationFailed(f"choose between 1 and {ACTIVITY_MAX_DAYS} days")
    tz = ZoneInfo(zone)
    last_day = today or datetime.now(tz).date()
    first_day = last_day - timedelta(days=days - 1)
    start = datetime.combine(first_day, datetime.min.time(), tz).astimezone(UTC)
    counts: dict[date, Counter[str]] = {first_day + timedelta(days=i): Counter() for i in range(days)}
    people: Counter[str] = Counter()
    with services.db.session() as session:
        rows = session.execute(select(Event.at, Event.outcome, Event.actor)
                               .where(Event.category == "access", Event.at >= start)
                               .execution_options(yield_per=2000))
        for at, outcome, actor in rows:
            day = (as_utc(at) or at).astimezone(tz).date()
            if day not in counts:
                continue
            counts[day][{"denied": "refused", "break_glass": "break_glass"}.get(outcome, "allowed")] += 1
            people[actor] += 1
        record(session, AccessEvent(actor=principal.actor, action="view",
                                    parameters={"object": "access_activity", "days": days}))
    table = [{"day": d.isoformat(), "allowed": c["allowed"], "refused": c["refused"],
              "break_glass": c["break_glass"], "total": sum(c.values())} for d, c in sorted(counts.items())]
    return {"days": table, "from": first_day.isoformat(), "to": last_day.isoformat(), "zone": zone,
            "total": sum(r["total"] for r in table), "refused": sum(r["refused"] for r in table),
            "break_glass": sum(r["break_glass"] for r in table), "busiest": people.most_common(5)}


# --- the certificate of scanning ---------------------------------------------------------------------

CERTIFICATE_TYPES = {"html": "text/html; charset=utf-8", "pdf": "application/pdf", "json": "application/json"}


def certificate_file(services: Services, principal: Principal, document_id: str, fmt: str) -> tuple[bytes, str, str]:
    """The certificate of scanning of one document as HTML, PDF or JSON: (bytes, media type, file name).

    It runs a fresh fixity check of the document, as `escr report` does."""
    from escr.app import stewardship
    from escr.provenance.certificate import render_html, render_json, render_pdf

    if fmt not in CERTIFICATE_TYPES:
        raise ValidationFailed(f"the format must be one of {', '.join(CERTIFICATE_TYPES)}")
    report = stewardship.certificate(services, principal, document_id=document_id, batch=None, child_id=None)
    data = render_pdf(report) if fmt == "pdf" else (render_html(report) if fmt == "html"
                                                    else render_json(report)).encode()
    return data, CERTIFICATE_TYPES[fmt], f"certificate-of-scanning-{document_id}.{fmt}"
