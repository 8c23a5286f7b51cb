"""Taking a file from the intake folder: atomic claim, receipt hash, who scanned it on what.

A claim renames the file into `processing/<claim_id>/<path under intake>`. The rename is
atomic, so two watchers can never take the same file, and the file stays there, untouched,
until it is filed or quarantined: a crash at any point leaves it waiting to be processed.
Everything a recovery needs (operator, device, time of receipt) is in that path.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from escr.errors import FileUnreadable
from escr.storage.objectstore import sha256_file

UNSPECIFIED_DEVICE = "unspecified"
_CLAIM_TIME = "%Y%m%dT%H%M%S%fZ"


@dataclass
class Claim:
    claim_id: str
    path: Path  # where the file is now, under processing/
    relpath: PurePosixPath  # where it was under the intake folder: <operator>/[<device>/]name
    problem: str | None = None  # "symlink" | "escapes_intake" | "no_operator" when it must not be read
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def operator(self) -> str:
        return self.relpath.parts[0] if len(self.relpath.parts) > 1 else "unknown"

    @property
    def device(self) -> str:
        return self.relpath.parts[1] if len(self.relpath.parts) > 2 else UNSPECIFIED_DEVICE

    @property
    def name(self) -> str:
        return self.relpath.name

    @property
    def received_at(self) -> datetime:
        return datetime.strptime(self.claim_id.split("-")[0], _CLAIM_TIME).replace(tzinfo=UTC)

    @property
    def claim_dir(self) -> Path:
        return self.path.parents[len(self.relpath.parts) - 1]


def new_claim_id() -> str:
    return f"{datetime.now(UTC).strftime(_CLAIM_TIME)}-{uuid.uuid4().hex[:8]}"


def claim_from_intake(path: Path, intake_dir: Path, processing_dir: Path) -> Claim | None:
    """Atomically take `path` out of the intake folder; None if another process took it first."""
    intake_real = intake_dir.resolve()
    relpath = PurePosixPath(os.path.relpath(os.path.abspath(path), os.path.abspath(intake_dir)))
    problem = None
    if path.is_symlink():
        problem = "symlink"
    elif ".." in relpath.parts or not path.resolve().is_relative_to(intake_real):
        problem = "escapes_intake"
    elif len(relpath.parts) < 2:
        problem = "no_operator"
    if ".." in relpath.parts:
        relpath = PurePosixPath("unknown", path.name)
    claim_id = new_claim_id()
    target = processing_dir / claim_id / relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(path, target)
    except FileNotFoundError:
        shutil.rmtree(processing_dir / claim_id, ignore_errors=True)
        return None
    return Claim(claim_id, target, relpath, problem)


def claim_copy(source: Path, processing_dir: Path, *, operator: str, device: str) -> Claim:
    """Take a copy of a file named on the command line; the person's own file is left alone."""
    relpath = PurePosixPath(_safe_part(operator), _safe_part(device), _safe_part(source.name))
    claim_id = new_claim_id()
    target = processing_dir / claim_id / relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    problem = "symlink" if source.is_symlink() else None
    if problem:
        os.symlink(os.readlink(source), target)
    else:
        shutil.copyfile(source, target)
        with open(target, "rb") as fh:
            os.fsync(fh.fileno())
    return Claim(claim_id, target, relpath, problem)


def pending_claims(processing_dir: Path) -> list[Claim]:
    """Claims left by a process that stopped before finishing them, oldest first."""
    claims = []
    if not processing_dir.is_dir():
        return claims
    for claim_dir in sorted(p for p in processing_dir.iterdir() if p.is_dir()):
        files = [p for p in claim_dir.rglob("*") if p.is_file() or p.is_symlink()]
        if not files:
            shutil.rmtree(claim_dir, ignore_errors=True)
            continue
        for file in files:
            relpath = PurePosixPath(file.relative_to(claim_dir).as_posix())
            problem = "symlink" if file.is_symlink() else ("no_operator" if len(relpath.parts) < 2 else None)
            claims.append(Claim(claim_dir.name, file, relpath, problem))
    return claims


@dataclass(frozen=True)
class Receipt:
    """The checksum and size taken on receipt: what every later step proves it kept unchanged."""

    sha256: str
    size: int


def hash_claim(claim: Claim) -> Receipt | None:
    """The receipt checksum, computed before anything else reads the file; None for a claim
    whose file must not be read (`problem`). A file that cannot be read now is left for a retry."""
    if claim.problem is not None:
        return None
    try:
        return Receipt(sha256_file(claim.path), claim.path.stat().st_size)
    except OSError as exc:
        raise FileUnreadable(f"claim {claim.claim_id}: the intake file could not be read") from exc


def release(claim: Claim) -> None:
    """Remove the claimed file once it is durably filed elsewhere."""
    claim.path.unlink(missing_ok=True)
    shutil.rmtree(claim.claim_dir, ignore_errors=True)


def _safe_part(value: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_.@ " else "_" for c in value).strip(". ")
    return cleaned or "unknown"


IGNORED_SUFFIXES = (".part", ".tmp", ".crdownload", ".partial")


def is_in_progress_name(path: Path) -> bool:
    """Names that scanners and copy tools use while a file is still being written."""
    return path.name.startswith((".", "~")) or path.name.lower().endswith(IGNORED_SUFFIXES)
