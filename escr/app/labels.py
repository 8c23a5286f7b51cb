"""Words for the codes the record keeps, and UK dates, in one place for every page.

People read "Child protection plan, open", "Waiting for verification" and "14 June 2025", never
"cp / open", "awaiting_verification" or "2025-06-14": the pages and the CLI ask here rather than
each template spelling a code its own way. A code with no entry is shown with its underscores
turned to spaces and a capital, so a new code still reads as words.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from escr import clock
from escr.record.states import DocumentState

DOCUMENT_STATES: dict[str, str] = {
    DocumentState.NEEDS_INDEXING: "Waiting for indexing",
    DocumentState.QC_FAILED: "Failed a quality check",
    DocumentState.AWAITING_VERIFICATION: "Waiting for verification",
    DocumentState.VERIFIED: "Verified",
    DocumentState.REJECTED: "Rejected: to be rescanned",
    DocumentState.SUPERSEDED: "Replaced by a rescan",
    DocumentState.WITHDRAWN: "Withdrawn for a rescan",
    DocumentState.DISPOSED: "Disposed of",
}
# The work queues a person picks from: the link's words, and the page heading's.
QUEUES: dict[str, tuple[str, str]] = {
    DocumentState.NEEDS_INDEXING: ("Waiting for indexing", "waiting for indexing"),
    DocumentState.QC_FAILED: ("Failed QC", "failed QC"),
    DocumentState.AWAITING_VERIFICATION: ("Waiting for verification", "waiting for verification"),
    DocumentState.REJECTED: ("Rejected", "rejected, to be rescanned"),
}

# The child index: the category of the case and its status (seed 001 sections 17-18).
CHILD_CATEGORIES = {
    "cin": "Child in need",
    "s47": "Section 47 enquiry",
    "cp": "Child protection plan",
    "cla": "Child looked after",
    "lac": "Child looked after",
    "care_leaver": "Care leaver",
    "adoption": "Adopted",
    "private_fostering": "Private fostering",
    "closed": "Closed",
    "died": "Died",
}
CHILD_STATUSES = {"open": "Open", "closed": "Closed", "died": "Died"}

ROLES = {
    "business_support": "Business support",
    "caseworker": "Caseworker",
    "team_manager": "Team manager",
    "auditor": "Auditor",
    "administrator": "Administrator",
    "disclosure_officer": "Disclosure officer",
    "host_operator": "Server operator",
}

ACCESS_ACTIONS = {"list": "Listed the record", "view": "Viewed", "download": "Downloaded",
                  "search": "Searched", "provenance": "Read the provenance",
                  "disclose": "Copy given (disclosure)"}
ACCESS_OUTCOMES = {"ok": "Allowed", "denied": "Refused", "break_glass": "Break-glass"}
ACCESS_BASES = {"allocated": "allocated worker", "team": "team member", "break_glass": "break-glass",
                "audit_purpose": "auditor's stated purpose", "intake": "intake work", "verify": "verification",
                "disclosure": "disclosure request"}
REVIEW_OUTCOMES = {"justified": "Justified", "not_justified": "Not justified"}
TOKEN_SCOPES = {"read": "Read only", "write": "Read and write", "admin": "Administration"}
QC_STATUSES = {"pass": "Passed", "warn": "Warning", "fail": "Failed"}
# Why a document's link to a child ended (escr.app.verification, escr.app.corrections).
UNLINK_REASONS = {"reindexed": "re-indexed before verification", "corrected": "moved by an approved correction",
                  "rejected": "the scan was rejected", "withdrawn": "the scanner withdrew the scan"}

# Error codes of escr.errors and escr.app.access, as a sentence a person can act on.
ERRORS = {
    "unauthenticated": "Please sign in.",
    "invalid_token": "The API token is not valid or has expired.",
    "sso_user_unknown": "Your single sign-on name has no escr account.",
    "role_forbidden": "Your role does not allow this.",
    "not_your_team": "This child is not in your team's caseload.",
    "purpose_required": "State the purpose of your audit before opening the content.",
    "third_party_permission_required": "This document holds third-party information; opening it needs a "
                                       "permission you do not hold.",
    "not_in_intake": "The document is no longer in the intake.",
    "original_holds_other_records": "The paper original also holds other children's records.",
    "own_access": "You cannot review your own break-glass access.",
    "own_account": "You cannot change your own account this way.",
    "token_scope": "This API token does not allow this.",
    "token_cannot_create_tokens": "An API token cannot create other tokens.",
    "password_change_required": "Please change your password first.",
    "csrf_failed": "The form had expired. Please try again.",
    "not_found": "Not found.",
    "method_not_allowed": "That action is not available here.",
    "invalid_state": "Not possible in the document's present state.",
    "protocol_violation": "Four-eyes: someone who did not scan or index it must do this.",
    "already_exists": "It already exists.",
    "already_reviewed": "It has already been reviewed.",
    "already_allowed": "It is already allowed.",
    "user_disabled": "This account is disabled.",
    "sign_in_failed": "The user name or password is wrong.",
    "validation_failed": "Please check what you entered.",
    "reason_required": "Please give a reason.",
    "weak_password": "Please choose a longer, less common password.",
    "input_rejected": "The input could not be accepted.",
    "database_failed": "The database is not answering. Please try again shortly.",
    "storage_failed": "The document store is not answering. Please try again shortly.",
    "not_yet_verified": "The document is not yet verified.",
    "local_only": "Only open to clients on the server itself.",
    "internal_error": "Something went wrong; the error was logged.",
}

# The paper file and the record as the seeds keep it (issue 19).
PAPER_STATES = {"in_place": "In place", "booked_out": "Booked out", "missing": "Missing", "stolen": "Stolen",
                "disposed": "Destroyed"}
PAPER_KINDS = {"volume": "Volume of the paper file", "original": "Document kept in original"}
INCIDENT_OUTCOMES = {"found": "Found", "recovered": "Recovered", "not_found": "Not found"}
EXAMINATIONS = {"supervision": "Supervision", "review": "Review", "audit": "Audit"}
DISPOSAL_STATES = {"proposed": "Waiting for a second person", "approved": "Approved: to be carried out",
                   "refused": "Refused", "disposed": "Disposed of"}
HOLD_SCOPES = {"doc_type": "Document type", "status": "Child status (ever held)"}
ARRIVAL_SOURCES = {"cover_stamp": "Date stamp on the cover sheet", "officer": "Business support entry"}
MOVE_PURPOSES = {"removal": "Booked out", "return": "Booked back in", "to_scanning": "To scanning",
                 "to_archive": "To the archive", "other": "Other"}
# The verify page: each indexed field, and where its value came from.
INDEXED_FIELDS = {"doc_type": "Document type", "doc_date": "Document date", "child": "Child",
                  "third_party": "Third-party information"}
FIELD_SOURCES = {"coversheet": "Pipeline, from the cover sheet", "text": "Pipeline, matched in the OCR text",
                 "type_default": "Pipeline, the document type's default", "person": "Typed by a person",
                 "none": "Nothing found"}

KINDS = {"document_state": DOCUMENT_STATES, "category": CHILD_CATEGORIES, "child_status": CHILD_STATUSES,
         "role": ROLES, "action": ACCESS_ACTIONS, "outcome": ACCESS_OUTCOMES, "basis": ACCESS_BASES,
         "review": REVIEW_OUTCOMES, "scope": TOKEN_SCOPES, "qc": QC_STATUSES, "error": ERRORS,
         "paper_state": PAPER_STATES, "paper_kind": PAPER_KINDS, "incident_outcome": INCIDENT_OUTCOMES,
         "examination": EXAMINATIONS, "disposal_state": DISPOSAL_STATES, "hold_scope": HOLD_SCOPES,
         "arrival_source": ARRIVAL_SOURCES, "move_purpose": MOVE_PURPOSES,
         "unlink": UNLINK_REASONS, "indexed_field": INDEXED_FIELDS, "field_source": FIELD_SOURCES}

DEFAULT_TIMEZONE = "Europe/London"


def words(code: str | None) -> str:
    """An unknown code as words: "police_report" -> "Police report"."""
    text = (code or "").replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def label(code: str | None, kind: str) -> str:
    """The words for `code` of the given kind (a key of KINDS); "-" for none."""
    if code is None or code == "":
        return "-"
    return KINDS[kind].get(str(code), words(str(code)))


def child_banner(category: str | None, status: str | None) -> str:
    """The child index's category and status as one phrase: "Child protection plan, open"."""
    parts = [label(category, "category") if category else "", label(status, "child_status").lower() if status else ""]
    if category and status and CHILD_CATEGORIES.get(category) == CHILD_STATUSES.get(status):
        parts[1] = ""
    text = ", ".join(p for p in parts if p)
    return text or "No status recorded"


