"""Object storage for the untouched scans, searchable copies and manifests.

Callers see only the `ObjectStore` protocol; `open_store()` picks the backend from settings.
The filesystem store is the embedded default. Every write is read back and its SHA-256
compared before it is reported durable, so the database never names an object that is not
really there.

Every object is protected when it is written (DOMAIN.md step 7, WORM): kept until its retention
date in the configured lock mode, or, when no date is known yet (`retain_until=None`: "keep"),
under a legal hold until one is. A retention date can be extended but never shortened under
COMPLIANCE; under GOVERNANCE only with an explicit bypass, which is logged.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

from escr import clock
from escr.errors import NotFound, ProtocolViolation, StorageError

log = logging.getLogger("escr.storage.objectstore")

CHUNK = 1024 * 1024
GOVERNANCE = "GOVERNANCE"
COMPLIANCE = "COMPLIANCE"
LockMode = Literal["GOVERNANCE", "COMPLIANCE"]
LOCKS_DIR = ".locks"  # the filesystem store's retention sidecars, outside the key space


@dataclass(frozen=True)
class StoredObject:
    key: str
    sha256: str
    size: int
    location: str  # where an auditor finds it: a file path or bucket/key[?versionId]
    version: str | None = None


@dataclass(frozen=True)
class Retention:
    """How an object is protected: kept until `until` in `mode`, and/or under a legal hold."""

    mode: str | None = None
    until: date | None = None
    legal_hold: bool = False

    def protects(self, today: date) -> bool:
        return self.legal_hold or (self.until is not None and self.until > today)

    def as_dict(self) -> dict[str, object]:
        return {"mode": self.mode, "until": self.until.isoformat() if self.until else None,
                "legal_hold": self.legal_hold}


class ObjectStore(Protocol):
    """`retain_until=None` means keep (no date known yet): the object is put under a legal hold."""

    lock_mode: LockMode  # the mode every retention date is set in

    def put_file(self, key: str, path: Path, *, sha256: str, content_type: str,
                 retain_until: date | None = None) -> StoredObject: ...
    def put_bytes(self, key: str, data: bytes, *, content_type: str,
                  retain_until: date | None = None) -> StoredObject: ...
    def open(self, key: str) -> BinaryIO: ...
    def stat(self, key: str) -> StoredObject | None: ...
    def iter_keys(self, prefix: str = "") -> Iterator[str]: ...
    def get_retention(self, key: str) -> Retention: ...
    def extend_retention(self, key: str, until: date, mode: LockMode | None = None, *,
                         bypass_governance: bool = False) -> Retention: ...
    def set_legal_hold(self, key: str, on: bool) -> Retention: ...
    def delete(self, key: str) -> None: ...


def today_utc() -> date:
    return clock.now().date()


def lock_date(until: date, today: date) -> date:
    """A retention date an object store accepts: never in the past (an expired date keeps a day)."""
    return max(until, today + timedelta(days=1))


def plan_extension(current: Retention, until: date, mode: LockMode, *, bypass_governance: bool,
                   key: str) -> Retention | None:
    """The retention to apply, None if nothing changes; refuses what the lock rules forbid."""
    today = today_utc()
    if current.until is not None and current.until <= today:  # expired: nothing left to shorten
        current = replace(current, mode=None, until=None)
    mode = COMPLIANCE if current.mode == COMPLIANCE else mode  # a lock is never weakened
    if current.until is not None and until < current.until:
        if current.mode == COMPLIANCE:
            raise ProtocolViolation(f"object {key} is under COMPLIANCE retention: its date cannot be shortened")
        if not bypass_governance:
            raise ProtocolViolation(f"shortening the GOVERNANCE retention of object {key} needs an explicit bypass")
        log.warning("retention of object %s shortened under GOVERNANCE bypass: %s -> %s",
                    key, current.until.isoformat(), until.isoformat())
    elif until <= today or (until == current.until and mode == current.mode):
        return None
    return replace(current, mode=mode, until=until)


PRIVATE_DIR = 0o700  # records of children: the service account's alone, whatever the umask
PRIVATE_FILE = 0o600


def private_dir(path: Path) -> Path:
    """`path` as a folder, each part escr creates made owner-only (mkdir's mode can only lose
    bits to the umask, never gain them); folders already there are left as they are."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            pass
    if not path.is_dir():
        raise NotADirectoryError(str(path))
    return path


