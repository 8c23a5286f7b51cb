"""One front door for the web pages and the CLI to issue 19's record keeping.

`escr.app.paper`, `records`, `disposal`, `timeliness`, `coversheets` and `scanner_checks` hold
the rules and take an open session; this module opens the session, calls them as the signed-in
person and hands back plain dicts, so a page and a command do exactly the same thing. The REST
API (`escr.web.api_records`) calls the same rule functions.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from escr import clock
from escr.app import coversheets, disposal, paper, records, scanner_checks, timeliness
from escr.app.access import Principal, Role
from escr.services import Services


class Keeping:
    """Issue 19's capabilities, as the person `principal`."""

    def __init__(self, services: Services, principal: Principal) -> None:
        self.services = services
        self.p = principal

    # --- the child's record: status history, paper components, file examinations -------------

    def child_sections(self, child_id: str) -> dict[str, Any]:
        """What the child's record page shows of status, paper and examinations (need-to-know
        already checked by the record itself; each read checks again)."""
        with self.services.db.session() as session:
            return {"statuses": records.status_history(session, self.p, child_id),
                    "components": paper.components(session, self.p, child_id),
                    "examinations": records.examinations(session, self.p, child_id)}

    def statuses(self, child_id: str) -> list[dict[str, Any]]:
        with self.services.db.session() as session:
            return records.status_history(session, self.p, child_id)

    def add_status(self, child_id: str, *, status: str, from_date: date | None = None, to_date: date | None = None,
                   on_date: date | None = None) -> dict[str, Any]:
        return records.add_child_status(self.services, self.p, child_id, status=status, from_date=from_date,
                                        to_date=to_date, on_date=on_date)

    def examinations(self, child_id: str) -> list[dict[str, Any]]:
        with self.services.db.session() as session:
            return records.examinations(session, self.p, child_id)

    def examine(self, child_id: str, *, kind: str, purpose: str, notes: str = "",
                examined_on: date | None = None) -> dict[str, Any]:
        with self.services.db.session() as session:
            row = records.examine(session, self.p, child_id, kind=kind, purpose=purpose, notes=notes,
                                  examined_on=examined_on)
            return {"id": row.id, "child_id": child_id, "kind": row.kind, "examined_on": row.examined_on.isoformat()}

    def components(self, child_id: str) -> dict[str, Any]:
        with self.services.db.session() as session:
            return paper.components(session, self.p, child_id)

    # --- paper volumes and originals --------------------------------------------------------

    def register_volume(self, *, volume_id: str, child_id: str, kind: str, title: str, location: str,
                        contents: str = "", doc_type: str | None = None, covers_from: date | None = None,
                        covers_to: date | None = None) -> dict[str, Any]:
        with self.services.db.session() as session:
            vol = paper.register(session, self.p, volume_id=volume_id, child_id=child_id, kind=kind, title=title,
                                 location=location, contents=contents, doc_type=doc_type or None,
                                 covers_from=covers_from, covers_to=covers_to)
            return paper.volume_dict(vol)

    def volume(self, volume_id: str) -> dict[str, Any]:
        with self.services.db.session() as session:
            return paper.volume_detail(session, self.p, volume_id)

    def link_document(self, document_id: str, volume_id: str) -> dict[str, Any]:
        with self.services.db.session() as session:
            paper.link_document(session, self.p, document_id, volume_id)
            return {"document_id": document_id, "volume_id": volume_id}

    def book_out(self, volume_id: str, *, recipient: str, authorised_by: str, due_back: date) -> dict[str, Any]:
        with self.services.db.session() as session:
            return paper.move_dict(paper.book_out(session, self.p, volume_id, recipient=recipient,
                                                  authorised_by=authorised_by, due_back=due_back))

    def book_in(self, volume_id: str, *, to: str) -> dict[str, Any]:
        with self.services.db.session() as session:
            return paper.move_dict(paper.book_in(session, self.p, volume_id, to=to))

    def confirm_move(self, move_id: int) -> dict[str, Any]:
        with self.services.db.session() as session:
            return paper.move_dict(paper.confirm_arrival(session, self.p, move_id))

    def overdue(self) -> list[dict[str, Any]]:
        with self.services.db.session() as session:
            return paper.overdue(session, self.p)

    def open_incidents(self) -> list[dict[str, Any]]:
        with self.services.db.session() as session:
            return paper.open_incidents(session, self.p)

    def report_loss(self, volume_id: str, *, kind: str, description: str) -> dict[str, Any]:
        incident = paper.report_loss(self.services, self.p, volume_id, kind=kind, description=description)
        return {"incident_id": incident.id, "volume_id": volume_id, "child_id": incident.child_id,
                "kind": incident.kind, "notified": incident.notified}

    def follow_up(self, incident_id: int, note: str) -> dict[str, Any]:
        with self.services.db.session() as session:
            row = paper.follow_up(session, self.p, incident_id, note)
            return {"incident_id": incident_id, "follow_up_id": row.id}

    def close_incident(self, incident_id: int, *, outcome: str, location: str | None = None) -> dict[str, Any]:
        with self.services.db.session() as session:
            return paper.incident_dict(paper.close_incident(session, self.p, incident_id, outcome=outcome,
                                                            location=location or None))

    # --- disposal -------------------------------------------------------------------------------

    def disposal_review(self) -> list[dict[str, Any]]:
        with self.services.db.session() as session:
            return [c.as_dict() for c in disposal.review_list(session, self.p, self.services.retention)]

    def disposal_overview(self) -> dict[str, Any]:
        """The review list, open and past proposals and the category holds (one page)."""
        with self.services.db.session() as session:
            return {"review": [c.as_dict() for c in disposal.review_list(session, self.p, self.services.retention)],
                    "proposals": disposal.proposals(session, self.p),
                    "holds": disposal.holds(session, self.p),
                    "hold_classes": disposal.hold_classes(self.services.doctypes.types)}

    def propose_disposal(self, items: list[tuple[str, str]], *, reason: str) -> dict[str, Any]:
        with self.services.db.session() as session:
            p = disposal.propose(session, self.p, self.services.retention, items, reason=reason)
            return {"proposal_id": p.id, "state": p.state, "items": p.items}

    def decide_disposal(self, proposal_id: int, *, approve: bool, note: str) -> dict[str, Any]:
        with self.services.db.session() as session:
            p = disposal.decide(session, self.p, proposal_id, approve=approve, note=note)
            return {"proposal_id": p.id, "state": p.state, "decided_by": p.decided_by}

    def carry_out_disposal(self, proposal_id: int) -> dict[str, Any]:
        return disposal.carry_out(self.services, self.p, proposal_id).as_dict()

    def tombstones(self, item_id: str | None = None) -> list[dict[str, Any]]:
        with self.services.db.session() as session:
            return disposal.tombstones(session, self.p, item_id=item_id)

    def set_hold(self, *, scope: str, value: str, reason: str) -> dict[str, Any]:
        with self.services.db.session() as session:
            h = disposal.set_category_hold(session, self.p, scope=scope, value=value, reason=reason,
                                           known_types=self.services.doctypes.types)
            return {"hold_id": h.id, "scope": h.scope, "value": h.value}

    def release_hold(self, hold_id: int, *, reason: str) -> dict[str, Any]:
        with self.services.db.session() as session:
            h = disposal.release_category_hold(session, self.p, hold_id, reason=reason)
            return {"hold_id": h.id, "released_by": h.released_by}

    def holds(self) -> list[dict[str, Any]]:
        with self.services.db.session() as session:
            return disposal.holds(session, self.p)

    # --- timeliness -----------------------------------------------------------------------------

    def record_arrival(self, ref: str, arrived_on: date, *, source: str = "officer") -> dict[str, Any]:
        with self.services.db.session() as session:
            row = timeliness.record_arrival(session, self.p, ref, arrived_on, source=source)
            return {"ref": row.ref, "arrived_on": row.arrived_on.isoformat(), "source": row.source}

    def timeliness(self, month: str | None = None) -> dict[str, Any]:
        """The month's timeliness per team (YYYY-MM); without one, this month where the council is."""
        rec = self.services.settings.records
        month = (month or "").strip() or clock.today(self.services.settings.web.timezone).strftime("%Y-%m")
        with self.services.db.session() as session:
            rows = timeliness.report(session, self.p, month, target=rec.target_working_days, oldest=rec.oldest_waiting)
        return {"month": month, "target_working_days": rec.target_working_days, "teams": [r.as_dict() for r in rows],
                "csv": timeliness.report_csv(rows)}

    def recent_arrivals(self, limit: int = 20) -> list[dict[str, Any]]:
        with self.services.db.session() as session:
            return timeliness.recent_arrivals(session, self.p, limit=limit)

    # --- cover-sheet register, batch manifest, scanner checks -----------------------------------

    def unscanned(self, days: int | None = None) -> dict[str, Any]:
        wait = self.services.settings.records.unscanned_after_days if days is None else days
        with self.services.db.session() as session:
            return {"days": wait, "items": coversheets.unscanned(session, self.p, days=wait)}

    def manifest(self, cover_batch_id: str) -> dict[str, Any]:
        with self.services.db.session() as session:
            return coversheets.manifest(session, self.p, cover_batch_id)

    def list_missing(self, cover_batch_id: str, *, description: str, pages: int | None = None) -> dict[str, Any]:
        with self.services.db.session() as session:
            return coversheets.list_missing(session, self.p, cover_batch_id, description=description, pages=pages)

    def scanner_checks(self, device: str | None = None) -> list[dict[str, Any]]:
        with self.services.db.session() as session:
            return scanner_checks.checks(session, self.p, device=device)

    def run_scanner_check(self, device: str, path: Path) -> dict[str, Any]:
        check = scanner_checks.run_check(self.services, self.p, device=device, path=path)
        return {"id": check.id, "device": check.device, "day": check.day.isoformat(), "passed": check.passed,
                "measures": check.measures, "failures": check.failures}

    @staticmethod
    def scanner_target() -> bytes:
        return scanner_checks.printable_target()

    # --- what the signed-in person may do here (for showing forms; the rules decide) -----------

    def may(self) -> dict[str, bool]:
        role = self.p.role
        return {"keep_paper": role in paper.KEEPERS, "report_loss": role in paper.KEEPERS + (Role.CASEWORKER,),
                "authorise": role in paper.MANAGERS, "keep_status": role in records.STATUS_KEEPERS,
                "examine": role in records.EXAMINERS, "record_arrival": role is Role.BUSINESS_SUPPORT,
                "propose_disposal": role in disposal.RECORDS_MANAGERS,
                "decide_disposal": role in disposal.APPROVERS, "scanner_check": role is Role.BUSINESS_SUPPORT}
