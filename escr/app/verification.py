"""Indexing and verification by people, under the four-eyes rule.

The protocol's final QC is by someone other than the scanner or the indexer; the checks here
are the only way a document's state moves after intake, and each move is a protocol event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime

from sqlalchemy import false, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from escr.errors import Conflict, InvalidState, NotFound, ProtocolViolation, ValidationFailed
from escr.indexing.tagging import DocType
from escr.record import payloads, states
from escr.record.events import Actor, Kind, ProtocolEvent, now, record
from escr.record.models import Child, Document, DocumentChild, DocumentLinkHistory, QcResult, Tag
from escr.record.states import DocumentState, require_state


def load_document(session: Session, doc_id: str) -> Document:
    doc = session.get(Document, doc_id)
    if doc is None:
        raise NotFound(f"no document {doc_id}")
    return doc


def check_version(doc: Document, expected_version: int | None) -> None:
    """A decision made on an older version of the document than the current one is a conflict."""
    if expected_version is not None and expected_version != doc.version:
        raise Conflict(f"document {doc.id} was changed by someone else since you opened it "
                       f"(version {expected_version}, now {doc.version}); reload it and decide again")


def claim(session: Session, doc: Document, expected_version: int | None = None) -> None:
    """Take the document for one decision, or refuse with a Conflict.

    `expected_version` is the version the person saw (the page or API answer carries it): if
    someone decided since, this decision was made on something that is no longer true. The
    guarded UPDATE makes two transactions deciding at once safe too: the second one waits for
    the first, then matches no row, and nothing of it is applied."""
    check_version(doc, expected_version)
    seen = doc.version
    done = session.execute(update(Document).where(Document.id == doc.id, Document.version == seen)
                           .values(version=seen + 1).execution_options(synchronize_session=False))
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"document {doc.id} was changed by someone else at the same time; reload it and decide again")
    set_committed_value(doc, "version", seen + 1)


def _same_person(a: str | None, b: str | None) -> bool:
    return bool(a and b and a.strip().casefold() == b.strip().casefold())


def scanned_or_indexed(doc: Document, user: str) -> bool:
    return _same_person(user, doc.batch.operator) or _same_person(user, doc.indexed_by)


def _require_other_person(doc: Document, user: str, action: str) -> None:
    if _same_person(user, doc.batch.operator):
        raise ProtocolViolation(f"{user} scanned document {doc.id} and cannot {action} it (four-eyes rule)")
    if _same_person(user, doc.indexed_by):
        raise ProtocolViolation(f"{user} indexed document {doc.id} and cannot {action} it (four-eyes rule)")


SYSTEM = "escr"  # the pipeline acting on its own (a rescan linked by its cover sheet)


def _event(session: Session, kind: Kind, doc: Document, user: str, **fields: object) -> None:
    actor = Actor.system() if user == SYSTEM else Actor(kind="user", name=user)
    record(session, ProtocolEvent(kind=kind, actor=actor, batch_id=doc.batch_id,
                                  document_id=doc.id, **fields))  # type: ignore[arg-type]


def relink(session: Session, doc: Document, child_ids: Sequence[str], *, user: str, reason: str,
           stamp: datetime) -> tuple[list[str], list[str]]:
    """Make the document's links exactly `child_ids`; a removed link goes to the link history.

    Links that stay are left as they were (who made them, on what basis); returns (removed, added)."""
    wanted = list(dict.fromkeys(child_ids))
    existing = {link.child_id: link for link in doc.children}
    removed = [c for c in existing if c not in wanted]
    added = [c for c in wanted if c not in existing]
    for child_id in removed:
        link = existing[child_id]
        session.add(DocumentLinkHistory(document_id=doc.id, child_id=child_id, basis=link.basis,
                                        linked_by=link.linked_by, linked_at=link.linked_at, unlinked_by=user,
                                        unlinked_at=stamp, reason=reason))
        session.delete(link)
    session.flush()
    for child_id in added:
        session.add(DocumentChild(document_id=doc.id, child_id=child_id, basis="person", linked_by=user,
                                  linked_at=stamp))
    session.flush()
    session.expire(doc, ["children"])
    return removed, added


def take_out_of_record(session: Session, doc: Document, *, user: str, reason: str, stamp: datetime) -> list[str]:
    """A rejected or withdrawn scan leaves every child's record: its links end (kept in the link
    history, so intake roles still see whose paper it was), and with them any access through
    them; a letter rejected as another family's no longer shows in the wrong child's record."""
    removed, _ = relink(session, doc, [], user=user, reason=reason, stamp=stamp)
    return removed


def identity_check(session: Session, doc: Document) -> QcResult | None:
    """Re-run the identity QC against the document's links now (the text's identifiers do not
    change: they are kept in the first identity check's numbers, or the strong candidates)."""
    rows = [q for q in doc.qc_results if q.check == "identity"]
    if rows:
        named = list(rows[0].numbers.get("identified_in_text") or [])
    else:
        named = [c.child_id for c in doc.candidates
                 if any(str(r).lower().startswith(("child id in text", "nhs number in text")) for r in c.reasons)]
    linked = sorted(link.child_id for link in doc.children)
    if linked and named and not set(named) & set(linked):
        status, message = "fail", ("The text identifies a different child from the one the document is filed to "
                                   f"({', '.join(sorted(named))}); check it before verifying.")
    else:
        status, message = "pass", ("Identifiers in the text agree with the linked child(ren)." if named
                                   else "No identifiers in the text to cross-check.")
    result = QcResult(document_id=doc.id, check="identity", status=status, message=message,
                      numbers={"linked": linked, "identified_in_text": sorted(named), "rechecked": True})
    doc.qc_results.append(result)
    return result


