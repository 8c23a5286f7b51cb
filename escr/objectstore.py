"""Object storage for the untouched scans, searchable copies and manifests.

Callers see only the `ObjectStore` protocol; `open_store()` picks the backend from settings.
The filesystem store is the embedded default. Every write is read back and its SHA-256
compared before it is reported durable, so the database never names an object that is not
really there.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from escr.errors import ConfigError, NotFound, StorageError
from escr.settings import Settings

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StoredObject:
    key: str
    sha256: str
    size: int
    location: str  # where an auditor finds it: a file path or bucket/key[?versionId]
    version: str | None = None


class ObjectStore(Protocol):
    def put_file(self, key: str, path: Path, *, sha256: str, content_type: str) -> StoredObject: ...
    def put_bytes(self, key: str, data: bytes, *, content_type: str) -> StoredObject: ...
    def open(self, key: str) -> BinaryIO: ...
    def stat(self, key: str) -> StoredObject | None: ...
    def iter_keys(self, prefix: str = "") -> Iterator[str]: ...


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
    """Objects as read-only files under one directory, written atomically and fsynced."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if key.startswith("/") or not path.is_relative_to(self.root.resolve()):
            raise StorageError("object key escapes the store")
        return path

    def put_file(self, key: str, path: Path, *, sha256: str, content_type: str) -> StoredObject:
        with open(path, "rb") as src:
            return self._put(key, src, sha256)

    def put_bytes(self, key: str, data: bytes, *, content_type: str) -> StoredObject:
        return self._put(key, io.BytesIO(data), hashlib.sha256(data).hexdigest())

    def _put(self, key: str, src: BinaryIO, sha256: str) -> StoredObject:
        target = self._path(key)
        existing = self.stat(key)
        if existing is not None:
            if existing.sha256 != sha256:
                raise StorageError(f"object {key} exists with different content")
            return existing
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
            with os.fdopen(fd, "wb") as out:
                while chunk := src.read(CHUNK):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o444)
            os.replace(tmp, target)
            _fsync_dir(target.parent)
        except OSError as exc:
            raise StorageError(f"cannot write object {key}: {exc.strerror}") from exc
        stored = self.stat(key)
        if stored is None or stored.sha256 != sha256:
            raise StorageError(f"read-back of object {key} does not match what was written")
        return stored

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
                if key.startswith(prefix):
                    yield key


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_store(settings: Settings) -> ObjectStore:
    url = settings.store_url
    if url is None or url.startswith("file://"):
        root = Path(url.removeprefix("file://")) if url else settings.store_dir
        return FilesystemStore(root)
    raise ConfigError("unsupported store_url scheme (supported: file://)")
