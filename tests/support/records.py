"""A filed document without the pipeline: rows in the real database, objects in the real store.

The record tests (status history, disposal, timeliness) need documents with chosen dates and
children, not OCR; this writes what intake would have written, quickly."""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, date, datetime

from escr.app.access import Principal
from escr.app.accounts import add_team, add_user, principal_for
from escr.record.events import Actor
from escr.record.models import Batch, Document, DocumentChild
from escr.services import Services

_numbers = itertools.count(1)


def file_document(services: Services, child_ids: list[str], *, doc_type: str = "referral",
                  retention_until: date | None = None, received_at: datetime | None = None,
                  filed_at: datetime | None = None, verified_at: datetime | None = None,
                  coversheet_batch_id: str | None = None, state: str | None = None,
                  operator: str = "bs.jones", locked: bool = True) -> str:
    """`locked=False`: the objects carry no lock at all (as once a past lock has run out)."""
    n = next(_numbers)
    received = received_at or datetime(2024, 1, 8, 9, 0, tzinfo=UTC)
    filed = filed_at or received
    keys = {}
    for name in ("original", "searchable", "manifest"):
        data = f"{name} {n} {child_ids} {received.isoformat()}".encode()
        key = f"{name}/{hashlib.sha256(data).hexdigest()}"
        services.store.put_bytes(key, data, content_type="application/octet-stream",
                                 retain_until=retention_until if locked else None)
        if not locked:
            services.store.set_legal_hold(key, False)
        keys[name] = (key, hashlib.sha256(data).hexdigest())
    batch_id, doc_id = f"scan-{n:04d}-{received:%H%M%S%f}", f"doc-{n:04d}-{received:%H%M%S%f}"
    with services.db.session() as session:
        session.add(Batch(id=batch_id, sha256=keys["original"][1], claim_id=f"claim-{n}", operator=operator,
                          device="mfd-2", source_name=f"scan{n}.pdf", media_type="application/pdf", size_bytes=10,
                          page_count=1, producer=None, cover_batch_ids=[], original_key=keys["original"][0],
                          received_at=received, filed_at=filed))
        session.flush()
        session.add(Document(
            id=doc_id, batch_id=batch_id, seq=1, coversheet_batch_id=coversheet_batch_id, cover_page=None,
            first_page=0, last_page=0, page_count=1, declared_pages=1, doc_type=doc_type, doc_date=received.date(),
            state=state or ("verified" if verified_at else "awaiting_verification"), state_reasons=[],
            searchable_key=keys["searchable"][0], searchable_sha256=keys["searchable"][1],
            manifest_key=keys["manifest"][0], manifest_sha256=keys["manifest"][1], retention_until=retention_until,
            verified_by="tm.smith" if verified_at else None, verified_at=verified_at, created_at=filed,
            updated_at=filed))
        session.flush()
        for child_id in child_ids:
            session.add(DocumentChild(document_id=doc_id, child_id=child_id, basis="person", linked_by="bs.jones",
                                      linked_at=filed))
    return doc_id


def add_people(services: Services, people: list[tuple[str, str, list[str]]], *, teams: tuple[str, ...] = ()) -> dict[str, Principal]:
    """Add the teams and the people (name, role, teams) as an administrator would; their principals by name."""
    admin = Actor(kind="user", name="admin")
    found = {}
    with services.db.session() as session:
        for team in teams:
            add_team(session, team, actor=admin)
        for name, role, member_of in people:
            user, _ = add_user(session, name, role=role, actor=admin, teams=member_of)
            session.flush()
            found[name] = principal_for(user)
    return found