def third_party_for(doc: Document, doc_type: str | None, types: Mapping[str, DocType] | None) -> bool | None:
    """The flag the type's default and the text's own phrases give (None: the types are unknown)."""
    if types is None:
        return None
    kind = types.get(doc_type or "")
    phrase = any(t.name == "third_party" and t.source.startswith("rule:")
                 and not (t.detail or "").startswith("default for doc type") for t in doc.tags)
    return bool(phrase or (kind is not None and kind.third_party_default))


def _flag_decided_by_a_person(doc: Document) -> bool:
    flags = [t for t in doc.tags if t.name == "third_party"]
    return bool(flags) and max(flags, key=lambda t: (t.id is None, t.id or 0)).source.startswith("person:")


def index_document(
    session: Session, doc_id: str, *, user: str, child_ids: Sequence[str], doc_type: str,
    known_types: Sequence[str] | Mapping[str, DocType], doc_date: date | None = None,
    on_retention_change: Callable[[Session, list[str]], object] | None = None,
    expected_version: int | None = None,
) -> Document:
    """A person picks the child(ren) and type for a document, or corrects them before verification.

    Re-indexing replaces the links (the removed ones go to the link history), logs the old and
    the new, re-checks the identity QC and sets the third-party flag from the type's default.
    Whoever indexes cannot verify (four-eyes), so a verifier's correction hands it on.
    The children picked decide how long the document is kept: `on_retention_change` gets their
    ids once the document is indexed (escr.record.retention_updates.retention_hook)."""
    doc = load_document(session, doc_id)
    require_state(doc.id, doc.state, states.INDEX)
    if doc_type not in known_types:
        raise ValidationFailed(f"unknown document type {doc_type}")
    child_ids = list(dict.fromkeys(c.strip() for c in child_ids if c and c.strip()))
    missing = [c for c in child_ids if session.get(Child, c) is None]
    if missing or not child_ids:
        raise NotFound(f"children not in the child index: {', '.join(missing) or '(none given)'}")
    claim(session, doc, expected_version)
    stamp = now()
    before = {"children": sorted(c.child_id for c in doc.children), "doc_type": doc.doc_type,
              "doc_date": doc.doc_date.isoformat() if doc.doc_date else None, "third_party": doc.third_party,
              "indexed_by": doc.indexed_by}
    removed, added = relink(session, doc, child_ids, user=user, reason="reindexed", stamp=stamp)
    doc.doc_type, doc.indexed_by, doc.updated_at = doc_type, user, stamp
    doc.tags.append(Tag(name="doc_type", value=doc_type, source=f"person:{user}", confidence=1.0, created_at=stamp))
    doc.tags.extend(Tag(name="child_id", value=c, source=f"person:{user}", confidence=1.0, created_at=stamp) for c in child_ids)
    if doc_date is not None:
        doc.doc_date = doc_date
        doc.tags.append(Tag(name="doc_date", value=doc_date.isoformat(), source=f"person:{user}", confidence=1.0, created_at=stamp))
    flag = third_party_for(doc, doc_type, known_types if isinstance(known_types, Mapping) else None)
    if flag is not None and not (doc_type == before["doc_type"] and _flag_decided_by_a_person(doc)):
        doc.third_party = flag  # a person's stated decision stands while the type it was made on does
    identity = identity_check(session, doc)
    doc.state = states.moved(doc.id, doc.state, states.INDEX, DocumentState.AWAITING_VERIFICATION)
    doc.state_reasons = [identity.message] if identity is not None and identity.status == "fail" else []
    _event(session, Kind.INDEXED, doc, user, parameters=payloads.Indexed(
        before=payloads.IndexedFields(**before), after=payloads.IndexedFields(
            children=sorted(child_ids), doc_type=doc_type, doc_date=doc.doc_date.isoformat() if doc.doc_date else None,
            third_party=doc.third_party), removed=removed, added=added,
        identity_qc=identity.status if identity is not None else None))
    if on_retention_change is not None:
        session.flush()
        on_retention_change(session, child_ids)
    return doc


