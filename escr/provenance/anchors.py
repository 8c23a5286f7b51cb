"""Anchoring the event chain's head outside the database.

The hash chain shows that no single event was edited, inserted, reordered or deleted, but
someone with write access to the whole events table could rewrite it and recompute every hash.
An anchor is a small object in the store (`anchors/<time>-<event id>.json`) naming an event id,
its hash and the number of events up to it, sealed with HMAC-SHA256. The key is
`ESCR_ANCHOR__KEY` when set, else a key file kept apart from the database (default
`<home>/keys/anchor.key`), made with owner-only permissions at the first anchor: without a key,
someone who can write the database and the store could delete an event, rehash the chain and
re-make a plain-SHA-256 anchor that checks. Old unsealed anchors still read, and `escr fixity`
reports them. Anchor objects are written once and kept by the store's retention, so a rewritten
table no longer matches them. The `chain_anchors` table is only an index: the objects themselves
are the evidence, and `escr fixity` reads them from the store. Anchors are written every few
minutes and after each scan filed, so the unanchored tail of the log is short.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from escr.errors import ConfigError, EscrError
from escr.record.database import chain_head_for_update
from escr.record.events import Actor, Kind, ProtocolEvent, canonical, now, record
from escr.record.models import ChainAnchor, Event
from escr.services import Services
from escr.settings import AnchorSettings, Settings
from escr.storage.objectstore import ObjectStore

log = logging.getLogger("escr.provenance.anchors")

VERSION = 1
HMAC = "hmac-sha256"
SHA256 = "sha256"


@dataclass(frozen=True)
class Anchor:
    """What an anchor object says: the chain's head at one moment, sealed."""

    key: str
    event_id: int
    head_hash: str
    event_count: int
    created_at: datetime
    method: str
    digest: str

    def body(self) -> dict[str, Any]:
        return anchor_body(self.event_id, self.head_hash, self.event_count, self.created_at)

    def encode(self) -> bytes:
        return json.dumps({**self.body(), "method": self.method, "digest": self.digest},
                          sort_keys=True, indent=1).encode()

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "created_at": self.created_at.isoformat()}


@dataclass(frozen=True)
class StoredAnchor:
    """An anchor object read back from the store; `problem` says why it cannot be trusted."""

    key: str
    anchor: Anchor | None
    problem: str | None = None  # unreadable | seal_mismatch | unverifiable (no key to check an HMAC)


def anchor_key(settings: Settings, *, create: bool = False) -> SecretStr | None:
    """The sealing key: ESCR_ANCHOR__KEY, else the key file; None when there is none.

    With `create`, a missing key file is made (32 random bytes, hex) owner-only, in an owner-only
    folder, whatever the umask; an existing one is never replaced (O_EXCL), so two processes
    starting at once agree on one key.
    """
    if settings.anchor.key is not None and settings.anchor.key.get_secret_value():
        return settings.anchor.key
    path = settings.anchor_key_file
    if not path.exists() and create:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32) + "\n")
            log.info("anchor key created at %s", path)
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"the anchor key file {path} cannot be read: {exc.strerror}") from exc
    return SecretStr(text) if text else None


def key_file_exposed(settings: Settings) -> bool:
    """True when the key file can be read by anyone but its owner."""
    if settings.anchor.key is not None and settings.anchor.key.get_secret_value():
        return False
    try:
        mode = settings.anchor_key_file.stat().st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IRWXG | stat.S_IRWXO))


def anchor_body(event_id: int, head_hash: str, event_count: int, created_at: datetime) -> dict[str, Any]:
    return {"version": VERSION, "event_id": event_id, "head_hash": head_hash, "event_count": event_count,
            "created_at": created_at.astimezone(UTC).isoformat()}


def seal(body: dict[str, Any], key: SecretStr | None) -> tuple[str, str]:
    """(method, digest) over the canonical encoding of the body; HMAC when a key is configured."""
    data = canonical(body)
    if key is not None and key.get_secret_value():
        return HMAC, hmac.new(key.get_secret_value().encode(), data, hashlib.sha256).hexdigest()
    return SHA256, hashlib.sha256(data).hexdigest()


def object_key(prefix: str, created_at: datetime, event_id: int) -> str:
    """Time first, so the keys list in the order the anchors were written."""
    return f"{prefix}{created_at.astimezone(UTC):%Y%m%dT%H%M%S%fZ}-{event_id}.json"


