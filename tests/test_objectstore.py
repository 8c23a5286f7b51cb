from __future__ import annotations

import hashlib
import os
import stat

import pytest

from escr.errors import NotFound, StorageError
from escr.storage.objectstore import FilesystemStore, content_key


def test_put_is_content_addressed_read_back_and_idempotent(tmp_path):
    store = FilesystemStore(tmp_path / "store")
    data = b"%PDF-1.4 scan bytes"
    sha = hashlib.sha256(data).hexdigest()
    key = content_key("originals", sha, ".pdf")
    first = store.put_bytes(key, data, content_type="application/pdf")
    again = store.put_bytes(key, data, content_type="application/pdf")
    assert first.sha256 == again.sha256 == sha and first.size == len(data)
    with store.open(key) as fh:
        assert fh.read() == data
    assert list(store.iter_keys("originals/")) == [key]


def test_stored_objects_are_read_only_files(tmp_path):
    """The mode bits hold whoever runs the test; root ignores them, so the refused write is
    checked only for an ordinary user (root is kept out by the S3 store's object lock instead)."""
    store = FilesystemStore(tmp_path / "store")
    key = content_key("originals", hashlib.sha256(b"scan").hexdigest(), ".pdf")
    store.put_bytes(key, b"scan", content_type="application/pdf")
    path = tmp_path / "store" / key
    assert stat.S_IMODE(path.stat().st_mode) & 0o222 == 0
    if os.geteuid() == 0:
        pytest.skip("root may write a read-only file; the mode bits above are what the store sets")
    with pytest.raises(PermissionError):
        path.open("r+b")
    assert path.read_bytes() == b"scan"


def test_same_key_with_other_bytes_is_refused(tmp_path):
    store = FilesystemStore(tmp_path / "store")
    store.put_bytes("originals/aa/x.pdf", b"one", content_type="application/pdf")
    with pytest.raises(StorageError):
        store.put_bytes("originals/aa/x.pdf", b"two", content_type="application/pdf")
    with store.open("originals/aa/x.pdf") as fh:
        assert fh.read() == b"one"


def test_missing_object_and_escaping_key(tmp_path):
    store = FilesystemStore(tmp_path / "store")
    with pytest.raises(NotFound):
        store.open("originals/none.pdf")
    with pytest.raises(StorageError):
        store.put_bytes("../outside.pdf", b"x", content_type="application/pdf")
    assert not (tmp_path / "outside.pdf").exists()