def accept_qc_failure(session: Session, doc_id: str, *, user: str, reason: str,
                      expected_version: int | None = None) -> Document:
    """A person judges a scan usable despite an automated QC failure (e.g. a faint original)."""
    doc = load_document(session, doc_id)
    require_state(doc.id, doc.state, states.ACCEPT_QC)
    _require_other_person(doc, user, "pass QC on")
    if not reason.strip():
        raise ValidationFailed("a reason is required to accept a QC failure", code="reason_required")
    claim(session, doc, expected_version)
    doc.state = states.moved(doc.id, doc.state, states.ACCEPT_QC,
                             DocumentState.AWAITING_VERIFICATION if doc.children and doc.doc_type else DocumentState.NEEDS_INDEXING)
    doc.state_reasons = [] if doc.state == DocumentState.AWAITING_VERIFICATION else ["pick the child(ren) and document type"]
    doc.updated_at = now()
    _event(session, Kind.QC_ACCEPTED, doc, user, parameters=payloads.QcAccepted(reason=reason, new_state=doc.state))
    return doc


def verify_document(session: Session, doc_id: str, *, user: str, expected_version: int | None = None) -> Document:
    doc = load_document(session, doc_id)
    require_state(doc.id, doc.state, states.VERIFY)
    _require_other_person(doc, user, "verify")
    claim(session, doc, expected_version)
    stamp = now()
    doc.state, doc.verified_by, doc.verified_at, doc.updated_at = DocumentState.VERIFIED, user, stamp, stamp
    _event(session, Kind.VERIFIED, doc, user, parameters=payloads.Verified(
        children=sorted(c.child_id for c in doc.children), doc_type=doc.doc_type, third_party=doc.third_party))
    return doc


