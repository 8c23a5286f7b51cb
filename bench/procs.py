"""Running a command and measuring it: wall time, CPU time of it and its children, peak memory.

Peak memory is read two ways: the main process's own high-water mark (VmHWM, exact), and the
sum of resident memory over the whole process tree (the Python process plus the tesseract and
pdftoppm processes it starts), sampled every 20 ms, which is what the machine actually needs.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


@dataclass(frozen=True)
class Measured:
    returncode: int
    wall_s: float
    cpu_s: float  # user + system of the process and every child it waited for
    peak_main_mb: float  # VmHWM of the process itself
    peak_tree_mb: float  # largest sampled sum of RSS over the process and its descendants
    stdout: str
    stderr: str


def _children_map() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE_KB
    except (OSError, IndexError, ValueError):
        return 0


def _hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class TreeSampler(threading.Thread):
    """Samples a process tree's resident memory until stopped."""

    def __init__(self, pid: int, interval_s: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval_s = pid, interval_s
        self.peak_tree_kb = self.peak_main_kb = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            tree, pids, total = _children_map(), [self.pid], 0
            while pids:
                pid = pids.pop()
                total += _rss_kb(pid)
                pids.extend(tree.get(pid, ()))
            self.peak_tree_kb = max(self.peak_tree_kb, total)
            self.peak_main_kb = max(self.peak_main_kb, _hwm_kb(self.pid))
            self._halt.wait(self.interval_s)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def run_measured(cmd: Sequence[str | Path], *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
                 sample_memory: bool = True, timeout_s: float | None = None) -> Measured:
    """Run `cmd` to completion; never raises for a non-zero exit (the caller reports it)."""
    started = time.perf_counter()
    proc = subprocess.Popen([str(c) for c in cmd], env=dict(env) if env is not None else None, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sampler = TreeSampler(proc.pid) if sample_memory else None
    if sampler:
        sampler.start()
    out: list[bytes] = []
    err: list[bytes] = []
    readers = [threading.Thread(target=lambda s=s, b=b: b.append(s.read()), daemon=True)
               for s, b in ((proc.stdout, out), (proc.stderr, err))]
    for reader in readers:
        reader.start()
    if timeout_s is None:
        _, status, usage = os.wait4(proc.pid, 0)
    else:
        timer = threading.Timer(timeout_s, proc.kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        timer.cancel()
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if sampler:
        sampler.stop()
    for reader in readers:
        reader.join()
    return Measured(
        returncode=proc.returncode, wall_s=wall, cpu_s=usage.ru_utime + usage.ru_stime,
        peak_main_mb=(sampler.peak_main_kb if sampler else 0) / 1024,
        peak_tree_mb=(sampler.peak_tree_kb if sampler else 0) / 1024,
        stdout=b"".join(out).decode("utf-8", "replace"), stderr=b"".join(err).decode("utf-8", "replace"))
