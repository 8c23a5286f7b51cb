"""Quarantine: a file that cannot be filed is kept byte-for-byte with a plain-English reason.

Layout: `quarantine/<claim_id>/<file name>` and `<file name>.reason.json` beside it (for a name
too long to take the suffix, `<hash of the name>.reason.json`; the reason names its file). The
reason is written before the file is moved, so a quarantined file never lacks its reason.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from escr.errors import FileUnreadable, InputRejected, NotFound, ValidationFailed
from escr.intake.receipt import Claim, Receipt, Refused
from escr.record import payloads
from escr.record.events import Actor, Kind, ProtocolEvent, record
from escr.storage.objectstore import private_dir, private_file

if TYPE_CHECKING:
    from escr.record.database import Database

log = logging.getLogger("escr.intake.quarantine")
REASON_SUFFIX = ".reason.json"
MAX_REASON_BYTES = 1 << 20


@dataclass(frozen=True)
class QuarantineEntry:
    claim_id: str
    path: Path
    reason: dict[str, Any]


def quarantine(claim: Claim, rejection: InputRejected, quarantine_dir: Path, *,
               receipt: Receipt | Refused | None = None, **extra: Any) -> Path:
    """Keep the claimed file with its reason; `receipt` is what taking it in found, if it got that far."""
    target_dir = private_dir(quarantine_dir / claim.claim_id)
    target = target_dir / claim.name
    reason = {
        "code": rejection.code,
        "reason": rejection.message,
        "what_to_do": rejection.action,
        "claim_id": claim.claim_id,
        "intake_path": str(claim.relpath),
        "operator": claim.operator,
        "device": claim.device,
        "received_at": claim.received_at.isoformat(),
        "quarantined_at": datetime.now(UTC).isoformat(),
        "sha256": receipt.sha256 if isinstance(receipt, Receipt) else None,
        "size_bytes": receipt.size if receipt is not None else 0,
        "file_name": claim.name,
        **extra,
    }
    reason_path = target_dir / reason_name(claim.name, target_dir)
    tmp = reason_path.with_name(reason_path.name.removesuffix(".json") + ".tmp")
    private_file(tmp).write_text(json.dumps(reason, indent=2) + "\n")
    os.replace(tmp, reason_path)
    os.rename(claim.path, target)
    shutil.rmtree(claim.claim_dir, ignore_errors=True)
    log.warning("quarantined claim=%s code=%s: %s", claim.claim_id, rejection.code, rejection.message)
    return target


def reason_name(file_name: str, folder: Path) -> str:
    """`<file name>.reason.json`, unless that is longer than the file system allows a name to be."""
    name = file_name + REASON_SUFFIX
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    if len(os.fsencode(name)) <= limit:
        return name
    return hashlib.sha256(os.fsencode(file_name)).hexdigest()[:32] + REASON_SUFFIX


def list_quarantine(quarantine_dir: Path) -> list[QuarantineEntry]:
    """Every quarantined file with its reason; a scan that merely ends in `.reason.json` is not
    taken for a reason (its own reason file lists it)."""
    entries = []
    for reason_path in sorted(quarantine_dir.glob(f"*/*{REASON_SUFFIX}")):
        try:
            if reason_path.is_symlink() or reason_path.stat().st_size > MAX_REASON_BYTES:
                continue
            data = json.loads(reason_path.read_text())
        except (ValueError, OSError):
            continue
        if not isinstance(data, dict) or data.get("claim_id") != reason_path.parent.name:
            continue
        name = data.get("file_name") or reason_path.name.removesuffix(REASON_SUFFIX)
        entries.append(QuarantineEntry(reason_path.parent.name, reason_path.with_name(name), data))
    return entries


def _move_to_intake(entry: QuarantineEntry, intake_dir: Path) -> Path:
    """Move a quarantined file back where it was scanned; its claim folder (the reason) stays."""
    relpath = PurePosixPath(entry.reason["intake_path"])
    if ".." in relpath.parts or relpath.is_absolute():
        relpath = PurePosixPath("unknown", entry.path.name)
    try:
        target = _free_name(intake_dir / relpath)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(entry.path, target)
    except OSError as exc:
        raise FileUnreadable(f"quarantined file {entry.claim_id} could not be put back in the intake folder "
                             f"({exc.strerror or 'input/output error'}); it is still in quarantine") from None
    return target


def _free_name(target: Path) -> Path:
    """`target`, or `<name> (retry N)<suffix>` beside it when a file of that name is already waiting:
    a rename would replace it, and two quarantined scans often share a scanner's file name."""
    candidate, n = target, 1
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = target.with_name(f"{target.stem} (retry {n}){target.suffix}")
    return candidate