def reject_document(session: Session, doc_id: str, *, user: str, reason: str,
                    expected_version: int | None = None) -> Document:
    """The scan is not acceptable: the paper must be rescanned (the rejected scan is kept, out of
    the child's chronology, and opens to intake roles only)."""
    doc = load_document(session, doc_id)
    require_state(doc.id, doc.state, states.REJECT)
    _require_other_person(doc, user, "reject")
    if not reason.strip():
        raise ValidationFailed("a reason is required to reject a document", code="reason_required")
    claim(session, doc, expected_version)
    stamp = now()
    unlinked = take_out_of_record(session, doc, user=user, reason="rejected", stamp=stamp)
    doc.state, doc.state_reasons, doc.updated_at = DocumentState.REJECTED, [reason], stamp
    _event(session, Kind.REJECTED, doc, user, outcome=DocumentState.REJECTED,
           parameters=payloads.Decided(reason=reason, unlinked=unlinked))
    return doc


def withdraw_document(session: Session, doc_id: str, *, user: str, reason: str,
                      expected_version: int | None = None) -> Document:
    """The scanner takes their own scan back for a rescan (four-eyes is for approving, not this)."""
    doc = load_document(session, doc_id)
    require_state(doc.id, doc.state, states.WITHDRAW)
    if not _same_person(user, doc.batch.operator):
        raise ProtocolViolation(f"only the scanner of document {doc.id} may withdraw it; "
                                "anyone else rejects it with a reason")
    if not reason.strip():
        raise ValidationFailed("a reason is required to withdraw a scan", code="reason_required")
    claim(session, doc, expected_version)
    stamp = now()
    unlinked = take_out_of_record(session, doc, user=user, reason="withdrawn", stamp=stamp)
    doc.state, doc.state_reasons, doc.updated_at = DocumentState.WITHDRAWN, [reason], stamp
    _event(session, Kind.WITHDRAWN, doc, user, outcome=DocumentState.WITHDRAWN,
           parameters=payloads.Decided(reason=reason, unlinked=unlinked))
    return doc


def link_rescan(session: Session, new_id: str, old_id: str, *, user: str, how: str = "person") -> Document:
    """Link a rescan to the scan it replaces; the replaced one becomes superseded: it leaves the
    chronology and stays in the audit trail (its rows, objects and events are all kept)."""
    new, old = load_document(session, new_id), load_document(session, old_id)
    if new.id == old.id:
        raise ValidationFailed("a scan cannot replace itself")
    require_state(old.id, old.state, states.SUPERSEDE)
    if new.state in states.OUT_OF_RECORD:
        raise InvalidState(f"document {new.id} is {new.state} and cannot replace another scan")
    if new.replaces_id is not None:
        raise InvalidState(f"document {new.id} already replaces {new.replaces_id}")
    claim(session, old)
    stamp = now()
    new.replaces_id, new.updated_at = old.id, stamp
    old.state, old.updated_at = DocumentState.SUPERSEDED, stamp
    old.state_reasons = [*old.state_reasons, f"replaced by {new.id}"]
    _event(session, Kind.SUPERSEDED, old, user, outcome=DocumentState.SUPERSEDED,
           parameters=payloads.Superseded(replaced_by=new.id, how=how))
    return old


def link_rescan_by_coversheet(session: Session, new_id: str) -> Document | None:
    """A rescan under the same cover-sheet batch id as a rejected or withdrawn scan replaces it."""
    new = load_document(session, new_id)
    if not new.coversheet_batch_id or new.replaces_id is not None:
        return None
    old = session.scalars(select(Document).where(
        Document.coversheet_batch_id == new.coversheet_batch_id, Document.id != new.id,
        Document.state.in_(states.SUPERSEDE.sources)).order_by(Document.created_at.desc())).first()
    if old is None:
        return None
    return link_rescan(session, new.id, old.id, user=SYSTEM, how="coversheet")


MIN_REASON_CHARS = 10  # a stated reason (break-glass, purposes, corrections, the third-party flag)


