"""What the pages and the API do, once: check need-to-know, call the domain, log the use.

Both the HTML routes and the REST API call these methods, so a rule cannot hold in one and
be missed in the other. A read refused by a need-to-know rule is itself logged as "denied".
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from escr.app import access, accounts, coversheets, page_images, retrieval
from escr.app.access import AccessDenied, Can, Principal, Role, require
from escr.app.verification import MIN_REASON_CHARS, indexed_fields, rescan_candidates, versions
from escr.clock import iso
from escr.errors import EscrError, NotFound, ValidationFailed
from escr.indexing.identifiers import find_dates
from escr.record.database import (
    SEARCH_RANK_CANDIDATES,  # a text search ranks and returns at most these
    refuse_unsearchable,
)
from escr.record.events import AccessEvent, now, record
from escr.record.models import (
    AuditPurpose,
    Batch,
    BreakGlass,
    Child,
    Document,
    DocumentChild,
    Event,
    Team,
    User,
)
from escr.record.states import (
    BEFORE_VERIFICATION,
    INDEX,
    OUT_OF_RECORD,
    QUEUE_CHOICES,
    QUEUE_STATES,
    DocumentState,
)
from escr.services import Services

BULK_LIMIT = 100  # documents one bulk decision may take: a queue page's worth
SEARCH_CAP = 1000  # children found by one child-index search


@dataclass(frozen=True)
class PageOf:
    """One page of a list that can grow, with what a client needs to fetch the next."""

    items: list[Any]
    offset: int
    limit: int
    total: int

    @property
    def next_offset(self) -> int | None:
        return self.offset + self.limit if self.offset + self.limit < self.total else None

    @property
    def prev_offset(self) -> int | None:
        return max(0, self.offset - self.limit) if self.offset > 0 else None

    def as_dict(self) -> dict[str, Any]:
        return {"items": self.items, "offset": self.offset, "limit": self.limit, "total": self.total,
                "next_offset": self.next_offset}


def page_of(items: list[Any], offset: int, limit: int) -> PageOf:
    return PageOf(items[offset:offset + limit], offset, limit, len(items))



def child_dict(child: Child) -> dict[str, Any]:
    return {"child_id": child.child_id, "given_names": child.given_names, "family_name": child.family_name,
            "date_of_birth": iso(child.date_of_birth), "nhs_number": child.nhs_number, "category": child.category,
            "status": child.status, "team": child.team}


def user_dict(user: User) -> dict[str, Any]:
    return {"username": user.username, "display_name": user.display_name, "role": user.role,
            "teams": sorted(m.team_code for m in user.memberships), "third_party_access": user.third_party_access,
            "disabled": user.disabled, "locked": user.locked_until is not None and access.is_active(user.locked_until),
            "created_at": iso(user.created_at), "last_login_at": iso(user.last_login_at)}


def event_dict(e: Event) -> dict[str, Any]:
    detail = dict(e.detail or {})
    return {"seq": e.id, "at": iso(e.at), "category": e.category, "kind": e.kind, "actor": e.actor,
            "actor_kind": e.actor_kind, "action": detail.get("action"), "child_id": e.child_id,
            "document_id": e.document_id, "batch_id": e.batch_id, "outcome": e.outcome,
            "purpose": detail.get("purpose"), "parameters": detail.get("parameters", {}), "hash": e.hash,
            "prev_hash": e.prev_hash}


def glass_dict(g: BreakGlass, username: str) -> dict[str, Any]:
    return {"id": g.id, "user": username, "child_id": g.child_id, "reason": g.reason,
            "started_at": iso(g.started_at), "expires_at": iso(g.expires_at),
            "active": access.is_active(g.expires_at),
            "reviewed_by": g.reviewed_by, "reviewed_at": iso(g.reviewed_at), "review_outcome": g.review_outcome,
            "review_note": g.review_note}


def parse_date(value: str | None, field: str) -> date | None:
    if value is None or not str(value).strip():
        return None
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationFailed(f"{field} is not a date (YYYY-MM-DD)") from None


def _chosen(ids: list[str], what: str, done: str) -> list[str]:
    """What a bulk action was given, blanks and repeats dropped: at least one, at most BULK_LIMIT,
    or nothing is done at all."""
    chosen = list(dict.fromkeys(i.strip() for i in ids if i and i.strip()))
    if not chosen:
        raise ValidationFailed(f"choose at least one of the {what}; nothing was {done}")
    if len(chosen) > BULK_LIMIT:
        raise ValidationFailed(f"choose at most {BULK_LIMIT} {what} at once ({len(chosen)} were chosen); "
                               f"nothing was {done}")
    return chosen


def _same(a: str | None, b: str | None) -> bool:
    return bool(a and b and a.strip().casefold() == b.strip().casefold())


class Operations:
    """Everything a signed-in person can do, bound to that person."""

    def __init__(self, services: Services, principal: Principal) -> None:
        self.services = services
        self.settings = services.settings
        self.db = services.db
        self.p = principal

    # --- plumbing ---------------------------------------------------------------------------

    @contextmanager
    def _logged_refusal(self, action: str, *, child_id: str | None = None,
                        document_id: str | None = None) -> Iterator[None]:
        """Refusals of a read go in the access log too (in their own transaction)."""
        try:
            yield
        except AccessDenied as exc:
            with self.db.session() as session:
                retrieval.log_refused(session, actor=self.p.actor, action=action, code=exc.code,
                                      child_id=child_id, document_id=document_id)
            raise

    def _document(self, session: Session, doc_id: str) -> Document:
        doc = session.get(Document, doc_id)
        if doc is None:
            raise NotFound(f"no document {doc_id}")
        return doc

    # --- finding children and reading records ----------------------------------------------

    def find_children(self, query: str, offset: int, limit: int) -> PageOf:
        """Find a child by id, NHS number, date of birth or name, among those this person may look up."""
        require(self.p, Can.FIND_CHILDREN)
        query = (query or "").strip()
        if not query:
            raise ValidationFailed("type a child id, a name or a date of birth")
        refuse_unsearchable(query)
        with self.db.session() as session:
            scope = access.findable_children(session, self.p)
            stmt = select(Child).where(self._child_query(query))
            if scope is not None:
                stmt = stmt.where(scope)
            children = session.scalars(stmt.order_by(Child.family_name, Child.given_names, Child.child_id)
                                       .limit(SEARCH_CAP)).all()
            shown = page_of([child_dict(c) for c in children], offset, limit)
            # The index entries shown (names, dates of birth, NHS numbers) are named, by id.
            record(session, AccessEvent(actor=self.p.actor, action="search",
                                        parameters={"target": "child_index", "query": query, "hits": len(children),
                                                    "shown": [c["child_id"] for c in shown.items]}))
            return shown

    def _child_query(self, query: str):  # type: ignore[no-untyped-def]
        digits = re.sub(r"[\s-]", "", query)
        if re.fullmatch(self.settings.child_id_pattern.replace(r"\b", ""), query.upper()):
            return Child.child_id == query.upper()
        if digits.isdigit() and len(digits) == 10:
            return Child.nhs_number == digits
        dates = find_dates(query, today=date.today())
        if len(dates) == 1 and len(query) - (dates[0].end - dates[0].start) <= 2:
            return Child.date_of_birth == dates[0].value
        if dates:
            name = (query[:dates[0].start] + query[dates[0].end:]).strip()
            return (Child.date_of_birth == dates[0].value) & self._name_clause(name)
        return self._name_clause(query)

    @staticmethod
    def _name_clause(text: str):  # type: ignore[no-untyped-def]
        terms = [t for t in re.split(r"[\s,]+", text) if t][:5]
        clause = None
        for term in terms:  # autoescape: "%" and "_" are characters typed, not wildcards
            part = or_(*(func.lower(column).contains(term.lower(), autoescape=True)
                         for column in (Child.given_names, Child.family_name, Child.child_id)))
            clause = part if clause is None else clause & part
        return clause if clause is not None else Child.child_id == ""

    def child_record(self, child_id: str, *, doc_type: str | None, since: date | None, until: date | None,
                     offset: int, limit: int) -> dict[str, Any]:
        """The child's chronology (documents in date order), filtered, one page of it."""
        with self._logged_refusal("list", child_id=child_id), self.db.session() as session:
            child, grant, docs = self._chronology(session, child_id, doc_type=doc_type, since=since, until=until)
            worker = accounts.allocated_worker(session, child_id)
            types = sorted({t for (t,) in session.execute(
                select(Document.doc_type).join(DocumentChild).where(DocumentChild.child_id == child_id)) if t})
            return {"child": child_dict(child), "basis": grant.basis, "break_glass_id": grant.break_glass_id,
                    "allocated_to": worker.username if worker else None, "doc_types": types,
                    "documents": page_of(docs, offset, limit)}

    def child_documents(self, child_id: str, *, doc_type: str | None, since: date | None, until: date | None,
                        offset: int, limit: int) -> PageOf:
        """One page of the child's chronology for the API: not the allocation or the types the web
        page's filters show, which would cost two more queries on every call."""
        with self._logged_refusal("list", child_id=child_id), self.db.session() as session:
            _, _, docs = self._chronology(session, child_id, doc_type=doc_type, since=since, until=until)
            return page_of(docs, offset, limit)

    def _chronology(self, session: Session, child_id: str, *, doc_type: str | None, since: date | None,
                    until: date | None) -> tuple[Child, access.Grant, list[dict[str, Any]]]:
        """The child, the grant that lets this person list it, and its documents in date order (logged)."""
        child, grant = access.child_grant(session, self.p, child_id)
        docs = retrieval.list_documents(session, child_id, actor=self.p.actor, doc_type=doc_type or None,
                                        since=since, until=until, use=grant.use)
        return child, grant, docs

    def child_summary(self, child_id: str) -> dict[str, Any]:
        """The child's index entry only (no documents), for anyone who may find the child."""
        with self._logged_refusal("list", child_id=child_id), self.db.session() as session:
            child, grant = access.child_grant(session, self.p, child_id)
            worker = accounts.allocated_worker(session, child_id)
            retrieval.log_child_access(session, child_id, actor=self.p.actor, action="view", use=grant.use,
                                       parameters={"object": "index_entry"})
            return {**child_dict(child), "basis": grant.basis, "allocated_to": worker.username if worker else None}

    def document(self, doc_id: str) -> dict[str, Any]:
        """A document's metadata, and whether (and why not) this person may open its pages."""
        with self._logged_refusal("view", document_id=doc_id), self.db.session() as session:
            doc = self._document(session, doc_id)
            grant = access.document_grant(session, self.p, doc, content=False)
            data = retrieval.show_document(session, doc_id, actor=self.p.actor, use=grant.use)
            try:
                content = access.document_grant(session, self.p, doc, content=True)
                data["content"] = {"allowed": True, "basis": content.basis, "code": None, "message": None,
                                   "not_yet_verified": content.not_yet_verified}
            except AccessDenied as exc:
                data["content"] = {"allowed": False, "basis": None, "code": exc.code, "message": exc.message,
                                   "not_yet_verified": doc.state != DocumentState.VERIFIED}
            data["version"] = doc.version
            data["replaces"] = doc.replaces_id
            try:
                access.original_grant(session, self.p, doc)
                data["original_allowed"] = True
            except AccessDenied:
                data["original_allowed"] = False
            data["basis"] = grant.basis
            data["actions"] = self._actions(session, doc)
            # Every indexed field beside its source and confidence (the children with the name,
            # date of birth and NHS number to check identity by): for those who may open the pages.
            data["fields"] = indexed_fields(session, doc) if data["content"]["allowed"] else []
            chain = versions(session, doc)
            data["versions"] = chain if len(chain) > 1 else []
            ids = [str(v["id"]) for v in chain]
            later = ids[ids.index(doc.id) + 1:]
            data["replaced_by"] = later[0] if later else None
            data["rescan_candidates"] = rescan_candidates(session, doc) if "link_rescan" in data["actions"] else []
            data["four_eyes"] = self.p.can(Can.VERIFY) and self._scanned_or_indexed(doc)
            return data

    def _actions(self, session: Session, doc: Document) -> list[str]:
        """What this person may do to the document now (the routes check again when they do it)."""
        from escr.app.verification import scanned_or_indexed

        actions = []
        if doc.state in BEFORE_VERIFICATION and self.p.can(Can.INTAKE) and _same(doc.batch.operator, self.p.username):
            actions.append("withdraw")
        if self.p.can(Can.INTAKE) and doc.state in (*BEFORE_VERIFICATION, DocumentState.VERIFIED) and doc.replaces_id is None:
            actions.append("link_rescan")
        if doc.state in INDEX.sources and (self.p.can(Can.INDEX) or self.p.can(Can.VERIFY)):
            try:
                access.index_grant(session, self.p, doc)
                actions.append("index")
            except AccessDenied:
                pass
        if doc.state == DocumentState.VERIFIED and (self.p.can(Can.VERIFY) or self.p.can(Can.READ_RECORDS)):
            try:
                access.document_grant(session, self.p, doc, content=True)
                actions.append("request_correction")
            except AccessDenied:
                pass
        if self.p.can(Can.VERIFY):
            try:
                access.verify_grant(session, self.p, doc)
            except AccessDenied:
                return actions  # verification means seeing: nothing is offered unseen
            if doc.state not in OUT_OF_RECORD:
                actions.append("set_third_party")
            if scanned_or_indexed(doc, self.p.username):
                return actions  # four-eyes: someone else decides (the routes refuse it too)
            if doc.state == DocumentState.AWAITING_VERIFICATION:
                actions += ["verify", "reject"]
            elif doc.state == DocumentState.QC_FAILED:
                actions += ["accept_qc", "reject"]
            elif doc.state == DocumentState.NEEDS_INDEXING:
                actions.append("reject")
        return actions

    def _scanned_or_indexed(self, doc: Document) -> bool:
        me = self.p.username.casefold()
        return any(name and name.strip().casefold() == me for name in (doc.batch.operator, doc.indexed_by))

    def open_content(self, doc_id: str, *, original: bool = False) -> tuple[BinaryIO, str, str]:
        """The searchable PDF (or the untouched scan); returns (stream, file name, media type)."""
        with self._logged_refusal("download", document_id=doc_id), self.db.session() as session:
            doc = self._document(session, doc_id)
            if original:
                grant = access.original_grant(session, self.p, doc)
            else:
                grant = access.document_grant(session, self.p, doc, content=True)
            stream, name = retrieval.open_document(session, self.services.store, doc_id, actor=self.p.actor,
                                                   original=original, use=grant.use)
            if grant.not_yet_verified and name.endswith(".pdf"):
                name = name[:-4] + "-not-yet-verified.pdf"  # the mark travels with the file
            media = doc.batch.media_type if original else "application/pdf"
        return stream, name, media

    def page_image(self, doc_id: str, page: int, *, large: bool, view: bool = False) -> Path:
        """A page as a PNG: a thumbnail, `large` (indexing and verification) or `view` (the viewer)."""
        web = self.settings.web
        dpi = web.viewer_dpi if view else web.page_image_dpi if large else web.thumbnail_dpi
        with self._logged_refusal("view", document_id=doc_id), self.db.session() as session:
            doc = self._document(session, doc_id)
            grant = access.document_grant(session, self.p, doc, content=True)
            if not 1 <= page <= doc.page_count:
                raise NotFound(f"no page {page} in document {doc_id}")
            retrieval.log_document_access(session, doc, actor=self.p.actor, action="view", use=grant.use,
                                          parameters={"object": "page_image", "page": page, "dpi": dpi})
            key, sha, count = doc.searchable_key, doc.searchable_sha256, doc.page_count
        return page_images.page_image(self.services.store, self.settings.home, key=key, sha256=sha, page=page,
                                      page_count=count, dpi=dpi)

    def search(self, query: str, *, child_id: str | None, offset: int, limit: int) -> PageOf:
        """Full-text search over the documents this person may open (and within one record)."""
        self.check_search()
        query = (query or "").strip()
        if not query:
            raise ValidationFailed("type something to search for")
        with self._logged_refusal("search", child_id=child_id), self.db.session() as session:
            use = retrieval.Use(basis="need_to_know")
            if child_id is not None:
                _, grant = access.child_grant(session, self.p, child_id)
                use = grant.use
            allowed = access.readable_document_ids(session, self.p)
            hits = retrieval.search(session, self.db, query, actor=self.p.actor, child_id=child_id,
                                    limit=SEARCH_RANK_CANDIDATES, document_ids=allowed, use=use,
                                    grounds=lambda shown: access.search_grounds(session, self.p, shown).use)
            return page_of(hits, offset, limit)

    def check_search(self) -> None:
        if not self.p.can(Can.FIND_CHILDREN):
            raise AccessDenied(f"the {self.p.role} role reads no records", code="role_forbidden")

    def provenance(self, doc_id: str, offset: int, limit: int) -> dict[str, Any]:
        """Every protocol event of the document in order, with hashes; for whoever may see its metadata."""
        with self._logged_refusal("provenance", document_id=doc_id), self.db.session() as session:
            doc = self._document(session, doc_id)
            grant = access.document_grant(session, self.p, doc, content=False)
            data = retrieval.provenance(session, doc_id, actor=self.p.actor, use=grant.use)
        events = data.pop("events")
        data["events"] = page_of(events, offset, limit)
        return data

    # --- intake: dashboard, queues, quarantine, indexing, verification ----------------------

    def dashboard(self) -> dict[str, Any]:
        require(self.p, Can.INTAKE)
        with self.db.session() as session:
            counts = dict(session.execute(select(Document.state, func.count()).group_by(Document.state)).all())
        return {"processing": self.processing(), "quarantined": len(self.quarantine_entries()),
                "counts": {s: counts.get(s, 0) for s in (*QUEUE_STATES, DocumentState.REJECTED, DocumentState.VERIFIED)}}

    def processing(self) -> list[dict[str, Any]]:
        """Files claimed from the intake folder and being worked on now."""
        require(self.p, Can.INTAKE)
        from escr.intake.receipt import Claim

        items = []
        root = self.settings.processing_dir
        for claim_dir in sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []:
            files = [f for f in claim_dir.rglob("*") if f.is_file()]
            for f in files[:1]:
                claim = Claim(claim_dir.name, f, PurePosixPath(f.relative_to(claim_dir).as_posix()))
                try:
                    received = iso(claim.received_at)
                except ValueError:
                    received = None
                items.append({"claim_id": claim_dir.name, "operator": claim.operator, "device": claim.device,
                              "name": claim.name, "received_at": received})
        return items

    def queue(self, state: str | None, offset: int, limit: int, *, operator: str | None = None,
              doc_type: str | None = None, child: str | None = None) -> PageOf:
        """Documents waiting for indexing, a QC decision or verification (team managers: their teams'),
        narrowed by who scanned them, their type or a child (id, or part of a name); each with its
        children's names and the name of the file it was scanned into."""
        if not (self.p.can(Can.INTAKE) or self.p.can(Can.VERIFY)):
            raise AccessDenied(f"the {self.p.role} role has no intake queue", code="role_forbidden")
        if state and state not in QUEUE_CHOICES:
            raise ValidationFailed(f"state must be one of {', '.join(QUEUE_CHOICES)}")
        states = [DocumentState(state)] if state else list(QUEUE_STATES)
        with self.db.session() as session:
            stmt = select(Document).where(Document.state.in_(states))
            if (openable := access.queue_condition(self.p)) is not None:
                stmt = stmt.where(openable)
            if self.p.role is Role.TEAM_MANAGER:
                mine = select(Child.child_id).where(access.findable_children(session, self.p))
                stmt = stmt.where(Document.id.in_(select(DocumentChild.document_id)
                                                  .where(DocumentChild.child_id.in_(mine))))
            if operator and operator.strip():
                stmt = stmt.where(Document.batch_id.in_(select(Batch.id).where(Batch.operator == operator.strip())))
            if doc_type and doc_type.strip():
                stmt = stmt.where(Document.doc_type == doc_type.strip())
            if child and (term := child.strip()):
                named = select(Child.child_id).where(
                    (Child.child_id == term.upper()) | func.lower(Child.family_name).contains(term.lower(), autoescape=True)
                    | func.lower(Child.given_names).contains(term.lower(), autoescape=True))
                stmt = stmt.where(Document.id.in_(select(DocumentChild.document_id)
                                                  .where(DocumentChild.child_id.in_(named))))
            total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
            docs = session.scalars(stmt.order_by(Document.created_at, Document.id).offset(offset).limit(limit)).all()
            ids = {link.child_id for d in docs for link in d.children} | {c.child_id for d in docs for c in d.candidates}
            names = {c.child_id: f"{c.given_names} {c.family_name}".strip()
                     for c in session.scalars(select(Child).where(Child.child_id.in_(sorted(ids))))}
            items = [{**retrieval.summary(d), "operator": d.batch.operator, "indexed_by": d.indexed_by,
                      "reasons": d.state_reasons, "file_name": PurePosixPath(d.batch.source_name).name,
                      "child_names": {cid: names.get(cid, "") for cid in sorted(c.child_id for c in d.children)},
                      "candidates": [{"child_id": c.child_id, "score": c.score, "name": names.get(c.child_id, "")}
                                     for c in d.candidates]}
                     for d in docs]
        return PageOf(items, offset, limit, total)

    def queue_operators(self) -> list[str]:
        """Who scanned the documents now waiting: the choices of the queue's "Scanned by" filter."""
        if not (self.p.can(Can.INTAKE) or self.p.can(Can.VERIFY)):
            raise AccessDenied(f"the {self.p.role} role has no intake queue", code="role_forbidden")
        with self.db.session() as session:
            return sorted(session.scalars(select(Batch.operator).distinct().join(Document, Document.batch_id == Batch.id)
                                          .where(Document.state.in_(QUEUE_CHOICES))))

    def reject_many(self, doc_ids: list[str], reason: str) -> dict[str, Any]:
        """Reject several scans for a rescan with one reason: the one bulk decision, because it
        files nothing to any child (the paper goes back to be scanned again). Each document is
        decided on its own, under the same rules as one at a time; verifying, indexing and
        accepting a QC failure are judged page by page and are never done in bulk."""
        require(self.p, Can.VERIFY)
        access.require_change(self.p)
        ids = _chosen(doc_ids, "documents", "rejected")
        reason = (reason or "").strip()
        if len(reason) < MIN_REASON_CHARS:
            raise ValidationFailed(f"the reason must be stated in at least {MIN_REASON_CHARS} characters",
                                   code="reason_required")
        done, refused = [], []
        for doc_id in ids:
            try:
                self.decide(doc_id, "reject", reason=reason)
                done.append(doc_id)
            except EscrError as exc:
                refused.append({"id": doc_id, "code": exc.code, "why": str(exc)})
        return {"rejected": done, "refused": refused}

    def quarantine_entries(self) -> list[dict[str, Any]]:
        require(self.p, Can.INTAKE)
        from escr.intake.quarantine import list_quarantine

        keep = ("code", "reason", "what_to_do", "intake_path", "operator", "device", "received_at",
                "quarantined_at", "sha256", "size_bytes")
        return [{"claim_id": e.claim_id, **{k: e.reason.get(k) for k in keep}}
                for e in list_quarantine(self.settings.quarantine_dir)]

    def quarantine(self, offset: int, limit: int) -> PageOf:
        return page_of(self.quarantine_entries(), offset, limit)

    def retry_quarantined(self, claim_id: str) -> str:
        """Put a quarantined file back in the intake folder for another try; logged."""
        require(self.p, Can.INTAKE)
        access.require_change(self.p)
        from escr.intake.quarantine import retry

        target = retry(claim_id, quarantine_dir=self.settings.quarantine_dir, intake_dir=self.settings.intake_dir,
                       db=self.db, actor=self.p.actor)
        return str(target.relative_to(self.settings.intake_dir))

    def retry_many_quarantined(self, claim_ids: list[str]) -> dict[str, Any]:
        """Put several quarantined files back in the intake folder: business support's bulk action
        on quarantine. Each file is retried on its own, exactly as one at a time (the same
        permission, the same logged event); one that cannot be is reported with its reason and
        stays in quarantine, and the others still go back."""
        require(self.p, Can.INTAKE)
        access.require_change(self.p)
        ids = _chosen(claim_ids, "quarantined files", "retried")
        returned, refused = [], []
        for claim_id in ids:
            try:
                returned.append({"claim_id": claim_id, "returned_to": self.retry_quarantined(claim_id)})
            except NotFound as exc:  # retried or discarded by someone else since the list was shown
                refused.append({"claim_id": claim_id, "code": exc.code,
                                "why": "it is not in quarantine (already retried or discarded, or never there)"})
            except EscrError as exc:
                refused.append({"claim_id": claim_id, "code": exc.code, "why": exc.message})
        return {"returned": returned, "refused": refused}

    def discard_quarantined(self, claim_id: str, reason: str) -> str:
        """Discard a quarantined file: off the list, bytes kept until retention allows; logged."""
        require(self.p, Can.INTAKE)
        access.require_change(self.p)
        from escr.intake.quarantine import discard

        keep_until = date.today() + timedelta(days=self.settings.web.discarded_keep_days)
        discard(claim_id, quarantine_dir=self.settings.quarantine_dir, discarded_dir=self.settings.home / "discarded",
                db=self.db, actor=self.p.actor, reason=reason, keep_until=keep_until)
        return keep_until.isoformat()

    def index(self, doc_id: str, *, child_ids: list[str], doc_type: str, doc_date: date | None,
              version: int | None = None) -> str:
        """Index by hand, or correct the indexing before verification (a verifier who corrects
        becomes the indexer, so yet another person verifies)."""
        from escr.app.verification import check_version, index_document
        from escr.record.retention_updates import retention_hook

        child_ids = [c.strip() for c in child_ids if c and c.strip()]
        with self.db.session() as session:
            doc = self._document(session, doc_id)
            if not (self.p.can(Can.INDEX) or self.p.can(Can.VERIFY)):
                require(self.p, Can.INDEX)
            check_version(doc, version)
            access.index_grant(session, self.p, doc)
            if not self.p.can(Can.INDEX):
                access.correction_targets(session, self.p, child_ids)
            doc = index_document(session, doc_id, user=self.p.username, child_ids=child_ids, doc_type=doc_type,
                                 known_types=self.services.doctypes.types, doc_date=doc_date,
                                 on_retention_change=retention_hook(self.services.store, self.services.retention,
                                                                    self.p.actor, reason="indexed by hand"),
                                 expected_version=version)
            return doc.state

    def decide(self, doc_id: str, decision: str, *, reason: str = "", version: int | None = None) -> str:
        """Verify, reject, or accept a QC failure, under the four-eyes rule, only by someone who
        may open every page; `version` is what the person saw (a later change is a conflict)."""
        from escr.app.verification import accept_qc_failure, check_version, reject_document, verify_document, withdraw_document

        with self.db.session() as session:
            doc = self._document(session, doc_id)
            require(self.p, Can.INTAKE if decision == "withdraw" else Can.VERIFY)
            check_version(doc, version)  # someone decided since: say so, whatever else now applies
            if decision == "withdraw":
                require(self.p, Can.INTAKE)
                return withdraw_document(session, doc_id, user=self.p.username, reason=reason,
                                         expected_version=version).state
            access.verify_grant(session, self.p, doc)
            if decision == "verify":
                doc = verify_document(session, doc_id, user=self.p.username, expected_version=version)
            elif decision == "reject":
                doc = reject_document(session, doc_id, user=self.p.username, reason=reason, expected_version=version)
            elif decision == "accept_qc":
                doc = accept_qc_failure(session, doc_id, user=self.p.username, reason=reason, expected_version=version)
            else:
                raise ValidationFailed(f"unknown decision {decision}")
            return doc.state

    def set_third_party(self, doc_id: str, *, on: bool, reason: str, version: int | None = None) -> bool:
        """Set or clear the third-party flag, with a reason: a verifier who may open the document."""
        from escr.app.verification import set_third_party

        with self.db.session() as session:
            access.verify_grant(session, self.p, self._document(session, doc_id))
            return set_third_party(session, doc_id, user=self.p.username, on=on, reason=reason,
                                   expected_version=version).third_party

    def link_rescan(self, doc_id: str, replaces: str) -> str:
        """Link a rescan to the rejected or withdrawn scan it replaces (which becomes superseded)."""
        require(self.p, Can.INTAKE)
        from escr.app.verification import link_rescan

        with self.db.session() as session:
            return link_rescan(session, doc_id, replaces, user=self.p.username).state

    def request_correction(self, doc_id: str, *, reason: str, child_ids: list[str] | None = None,
                           doc_type: str | None = None, doc_date: date | None = None) -> dict[str, Any]:
        from escr.app import corrections

        with self.db.session() as session:
            row = corrections.request_correction(session, self.p, doc_id, reason=reason, child_ids=child_ids,
                                                 doc_type=doc_type or None, doc_date=doc_date,
                                                 types=self.services.doctypes.types)
            return corrections.request_dict(row)

    def decide_correction(self, request_id: int, *, approve: bool, note: str = "") -> dict[str, Any]:
        """A second person approves (the document moves) or refuses a correction."""
        from escr.app import corrections
        from escr.record.retention_updates import retention_hook

        with self.db.session() as session:
            if approve:
                row = corrections.approve_correction(
                    session, self.p, request_id, note=note, types=self.services.doctypes.types,
                    on_retention_change=retention_hook(self.services.store, self.services.retention, self.p.actor,
                                                       reason="corrected"))
            else:
                row = corrections.refuse_correction(session, self.p, request_id, note=note)
            return corrections.request_dict(row)

    def corrections_waiting(self) -> list[dict[str, Any]]:
        """Corrections asked by someone else that this person may approve or refuse."""
        from escr.app import corrections

        with self.db.session() as session:
            return corrections.waiting_for(session, self.p)

    def corrections(self, doc_id: str) -> list[dict[str, Any]]:
        from escr.app import corrections

        with self.db.session() as session:
            return corrections.corrections_of(session, self.p, doc_id)

    def coversheet(self, child_ids: list[str], doc_type: str, pages: int | None, *, print_names: bool) -> bytes:
        """A printable cover sheet PDF for the child(ren)."""
        return self.cover_sheet(child_ids, doc_type, pages, print_names=print_names)[1]

    def cover_sheet(self, child_ids: list[str], doc_type: str, pages: int | None, *, print_names: bool,
                    batch_id: str | None = None) -> tuple[str, bytes]:
        """A cover sheet for the child(ren): its batch id and the printable PDF."""
        require(self.p, Can.INTAKE)
        from escr.pages.coversheet import CoverSheet, new_batch_id, render_coversheet_pdf

        if doc_type not in self.services.doctypes.types:
            raise NotFound(f"unknown document type {doc_type}")
        with self.db.session() as session:
            children = [session.get(Child, c) for c in child_ids]
            missing = [c for c, row in zip(child_ids, children, strict=True) if row is None]
            if missing:
                raise NotFound(f"children not in the child index: {', '.join(missing)}")
            labels = [f"{c.given_names} {c.family_name}" for c in children if c] if print_names else []
            sheet = CoverSheet(batch_id or new_batch_id(), tuple(child_ids), doc_type, pages)
            with tempfile.TemporaryDirectory() as tmp:
                pdf = render_coversheet_pdf(sheet, Path(tmp) / "sheet.pdf", child_labels=labels).read_bytes()
            # Every printed sheet is in the register (protocol step 2), so one never scanned is listed.
            coversheets.register_printed(session, self.p, batch_id=sheet.batch_id, child_ids=list(child_ids),
                                         doc_type=doc_type, declared_pages=pages)
        return sheet.batch_id, pdf

    def doc_types(self) -> list[tuple[str, str]]:
        return [(code, t.label) for code, t in self.services.doctypes.types.items()]

    # --- auditors ----------------------------------------------------------------------------

    def _access_log_stmt(self, *, child_id: str | None, user: str | None, since: date | None, until: date | None,
                         action: str | None, outcome: str | None):  # type: ignore[no-untyped-def]
        require(self.p, Can.AUDIT)
        stmt = select(Event).where(Event.category == "access")
        if child_id:
            stmt = stmt.where(Event.child_id == child_id.strip())
        if user:
            stmt = stmt.where(Event.actor == user.strip().lower())
        if since:
            stmt = stmt.where(Event.at >= datetime.combine(since, datetime.min.time(), UTC))
        if until:
            stmt = stmt.where(Event.at < datetime.combine(until + timedelta(days=1), datetime.min.time(), UTC))
        if outcome:
            stmt = stmt.where(Event.outcome == outcome)
        if action:
            stmt = stmt.where(Event.detail["action"].as_string() == action)
        return stmt

    def _log_audit_read(self, session: Session, how: str, what: str, filters: dict[str, Any]) -> None:
        """Auditors' own reads of the logs are logged too: who watched, what and with which filters."""
        record(session, AccessEvent(actor=self.p.actor, action=how,  # type: ignore[arg-type]
                                    parameters={"object": what, **{k: (str(v) if isinstance(v, date) else v)
                                                                    for k, v in filters.items() if v is not None}}))

    def access_log(self, offset: int, limit: int, **filters: Any) -> PageOf:
        """Who used which child's record, when, how and why; newest first."""
        stmt = self._access_log_stmt(**filters)
        with self.db.session() as session:
            total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
            rows = session.scalars(stmt.order_by(Event.id.desc()).offset(offset).limit(limit)).all()
            page = PageOf([event_dict(e) for e in rows], offset, limit, total)
            self._log_audit_read(session, "view", "access_log", {**filters, "offset": offset})
            return page

    def access_log_all(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every matching row, oldest first, fetched in batches (for the CSV export).

        The rules are checked now, before the first byte of the answer is sent."""
        stmt = self._access_log_stmt(**filters)
        with self.db.session() as session:
            self._log_audit_read(session, "download", "access_log", filters)
        return self._batches(stmt)

    def _batches(self, stmt) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
        last = 0
        while True:
            with self.db.session() as session:
                rows = session.scalars(stmt.where(Event.id > last).order_by(Event.id).limit(500)).all()
                batch = [event_dict(e) for e in rows]
            if not batch:
                return
            yield from batch
            last = batch[-1]["seq"]

    def record_purpose(self, purpose: str, *, document_id: str | None = None, child_id: str | None = None) -> str:
        with self.db.session() as session:
            row = access.record_purpose(session, self.p, purpose, minutes=self.settings.web.audit_purpose_minutes,
                                        document_id=document_id, child_id=child_id)
            return iso(row.expires_at) or ""

    def purposes(self) -> list[dict[str, Any]]:
        require(self.p, Can.AUDIT)
        with self.db.session() as session:
            rows = session.scalars(select(AuditPurpose).where(AuditPurpose.user_id == self.p.user_id,
                                                              AuditPurpose.expires_at > now())
                                   .order_by(AuditPurpose.id.desc())).all()
            return [{"id": r.id, "document_id": r.document_id, "child_id": r.child_id, "purpose": r.purpose,
                     "expires_at": iso(r.expires_at)} for r in rows]

    # --- break-glass ---------------------------------------------------------------------------

    def break_glass(self, child_id: str, reason: str) -> dict[str, Any]:
        with self.db.session() as session:
            glass = access.break_glass(session, self.p, child_id.strip(), reason,
                                       minutes=self.settings.web.break_glass_minutes)
            return glass_dict(glass, self.p.username)

    def break_glass_list(self, *, everyone: bool, pending_only: bool, offset: int, limit: int) -> PageOf:
        """Everyone's break-glass accesses (for reviewers), or one's own."""
        require(self.p, Can.REVIEW_BREAK_GLASS if everyone else Can.BREAK_GLASS)
        with self.db.session() as session:
            if everyone:
                self._log_audit_read(session, "view", "break_glass_reviews",
                                     {"pending_only": pending_only, "offset": offset})
            stmt = select(BreakGlass, User.username).join(User, User.id == BreakGlass.user_id)
            if not everyone:
                stmt = stmt.where(BreakGlass.user_id == self.p.user_id)
            if pending_only:
                stmt = stmt.where(BreakGlass.reviewed_at.is_(None))
            total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
            rows = session.execute(stmt.order_by(BreakGlass.id.desc()).offset(offset).limit(limit)).all()
            items = [glass_dict(g, name) for g, name in rows]
            if everyone:  # reviewers are told which ids were not in the index (a probe, or a typo)
                known = set(session.scalars(select(Child.child_id).where(
                    Child.child_id.in_({g["child_id"] for g in items}))))
                for g in items:
                    g["in_index"] = g["child_id"] in known
            return PageOf(items, offset, limit, total)

    def review_break_glass(self, glass_id: int, outcome: str, note: str) -> None:
        with self.db.session() as session:
            access.review_break_glass(session, self.p, glass_id, outcome, note)

    # --- people, teams, allocation, tokens -------------------------------------------------------

    def users(self, offset: int, limit: int) -> PageOf:
        require(self.p, Can.ADMINISTER)
        with self.db.session() as session:
            total = session.scalar(select(func.count()).select_from(User)) or 0
            rows = session.scalars(select(User).order_by(User.username).offset(offset).limit(limit)).all()
            return PageOf([user_dict(u) for u in rows], offset, limit, total)

    def add_user(self, username: str, *, role: str, display_name: str | None, teams: list[str],
                 third_party: bool, password: str | None = None) -> str:
        """Create a user; returns their first password (given, or random to show once). The
        administrator knows it, so the person must choose their own before anything else."""
        require(self.p, Can.ADMINISTER)
        with self.db.session() as session:
            _, password = accounts.add_user(session, username, role=role, actor=self.p.actor,
                                            display_name=display_name, teams=teams, third_party=third_party,
                                            password=password, must_change_password=True)
            return password

    def update_user(self, username: str, *, role: str | None = None, display_name: str | None = None,
                    third_party: bool | None = None, disabled: bool | None = None) -> dict[str, Any]:
        require(self.p, Can.ADMINISTER)
        with self.db.session() as session:
            user = accounts.update_user(session, username, actor=self.p.actor, role=role, display_name=display_name,
                                        third_party=third_party)
            if disabled is not None and disabled != user.disabled:
                user = accounts.set_disabled(session, username, disabled, actor=self.p.actor)
            return user_dict(user)

    def reset_password(self, username: str, password: str | None = None) -> str:
        require(self.p, Can.ADMINISTER)
        with self.db.session() as session:
            return accounts.reset_password(session, username, actor=self.p.actor, password=password)

    def create_token_for(self, username: str, name: str, days: int | None, scope: str = "write") -> dict[str, Any]:
        """An administrator makes an API token for someone (a script's account, a person without a terminal)."""
        require(self.p, Can.ADMINISTER)
        with self.db.session() as session:
            new = accounts.create_token(session, accounts.get_user(session, username), name, actor=self.p.actor,
                                        days=days, scope=scope, via=self.p.via, limits=self.settings.web)
            return {"id": new.token.id, "name": new.token.name, "token": new.secret, "scope": new.token.scope,
                    "expires_at": iso(new.token.expires_at)}

    def revoke_any_token(self, token_id: int) -> None:
        """Administrators: revoke anyone's API token."""
        self.admin_revoke_token(token_id)

    def revoke_all_tokens_of(self, username: str) -> int:
        """Administrators: revoke every live API token of a user (a lost laptop, a leaver)."""
        access.require_change(self.p)
        with self.db.session() as session:
            return accounts.admin_revoke_all_tokens(session, self.p, username)

    def teams(self) -> list[dict[str, Any]]:
        require(self.p, Can.ADMINISTER)
        with self.db.session() as session:
            teams = session.scalars(select(Team).order_by(Team.code)).all()
            counts = dict(session.execute(select(Child.team, func.count()).group_by(Child.team)).all())
            return [{"code": t.code, "name": t.name, "children": counts.get(t.code, 0),
                     "members": [u.username for u in accounts.team_members(session, t.code)]} for t in teams]

    def add_team(self, code: str, name: str | None) -> None:
        require(self.p, Can.ADMINISTER)
        with self.db.session() as session:
            accounts.add_team(session, code, actor=self.p.actor, name=name)

    def set_membership(self, team: str, username: str, member: bool) -> None:
        require(self.p, Can.ADMINISTER)
        with self.db.session() as session:
            if member:
                accounts.add_member(session, team, username, actor=self.p.actor)
            else:
                accounts.remove_member(session, team, username, actor=self.p.actor)

    def allocate(self, child_id: str, username: str | None) -> None:
        """Allocate a child to a worker: administrators any child; team managers their teams' children
        to members of their teams."""
        require(self.p, Can.ALLOCATE)
        with self.db.session() as session:
            child = session.get(Child, child_id)
            if self.p.role is Role.TEAM_MANAGER:
                # The same answer for another team's child and for an id not in the index, so a
                # team manager cannot tell which ids exist.
                if child is None or child.team not in self.p.teams:
                    raise AccessDenied(f"child {child_id} is not in your teams", code="not_your_team")
                if username:
                    worker = accounts.get_user(session, username)
                    if not {m.team_code for m in worker.memberships} & set(self.p.teams):
                        raise AccessDenied(f"{worker.username} is not in your teams", code="not_your_team")
            elif child is None:
                raise NotFound(f"no child {child_id} in the child index")
            accounts.allocate(session, child_id, username or None, actor=self.p.actor)

    def team_workers(self, child_id: str) -> list[str]:
        """Whom a team manager may allocate this child to (members of the child's team)."""
        with self.db.session() as session:
            child = session.get(Child, child_id)
            if child is None or not child.team:
                return []
            return [u.username for u in accounts.team_members(session, child.team)
                    if u.role in (Role.CASEWORKER, Role.TEAM_MANAGER) and not u.disabled]

    def tokens(self) -> list[dict[str, Any]]:
        with self.db.session() as session:
            return [accounts.token_dict(t) for t in accounts.tokens_of(session, self.p.user_id)]

    def create_token(self, name: str, days: int | None, scope: str = "write") -> dict[str, Any]:
        access.require_change(self.p)
        with self.db.session() as session:
            user = session.get(User, self.p.user_id)
            assert user is not None
            new = accounts.create_token(session, user, name, actor=self.p.actor, days=days, scope=scope,
                                        via=self.p.via, limits=self.settings.web)
            return {"id": new.token.id, "name": new.token.name, "token": new.secret, "scope": new.token.scope,
                    "expires_at": iso(new.token.expires_at)}

    def revoke_token(self, token_id: int) -> None:
        access.require_change(self.p)
        with self.db.session() as session:
            accounts.revoke_token(session, token_id, actor=self.p.actor, owner_id=self.p.user_id, reason="by_owner")

    def user_tokens(self, username: str) -> list[dict[str, Any]]:
        """Administrators: another user's API tokens."""
        with self.db.session() as session:
            return accounts.user_tokens(session, self.p, username)

    def admin_revoke_token(self, token_id: int) -> dict[str, Any]:
        """Administrators: revoke anyone's API token."""
        access.require_change(self.p)
        with self.db.session() as session:
            return accounts.admin_revoke_token(session, self.p, token_id)

    def change_password(self, old: str, new: str, *, keep_session: str | None = None) -> None:
        access.require_change(self.p)
        with self.db.session() as session:
            accounts.change_own_password(session, self.p.user_id, old, new, keep_session=keep_session)

    def me(self) -> dict[str, Any]:
        return {"username": self.p.username, "display_name": self.p.display_name, "role": self.p.role.value,
                "teams": sorted(self.p.teams), "third_party_access": self.p.third_party, "via": self.p.via,
                "scope": self.p.scope.value if self.p.scope else None,
                "must_change_password": self.p.must_change_password,
                "can": sorted(c.value for c in access.CAPABILITIES[self.p.role])}
