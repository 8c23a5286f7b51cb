"""A hostile intake folder (issue 20): pipes, hard links, sparse giants, names too long to take a
reason file, and names that would forge log lines. Each is refused and quarantined with a plain
reason, never opened, never lost, and never holds up an intake slot."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import threading
from pathlib import Path

import pytest

from escr.intake.quarantine import list_quarantine
from escr.intake.receipt import Claim, Receipt, Refused, claim_from_intake, hash_claim, pending_claims
from escr.pipelines import intake
from escr.services import Services


def drop(services: Services, relpath: str) -> Path:
    path = services.settings.intake_dir / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def take(services: Services, path: Path) -> Claim:
    claim = claim_from_intake(path, services.settings.intake_dir, services.settings.processing_dir)
    assert claim is not None
    return claim


def run_without_hanging(claim: Claim, services: Services) -> intake.IntakeResult:
    """Run the pipeline in a thread, so a file that blocks its slot fails the test instead of hanging it."""
    results: list[intake.IntakeResult] = []
    worker = threading.Thread(target=lambda: results.append(intake.run(claim, services)), daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert results, "the intake slot is still blocked on this entry"
    return results[0]


def listed(services: Services, claim_id: str) -> dict:
    entries = [e for e in list_quarantine(services.settings.quarantine_dir) if e.claim_id == claim_id]
    assert len(entries) == 1, "the quarantined file is not listed"
    return {"path": entries[0].path, **entries[0].reason}


@pytest.mark.parametrize("kind", ["fifo", "socket"])
def test_a_pipe_or_socket_is_refused_unopened_and_kept(services, kind):
    path = drop(services, f"bs.jones/scan.{kind}.pdf")
    if kind == "fifo":
        os.mkfifo(path)
    else:
        import socket
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        sock.close()
    result = run_without_hanging(take(services, path), services)
    assert result.status == "quarantined" and result.quarantine["code"] == "not_regular_file"
    entry = listed(services, result.claim_id)
    assert "not opened" in entry["reason"] and entry["sha256"] is None
    kept = os.lstat(entry["path"]).st_mode
    assert stat.S_ISFIFO(kept) if kind == "fifo" else stat.S_ISSOCK(kept)  # moved aside, not lost


def test_a_pipe_left_in_processing_by_a_stopped_watcher_is_found_and_refused(services):
    path = drop(services, "bs.jones/left.pdf")
    os.mkfifo(path)
    take(services, path)  # claimed; then the process stopped
    (claim,) = pending_claims(services.settings.processing_dir)
    assert claim.problem == "not_regular_file"
    assert run_without_hanging(claim, services).quarantine["code"] == "not_regular_file"


def test_a_hard_link_to_a_file_elsewhere_is_refused_unread(services, tmp_path):
    secret = tmp_path / "elsewhere.pdf"
    secret.write_bytes(b"%PDF-1.4 somebody else's file")
    path = drop(services, "bs.jones/innocent.pdf")
    os.link(secret, path)
    result = run_without_hanging(take(services, path), services)
    assert result.status == "quarantined" and result.quarantine["code"] == "hardlink"
    assert result.sha256 is None and listed(services, result.claim_id)["sha256"] is None
    assert secret.read_bytes() == b"%PDF-1.4 somebody else's file"


def test_a_sparse_giant_is_refused_by_its_size_without_being_read(services):
    path = drop(services, "bs.jones/huge.pdf")
    with path.open("wb") as fh:
        fh.truncate(4 * 1024**3)  # 4 GB of nothing, allocated nowhere
    result = run_without_hanging(take(services, path), services)
    assert result.status == "quarantined" and result.quarantine["code"] == "too_large"
    assert result.sha256 is None  # refused before hashing: nothing read
    entry = listed(services, result.claim_id)
    assert entry["size_bytes"] == 4 * 1024**3 and "more than" in entry["reason"]


def test_the_receipt_is_an_answer_and_leaves_the_claim_as_it_was(services):
    data = b"%PDF-1.4 a scan"
    path = drop(services, "bs.jones/mfd-1/scan.pdf")
    path.write_bytes(data)
    claim = take(services, path)
    before = dict(vars(claim))
    assert hash_claim(claim) == Receipt(hashlib.sha256(data).hexdigest(), len(data))
    assert hash_claim(claim, max_bytes=len(data) - 1) == Refused("too_large", len(data))
    assert vars(claim) == before and path.exists() is False and claim.path.read_bytes() == data


def test_a_file_name_too_long_for_a_reason_file_is_quarantined_and_listed(services):
    name = "x" * 246 + ".docx"  # 251 characters: <name>.reason.json would be 263
    path = drop(services, f"bs.jones/{name}")
    path.write_bytes(b"PK\x03\x04 not a scan")
    result = run_without_hanging(take(services, path), services)
    assert result.status == "quarantined"
    entry = listed(services, result.claim_id)
    assert entry["path"].name == name and entry["path"].read_bytes() == b"PK\x03\x04 not a scan"
    assert not list(services.settings.processing_dir.rglob("*.docx"))  # not left behind in processing/


def test_a_scan_named_like_a_reason_file_does_not_break_the_list(services):
    path = drop(services, "bs.jones/odd.reason.json")
    path.write_bytes(b"%PDF-1.7\n%%EOF\n")
    result = run_without_hanging(take(services, path), services)
    assert listed(services, result.claim_id)["path"].name == "odd.reason.json"


@pytest.mark.parametrize("relpath", ["bs.jones\nWARNING escr forged line/mfd-1/scan.pdf",
                                     "bs.jones/scan\r\nERROR forged.pdf"])
def test_control_characters_in_names_are_refused_and_cannot_forge_log_lines(services, caplog, relpath):
    path = drop(services, relpath)
    path.write_bytes(b"%PDF-1.7\n%%EOF\n")
    caplog.set_level(logging.INFO)
    claim = take(services, path)
    assert "\n" not in claim.operator + claim.device  # what the watcher logs on taking it
    result = run_without_hanging(claim, services)
    assert result.status == "quarantined" and result.quarantine["code"] == "control_characters"
    assert result.sha256 is None
    for record in caplog.records:
        assert "\n" not in record.getMessage() and "\r" not in record.getMessage()
    entry = listed(services, result.claim_id)
    assert "\n" not in entry["operator"] and entry["path"].exists()
