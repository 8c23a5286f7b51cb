"""Quarantine: a file that cannot be filed is kept byte-for-byte with a plain-English reason.

Layout: `quarantine/<claim_id>/<file name>` and `<file name>.reason.json` beside it. The
reason is written before the file is moved, so a quarantined file never lacks its reason.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from escr.errors import InputRejected, NotFound
from escr.receipt import Claim

log = logging.getLogger("escr.quarantine")
REASON_SUFFIX = ".reason.json"


@dataclass(frozen=True)
class QuarantineEntry:
    claim_id: str
    path: Path
    reason: dict[str, Any]


def quarantine(claim: Claim, rejection: InputRejected, quarantine_dir: Path, **extra: Any) -> Path:
    target_dir = quarantine_dir / claim.claim_id
    target_dir.mkdir(parents=True, exist_ok=True)
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
        "sha256": claim.sha256,
        "size_bytes": claim.size,
        **extra,
    }
    reason_path = target_dir / (claim.name + REASON_SUFFIX)
    tmp = reason_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(reason, indent=2) + "\n")
    os.replace(tmp, reason_path)
    os.rename(claim.path, target)
    shutil.rmtree(claim.claim_dir, ignore_errors=True)
    log.warning("quarantined claim=%s code=%s: %s", claim.claim_id, rejection.code, rejection.message)
    return target


def list_quarantine(quarantine_dir: Path) -> list[QuarantineEntry]:
    entries = []
    for reason_path in sorted(quarantine_dir.glob(f"*/*{REASON_SUFFIX}")):
        data = json.loads(reason_path.read_text())
        path = reason_path.with_name(reason_path.name.removesuffix(REASON_SUFFIX))
        entries.append(QuarantineEntry(reason_path.parent.name, path, data))
    return entries


def release_to_intake(claim_id: str, quarantine_dir: Path, intake_dir: Path) -> Path:
    """Put a quarantined file back where it was scanned, for another try (after a fix)."""
    matches = [e for e in list_quarantine(quarantine_dir) if e.claim_id == claim_id]
    if not matches:
        raise NotFound(f"no quarantined file with claim id {claim_id}")
    entry = matches[0]
    relpath = PurePosixPath(entry.reason["intake_path"])
    if ".." in relpath.parts or relpath.is_absolute():
        relpath = PurePosixPath("unknown", entry.path.name)
    target = intake_dir / relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(entry.path, target)
    shutil.rmtree(entry.path.parent, ignore_errors=True)
    return target
