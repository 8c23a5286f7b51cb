"""Objects in an S3 / MinIO bucket with object lock, through the `minio` client.

The bucket is created with object lock (which turns versioning on) the first time it is used,
not at start, so `escr watch` starts and keeps accepting files while the store is down. Every
put carries its SHA-256 as an S3 checksum (the server refuses bytes that do not match, and
AWS-style servers refuse an upload with lock parameters that has no checksum or Content-MD5),
sets the retention date or, when no date is known yet, a legal hold, and is read back (every
byte hashed, or the server's stored checksum compared) and its retention read back before the
object is reported durable.

Timeouts and retries are short and bounded: an unreachable store becomes a `StorageError`
within seconds, the pipeline defers the file and the watcher retries it with back-off. Keys are
content-addressed, so a retry finds what an interrupted attempt already stored and writes no
second version.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import BinaryIO

import certifi
import urllib3
from minio import Minio
from minio.commonconfig import COMPLIANCE as MINIO_COMPLIANCE
from minio.commonconfig import GOVERNANCE as MINIO_GOVERNANCE
from minio.error import MinioException, S3Error
from minio.helpers import md5sum_hash
from minio.retention import Retention as MinioRetention
from minio.sse import SseS3
from minio.xml import marshal

from escr.errors import ConfigError, EscrError, NotFound, ProtocolViolation, StorageError
from escr.settings import StoreSettings
from escr.storage.objectstore import (
    CHUNK,
    GOVERNANCE,
    LockMode,
    Retention,
    StoredObject,
    lock_date,
    plan_extension,
    today_utc,
)

log = logging.getLogger("escr.storage.s3store")

MIN_PART = 5 * 1024**2  # the smallest multipart part S3 accepts
MULTIPART_PART = 64 * 1024**2
SPOOL_IN_MEMORY = 16 * 1024**2  # larger downloads spill to a temporary file
SHA_META = "sha256"  # x-amz-meta-sha256: the receipt hash, kept with the object
NOT_FOUND = {"NoSuchKey", "NoSuchVersion", "NoSuchBucket", "ResourceNotFound"}
MODES = {GOVERNANCE: MINIO_GOVERNANCE, "COMPLIANCE": MINIO_COMPLIANCE}


@contextmanager
def _mapped(what: str, *, refused: type[EscrError] = StorageError) -> Iterator[None]:
    """minio / urllib3 errors become escr errors; messages name ids and codes only."""
    try:
        yield
    except S3Error as exc:
        if exc.code in NOT_FOUND:
            raise NotFound(f"{what}: not found") from exc
        if exc.code == "AccessDenied":
            raise refused(f"{what}: the object store refused (AccessDenied: locked, or not permitted)") from exc
        raise StorageError(f"{what}: the object store answered {exc.code}") from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:  # refused, reset, timed out, retries used up
        if isinstance(getattr(exc, "reason", None), urllib3.exceptions.ResponseError):
            raise StorageError(f"{what}: the object store kept failing (server errors)") from exc
        raise StorageError(f"{what}: the object store is unreachable ({type(exc).__name__})") from exc
    except MinioException as exc:  # a response that is not S3 (a proxy's error page, a 5xx)
        raise StorageError(f"{what}: unexpected answer from the object store ({type(exc).__name__})") from exc


def _lock_datetime(day: date) -> datetime:
    return datetime.combine(day, time(0), UTC)


def _lock_day(value: str) -> date:
    """A retain-until timestamp as the first whole day it covers (a time of day rounds up)."""
    stamp = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    return stamp.date() + timedelta(days=1) if stamp.time() != time(0) else stamp.date()


class S3Store:
    """The `ObjectStore` protocol over one S3 bucket with object lock and versioning."""

    def __init__(self, client: Minio, bucket: str, *, lock_mode: LockMode = GOVERNANCE, sse: bool = False,
                 verify: str = "read_back", single_put_max_bytes: int = 512 * 1024**2) -> None:
        self.client = client
        self.bucket = bucket
        self.lock_mode = lock_mode
        self.sse = SseS3() if sse else None
        self.verify = verify
        self.single_put_max_bytes = single_put_max_bytes
        self._ready = False
        self._ready_lock = threading.Lock()

    @classmethod
    def from_settings(cls, bucket: str, settings: StoreSettings) -> S3Store:
        if not bucket or "/" in bucket:
            raise ConfigError("store_url must be s3://<bucket>")
        if not settings.endpoint:
            raise ConfigError("store_url is s3:// but store.endpoint (ESCR_STORE__ENDPOINT) is not set")
        if (settings.access_key is None) != (settings.secret_key is None):
            raise ConfigError("set both ESCR_STORE__ACCESS_KEY and ESCR_STORE__SECRET_KEY, or neither")
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=settings.connect_timeout_s, read=settings.read_timeout_s),
            retries=urllib3.Retry(total=settings.retries, backoff_factor=0.2,
                                  status_forcelist=[500, 502, 503, 504]),
            maxsize=10, cert_reqs="CERT_REQUIRED",
            ca_certs=str(settings.ca_bundle) if settings.ca_bundle else certifi.where(),
        )
        client = Minio(settings.endpoint, region=settings.region, secure=settings.secure, http_client=http,
                       access_key=settings.access_key.get_secret_value() if settings.access_key else None,
                       secret_key=settings.secret_key.get_secret_value() if settings.secret_key else None)
        return cls(client, bucket, lock_mode=settings.lock_mode, sse=settings.sse, verify=settings.verify,
                   single_put_max_bytes=settings.single_put_max_bytes)

    # --- the bucket -------------------------------------------------------------------------

    def ensure_bucket(self) -> None:
        """Create the bucket with object lock if missing; refuse one without lock or versioning."""
        if self._ready:
            return
        with self._ready_lock, _mapped(f"bucket {self.bucket}"):
            if self._ready:
                return
            if not self.client.bucket_exists(self.bucket):
                try:
                    self.client.make_bucket(self.bucket, object_lock=True)
                    log.info("created bucket %s with object lock", self.bucket)
                except S3Error as exc:
                    if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise
            try:
                self.client.get_object_lock_config(self.bucket)
            except S3Error as exc:
                if exc.code == "ObjectLockConfigurationNotFoundError":
                    raise StorageError(f"bucket {self.bucket} has no object lock: objects could be deleted; "
                                       "use a bucket created with object lock", code="bucket_not_locked") from exc
                raise
            if self.client.get_bucket_versioning(self.bucket).status != "Enabled":
                raise StorageError(f"bucket {self.bucket} does not keep versions", code="bucket_not_versioned")
            self._ready = True

    # --- writing ----------------------------------------------------------------------------

    def put_file(self, key: str, path: Path, *, sha256: str, content_type: str,
                 retain_until: date | None = None) -> StoredObject:
        with open(path, "rb") as src:
            return self._put(key, src, path.stat().st_size, sha256, content_type, retain_until)

    def put_bytes(self, key: str, data: bytes, *, content_type: str,
                  retain_until: date | None = None) -> StoredObject:
        return self._put(key, io.BytesIO(data), len(data), hashlib.sha256(data).hexdigest(), content_type,
                         retain_until)

    def _put(self, key: str, src: BinaryIO, size: int, sha256: str, content_type: str,
             retain_until: date | None) -> StoredObject:
        self.ensure_bucket()
        want = lock_date(retain_until, today_utc()) if retain_until is not None else None
        stored = self.stat(key)
        if stored is not None:  # a retry after an interrupted attempt: the same bytes, no second version
            if stored.sha256 != sha256:
                raise StorageError(f"object {key} exists with different content")
        else:
            stored = self._upload(key, src, size, sha256, content_type, want)
        self._verify_bytes(stored)
        self._protect(key, want)
        return stored

    def _upload(self, key: str, src: BinaryIO, size: int, sha256: str, content_type: str,
                want: date | None) -> StoredObject:
        retention = MinioRetention(MODES[self.lock_mode], _lock_datetime(want)) if want else None
        metadata: dict[str, str | list[str] | tuple[str]] = {SHA_META: sha256}
        single = size <= self.single_put_max_bytes
        if single:  # the server checks the bytes against the receipt hash
            metadata["x-amz-checksum-sha256"] = base64.b64encode(bytes.fromhex(sha256)).decode()
            metadata["x-amz-sdk-checksum-algorithm"] = "SHA256"
        with _mapped(f"upload of object {key}"):
            result = self.client.put_object(
                self.bucket, key, src, size, content_type=content_type, metadata=metadata, sse=self.sse,
                part_size=max(size, MIN_PART) if single else MULTIPART_PART,
                # multipart: the lock goes on once the parts are complete (see _protect)
                retention=retention if single else None, legal_hold=single and want is None)
        return self._stored(key, sha256, size, result.version_id)

    def _protect(self, key: str, want: date | None) -> None:
        """Make sure the object is retained to `want` (or held when None), and read it back."""
        current = self.get_retention(key)
        if want is None and not current.legal_hold:
            current = self.set_legal_hold(key, True)
        elif want is not None and (current.until is None or current.until < want):
            current = self.extend_retention(key, want)
        if (want is None and not current.legal_hold) or (want is not None and (current.until or date.min) < want):
            raise StorageError(f"object {key}: the store did not keep the retention asked for",
                               code="retention_not_applied")

    def _verify_bytes(self, stored: StoredObject) -> None:
        """Durable only once what the store holds hashes to what was received."""
        if self.verify == "checksum":
            with _mapped(f"checksum of object {stored.key}"):
                head = self.client.stat_object(self.bucket, stored.key, version_id=stored.version,
                                               extra_headers={"x-amz-checksum-mode": "ENABLED"})
            checksum = head.metadata.get("x-amz-checksum-sha256")
            if checksum and "-" not in checksum:
                if base64.b64decode(checksum).hex() != stored.sha256:
                    raise StorageError(f"object {stored.key}: the stored checksum does not match what was written")
                return
            log.info("object %s: no whole-object checksum from the store; reading it back", stored.key)
        digest, size = self._hash_version(stored.key, stored.version)
        if digest != stored.sha256 or size != stored.size:
            raise StorageError(f"read-back of object {stored.key} does not match what was written")

    # --- retention and legal hold ---------------------------------------------------------------

    def get_retention(self, key: str) -> Retention:
        self.ensure_bucket()
        with _mapped(f"retention of object {key}"):
            head = self.client.stat_object(self.bucket, key)
            headers = {k.lower(): v for k, v in head.metadata.items()}
            hold = headers.get("x-amz-object-lock-legal-hold")
            held = hold.upper() == "ON" if hold is not None else self._held(key, head.version_id)
        until = headers.get("x-amz-object-lock-retain-until-date")
        return Retention(headers.get("x-amz-object-lock-mode") or None, _lock_day(until) if until else None, held)

    def _held(self, key: str, version: str | None) -> bool:
        """The legal-hold API, for servers whose HEAD does not say (no hold ever set is "off")."""
        try:
            return self.client.is_object_legal_hold_enabled(self.bucket, key, version_id=version)
        except S3Error as exc:
            if exc.code in ("NoSuchObjectLegalHold", "NoSuchObjectLockConfiguration"):
                return False
            raise

    def extend_retention(self, key: str, until: date, mode: LockMode | None = None, *,
                         bypass_governance: bool = False) -> Retention:
        current = self.get_retention(key)
        planned = plan_extension(current, until, mode or self.lock_mode, bypass_governance=bypass_governance,
                                 key=key)
        if planned is None:
            return current
        assert planned.mode is not None and planned.until is not None
        config = MinioRetention(MODES[planned.mode], _lock_datetime(planned.until))
        version = self._version(key)
        with _mapped(f"retention of object {key}", refused=ProtocolViolation):
            if bypass_governance:  # minio's set_object_retention sends no bypass header
                body = marshal(config)
                self.client._execute(  # noqa: SLF001 - the documented S3 call, with its one extra header
                    "PUT", self.bucket, key, body=body,
                    headers={"Content-MD5": md5sum_hash(body), "x-amz-bypass-governance-retention": "true"},
                    query_params={"retention": "", **({"versionId": version} if version else {})})
            else:
                self.client.set_object_retention(self.bucket, key, config, version_id=version)
        return self.get_retention(key)

    def set_legal_hold(self, key: str, on: bool) -> Retention:
        version = self._version(key)
        with _mapped(f"legal hold of object {key}", refused=ProtocolViolation):
            if on:
                self.client.enable_object_legal_hold(self.bucket, key, version_id=version)
            else:
                self.client.disable_object_legal_hold(self.bucket, key, version_id=version)
        return self.get_retention(key)

    def delete(self, key: str) -> None:
        """Remove the object's version for good once its retention has passed; refused before."""
        if self.get_retention(key).protects(today_utc()):
            raise ProtocolViolation(f"object {key} is retained or under a legal hold: it cannot be deleted")
        version = self._version(key)
        with _mapped(f"deletion of object {key}", refused=ProtocolViolation):
            self.client.remove_object(self.bucket, key, version_id=version)

    # --- reading ------------------------------------------------------------------------------

    def open(self, key: str) -> BinaryIO:
        """The object's bytes, checked against the SHA-256 stored with it before any are returned."""
        stored = self.stat(key)
        if stored is None:
            raise NotFound(f"object {key} not found")
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - returned open
        digest, _ = self._hash_version(key, stored.version, copy_to=spool)
        if digest != stored.sha256:
            spool.close()
            raise StorageError(f"object {key} does not match the SHA-256 recorded when it was stored")
        spool.seek(0)
        return spool  # type: ignore[return-value]

    def stat(self, key: str) -> StoredObject | None:
        self.ensure_bucket()
        try:
            with _mapped(f"object {key}"):
                head = self.client.stat_object(self.bucket, key)
        except NotFound:
            return None
        metadata = {k.lower(): v for k, v in head.metadata.items()}
        sha256 = metadata.get(f"x-amz-meta-{SHA_META}")
        if sha256 is None:  # not written by escr: hash it
            sha256, _ = self._hash_version(key, head.version_id)
        return self._stored(key, sha256, head.size or 0, head.version_id)

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        self.ensure_bucket()
        with _mapped(f"listing of {prefix or 'the bucket'}"):
            for obj in self.client.list_objects(self.bucket, prefix=prefix or None, recursive=True):
                if not obj.is_dir and obj.object_name is not None:
                    yield obj.object_name

    def versions(self, key: str) -> list[str]:
        """Every version id stored under `key` (content-addressed keys should have exactly one)."""
        self.ensure_bucket()
        with _mapped(f"versions of object {key}"):
            return [o.version_id or "null" for o in self.client.list_objects(
                self.bucket, prefix=key, include_version=True) if o.object_name == key]

    # --- helpers ------------------------------------------------------------------------------

    def _stored(self, key: str, sha256: str, size: int, version: str | None) -> StoredObject:
        location = f"s3://{self.bucket}/{key}" + (f"?versionId={version}" if version else "")
        return StoredObject(key, sha256, size, location, version)

    def _version(self, key: str) -> str | None:
        stored = self.stat(key)
        if stored is None:
            raise NotFound(f"object {key} not found")
        return stored.version

    def _hash_version(self, key: str, version: str | None, *, copy_to: BinaryIO | None = None) -> tuple[str, int]:
        digest, size = hashlib.sha256(), 0
        with _mapped(f"read-back of object {key}"):
            response = self.client.get_object(self.bucket, key, version_id=version)
            try:
                for chunk in response.stream(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    if copy_to is not None:
                        copy_to.write(chunk)
            finally:
                response.close()
                response.release_conn()
        return digest.hexdigest(), size

