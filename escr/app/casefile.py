"""The case-file audit done in the browser (seed 004 sections 10-14; seed 002).

The evidence column of the 14 Quality Practice Standards is filled from the child's verified
documents (escr.provenance.casefile_audit); the auditor records, per standard, Yes, No or N/A
with a comment, then the file's grading (Good, Requires improvement, Inadequate), the overall
comments and the team manager's reply. The audit is kept with the evidence as it stood, a note
goes on the child's file that it was audited (a file examination, seed 004 13.3), and a chained
event records the grading. A grading changed after the manager's right to reply (seed 002 2.6,
4.3) is a new audit naming the one it revises; the first judgement stays.

Files picked in the monthly sample are noted on the child's file as prepared for audit (seed 004
12.1, 13.2); those not yet audited are the auditors' "audits due". The quarterly collation per
team counts selected and completed audits, their gradings by month, revisions, follow-ups and
the standards most often not met - the figures of seed 002's monitoring report.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from escr import clock
from escr.app import access, labels
from escr.app.access import Can, Principal, require, require_change
from escr.app.records import examine
from escr.app.spreadsheet import csv_text
from escr.errors import ValidationFailed
from escr.record import payloads
from escr.record.events import AccessEvent, Kind, ProtocolEvent, now, record
from escr.record.models import AuditSelection, CasefileAudit, Child, FileExamination
from escr.services import Services

GRADINGS = {"good": "Good", "requires_improvement": "Requires improvement", "inadequate": "Inadequate"}
JUDGEMENTS = {"yes": "Yes", "no": "No", "na": "N/A"}
COMMENT_MAX = 4000
QUARTER_MONTHS = {1: (1, 2, 3), 2: (4, 5, 6), 3: (7, 8, 9), 4: (10, 11, 12)}


def _config(services: Services) -> Any:
    from escr.provenance.casefile_audit import load_config

    return load_config(services.settings.config_file(services.settings.provenance.casefile_audit_file),
                       services.doctypes)


def _evidence(session: Session, services: Services, principal: Principal, child_id: str, today: date) -> Any:
    from escr.provenance.casefile_audit import casefile_audit

    return casefile_audit(session, child_id, config=_config(services), catalogue=services.doctypes,
                          actor=principal.actor, today=today)


def _audit_dict(a: CasefileAudit) -> dict[str, Any]:
    return {"id": a.id, "child_id": a.child_id, "team": a.team, "worker": a.worker, "month": a.month,
            "audited_on": a.audited_on.isoformat(), "auditor": a.auditor, "grading": a.grading,
            "grading_label": GRADINGS.get(a.grading, labels.words(a.grading)),
            "standards": [{**s, "judgement_label": JUDGEMENTS.get(s.get("judgement", ""), "-")} for s in a.standards],
            "comments": a.comments, "manager_comments": a.manager_comments, "follow_up": a.follow_up,
            "revises": a.revises, "recorded_at": a.recorded_at.isoformat() if a.recorded_at else None}


def _open_selection(session: Session, child_id: str) -> AuditSelection | None:
    """The newest sample pick of this child not yet answered by an audit."""
    picks = session.scalars(select(AuditSelection).where(AuditSelection.child_id == child_id)
                            .order_by(AuditSelection.month.desc())).all()
    audited = set(session.scalars(select(CasefileAudit.month).where(CasefileAudit.child_id == child_id)))
    return next((p for p in picks if p.month not in audited), None)


def audit_form(services: Services, principal: Principal, child_id: str, *, today: date | None = None) -> dict[str, Any]:
    """The audit tool for one child: the standards with their evidence, the key documents, the
    sample pick it answers, earlier audits, and the notes on the child's file about audits."""
    require(principal, Can.AUDIT)
    day = today or clock.now().date()
    with services.db.session() as session:
        child, _ = access.child_grant(session, principal, child_id)
        evidence = _evidence(session, services, principal, child_id, day).as_dict()
        pick = _open_selection(session, child_id)
        earlier = session.scalars(select(CasefileAudit).where(CasefileAudit.child_id == child_id)
                                  .order_by(CasefileAudit.id.desc())).all()
        notes = session.scalars(select(FileExamination).where(FileExamination.child_id == child_id,
                                                              FileExamination.kind == "audit")
                                .order_by(FileExamination.id.desc()).limit(20)).all()
        return {"child": {"child_id": child.child_id, "team": child.team,
                          "banner": labels.child_banner(child.category, child.status)},
                "evidence": evidence, "selection": {"month": pick.month, "worker": pick.worker} if pick else None,
                "audits": [_audit_dict(a) for a in earlier],
                "file_notes": [{"purpose": n.purpose, "on": n.examined_on.isoformat(), "by": n.examined_by}
                               for n in notes],
                "gradings": GRADINGS, "judgements": JUDGEMENTS}


