"""Object storage: a filesystem store and an S3 bucket with object lock, behind one protocol."""

from __future__ import annotations

from pathlib import Path

from escr.errors import ConfigError
from escr.settings import Settings
from escr.storage.objectstore import FilesystemStore, ObjectStore


def open_store(settings: Settings) -> ObjectStore:
    """The store named by `store_url`: file://<dir> (default: under home) or s3://<bucket>."""
    url = settings.store_url
    if url is None or url.startswith("file://"):
        root = Path(url.removeprefix("file://")) if url else settings.store_dir
        return FilesystemStore(root, lock_mode=settings.store.lock_mode)
    if url.startswith("s3://"):
        from escr.storage.s3store import S3Store  # deliberate: minio is loaded only for an s3:// store

        return S3Store.from_settings(url.removeprefix("s3://").strip("/"), settings.store)
    raise ConfigError("unsupported store_url scheme (supported: file://, s3://)")
