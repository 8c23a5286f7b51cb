"""Taking a file from the intake folder: atomic claim, receipt hash, who scanned it on what.

A claim renames the file into `processing/<claim_id>/<path under intake>`. The rename is
atomic, so two watchers can never take the same file, and the file stays there, untouched,
until it is filed or quarantined: a crash at any point leaves it waiting to be processed.
Everything a recovery needs (operator, device, time of receipt) is in that path.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from escr import clock
from escr.errors import FileUnreadable
from escr.storage.objectstore import private_dir, private_file

UNSPECIFIED_DEVICE = "unspecified"
_CLAIM_TIME = "%Y%m%dT%H%M%S%fZ"


@dataclass
class Claim:
    claim_id: str
    path: Path  # where the file is now, under processing/
    relpath: PurePosixPath  # where it was under the intake folder: <operator>/[<device>/]name
    problem: str | None = None  # a key of REFUSALS, or "symlink" | "escapes_intake" | "no_operator"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def operator(self) -> str:
        """The operator's folder name, control characters escaped (it goes into logs and events)."""
        return escape_controls(self.relpath.parts[0]) if len(self.relpath.parts) > 1 else "unknown"

    @property
    def device(self) -> str:
        return escape_controls(self.relpath.parts[1]) if len(self.relpath.parts) > 2 else UNSPECIFIED_DEVICE

    @property
    def name(self) -> str:
        return self.relpath.name

    @property
    def received_at(self) -> datetime:
        return datetime.strptime(self.claim_id.split("-")[0], _CLAIM_TIME).replace(tzinfo=UTC)

    @property
    def claim_dir(self) -> Path:
        return self.path.parents[len(self.relpath.parts) - 1]


# Files the pipeline refuses without opening them: code -> (what happened, what to do).
REFUSALS: dict[str, tuple[str, str]] = {
    "not_regular_file": ("This is not a file but a pipe, socket or device; it was not opened.",
                         "Scan to the intake folder; ask the system administrator to remove whatever made it."),
    "hardlink": ("This is a second name (a hard link) for a file kept elsewhere on the server, not a scan; "
                 "it was not read.", "Scan to the intake folder directly; remove the link."),
    "control_characters": ("The folder or file name contains control characters (such as a line break), "
                           "so it cannot be recorded safely; the file was not read.",
                           "Rename the scan-to-folder profile or the file without them, then retry."),
}


def escape_controls(value: str) -> str:
    """`value` with control and format characters written as escapes (\\n, \\x1b...), so a name
    cannot start a new log line or hide text."""
    if not has_controls(value):
        return value
    return "".join(c.encode("unicode_escape").decode("ascii") if _is_control(c) else c for c in value)


def has_controls(value: str) -> bool:
    return any(_is_control(c) for c in value)


def _is_control(c: str) -> bool:
    return unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")


def _problem_of(path: Path, relpath: PurePosixPath) -> str | None:
    """Why a claimed entry must not be opened, from lstat alone (never opened, never followed)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return "symlink"
    if not stat.S_ISREG(st.st_mode):
        return "not_regular_file"
    if st.st_nlink > 1:
        return "hardlink"
    if any(has_controls(part) for part in relpath.parts):
        return "control_characters"
    return None


def new_claim_id() -> str:
    return f"{clock.now().strftime(_CLAIM_TIME)}-{uuid.uuid4().hex[:8]}"


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
    private_dir(target.parent)
    try:
        os.rename(path, target)
    except FileNotFoundError:
        shutil.rmtree(processing_dir / claim_id, ignore_errors=True)
        return None
    # Checked on what was claimed (the rename keeps the inode), so nothing can be swapped in after.
    return Claim(claim_id, target, relpath, problem or _problem_of(target, relpath))


def claim_copy(source: Path, processing_dir: Path, *, operator: str, device: str) -> Claim:
    """Take a copy of a file named on the command line; the person's own file is left alone."""
    relpath = PurePosixPath(_safe_part(operator), _safe_part(device), _safe_part(source.name))
    claim_id = new_claim_id()
    target = processing_dir / claim_id / relpath
    private_dir(target.parent)
    problem = "symlink" if source.is_symlink() else None
    if problem:
        os.symlink(os.readlink(source), target)
    else:
        shutil.copyfile(source, private_file(target))
        with open(target, "rb") as fh:
            os.fsync(fh.fileno())
    return Claim(claim_id, target, relpath, problem)


def pending_claims(processing_dir: Path) -> list[Claim]:
    """Claims left by a process that stopped before finishing them, oldest first."""
    claims: list[Claim] = []
    if not processing_dir.is_dir():
        return claims
    for claim_dir in sorted(p for p in processing_dir.iterdir() if p.is_dir() and not p.is_symlink()):
        # Anything but a folder is a claimed entry: a pipe or device left behind must be found too.
        files = [p for p in claim_dir.rglob("*") if p.is_symlink() or not p.is_dir()]
        if not files:
            shutil.rmtree(claim_dir, ignore_errors=True)
            continue
        for file in files:
            relpath = PurePosixPath(file.relative_to(claim_dir).as_posix())
            problem = _problem_of(file, relpath) or ("no_operator" if len(relpath.parts) < 2 else None)
            claims.append(Claim(claim_dir.name, file, relpath, problem))
    return claims


@dataclass(frozen=True)
class Receipt:
    """The receipt of a file that may be read: its SHA-256, taken before anything else read it."""

    sha256: str
    size: int


@dataclass(frozen=True)
class Refused:
    """A file that must not be read: why (a key of REFUSALS, or one of `Claim.problem`'s codes, or
    "too_large"), and its size when it had one."""

    problem: str
    size: int = 0


def hash_claim(claim: Claim, *, max_bytes: int | None = None) -> Receipt | Refused:
    """The receipt checksum, computed before anything else reads the file.

    The entry is opened without following a link and without waiting (a pipe cannot block an
    intake slot), then checked on the open descriptor: a regular file with one name, and no
    larger than `max_bytes` (a sparse file of terabytes is refused by its size, never read).
    The claim is left as it was; what was found is the answer."""
    if claim.problem is not None:
        return Refused(claim.problem)
    try:
        fd = os.open(claim.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        problem = _problem_of(claim.path, claim.relpath)
        if problem is None:  # a plain file that cannot be opened now (a permission, an I/O error)
            raise FileUnreadable("the intake file could not be read") from exc
        return Refused(problem)
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return Refused("not_regular_file")
        if st.st_nlink > 1:
            return Refused("hardlink", st.st_size)
        if max_bytes is not None and st.st_size > max_bytes:
            return Refused("too_large", st.st_size)
        try:
            return Receipt(hashlib.file_digest(fh, "sha256").hexdigest(), st.st_size)
        except OSError as exc:
            raise FileUnreadable("the intake file could not be read") from exc


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