def check_seal(anchor: Anchor, key: SecretStr | None) -> str | None:
    """None when the seal holds; else why not."""
    if anchor.method == HMAC:
        if key is None or not key.get_secret_value():
            return "unverifiable"
        _, digest = seal(anchor.body(), key)
    elif anchor.method == SHA256:
        _, digest = seal(anchor.body(), None)
    else:
        return "seal_mismatch"
    return None if hmac.compare_digest(digest, anchor.digest) else "seal_mismatch"


def parse_anchor(key: str, data: bytes, secret: SecretStr | None) -> StoredAnchor:
    try:
        raw = json.loads(data)
        anchor = Anchor(key=key, event_id=int(raw["event_id"]), head_hash=str(raw["head_hash"]),
                        event_count=int(raw["event_count"]),
                        created_at=datetime.fromisoformat(raw["created_at"]), method=str(raw["method"]),
                        digest=str(raw["digest"]))
    except (ValueError, KeyError, TypeError):
        return StoredAnchor(key, None, "unreadable")
    return StoredAnchor(key, anchor, check_seal(anchor, secret))


def read_anchors(store: ObjectStore, settings: AnchorSettings, key: SecretStr | None = None) -> Iterator[StoredAnchor]:
    """Every anchor object in the store, oldest first; seals checked with `key` (else settings.key)."""
    secret = key if key is not None else settings.key
    for name in sorted(store.iter_keys(settings.prefix)):
        try:
            with store.open(name) as fh:
                data = fh.read()
        except EscrError:
            yield StoredAnchor(name, None, "unreadable")
            continue
        yield parse_anchor(name, data, secret)


def last_anchor_at(session: Session) -> datetime | None:
    when = session.scalar(select(func.max(ChainAnchor.created_at)))
    return None if when is None else (when if when.tzinfo else when.replace(tzinfo=UTC))


def first_event_at(session: Session) -> datetime | None:
    when = session.scalar(select(Event.at).order_by(Event.id).limit(1))
    return None if when is None else (when if when.tzinfo else when.replace(tzinfo=UTC))


def filed_since_last_anchor(session: Session) -> bool:
    """Has a scan been filed after the event the newest anchor names?"""
    last = session.scalar(select(func.max(ChainAnchor.event_id))) or 0
    return session.scalar(select(Event.id).where(Event.id > last, Event.kind == str(Kind.FILED)).limit(1)) is not None


def is_due(session: Session, settings: AnchorSettings, at: datetime) -> bool:
    """One interval after the last anchor (or after the first event, before any anchor), or a scan
    filed since the last anchor when `after_each_batch`; interval 0: only on demand."""
    if settings.interval_minutes <= 0:
        return False
    since = last_anchor_at(session) or first_event_at(session)
    if since is None:
        return False
    if at - since >= timedelta(minutes=settings.interval_minutes):
        return True
    return settings.after_each_batch and filed_since_last_anchor(session)


def write_anchor(services: Services, *, actor: Actor | None = None, force: bool = False,
                 at: datetime | None = None) -> Anchor | None:
    """Anchor the current head when due (or when forced); None when not due or the chain is empty.

    The head is read under the chain lock, the object written and read back, then the index row
    and an `anchored` protocol event committed together.
    """
    settings = services.settings.anchor
    stamp = at or now()
    with services.db.session() as session:
        if not force and not is_due(session, settings, stamp):
            return None
        head = chain_head_for_update(session)
        if head.last_event_id == 0:
            return None
        count = session.scalar(select(func.count(Event.id)).where(Event.id <= head.last_event_id)) or 0
        body = anchor_body(head.last_event_id, head.last_hash, count, stamp)
        method, digest = seal(body, anchor_key(services.settings, create=True))
        anchor = Anchor(object_key(settings.prefix, stamp, head.last_event_id), head.last_event_id,
                        head.last_hash, count, stamp, method, digest)
        # No retention date: the store keeps it under a legal hold, as long as the log it vouches for.
        stored = services.store.put_bytes(anchor.key, anchor.encode(), content_type="application/json",
                                          retain_until=None)
        session.add(ChainAnchor(object_key=anchor.key, event_id=anchor.event_id, head_hash=anchor.head_hash,
                                event_count=count, method=method, digest=digest, location=stored.location,
                                created_at=stamp))
        record(session, ProtocolEvent(
            kind=Kind.ANCHORED, actor=actor or Actor.system(), at=stamp,
            parameters={"event_id": anchor.event_id, "event_count": count, "method": method,
                        "head_hash": anchor.head_hash},
            outputs={"anchor": anchor.key, "anchor_sha256": stored.sha256}))
    log.info("anchored event=%s count=%s key=%s method=%s", anchor.event_id, count, anchor.key, method)
    return anchor