def record_audit(services: Services, principal: Principal, child_id: str, *, judgements: dict[int, str],
                 comments: dict[int, str], grading: str, overall: str, manager_comments: str = "",
                 follow_up: bool = False, revises: int | None = None, today: date | None = None) -> dict[str, Any]:
    """Record a completed audit; every standard must be judged, and a grading given."""
    require(principal, Can.AUDIT)
    require_change(principal)
    day = today or clock.now().date()
    problems = []
    if grading not in GRADINGS:
        problems.append("choose the file's grading: Good, Requires improvement or Inadequate")
    for text in (overall, manager_comments, *comments.values()):
        if len(text) > COMMENT_MAX:
            problems.append(f"a comment is longer than {COMMENT_MAX} characters")
            break
    with services.db.session() as session:
        child, _ = access.child_grant(session, principal, child_id)
        evidence = _evidence(session, services, principal, child_id, day)
        missing = [s.number for s in evidence.standards if judgements.get(s.number) not in JUDGEMENTS]
        if missing:
            problems.append("judge every standard (Yes, No or N/A); not judged: "
                            + ", ".join(str(n) for n in missing))
        if revises is not None:
            earlier = session.get(CasefileAudit, revises)
            if earlier is None or earlier.child_id != child_id:
                problems.append(f"audit {revises} is not an audit of this child")
        if problems:
            raise ValidationFailed("; ".join(problems))
        pick = _open_selection(session, child_id)
        month = pick.month if pick else None
        if revises is not None:
            month = session.get(CasefileAudit, revises).month  # type: ignore[union-attr]
        note = examine(session, principal, child_id, kind="audit",
                       purpose=f"Case-file audit (Quality Practice Standards): {GRADINGS[grading]}"
                               + (f", revising audit {revises}" if revises else ""),
                       notes=overall.strip(), examined_on=day)
        row = CasefileAudit(
            child_id=child_id, team=child.team, worker=evidence.allocated_worker, month=month, audited_on=day,
            auditor=principal.username, grading=grading,
            standards=[{"number": s.number, "question": s.question, "judgement": judgements[s.number],
                        "comment": comments.get(s.number, "").strip(), "evidence": s.column}
                       for s in evidence.standards],
            comments=overall.strip(), manager_comments=manager_comments.strip(), follow_up=follow_up,
            revises=revises, examination_id=note.id, recorded_at=now())
        session.add(row)
        session.flush()
        tally = Counter(judgements[s.number] for s in evidence.standards)
        record(session, ProtocolEvent(kind=Kind.CASEFILE_AUDITED, actor=principal.actor, child_id=child_id,
                                      outcome=grading,
                                      parameters=payloads.CasefileAudited(
                                          audit_id=row.id, month=month, revises=revises, judgements=dict(tally),
                                          follow_up=follow_up, examination_id=note.id)))
        return _audit_dict(row)


def mark_prepared(session: Session, principal: Principal, picks: list[dict[str, Any]], month: str) -> None:
    """Note on each picked child's file that it was prepared for audit (seed 004 12.1, 13.2)."""
    for pick in picks:
        examine(session, principal, pick["child_id"], kind="audit",
                purpose=f"Prepared for case-file audit ({_month_label(month)} sample)",
                notes=f"Selected for {pick['worker']}'s monthly sample; the evidence column is filled from the "
                      "verified record.")


def audits_due(services: Services, principal: Principal, *, limit: int = 100) -> list[dict[str, Any]]:
    """Files picked in a monthly sample and not yet audited, oldest month first."""
    require(principal, Can.AUDIT)
    with services.db.session() as session:
        done = {(c, m) for c, m in session.execute(select(CasefileAudit.child_id, CasefileAudit.month))}
        picks = session.scalars(select(AuditSelection).order_by(AuditSelection.month, AuditSelection.worker)).all()
        due = [p for p in picks if (p.child_id, p.month) not in done][:limit]
        teams = dict(session.execute(select(Child.child_id, Child.team)
                                     .where(Child.child_id.in_([p.child_id for p in due]))).all())
        return [{"month": p.month, "month_label": _month_label(p.month), "worker": p.worker, "child_id": p.child_id,
                 "team": teams.get(p.child_id), "selected_at": p.selected_at.isoformat()} for p in due]


def _month_label(month: str | None) -> str:
    if not month:
        return "-"
    year, mon = month.split("-")
    return f"{date(int(year), int(mon), 1):%B} {year}"


def parse_quarter(text: str | None, today: date | None = None) -> tuple[int, int]:
    """"2026-Q1" (or "2026 Q1"); the current quarter when empty."""
    if not text:
        day = today or clock.now().date()
        return day.year, (day.month - 1) // 3 + 1
    cleaned = text.strip().upper().replace(" ", "-")
    year, _, q = cleaned.partition("-Q")
    if not (year.isdigit() and len(year) == 4 and q in ("1", "2", "3", "4")):
        raise ValidationFailed("write the quarter as 2026-Q1")
    return int(year), int(q)