def set_third_party(session: Session, doc_id: str, *, user: str, on: bool, reason: str,
                    expected_version: int | None = None) -> Document:
    """An authorised person sets or clears the third-party flag, with a reason (logged). Before
    verification this corrects the indexing: whoever does it becomes the indexer, so yet another
    person verifies (four-eyes)."""
    doc = load_document(session, doc_id)
    if doc.state in states.OUT_OF_RECORD:
        raise InvalidState(f"document {doc.id} is {doc.state}: it is out of the record; flag its rescan instead")
    if len((reason or "").strip()) < MIN_REASON_CHARS:
        raise ValidationFailed(f"the reason must be stated in at least {MIN_REASON_CHARS} characters",
                               code="reason_required")
    if doc.third_party == on:
        raise ValidationFailed(f"document {doc.id} is {'already' if on else 'not'} flagged as third-party")
    claim(session, doc, expected_version)
    stamp = now()
    doc.third_party, doc.updated_at = on, stamp
    indexed_by = doc.indexed_by
    if doc.state in states.BEFORE_VERIFICATION:
        doc.indexed_by = user
    doc.tags.append(Tag(name="third_party", value="true" if on else "false", source=f"person:{user}",
                        confidence=1.0, detail=reason.strip()[:512], created_at=stamp))
    _event(session, Kind.THIRD_PARTY_CHANGED, doc, user, outcome="set" if on else "cleared",
           parameters=payloads.ThirdPartyChanged(third_party=on, reason=reason.strip()))
    if indexed_by != doc.indexed_by:  # the indexing was corrected: the log names the new indexer
        _event(session, Kind.INDEXED, doc, user, parameters=payloads.Indexed(
            before=payloads.IndexedFields(third_party=not on, indexed_by=indexed_by),
            after=payloads.IndexedFields(third_party=on), reason=reason.strip()))
    return doc


# --- what the verifier checks: every indexed field, with its source and confidence -----------

_TEXT_BASES = {"child_id": "child id in the text", "nhs_number": "NHS number in the text",
               "name_dob": "name and date of birth in the text"}


def _tag_source(tag: Tag) -> tuple[str, str | None]:
    """(source code, who or how) of a tag: cover sheet, OCR text, a person, or a type's default."""
    if tag.source.startswith("person:"):
        return "person", tag.source.split(":", 1)[1]
    if (tag.detail or "").startswith("default for doc type"):
        return "type_default", None
    if tag.source == "coversheet":
        return "coversheet", None
    return "text", None


def _latest(doc: Document, name: str, value: str | None) -> Tag | None:
    """The tag that gave the field its value: a person's latest, else the cover sheet's, else the
    latest reading of the text."""
    tags = [t for t in doc.tags if t.name == name and (value is None or t.value == value)]
    rank = {"person": 2, "coversheet": 1}
    return max(tags, key=lambda t: (rank.get(_tag_source(t)[0], 0), t.id is None, t.id or 0)) if tags else None


def _field(field: str, value: object, tag: Tag | None, *, confidence: float | None = None,
           how: str | None = None, **more: object) -> dict[str, object]:
    source, by = _tag_source(tag) if tag is not None else ("none", None)
    if tag is not None and confidence is None:
        confidence = tag.confidence
    return {"field": field, "value": value, "source": source, "by": by, "how": how,
            "confidence": None if confidence is None else round(min(1.0, confidence), 2), **more}