def private_file(path: Path) -> Path:
    """`path` as an owner-only file: created so (whatever the umask), or tightened if it exists."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))
    if os.stat(path).st_mode & 0o077:
        os.chmod(path, PRIVATE_FILE)
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def content_key(kind: str, sha256: str, suffix: str) -> str:
    """Content-addressed key: the same bytes always land at the same key."""
    return f"{kind}/{sha256[:2]}/{sha256}{suffix}"


class FilesystemStore:
    """Objects as read-only files under one directory, written atomically and fsynced.

    Retention and legal hold live in a small JSON sidecar per object under `.locks/`; this store
    refuses deletion and overwrite while they protect the object (root can still remove files by
    hand: for WORM storage that holds against an administrator, use S3 object lock).
    """

    def __init__(self, root: Path, *, lock_mode: LockMode = GOVERNANCE) -> None:
        self.root = root
        self.lock_mode = lock_mode
        private_dir(self.root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if key.startswith(("/", LOCKS_DIR + "/")) or not path.is_relative_to(self.root.resolve()):
            raise StorageError("object key escapes the store")
        return path

    def put_file(self, key: str, path: Path, *, sha256: str, content_type: str,
                 retain_until: date | None = None) -> StoredObject:
        with open(path, "rb") as src:
            return self._put(key, src, sha256, retain_until)

    def put_bytes(self, key: str, data: bytes, *, content_type: str,
                  retain_until: date | None = None) -> StoredObject:
        return self._put(key, io.BytesIO(data), hashlib.sha256(data).hexdigest(), retain_until)

    def _put(self, key: str, src: BinaryIO, sha256: str, retain_until: date | None) -> StoredObject:
        target = self._path(key)
        existing = self.stat(key)
        if existing is not None:
            if existing.sha256 != sha256:
                raise StorageError(f"object {key} exists with different content")
            self._protect(key, retain_until)
            return existing
        try:
            private_dir(target.parent)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")  # mode 0600
            with os.fdopen(fd, "wb") as out:
                while chunk := src.read(CHUNK):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o400)  # read-only, and the owner's alone
            os.replace(tmp, target)
            _fsync_dir(target.parent)
        except OSError as exc:
            raise StorageError(f"cannot write object {key}: {exc.strerror}") from exc
        stored = self.stat(key)
        if stored is None or stored.sha256 != sha256:
            raise StorageError(f"read-back of object {key} does not match what was written")
        self._protect(key, retain_until)
        return stored

    def _protect(self, key: str, retain_until: date | None) -> None:
        """At put: a date is set (or extended), an unknown date holds the object."""
        if retain_until is None:
            if not self.get_retention(key).legal_hold:
                self.set_legal_hold(key, True)
        else:
            self.extend_retention(key, lock_date(retain_until, today_utc()))

    def _lock_path(self, key: str) -> Path:
        self._path(key)  # the same containment check as the object itself
        return self.root / LOCKS_DIR / f"{key}.json"

    def get_retention(self, key: str) -> Retention:
        if not self._path(key).is_file():
            raise NotFound(f"object {key} not found")
        try:
            raw = json.loads(self._lock_path(key).read_text())
        except FileNotFoundError:
            return Retention()
        except (OSError, ValueError) as exc:
            raise StorageError(f"cannot read the retention of object {key}: {type(exc).__name__}") from exc
        return Retention(raw.get("mode"), date.fromisoformat(raw["until"]) if raw.get("until") else None,
                         bool(raw.get("legal_hold")))

    def extend_retention(self, key: str, until: date, mode: LockMode | None = None, *,
                         bypass_governance: bool = False) -> Retention:
        current = self.get_retention(key)
        planned = plan_extension(current, until, mode or self.lock_mode,
                                 bypass_governance=bypass_governance, key=key)
        if planned is None:
            return current
        self._write_lock(key, planned)
        return planned

    def set_legal_hold(self, key: str, on: bool) -> Retention:
        current = self.get_retention(key)
        if current.legal_hold == on:
            return current
        updated = replace(current, legal_hold=on)
        self._write_lock(key, updated)
        return updated

    def delete(self, key: str) -> None:
        """Remove an object whose retention has passed; refused while it is retained or held."""
        if self.get_retention(key).protects(today_utc()):
            raise ProtocolViolation(f"object {key} is retained or under a legal hold: it cannot be deleted")
        try:
            self._path(key).unlink()
            self._lock_path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot delete object {key}: {exc.strerror}") from exc

    def _write_lock(self, key: str, retention: Retention) -> None:
        path = self._lock_path(key)
        try:
            private_dir(path.parent)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
            with os.fdopen(fd, "w") as out:
                json.dump(retention.as_dict(), out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
            _fsync_dir(path.parent)
        except OSError as exc:
            raise StorageError(f"cannot record the retention of object {key}: {exc.strerror}") from exc

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError as exc:
            raise NotFound(f"object {key} not found") from exc
        except OSError as exc:
            raise StorageError(f"cannot read object {key}: {exc.strerror}") from exc

    def stat(self, key: str) -> StoredObject | None:
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            return StoredObject(key, sha256_file(path), path.stat().st_size, str(path))
        except OSError as exc:
            raise StorageError(f"cannot read object {key}: {exc.strerror}") from exc

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and not path.name.startswith(".incoming-"):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix) and not key.startswith(LOCKS_DIR + "/"):
                    yield key


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
