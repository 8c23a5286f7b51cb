"""Disposal: records are not kept longer than necessary (seed 003, appendix 3), and never on a guess.

A review list names the documents and paper volumes whose retention date has passed and that
nothing holds: no legal hold on the document, no category-wide hold (a public inquiry's
destruction freeze by document type, or by a status the child has ever had), no open proposal.
A records manager (the auditor role) proposes items from the list; a second person (another
records manager or a team manager) approves or refuses. Carrying out an approved proposal
checks every item again, deletes the document's stored objects once their lock has expired
(an item whose lock still runs is left for a later run), marks paper volumes destroyed, writes
a destruction certificate to the store under a legal hold, and keeps a tombstone per item
(ids, hashes, type, dates, who proposed and approved) for ever. The record is committed before
the objects are deleted, so no object is ever gone without its tombstone.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from escr.app import labels
from escr.app.access import AccessDenied, Principal, Role
from escr.clock import iso
from escr.errors import EscrError, InvalidState, NotFound, ProtocolViolation, ValidationFailed
from escr.record import payloads, states
from escr.record import status as status_codes
from escr.record.events import Kind, ProtocolEvent, now, record
from escr.record.models import (
    Batch,
    CategoryHold,
    Child,
    DisposalProposal,
    Document,
    Page,
    PaperVolume,
    QcResult,
    Tag,
    Tombstone,
)
from escr.record.retention import RetentionSchedule
from escr.record.retention_updates import child_keep_until
from escr.record.states import DocumentState, PaperState
from escr.services import Services
from escr.storage.objectstore import today_utc

log = logging.getLogger("escr.app.disposal")

SCOPES = ("doc_type", "status")
OPEN = ("proposed", "approved")
RECORDS_MANAGERS = (Role.AUDITOR,)
APPROVERS = (Role.AUDITOR, Role.TEAM_MANAGER)
VOLUME_DISPOSED = PaperState.DISPOSED  # a paper volume's (a document's is DocumentState.DISPOSED)


def _require(principal: Principal, roles: tuple[Role, ...], what: str) -> None:
    if principal.role not in roles:
        raise AccessDenied(f"the {principal.role} role may not {what}", code="role_forbidden")


def _reason(text: str | None, what: str = "reason") -> str:
    if not (text and text.strip()):
        raise ValidationFailed(f"required: {what}")
    return text.strip()


# --- category-wide holds -----------------------------------------------------------------------


def hold_classes(known_types: Collection[str]) -> dict[str, tuple[str, ...]]:
    """What a category hold can name: a document type escr knows, or a status or category a child
    can have. A class picked from these lists cannot be a typing slip that holds nothing."""
    return {"doc_type": tuple(sorted(known_types)),
            "status": tuple(dict.fromkeys(c for c in (*status_codes.STATUSES, *labels.CHILD_CATEGORIES)
                                          if c not in status_codes.ALIASES))}


def set_category_hold(session: Session, principal: Principal, *, scope: str, value: str, reason: str,
                      known_types: Collection[str]) -> CategoryHold:
    """Stop disposal of a whole class of records at once (e.g. an inquiry's destruction freeze)."""
    _require(principal, RECORDS_MANAGERS, "set a category hold")
    if scope not in SCOPES:
        raise ValidationFailed(f"scope is one of {', '.join(SCOPES)}")
    value = (value or "").strip().lower()
    classes = hold_classes(known_types)[scope]
    if value not in classes:
        what = "document type" if scope == "doc_type" else "status"
        raise ValidationFailed(f"{value or '(none)'} is not a {what} escr knows; pick one of {', '.join(classes)}")
    hold = CategoryHold(scope=scope, value=value, reason=_reason(reason),
                        set_by=principal.username, set_at=now())
    session.add(hold)
    session.flush()
    record(session, ProtocolEvent(kind=Kind.CATEGORY_HOLD_SET, actor=principal.actor,
                                  parameters=payloads.CategoryHold(hold_id=hold.id, scope=scope, value=hold.value,
                                                                   reason=hold.reason)))
    return hold


def release_category_hold(session: Session, principal: Principal, hold_id: int, *, reason: str) -> CategoryHold:
    _require(principal, RECORDS_MANAGERS, "release a category hold")
    hold = session.get(CategoryHold, hold_id)
    if hold is None:
        raise NotFound(f"no category hold {hold_id}")
    if hold.released_at is not None:
        raise InvalidState(f"category hold {hold_id} was released already")
    hold.released_by, hold.released_at = principal.username, now()
    record(session, ProtocolEvent(kind=Kind.CATEGORY_HOLD_RELEASED, actor=principal.actor,
                                  parameters=payloads.CategoryHold(hold_id=hold.id, scope=hold.scope, value=hold.value,
                                                                   reason=_reason(reason))))
    return hold


def active_holds(session: Session) -> list[CategoryHold]:
    return list(session.scalars(select(CategoryHold).where(CategoryHold.released_at.is_(None))
                                .order_by(CategoryHold.id)))


# --- the review list ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    kind: str  # document | volume
    id: str
    child_ids: tuple[str, ...]
    doc_type: str | None
    retention_until: date

    def as_payload(self) -> payloads.DisposalItem:
        return payloads.DisposalItem(kind=self.kind, id=self.id, child_ids=list(self.child_ids),
                                     doc_type=self.doc_type, retention_until=self.retention_until.isoformat())

    def as_dict(self) -> dict[str, Any]:
        return self.as_payload().as_json()


def _held_by_category(holds: list[CategoryHold], doc_type: str | None, children: list[Child]) -> CategoryHold | None:
    categories = {(c.category or "").lower() for c in children}
    statuses = {s.status for c in children for s in c.statuses} | {status_codes.ALIASES.get(c, c) for c in categories}
    for hold in holds:
        if (hold.scope == "doc_type" and doc_type and doc_type.lower() == hold.value) or \
                (hold.scope == "status" and hold.value in statuses):
            return hold
    return None


def _proposed(session: Session) -> set[tuple[str, str]]:
    rows = session.scalars(select(DisposalProposal).where(DisposalProposal.state.in_(OPEN))).all()
    return {(i["kind"], i["id"]) for p in rows for i in p.items if not i.get("done")}


def _document_candidate(session: Session, doc: Document, holds: list[CategoryHold], today: date) -> Candidate | None:
    if doc.state == DocumentState.DISPOSED or doc.legal_hold or doc.retention_until is None or doc.retention_until >= today:
        return None
    children = [c for c in (session.get(Child, link.child_id) for link in doc.children) if c is not None]
    if _held_by_category(holds, doc.doc_type, children):
        return None
    return Candidate("document", doc.id, tuple(sorted(c.child_id for c in children)), doc.doc_type, doc.retention_until)


def _volume_candidate(session: Session, vol: PaperVolume, schedule: RetentionSchedule, holds: list[CategoryHold],
                      today: date) -> Candidate | None:
    if vol.state != PaperState.IN_PLACE or vol.legal_hold:
        return None
    child = session.get(Child, vol.child_id)
    until = child_keep_until(schedule, child) if child is not None else None
    if until is None or until >= today or child is None or _held_by_category(holds, vol.doc_type, [child]):
        return None
    return Candidate("volume", vol.id, (vol.child_id,), vol.doc_type, until)


def review_list(session: Session, principal: Principal, schedule: RetentionSchedule, *,
                today: date | None = None) -> list[Candidate]:
    """Documents and paper volumes whose retention has passed and that nothing holds."""
    _require(principal, RECORDS_MANAGERS + APPROVERS, "review records for disposal")
    today = today or today_utc()
    holds, proposed = active_holds(session), _proposed(session)
    found = []
    docs = session.scalars(select(Document).where(Document.retention_until < today, Document.state != DocumentState.DISPOSED,
                                                  Document.legal_hold.is_(False)).order_by(Document.retention_until))
    for doc in docs:
        cand = _document_candidate(session, doc, holds, today)
        if cand and (cand.kind, cand.id) not in proposed:
            found.append(cand)
    for vol in session.scalars(select(PaperVolume).where(PaperVolume.state == PaperState.IN_PLACE).order_by(PaperVolume.id)):
        cand = _volume_candidate(session, vol, schedule, holds, today)
        if cand and (cand.kind, cand.id) not in proposed:
            found.append(cand)
    return found


def _candidate(session: Session, kind: str, item_id: str, schedule: RetentionSchedule, today: date) -> Candidate | None:
    holds = active_holds(session)
    if kind == "document":
        doc = session.get(Document, item_id)
        return None if doc is None else _document_candidate(session, doc, holds, today)
    vol = session.get(PaperVolume, item_id)
    return None if vol is None else _volume_candidate(session, vol, schedule, holds, today)


# --- propose, decide, carry out ----------------------------------------------------------------


def propose(session: Session, principal: Principal, schedule: RetentionSchedule, items: list[tuple[str, str]], *,
            reason: str, today: date | None = None) -> DisposalProposal:
    """A records manager proposes items that are on the review list now."""
    _require(principal, RECORDS_MANAGERS, "propose disposal")
    today = today or today_utc()
    if not items:
        raise ValidationFailed("name at least one item")
    proposed, problems, chosen = _proposed(session), [], []
    for kind, item_id in dict.fromkeys(items):
        cand = _candidate(session, kind, item_id, schedule, today) if kind in ("document", "volume") else None
        if cand is None or (kind, item_id) in proposed:
            problems.append(f"{kind} {item_id}")
        else:
            chosen.append(cand)
    if problems:
        raise InvalidState("not on the disposal review list (retention not passed, held, or proposed already): "
                           + ", ".join(problems))
    proposal = DisposalProposal(items=[{"kind": c.kind, "id": c.id} for c in chosen], reason=_reason(reason),
                                state="proposed", proposed_by=principal.username, proposed_at=now())
    session.add(proposal)
    session.flush()
    record(session, ProtocolEvent(kind=Kind.DISPOSAL_PROPOSED, actor=principal.actor,
                                  parameters=payloads.DisposalProposed(
                                      proposal_id=proposal.id, items=[c.as_payload() for c in chosen],
                                      reason=proposal.reason)))
    return proposal


def decide(session: Session, principal: Principal, proposal_id: int, *, approve: bool, note: str) -> DisposalProposal:
    """A second person approves or refuses; the proposer cannot decide their own proposal."""
    _require(principal, APPROVERS, "approve disposal")
    proposal = _proposal(session, proposal_id)
    if proposal.state != "proposed":
        raise InvalidState(f"proposal {proposal_id} is {proposal.state}")
    if principal.username.casefold() == proposal.proposed_by.casefold():
        raise ProtocolViolation(f"{principal.username} proposed disposal {proposal_id} and cannot approve it")
    proposal.state = "approved" if approve else "refused"
    proposal.decided_by, proposal.decided_at = principal.username, now()
    record(session, ProtocolEvent(kind=Kind.DISPOSAL_DECIDED, actor=principal.actor, outcome=proposal.state,
                                  parameters=payloads.DisposalDecided(proposal_id=proposal.id,
                                                                      note=_reason(note, "note"))))
    return proposal


def _proposal(session: Session, proposal_id: int) -> DisposalProposal:
    proposal = session.get(DisposalProposal, proposal_id)
    if proposal is None:
        raise NotFound(f"no disposal proposal {proposal_id}")
    return proposal


@dataclass(frozen=True)
class Outcome:
    proposal_id: int
    disposed: list[str]
    waiting: dict[str, str]  # item -> why it was left for a later run
    certificate_key: str | None
    left: list[str] = field(default_factory=list)  # objects whose deletion failed after the record was kept

    def as_dict(self) -> dict[str, Any]:
        return {"proposal_id": self.proposal_id, "disposed": self.disposed, "waiting": self.waiting,
                "certificate_key": self.certificate_key, "objects_left": self.left}



def carry_out(services: Services, principal: Principal, proposal_id: int, *, today: date | None = None) -> Outcome:
    """Dispose of an approved proposal's items whose locks have expired; the rest wait."""
    _require(principal, RECORDS_MANAGERS, "carry out disposal")
    today = today or today_utc()
    store, schedule = services.store, services.retention
    with services.db.session() as session:
        proposal = _proposal(session, proposal_id)
        if proposal.state != "approved":
            raise InvalidState(f"proposal {proposal_id} is {proposal.state}; only an approved one is carried out")
        stamp, disposed, waiting, stones, to_delete = now(), [], {}, [], []
        items = [dict(i) for i in proposal.items]
        for item in items:
            if item.get("done"):
                continue
            label = f"{item['kind']} {item['id']}"
            if _candidate(session, item["kind"], item["id"], schedule, today) is None:
                waiting[label] = "no longer on the review list (held, or its retention was extended)"
                continue
            if item["kind"] == "document":
                doc = session.get(Document, item["id"])
                assert doc is not None
                keys = _document_keys(session, doc)
                locked = [k for k in keys if store.stat(k) is not None and store.get_retention(k).protects(today)]
                if locked:
                    until = max((store.get_retention(k).until or today) for k in locked)
                    waiting[label] = f"stored objects are locked until {until.isoformat()}"
                    continue
                stone = _dispose_document(session, doc, keys, proposal, stamp)
                to_delete.extend(keys)
            else:
                vol = session.get(PaperVolume, item["id"])
                assert vol is not None
                vol.state, vol.location = VOLUME_DISPOSED, "destroyed"
                stone = Tombstone(item_kind="volume", item_id=vol.id, child_ids=[vol.child_id], doc_type=vol.doc_type,
                                  hashes={}, dates={"covers_from": iso(vol.covers_from), "covers_to": iso(vol.covers_to),
                                                    "registered": iso(vol.created_at)},
                                  proposal_id=proposal.id, proposed_by=proposal.proposed_by,
                                  approved_by=proposal.decided_by or "", disposed_at=stamp)
            session.add(stone)
            stones.append(stone)
            item["done"] = True
            disposed.append(label)
            record(session, ProtocolEvent(kind=Kind.DISPOSED, actor=principal.actor, outcome=item["kind"],
                                          document_id=item["id"] if item["kind"] == "document" else None,
                                          child_id=stone.child_ids[0] if len(stone.child_ids) == 1 else None,
                                          parameters=payloads.Disposed(proposal_id=proposal.id, item=item["id"],
                                                                       hashes=stone.hashes)))
        proposal.items = items
        certificate_key = None
        if stones:
            session.flush()
            certificate_key = _certificate(services, proposal, stones, principal, stamp)
        if all(i.get("done") for i in items):
            proposal.state, proposal.disposed_at = "disposed", stamp
        outcome = Outcome(proposal.id, disposed, waiting, certificate_key)
    # The tombstones and certificate are committed before anything is deleted: a failure now
    # leaves an object behind (listed, deleted by the next run), never a deletion without record.
    for key in to_delete:
        try:
            if store.stat(key) is not None:
                store.delete(key)
        except EscrError as exc:
            log.error("disposal %s: object %s not deleted (%s)", proposal_id, key, exc.code)
            outcome.left.append(key)
    return outcome


def _document_keys(session: Session, doc: Document) -> list[str]:
    """The document's own objects, and the original scan once no other document of it is left."""
    keys = [doc.searchable_key, doc.manifest_key]
    batch = session.get(Batch, doc.batch_id)
    if batch is not None and all(d.id == doc.id or d.state == DocumentState.DISPOSED for d in batch.documents):
        keys.append(batch.original_key)
    return keys


def _dispose_document(session: Session, doc: Document, keys: list[str], proposal: DisposalProposal,
                      stamp: Any) -> Tombstone:
    batch = session.get(Batch, doc.batch_id)
    hashes = {doc.searchable_key: doc.searchable_sha256, doc.manifest_key: doc.manifest_sha256}
    if batch is not None and batch.original_key in keys:
        hashes[batch.original_key] = batch.sha256
    stone = Tombstone(item_kind="document", item_id=doc.id, child_ids=sorted(c.child_id for c in doc.children),
                      doc_type=doc.doc_type, hashes=hashes,
                      dates={"doc_date": iso(doc.doc_date), "filed": iso(doc.created_at),
                             "verified": iso(doc.verified_at), "retention_until": iso(doc.retention_until)},
                      proposal_id=proposal.id, proposed_by=proposal.proposed_by,
                      approved_by=proposal.decided_by or "", disposed_at=stamp)
    # The content goes; the row stays as the tombstone's anchor (ids only, no text).
    for model in (Page, Tag, QcResult):
        for row in session.scalars(select(model).where(model.document_id == doc.id)):
            session.delete(row)
    doc.state = states.moved(doc.id, doc.state, states.DISPOSE, DocumentState.DISPOSED)
    doc.state_reasons, doc.updated_at = [f"disposal proposal {proposal.id}"], stamp
    return stone


def _certificate(services: Services, proposal: DisposalProposal, stones: list[Tombstone], principal: Principal,
                 stamp: Any) -> str:
    """The destruction certificate, kept in the store under a legal hold (for ever)."""
    body = {"certificate": "destruction of records", "proposal_id": proposal.id, "reason": proposal.reason,
            "proposed_by": proposal.proposed_by, "approved_by": proposal.decided_by,
            "carried_out_by": principal.username, "carried_out_at": stamp.isoformat(),
            "items": [{"tombstone_id": s.id, "kind": s.item_kind, "id": s.item_id, "child_ids": s.child_ids,
                       "doc_type": s.doc_type, "hashes": s.hashes, "dates": s.dates} for s in stones]}
    data = json.dumps(body, indent=2, sort_keys=True).encode()
    digest = hashlib.sha256(data).hexdigest()
    key = f"{services.settings.records.certificate_prefix}{proposal.id}-{stamp:%Y%m%dT%H%M%S}-{digest[:12]}.json"
    services.store.put_bytes(key, data, content_type="application/json", retain_until=None)
    proposal.certificate_key, proposal.certificate_sha256 = key, digest
    return key


def tombstones(session: Session, principal: Principal, *, item_id: str | None = None) -> list[dict[str, Any]]:
    _require(principal, RECORDS_MANAGERS + APPROVERS, "read tombstones")
    stmt = select(Tombstone).order_by(Tombstone.id)
    if item_id:
        stmt = stmt.where(Tombstone.item_id == item_id)
    return [{"id": t.id, "kind": t.item_kind, "item_id": t.item_id, "child_ids": t.child_ids, "doc_type": t.doc_type,
             "hashes": t.hashes, "dates": t.dates, "proposal_id": t.proposal_id, "proposed_by": t.proposed_by,
             "approved_by": t.approved_by, "disposed_at": t.disposed_at.isoformat()} for t in session.scalars(stmt)]


def proposals(session: Session, principal: Principal, *, limit: int = 50) -> list[dict[str, Any]]:
    """Proposals, newest first: those waiting for a second person or to be carried out, and past ones."""
    _require(principal, RECORDS_MANAGERS + APPROVERS, "read disposal proposals")
    rows = session.scalars(select(DisposalProposal).order_by(DisposalProposal.id.desc()).limit(limit))
    return [{"id": p.id, "items": p.items, "reason": p.reason, "state": p.state, "proposed_by": p.proposed_by,
             "proposed_at": iso(p.proposed_at), "decided_by": p.decided_by, "decided_at": iso(p.decided_at),
             "disposed_at": iso(p.disposed_at), "certificate_key": p.certificate_key,
             "certificate_sha256": p.certificate_sha256} for p in rows]


def holds(session: Session, principal: Principal) -> list[dict[str, Any]]:
    """The category-wide holds in force."""
    _require(principal, RECORDS_MANAGERS + APPROVERS, "read category holds")
    return [{"id": h.id, "scope": h.scope, "value": h.value, "reason": h.reason, "set_by": h.set_by,
             "set_at": iso(h.set_at)} for h in active_holds(session)]
