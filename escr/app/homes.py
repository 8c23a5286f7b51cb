"""What each role sees first after signing in: where their work is.

Caseworkers and team managers see their caseload; business support the intake; auditors the
integrity verdict and what waits for review; administrators the people and the state of the
system. The web page only renders these answers, so the API or a CLI could give the same ones.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from escr import clock
from escr.app import access, labels
from escr.app.access import Can, Principal, Role, require
from escr.app.operations import Operations, child_dict
from escr.clock import as_utc, iso
from escr.errors import ValidationFailed
from escr.indexing.identifiers import find_dates
from escr.record.events import AccessEvent, record
from escr.record.models import (
    ApiToken,
    Batch,
    BreakGlass,
    ChainAnchor,
    Child,
    ChildAllocation,
    ChildStatus,
    CorrectionRequest,
    Document,
    DocumentChild,
    Event,
    FixityRun,
    Team,
    User,
)
from escr.record.states import OUT_OF_RECORD, QUEUE_CHOICES, QUEUE_STATES, DocumentState
from escr.record.status import as_dict as status_as_dict
from escr.services import Services

THROUGHPUT_DAYS = 14  # the intake home's throughput chart: the last fortnight, day by day
AGE_BUCKETS = (("Under a day", 1), ("1 to 3 days", 3), ("3 to 7 days", 7), ("Over a week", None))
CASELOAD_CAP = 500  # a team's children shown on one home; a larger team is found by search
PROGRESS_FILE = "progress.json"  # written by the intake pipeline in each claim's work folder

# The intake's stages (the order of escr.pipelines.intake.file_scan) in words, for the intake home and the CLI.
STAGES = {
    "receive": "Received", "refuse_unsafe_paths": "Checking the file", "refuse_duplicates": "Checking the file",
    "check_file": "Checking the file", "prepare_pdf": "Preparing the pages", "read_pages": "Reading the pages",
    "split_into_documents": "Splitting into documents", "note_page_text": "Reading the pages",
    "build_reading_copies": "Making reading copies", "tag_documents": "Indexing", "link_documents": "Matching to children",
    "decide_retention": "Working out how long to keep it",
    "check_quality": "Quality checks", "decide_states": "Quality checks", "store_objects": "Storing",
    "file_records": "Filing", "release_intake_file": "Filing",
}




def home_kind(principal: Principal) -> str:
    """Which home this person starts on."""
    return {Role.CASEWORKER: "caseload", Role.TEAM_MANAGER: "caseload", Role.BUSINESS_SUPPORT: "intake",
            Role.AUDITOR: "audit", Role.ADMINISTRATOR: "administration"}.get(principal.role, "none")


class Homes:
    """The homes of one signed-in person."""

    def __init__(self, services: Services, principal: Principal) -> None:
        self.services = services
        self.settings = services.settings
        self.db = services.db
        self.p = principal

    # --- caseworkers and team managers ------------------------------------------------------

    def caseload(self) -> dict[str, Any]:
        """Allocated children (and, for a manager, the team's), each with its status in words, the
        documents filed since this person last looked at the record, and what waits for them."""
        require(self.p, Can.READ_RECORDS)
        with self.db.session() as session:
            mine = set(session.scalars(select(ChildAllocation.child_id)
                                       .where(ChildAllocation.user_id == self.p.user_id)))
            stmt = select(Child).where(Child.child_id.in_(sorted(mine)))
            if self.p.role is Role.TEAM_MANAGER and self.p.teams:
                stmt = select(Child).where(Child.child_id.in_(sorted(mine)) | Child.team.in_(sorted(self.p.teams)))
            children = session.scalars(stmt.order_by(Child.family_name, Child.given_names, Child.child_id)
                                       .limit(CASELOAD_CAP)).all()
            ids = [c.child_id for c in children]
            allocated = dict(session.execute(select(ChildAllocation.child_id, User.username)
                                             .join(User, User.id == ChildAllocation.user_id)
                                             .where(ChildAllocation.child_id.in_(ids))).all())
            last_seen = {cid: as_utc(at) for cid, at in session.execute(
                select(Event.child_id, func.max(Event.at))
                .where(Event.category == "access", Event.actor_kind == "user", Event.actor == self.p.username,
                       Event.outcome == "ok", Event.child_id.in_(ids))
                .group_by(Event.child_id)).all()}
            docs: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
            for cid, created, state in session.execute(
                    select(DocumentChild.child_id, Document.created_at, Document.state)
                    .join(Document, Document.id == DocumentChild.document_id)
                    .where(DocumentChild.child_id.in_(ids), Document.state.not_in(OUT_OF_RECORD))):
                docs[cid].append((as_utc(created) or datetime.min.replace(tzinfo=UTC), state))
            statuses: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for row in session.scalars(select(ChildStatus).where(ChildStatus.child_id.in_(ids))
                                       .order_by(ChildStatus.id)):
                statuses[row.child_id].append(status_as_dict(row))
            today = clock.today(self.settings.web.timezone)
            rows = []
            for child in children:
                seen = last_seen.get(child.child_id)
                held = docs.get(child.child_id, [])
                rows.append({**child_dict(child),
                             "banners": labels.status_banners(statuses[child.child_id], child.category, child.status,
                                                              today),
                             "allocated_to": allocated.get(child.child_id), "mine": child.child_id in mine,
                             "documents": len(held), "last_seen": iso(seen),
                             "new": sum(1 for at, _ in held if seen is None or at > seen),
                             "unverified": sum(1 for _, s in held if s != DocumentState.VERIFIED)})
            awaiting = self._awaiting(session, ids)
            record(session, AccessEvent(actor=self.p.actor, action="list",
                                        parameters={"target": "caseload", "shown": ids}))
        rows.sort(key=lambda r: (not r["mine"], -r["new"], r["family_name"], r["given_names"]))
        return {"children": rows, "allocated": sum(1 for r in rows if r["mine"]),
                "new_documents": sum(r["new"] for r in rows), "awaiting": awaiting,
                "team_wide": self.p.role is Role.TEAM_MANAGER}

    def _awaiting(self, session: Any, child_ids: list[str]) -> list[dict[str, Any]]:
        """Verification of the team's documents (managers verify) and corrections others asked for."""
        items: list[dict[str, Any]] = []
        if self.p.can(Can.VERIFY) and child_ids:
            waiting = session.execute(
                select(Document.id, Document.state, Document.doc_type, Document.indexed_by, Document.created_at)
                .join(DocumentChild, DocumentChild.document_id == Document.id)
                .where(DocumentChild.child_id.in_(child_ids), Document.state.in_(QUEUE_STATES))
                .distinct().order_by(Document.created_at).limit(50)).all()
            items += [{"what": labels.label(state, "document_state"), "document_id": doc_id, "doc_type": doc_type,
                       "since": iso(created), "href": f"/documents/{doc_id}/work"}
                      for doc_id, state, doc_type, _, created in waiting]
        if child_ids:
            corrections = session.execute(
                select(CorrectionRequest.id, CorrectionRequest.document_id, CorrectionRequest.requested_by,
                       CorrectionRequest.requested_at)
                .join(DocumentChild, DocumentChild.document_id == CorrectionRequest.document_id)
                .where(CorrectionRequest.status == "pending", DocumentChild.child_id.in_(child_ids),
                       CorrectionRequest.requested_by != self.p.username)
                .distinct().order_by(CorrectionRequest.requested_at).limit(50)).all()
            items += [{"what": f"Correction asked for by {who}", "document_id": doc_id, "doc_type": None,
                       "since": iso(at), "href": f"/documents/{doc_id}"} for _, doc_id, who, at in corrections]
        return items

    # --- business support --------------------------------------------------------------------

    def intake(self) -> dict[str, Any]:
        """Each file being processed with its stage and pages done of total; the queues with their
        counts and the age of their oldest item; the quarantine."""
        ops = Operations(self.services, self.p)
        now_processing = self.processing()
        with self.db.session() as session:
            stmt = select(Document.state, func.count(), func.min(Document.created_at)) \
                .where(Document.state.in_(QUEUE_CHOICES))
            if (openable := access.queue_condition(self.p)) is not None:
                stmt = stmt.where(openable)
            found = {state: (count, as_utc(oldest)) for state, count, oldest in
                     session.execute(stmt.group_by(Document.state)).all()}
        queues = [{"state": s, "label": labels.label(s, "document_state"), "count": found.get(s, (0, None))[0],
                   "oldest": iso(found.get(s, (0, None))[1])} for s in QUEUE_CHOICES]
        quarantine = ops.quarantine_entries()
        oldest_q = min((q["quarantined_at"] for q in quarantine if q.get("quarantined_at")), default=None)
        return {**now_processing, "queues": queues, "quarantined": len(quarantine),
                "quarantine_oldest": oldest_q, "throughput": self.throughput(), "queue_ages": self.queue_ages()}

    def throughput(self, days: int = THROUGHPUT_DAYS, today: date | None = None) -> list[dict[str, Any]]:
        """Per local day of the last `days`: documents and pages filed, and documents verified."""
        require(self.p, Can.INTAKE)
        zone = ZoneInfo(self.settings.web.timezone)
        today = today or clock.today(self.settings.web.timezone)
        first = today - timedelta(days=days - 1)
        start = datetime.combine(first, datetime.min.time(), zone).astimezone(UTC)
        per_day = {first + timedelta(days=n): {"filed": 0, "pages": 0, "verified": 0} for n in range(days)}

        def local_day(moment: datetime | None) -> date | None:
            return None if moment is None else (as_utc(moment) or moment).astimezone(zone).date()

        with self.db.session() as session:
            for filed_at, pages in session.execute(
                    select(Batch.filed_at, Document.page_count).join(Batch, Batch.id == Document.batch_id)
                    .where(Batch.filed_at >= start)):
                if (day := local_day(filed_at)) in per_day:
                    per_day[day]["filed"] += 1
                    per_day[day]["pages"] += pages or 0
            for (verified_at,) in session.execute(select(Document.verified_at).where(Document.verified_at >= start)):
                if (day := local_day(verified_at)) in per_day:
                    per_day[day]["verified"] += 1
        return [{"day": day.isoformat(), **counts} for day, counts in per_day.items()]

    def queue_ages(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """Per queue, how many items have waited under a day, 1-3 days, 3-7 days and over a week."""
        require(self.p, Can.INTAKE)
        now = now or clock.now()
        rows: dict[str, list[int]] = {s: [0] * len(AGE_BUCKETS) for s in QUEUE_CHOICES}
        with self.db.session() as session:
            stmt = select(Document.state, Document.created_at).where(Document.state.in_(list(rows)))
            if (openable := access.queue_condition(self.p)) is not None:
                stmt = stmt.where(openable)
            for state, created in session.execute(stmt):
                waited = (now - (as_utc(created) or now)).total_seconds() / 86400
                bucket = next(n for n, (_, limit) in enumerate(AGE_BUCKETS) if limit is None or waited < limit)
                rows[state][bucket] += 1
        return [{"state": s, "label": labels.label(s, "document_state"),
                 "ages": {name: counts[n] for n, (name, _) in enumerate(AGE_BUCKETS)}} for s, counts in rows.items()]

    def processing(self) -> dict[str, Any]:
        """The files being processed now, each with its stage and pages done of total, and when
        this was read (the intake home fetches this part again every few seconds)."""
        ops = Operations(self.services, self.p)
        return {"processing": [{**item, **self.progress(item["claim_id"])} for item in ops.processing()],
                "as_of": clock.now().isoformat()}

    def progress(self, claim_id: str) -> dict[str, Any]:
        """What the pipeline last said of a claim: stage (in words) and pages done of total."""
        path = self.settings.home / "work" / claim_id / PROGRESS_FILE
        try:
            said = json.loads(path.read_text())
        except (OSError, ValueError):
            return {"stage": "Waiting to start", "pages_done": 0, "pages_total": None}
        return {"stage": STAGES.get(said.get("stage", ""), labels.words(said.get("stage"))),
                "pages_done": int(said.get("pages_done") or 0), "pages_total": said.get("pages_total")}

    # --- auditors ----------------------------------------------------------------------------

    def audit(self) -> dict[str, Any]:
        """The integrity verdict from the last fixity run and the newest anchor, the
        break-glass accesses waiting for review, and the case-file audits due."""
        require(self.p, Can.AUDIT)
        from escr.app.auditing import explain

        with self.db.session() as session:
            recent = session.scalars(select(FixityRun).order_by(FixityRun.id.desc()).limit(50)).all()
            # The verdict is the last whole-store run's; a check of one child says nothing of the rest.
            run = next((r for r in recent if (r.scope or {}).get("whole")), recent[0] if recent else None)
            anchor = session.scalars(select(ChainAnchor).order_by(ChainAnchor.id.desc()).limit(1)).first()
            events = session.scalar(select(func.count()).select_from(Event)) or 0
            since_anchor = session.scalar(select(func.count()).select_from(Event)
                                          .where(Event.id > (anchor.event_id if anchor else 0))) or 0
            pending = session.execute(
                select(BreakGlass, User.username).join(User, User.id == BreakGlass.user_id)
                .where(BreakGlass.reviewed_at.is_(None)).order_by(BreakGlass.id).limit(50)).all()
            pending_total = session.scalar(select(func.count()).select_from(BreakGlass)
                                           .where(BreakGlass.reviewed_at.is_(None))) or 0
            findings = list(run.findings or []) if run else []
            verdict = {
                "state": "unknown" if run is None else ("bad" if run.findings_count else "ok"),
                "last_run_at": iso(run.finished_at) if run else None, "run_id": run.id if run else None,
                "whole": bool(run and (run.scope or {}).get("whole")),
                "run_trigger": run.trigger if run else None,
                "events_checked": run.events_checked if run else 0,
                "documents_checked": run.documents_checked if run else 0,
                "objects_checked": run.objects_checked if run else 0,
                "findings_count": run.findings_count if run else 0,
                "findings": [{**explain(f.get("code")), "what": labels.words(f.get("code")), "where": f.get("where")}
                             for f in findings[:20]],
                "anchored_at": iso(anchor.created_at) if anchor else None,
                "anchored_event": anchor.event_id if anchor else None,
                "events": events, "events_since_anchor": since_anchor,
            }
            record(session, AccessEvent(actor=self.p.actor, action="view",
                                        parameters={"target": "audit_home", "pending_break_glass": pending_total}))
        from escr.app.casefile import audits_due

        due = audits_due(self.services, self.p, limit=20)
        return {"verdict": verdict, "pending_total": pending_total, "audits_due": due,
                "pending": [{"id": g.id, "user": name, "child_id": g.child_id, "reason": g.reason,
                             "started_at": iso(g.started_at), "expires_at": iso(g.expires_at)}
                            for g, name in pending]}

    # --- administrators ----------------------------------------------------------------------

    def administration(self) -> dict[str, Any]:
        """Users by role and state, teams, API tokens, and the state of the system."""
        require(self.p, Can.ADMINISTER)
        from escr.app.maintenance import database_health

        with self.db.session() as session:
            users = session.scalars(select(User)).all()
            roles = Counter(u.role for u in users if not u.disabled)
            now = clock.now()
            locked = sorted(u.username for u in users if (until := as_utc(u.locked_until)) is not None and until > now)
            teams = session.execute(select(Team.code, Team.name)).all()
            team_children = dict(session.execute(select(Child.team, func.count()).group_by(Child.team)).all())
            tokens = session.scalars(select(ApiToken).where(ApiToken.revoked_at.is_(None))).all()
            live = [t for t in tokens if (ends := as_utc(t.expires_at)) is None or ends > now]
            soon = [t for t in live if (ends := as_utc(t.expires_at)) is not None and (ends - now).days < 14]
            unallocated = session.scalar(select(func.count()).select_from(Child).where(
                Child.child_id.not_in(select(ChildAllocation.child_id)))) or 0
            docs = dict(session.execute(select(Document.state, func.count()).group_by(Document.state)).all())
            allocation = self._allocation(session, users)
            owners = {u.id: u.username for u in users}
            expiring = [{"user": owners.get(t.user_id, "?"), "name": t.name, "expires_at": iso(t.expires_at)}
                        for t in sorted(soon, key=lambda t: as_utc(t.expires_at) or now)][:20]
            system = self._system_state(session)
        try:
            health = database_health(self.services)
        except Exception as exc:  # the home must show a failing system, not fail with it
            health = {"status": "failing", "error": type(exc).__name__}
        return {"users": len(users), "disabled": sum(1 for u in users if u.disabled), "locked": locked,
                "roles": [{"role": r, "label": labels.label(r, "role"), "count": roles.get(r, 0)}
                          for r in labels.ROLES if r != "host_operator"],
                "never_signed_in": sorted(u.username for u in users if u.last_login_at is None and not u.disabled),
                "teams": [{"code": c, "name": n, "children": team_children.get(c, 0),
                           "allocated": allocation["by_team"].get(c, 0),
                           "members": allocation["members"].get(c, 0)} for c, n in teams],
                "caseloads": allocation["caseloads"], "held_by_disabled": allocation["held_by_disabled"],
                "tokens_expiring_list": expiring, "system": system,
                "tokens": len(live), "tokens_expiring": len(soon), "unallocated_children": unallocated,
                "documents": {labels.label(s, "document_state"): n for s, n in sorted(docs.items())},
                "health": health}



    def _allocation(self, session: Any, users: Any) -> dict[str, Any]:
        """Allocated children per team and per worker, and any held by a disabled account (they
        have no worker who can see them: reallocate them)."""
        from escr.record.models import TeamMembership

        by_team = dict(session.execute(select(Child.team, func.count())
                                       .join(ChildAllocation, ChildAllocation.child_id == Child.child_id)
                                       .group_by(Child.team)).all())
        per_user = dict(session.execute(select(ChildAllocation.user_id, func.count())
                                        .group_by(ChildAllocation.user_id)).all())
        members = dict(session.execute(select(TeamMembership.team_code, func.count())
                                       .group_by(TeamMembership.team_code)).all())
        by_id = {u.id: u for u in users}
        caseloads = sorted(({"user": by_id[uid].username, "children": n, "disabled": by_id[uid].disabled}
                            for uid, n in per_user.items() if uid in by_id), key=lambda r: (-r["children"], r["user"]))
        return {"by_team": by_team, "members": members, "caseloads": caseloads[:20],
                "held_by_disabled": [r for r in caseloads if r["disabled"]]}

    def _system_state(self, session: Any) -> dict[str, Any]:
        """What an administrator needs to know is working: files being read, the quarantine, the
        last whole-store fixity run and the newest anchor (counts and times only)."""
        settings = self.settings
        processing = sum(1 for p in settings.processing_dir.iterdir() if p.is_dir()) \
            if settings.processing_dir.exists() else 0
        from escr.intake.quarantine import list_quarantine

        quarantined = len(list_quarantine(settings.quarantine_dir))
        recent = session.scalars(select(FixityRun).order_by(FixityRun.id.desc()).limit(50)).all()
        run = next((r for r in recent if (r.scope or {}).get("whole")), None)
        anchor = session.scalars(select(ChainAnchor).order_by(ChainAnchor.id.desc()).limit(1)).first()
        return {"processing": processing, "quarantined": quarantined,
                "fixity_at": iso(run.finished_at) if run else None,
                "fixity_findings": run.findings_count if run else None,
                "anchored_at": iso(anchor.created_at) if anchor else None}


def find_for_break_glass(services: Services, principal: Principal, name: str, date_of_birth: str
                         ) -> list[dict[str, Any]]:
    """Children outside one's caseload whose name and date of birth both match, for a break-glass
    access when the child id is not to hand. Both are required, so the index cannot be browsed;
    only the id, name and date of birth are shown, and the search is logged."""
    require(principal, Can.BREAK_GLASS)
    terms = [t for t in name.replace(",", " ").split() if t][:5]
    if not terms or sum(len(t) for t in terms) < 2:
        raise ValidationFailed("type the child's name (given or family name, or both)")
    found = find_dates(date_of_birth.strip(), today=date.today())
    try:
        born = date.fromisoformat(date_of_birth.strip()) if not found else found[0].value
    except ValueError:
        raise ValidationFailed("the date of birth was not understood; write it as 14/06/2015 or 14 June 2015") from None
    with services.db.session() as session:
        stmt = select(Child).where(Child.date_of_birth == born)
        for term in terms:
            stmt = stmt.where(func.lower(Child.given_names).contains(term.lower(), autoescape=True)
                              | func.lower(Child.family_name).contains(term.lower(), autoescape=True))
        children = session.scalars(stmt.order_by(Child.family_name, Child.given_names).limit(10)).all()
        shown = [{"child_id": c.child_id, "given_names": c.given_names, "family_name": c.family_name,
                  "date_of_birth": c.date_of_birth.isoformat() if c.date_of_birth else None} for c in children]
        record(session, AccessEvent(actor=principal.actor, action="search",
                                    parameters={"target": "child_index", "for": "break_glass",
                                                "hits": len(shown), "shown": [c["child_id"] for c in shown]}))
    return shown
