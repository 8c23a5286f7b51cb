"""Filing a scan through the real intake pipeline, as the watcher would, for tests that need a record."""

from __future__ import annotations

import socket
from pathlib import Path

from escr.intake.receipt import claim_copy
from escr.pipelines import intake
from escr.services import Services


def ingest(services: Services, path: Path, operator: str = "bs.jones", device: str = "mfd-2") -> intake.IntakeResult:
    """Copy `path` into processing/ as `operator` on `device`, and run the intake pipeline on it."""
    claim = claim_copy(path, services.settings.processing_dir, operator=operator, device=device)
    return intake.run(claim, services)


def free_port() -> int:
    """A loopback port that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