def indexed_fields(session: Session, doc: Document) -> list[dict[str, object]]:
    """Every indexed field of the document as the verifier checks it against the pages: its type,
    date, each linked child (with the child's name, date of birth and NHS number, so identity can
    be checked) and the third-party flag; each with where it came from (the pipeline, from a cover
    sheet or a match in the OCR text, or typed by a person) and how sure that is, least sure first
    (a field nothing supports has no confidence and comes first)."""
    fields = [_field("doc_type", doc.doc_type, _latest(doc, "doc_type", doc.doc_type) if doc.doc_type else None),
              _field("doc_date", doc.doc_date.isoformat() if doc.doc_date else None,
                     _latest(doc, "doc_date", doc.doc_date.isoformat()) if doc.doc_date else None)]
    scores = {c.child_id: c.score for c in doc.candidates}
    for link in sorted(doc.children, key=lambda c: c.child_id):
        child = session.get(Child, link.child_id)
        identity = None if child is None else {
            "child_id": child.child_id, "given_names": child.given_names, "family_name": child.family_name,
            "date_of_birth": child.date_of_birth.isoformat() if child.date_of_birth else None,
            "nhs_number": child.nhs_number}
        confidence: float | None
        if link.basis == "person":
            source, by, confidence, how = "person", link.linked_by, 1.0, None
        elif link.basis == "coversheet":
            source, by, confidence, how = "coversheet", None, 1.0, None
        else:
            source, by, confidence, how = "text", None, scores.get(link.child_id), _TEXT_BASES.get(link.basis)
        fields.append({"field": "child", "value": link.child_id, "child": identity, "source": source, "by": by,
                       "how": how, "confidence": None if confidence is None else round(min(1.0, confidence), 2)})
    flag = _latest(doc, "third_party", None)
    if flag is not None and (flag.value == "true") == doc.third_party:
        fields.append(_field("third_party", doc.third_party, flag,
                             how=flag.detail if flag.source.startswith("person:") else None))
    else:  # the type's default (no phrase of the text says otherwise): as sure as the type is
        kind = _latest(doc, "doc_type", doc.doc_type) if doc.doc_type else None
        fields.append({**_field("third_party", doc.third_party, kind),
                       "source": "type_default" if kind is not None else "none", "by": None})
    order = {"doc_type": 0, "doc_date": 1, "child": 2, "third_party": 3}

    def least_sure_first(f: dict[str, object]) -> tuple[float, int]:
        confidence = f["confidence"]
        return (-1.0 if not isinstance(confidence, float | int) else float(confidence), order[str(f["field"])])

    return sorted(fields, key=least_sure_first)


def versions(session: Session, doc: Document) -> list[dict[str, object]]:
    """The scans of one piece of paper, oldest first: each rescan is a new document beside the one
    it replaces (nothing stored is ever rewritten). The current one is the newest still in the
    record; when the newest is itself rejected or withdrawn, none is current until it is rescanned.
    A document never rescanned has one version (itself)."""
    chain = [doc]
    seen = {doc.id}
    while chain[0].replaces_id and chain[0].replaces_id not in seen:
        older = session.get(Document, chain[0].replaces_id)
        if older is None:
            break
        chain.insert(0, older)
        seen.add(older.id)
    while True:
        newer = session.scalars(select(Document).where(Document.replaces_id == chain[-1].id)
                                .order_by(Document.created_at, Document.id)).first()
        if newer is None or newer.id in seen:
            break
        chain.append(newer)
        seen.add(newer.id)
    newest = chain[-1]
    current = newest.id if newest.state not in states.OUT_OF_RECORD else None
    return [{"id": d.id, "state": d.state, "current": d.id == current,
             "received_at": d.created_at.isoformat() if d.created_at else None} for d in chain]


def rescan_candidates(session: Session, doc: Document, limit: int = 10) -> list[dict[str, object]]:
    """The rejected or withdrawn scans this document may be the rescan of, most recent first: those
    once filed to one of its children, or under the same cover-sheet batch id, so the person links
    the rescan by choosing rather than by typing an id."""
    children = [c.child_id for c in doc.children]
    near = or_(Document.id.in_(select(DocumentLinkHistory.document_id).where(DocumentLinkHistory.child_id.in_(children))),
               Document.coversheet_batch_id == doc.coversheet_batch_id if doc.coversheet_batch_id else false())
    rows = session.scalars(select(Document).where(Document.state.in_(states.SUPERSEDE.sources), Document.id != doc.id, near)
                           .order_by(Document.updated_at.desc(), Document.id).limit(limit)).all()
    return [{"id": d.id, "state": d.state, "doc_type": d.doc_type, "doc_date": d.doc_date.isoformat() if d.doc_date else None,
             "pages": d.page_count, "reasons": list(d.state_reasons or [])} for d in rows]