def _as_date(value: date | datetime | str | None) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def uk_date(value: date | datetime | str | None, *, short: bool = False, empty: str = "-") -> str:
    """14 June 2025 in prose; 14/06/2025 with short=True (tables)."""
    d = _as_date(value)
    if d is None:
        return empty
    return d.strftime("%d/%m/%Y") if short else f"{d.day} {d:%B %Y}"


def local_time(value: datetime | str | None, zone: str = DEFAULT_TIMEZONE, *, short: bool = False,
               empty: str = "-") -> str:
    """A moment in the service's local time with the zone: "14 June 2025, 15:04 BST"
    (14/06/2025 15:04 BST with short=True). A time without a zone is taken as UTC, as stored."""
    if value is None or value == "":
        return empty
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(ZoneInfo(zone))
    day = local.strftime("%d/%m/%Y") if short else f"{local.day} {local:%B %Y},"
    return f"{day} {local:%H:%M %Z}"


def age(value: datetime | str | None, now: datetime | None = None) -> str:
    """How long ago, in words: "3 days", "5 hours", "under a minute"."""
    if value is None or value == "":
        return "-"
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = max(0, int(((now or clock.now()) - moment).total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'' if n == 1 else 's'}"
    return "under a minute"


# Codes the pipeline writes in brackets inside a document's reasons ("... beyond doubt (no_match)").
REASON_CODES = {"no_match": "no likely child found", "ambiguous": "more than one child could be meant"}
_BRACKETED_CODE = re.compile(r"\(([a-z0-9]+(?:_[a-z0-9]+)+|ambiguous)\)")


def reason(text: str | None) -> str:
    """A stored reason with any bracketed code in words: "(no_match)" -> "(no likely child found)"."""
    return _BRACKETED_CODE.sub(lambda m: f"({REASON_CODES.get(m.group(1), words(m.group(1)).lower())})", text or "")


# Status banners (seed 001 sections 17-18): the child index's statuses as words, with their dates.
BANNER_WORDS = {"cin": "Child in need", "s47": "Section 47 enquiry", "cp": "Child protection plan",
                "cla": "Looked after", "care_leaver": "Care leaver", "private_fostering": "Private fostering"}


def status_banners(statuses: list[dict[str, Any]], category: str | None, status: str | None,
                   today: date | None = None) -> list[dict[str, str]]:
    """What holds for the child now, in words with dates ("Child protection plan since 1 March
    2020", "Closed: final contact 3 May 2024"), from the status history (`escr.record.status.as_dict`
    rows); from the index's category and status when there is no history. `kind` is for colour."""
    day = today or clock.today(DEFAULT_TIMEZONE)

    def holds(s: dict[str, Any]) -> bool:
        start, end = s.get("from"), s.get("to")
        return (not start or date.fromisoformat(start) <= day) and (not end or date.fromisoformat(end) >= day)

    out: list[dict[str, str]] = []
    current = [s for s in statuses if s["status"] in BANNER_WORDS and holds(s)]
    for s in sorted(current, key=lambda s: s.get("from") or ""):
        since = f" since {uk_date(s['from'])}" if s.get("from") else ""
        out.append({"text": BANNER_WORDS[s["status"]] + since, "kind": s["status"]})
    for s in statuses:
        if s["status"] == "adoption" and s.get("on"):
            out.append({"text": f"Adopted: order made {uk_date(s['on'])}", "kind": "adoption"})
        if s["status"] == "died" and s.get("on"):
            out.append({"text": f"Died {uk_date(s['on'])}", "kind": "closed"})
    closures = [s for s in statuses if s["status"] == "closed" and not s.get("to") and s.get("on")]
    if closures:
        last = max(closures, key=lambda s: s["on"])
        out.append({"text": f"Closed: final contact {uk_date(last['on'])}", "kind": "closed"})
    elif statuses and status == "closed":  # the index says closed but gave no final contact date
        out.append({"text": "Closed", "kind": "closed"})
    elif statuses:
        reopened = max((s["on"] for s in statuses if s["status"] == "closed" and s.get("on")), default="")
        starts = [s["from"] for s in statuses if s["status"] in BANNER_WORDS and (s.get("from") or "") > reopened]
        out.append({"text": f"Open since {uk_date(min(starts))}" if starts else "Open", "kind": "open"})
    if not statuses:
        out.append({"text": child_banner(category, status), "kind": (category or "") + " " + (status or "")})
    return out