DISCARD_RECORD = "discarded.json"
MIN_DISCARD_REASON_CHARS = 10


def find_entry(claim_id: str, quarantine_dir: Path) -> QuarantineEntry:
    """The quarantined file with this claim id (looked up, never joined into a path from input)."""
    for entry in list_quarantine(quarantine_dir):
        if entry.claim_id == claim_id:
            return entry
    raise NotFound(f"no quarantined file with claim id {claim_id}")


def retry(claim_id: str, *, quarantine_dir: Path, intake_dir: Path, db: Database, actor: Actor) -> Path:
    """Put a quarantined file back where it was scanned for another try. The protocol event and
    the move succeed or fail together: a commit that fails puts the file back in quarantine, so
    no file is ever retried without the log saying who retried it."""
    entry = find_entry(claim_id, quarantine_dir)
    target: Path | None = None
    try:
        with db.session() as session:
            record(session, ProtocolEvent(kind=Kind.QUARANTINE_RELEASED, actor=actor,
                                          parameters=payloads.QuarantineReleased(claim_id=claim_id),
                                          inputs=payloads.OriginalInput(original=entry.reason.get("sha256") or "")))
            target = _move_to_intake(entry, intake_dir)
    except BaseException:
        if target is not None:  # the commit failed after the move: back to quarantine, reason beside it
            os.rename(target, entry.path)
        raise
    shutil.rmtree(entry.path.parent, ignore_errors=True)  # the claim folder: only its reason is left
    return target


def discard(claim_id: str, *, quarantine_dir: Path, discarded_dir: Path, db: Database, actor: Actor,
            reason: str, keep_until: date) -> Path:
    """Take a quarantined file off the list for good, keeping its bytes and reason; logged.

    Business support discard what will never be filed (a blank test scan, a file scanned twice).
    The claim's folder moves whole to `discarded/<claim id>/` with `discarded.json` (who, when,
    why, kept until) beside the untouched bytes, which stay until retention allows them to be
    destroyed. The protocol event and the move succeed or fail together.
    """
    reason = (reason or "").strip()
    if len(reason) < MIN_DISCARD_REASON_CHARS:
        raise ValidationFailed(f"say why the file is discarded (at least {MIN_DISCARD_REASON_CHARS} characters)",
                               code="reason_required")
    entry = find_entry(claim_id, quarantine_dir)
    note = {"claim_id": claim_id, "discarded_by": actor.name, "discarded_at": datetime.now(UTC).isoformat(),
            "reason": reason, "keep_until": keep_until.isoformat(), "sha256": entry.reason.get("sha256")}
    target = discarded_dir / claim_id
    moved = False
    try:
        with db.session() as session:
            record(session, ProtocolEvent(kind=Kind.QUARANTINE_DISCARDED, actor=actor, outcome="discarded",
                                          parameters=payloads.QuarantineDiscarded(
                                              claim_id=claim_id, reason=reason, keep_until=keep_until.isoformat(),
                                              code=entry.reason.get("code")),
                                          inputs=payloads.OriginalInput(original=entry.reason.get("sha256") or "")))
            tmp = entry.path.parent / (DISCARD_RECORD + ".tmp")
            tmp.write_text(json.dumps(note, indent=2) + "\n")
            os.replace(tmp, entry.path.parent / DISCARD_RECORD)
            private_dir(discarded_dir)
            os.rename(entry.path.parent, target)
            moved = True
    except BaseException:
        if moved:  # the commit failed after the move: put it back, nothing half-done
            os.rename(target, quarantine_dir / claim_id)
        (quarantine_dir / claim_id / DISCARD_RECORD).unlink(missing_ok=True)
        raise
    log.info("discarded quarantined claim=%s", claim_id)
    return target
