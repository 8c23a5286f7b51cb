"""A py-spy profile of one `escr ingest` (BENCH_PROFILE=1): escr's own Python CPU, by stage and by function.

Tesseract and pdftoppm run in child processes and do not show here; their cost is in the
stage timings and in the gap table. The raw collapsed stacks are kept beside the results.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from bench.config import BenchConfig
from bench.corpus import Corpus
from bench.runners import STAGE_GROUPS, escr_home

_FRAME = re.compile(r"^(?P<func>[^ ]+) \((?P<file>[^:]+)(?::\d+)?\)$")


def profile_ingest(config: BenchConfig, corpus: Corpus) -> dict[str, Any]:
    if not config.py_spy.exists():
        return {"available": False, "problem": f"py-spy not installed at {config.py_spy}"}
    _, env = escr_home(config, "profile", corpus.children_csv)
    raw = config.out_dir / "profile-ingest.txt"
    files = [f.path for f in corpus.files]
    done = subprocess.run([str(config.py_spy), "record", "--format", "raw", "--rate", "200", "--nonblocking",
                           "-o", str(raw), "--", str(config.escr), "ingest", *files, "--operator", "bench", "--json"],
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not raw.exists():
        return {"available": False, "problem": f"py-spy exited {done.returncode}: {done.stderr.strip()[-300:]}"}
    return {"available": True, "raw": str(raw), **summarise(raw)}


def _stage_of(frames: list[re.Match[str]]) -> str:
    """The intake stage a sample belongs to; pool threads are known by the module they run in."""
    for frame in frames:
        if frame["func"] in STAGE_GROUPS:
            return frame["func"]
    files = [Path(f["file"]).name for f in frames]
    if "coversheet.py" in files or any(f["func"] == "look" for f in frames):
        return "find_cover_sheets (pool threads)"
    if "ocr.py" in files or "imaging.py" in files:
        return "read_pages (pool threads)"
    if any("importlib" in f["file"] for f in frames):
        return "start-up: imports"
    return "other (CLI, settings, schema check)"


def summarise(raw: Path, top: int = 15) -> dict[str, Any]:
    by_stage: Counter[str] = Counter()
    by_leaf: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [m for f in stack.split(";") if (m := _FRAME.match(f.strip()))]
        if not frames:
            continue
        by_stage[_stage_of(frames)] += count
        by_leaf[f"{frames[-1]['func']} ({Path(frames[-1]['file']).name})"] += count
    share = {k: round(100 * v / total, 1) for k, v in by_stage.most_common()} if total else {}
    leaves = {k: round(100 * v / total, 1) for k, v in by_leaf.most_common(top)} if total else {}
    return {"samples": total, "percent_by_stage": share, "percent_by_function": leaves}