def collation(services: Services, principal: Principal, quarter: str | None = None, *,
              today: date | None = None) -> dict[str, Any]:
    """A quarter's case-file audits collated per team (seed 002's monitoring report): files
    selected and audited, completion rate, gradings overall and by month, revised gradings,
    immediate follow-ups, the kinds of case, and the standards most often judged not met."""
    require(principal, Can.AUDIT)
    year, q = parse_quarter(quarter, today)
    months = [f"{year}-{m:02d}" for m in QUARTER_MONTHS[q]]
    first, last = date(year, QUARTER_MONTHS[q][0], 1), date(year + (q == 4), (QUARTER_MONTHS[q][2] % 12) + 1, 1)
    with services.db.session() as session:
        picks = session.scalars(select(AuditSelection).where(AuditSelection.month.in_(months))).all()
        audits = session.scalars(select(CasefileAudit).where(CasefileAudit.audited_on >= first,
                                                            CasefileAudit.audited_on < last)
                                 .order_by(CasefileAudit.id)).all()
        revised = {a.revises for a in audits if a.revises is not None}
        final = [a for a in audits if a.id not in revised]  # a revised grading counts once, as revised
        ids = {p.child_id for p in picks} | {a.child_id for a in final}
        children = {c.child_id: c for c in session.scalars(select(Child).where(Child.child_id.in_(sorted(ids))))}
        record(session, AccessEvent(actor=principal.actor, action="list",
                                    parameters={"target": "casefile_audit_collation", "quarter": f"{year}-Q{q}"}))

    def team_of_pick(p: AuditSelection) -> str:
        child = children.get(p.child_id)
        return (child.team if child else None) or "No team"

    per_team: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "selected": 0, "completed": 0, "gradings": Counter(), "by_month": defaultdict(Counter),
        "revised": 0, "follow_up": 0, "case_types": Counter(), "not_met": Counter()})
    for p in picks:
        per_team[team_of_pick(p)]["selected"] += 1
    for a in final:
        t = per_team[a.team or "No team"]
        t["completed"] += 1
        t["gradings"][a.grading] += 1
        t["by_month"][a.month or a.audited_on.strftime("%Y-%m")][a.grading] += 1
        t["revised"] += a.revises is not None
        t["follow_up"] += a.follow_up
        child = children.get(a.child_id)
        t["case_types"][labels.label(child.category, "category") if child and child.category else "Not recorded"] += 1
        for s in a.standards:
            if s.get("judgement") == "no":
                t["not_met"][s.get("number")] += 1

    def summary(name: str, t: dict[str, Any]) -> dict[str, Any]:
        done = t["completed"]
        return {"team": name, "selected": t["selected"], "completed": done,
                "completion": round(100 * done / t["selected"]) if t["selected"] else None,
                "gradings": [{"grading": g, "label": label, "count": t["gradings"][g],
                              "percent": round(100 * t["gradings"][g] / done) if done else 0}
                             for g, label in GRADINGS.items()],
                "by_month": [{"month": m, "label": _month_label(m), **{g: t["by_month"][m][g] for g in GRADINGS},
                              "total": sum(t["by_month"][m].values())} for m in sorted(t["by_month"])],
                "revised": t["revised"], "follow_up": t["follow_up"],
                "case_types": sorted(t["case_types"].items(), key=lambda kv: (-kv[1], kv[0])),
                "not_met": [{"number": n, "count": c} for n, c in sorted(t["not_met"].items(),
                                                                        key=lambda kv: (-kv[1], kv[0]))]}

    teams = [summary(name, t) for name, t in sorted(per_team.items())]
    total: dict[str, Any] = {"selected": 0, "completed": 0, "gradings": Counter(), "by_month": defaultdict(Counter),
                             "revised": 0, "follow_up": 0, "case_types": Counter(), "not_met": Counter()}
    for t in per_team.values():
        for key in ("selected", "completed", "revised", "follow_up"):
            total[key] += t[key]
        for key in ("gradings", "case_types", "not_met"):
            total[key].update(t[key])
        for m, c in t["by_month"].items():
            total["by_month"][m].update(c)
    return {"quarter": f"{year}-Q{q}", "label": f"Quarter {q}, {_month_label(months[0])} to {_month_label(months[-1])}",
            "months": months, "teams": teams, "all": summary("All teams", total),
            "previous": f"{year - (q == 1)}-Q{4 if q == 1 else q - 1}",
            "next": f"{year + (q == 4)}-Q{1 if q == 4 else q + 1}"}



COLLATION_COLUMNS = ("quarter", "team", "selected", "completed", "completion_percent", "good", "requires_improvement",
                     "inadequate", "revised", "follow_up", "standards_most_often_not_met")


def collation_csv(data: dict[str, Any]) -> str:
    """The quarter's collation (as `collation` gives it) as CSV: a row per team, then all teams,
    for the quarterly report that goes to the service's management team."""
    def row(t: dict[str, Any]) -> list[Any]:
        counts = {g["grading"]: g["count"] for g in t["gradings"]}
        return [data["quarter"], t["team"], t["selected"], t["completed"], t["completion"],
                *(counts.get(g, 0) for g in GRADINGS), t["revised"], t["follow_up"],
                "; ".join(f"{s['number']} ({s['count']})" for s in t["not_met"][:5])]
    return csv_text(COLLATION_COLUMNS, [row(t) for t in (*data["teams"], data["all"])])
