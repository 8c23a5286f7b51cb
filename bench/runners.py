"""The three ways of OCRing the same scans: Tesseract alone (the floor), `escr ingest`, OCRmyPDF.

Each runs as its own processes, as a user would run it, and is measured from outside.
"""

from __future__ import annotations

import compileall
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.config import REPO, BenchConfig
from bench.procs import run_measured

# `escr ingest --json` stage timings -> the stages the issue names. A stage escr adds later and
# this map does not know yet is reported under its own name, never dropped.
STAGE_GROUPS = {
    "receive": "receipt", "refuse_unsafe_paths": "receipt", "refuse_duplicates": "receipt",
    "release_intake_file": "receipt",
    "check_file": "preflight", "prepare_pdf": "preflight",
    "split_into_documents": "split",
    # read_pages renders each page once for both the cover-sheet check and OCR (since 2026-12).
    "read_pages": "ocr", "note_page_text": "ocr", "build_reading_copies": "ocr (text layer PDF)",
    "tag_documents": "tagging", "link_documents": "tagging",
    "check_quality": "qc", "decide_states": "qc",
    "store_objects": "storage",
    "file_records": "database",
}
GROUP_ORDER = ("receipt", "preflight", "split", "ocr", "ocr (text layer PDF)", "tagging", "qc", "storage",
               "database")


@dataclass
class RunResult:
    """One tool over the corpus."""

    tool: str
    pages: int
    wall_s: float
    cpu_s: float
    peak_tree_mb: float = 0.0
    peak_main_mb: float = 0.0
    ok: bool = True
    problem: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def pages_per_s(self) -> float:
        return self.pages / self.wall_s if self.wall_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "pages": self.pages, "wall_s": round(self.wall_s, 3),
                "cpu_s": round(self.cpu_s, 3), "pages_per_s": round(self.pages_per_s, 4),
                "cpu_s_per_page": round(self.cpu_s / self.pages, 3) if self.pages else None,
                "peak_tree_mb": round(self.peak_tree_mb, 1), "peak_main_mb": round(self.peak_main_mb, 1),
                "ok": self.ok, "problem": self.problem, **self.detail}


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without the developer's own ESCR_* settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCR_")}
    env.update(extra or {})
    return env


def compile_escr() -> None:
    """Compile escr's modules to bytecode, as `pip install` and the container image do.

    Here escr is installed editable, and where PYTHONDONTWRITEBYTECODE is set (as in this
    project's sandboxes) every `escr ingest` would otherwise compile its modules from source as it
    starts, about 0.4 s of CPU that no installed deployment pays."""
    for folder in ("escr", "pipelines", "config"):
        if not compileall.compile_dir(REPO / folder, quiet=1):
            raise RuntimeError(f"{folder}: a module does not compile")


# --- the floor ---------------------------------------------------------------------------------


def tesseract_floor(images: Sequence[Path], *, cores: int, scratch: Path) -> RunResult:
    """`tesseract IMAGE OUT -l eng txt`, one thread per process, `cores` processes at once."""
    env = clean_env({"OMP_THREAD_LIMIT": "1"})
    scratch.mkdir(parents=True, exist_ok=True)
    run_measured(["tesseract", images[0], scratch / "warm-up", "-l", "eng", "txt"], env=env, sample_memory=False)
    measured = run_measured([sys.executable, "-m", "bench.floor", str(cores), scratch, *images],
                            env=env, cwd=REPO)
    return RunResult("tesseract alone (floor)", len(images), measured.wall_s, measured.cpu_s,
                     peak_tree_mb=measured.peak_tree_mb, ok=measured.returncode == 0,
                     problem=measured.stderr.strip()[-300:] or None if measured.returncode else None,
                     detail={"command": f"tesseract IMAGE OUT -l eng txt, OMP_THREAD_LIMIT=1, {cores} at once"})


def library_floor(images: Sequence[Path], *, cores: int, scratch: Path) -> RunResult:
    """The engine escr reads pages with (tesserocr), loaded once per thread, text only, `cores` threads."""
    env = clean_env({"OMP_THREAD_LIMIT": "1"})
    scratch.mkdir(parents=True, exist_ok=True)
    measured = run_measured([sys.executable, "-m", "bench.floor", "--library", str(cores), scratch, *images],
                            env=env, cwd=REPO)
    return RunResult("tesseract library alone (escr's engine)", len(images), measured.wall_s, measured.cpu_s,
                     peak_tree_mb=measured.peak_tree_mb, ok=measured.returncode == 0,
                     problem=measured.stderr.strip()[-300:] or None if measured.returncode else None,
                     detail={"command": f"tesserocr, engine loaded once per thread, text only, {cores} threads"})


# --- escr ----------------------------------------------------------------------------------------


def escr_home(config: BenchConfig, name: str, children_csv: Path, *, cores: int | None = None,
              extra: Mapping[str, str] | None = None) -> tuple[Path, dict[str, str]]:
    """A fresh ESCR_HOME with the benchmark's child index loaded, and the environment to use it."""
    home = config.work_dir / "run" / name
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    env = clean_env({"ESCR_HOME": str(home), "ESCR_OCR__WORKERS": str(cores or config.cores), **(extra or {})})
    done = subprocess.run([str(config.escr), "children", "import", str(children_csv)],
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"escr children import failed: {done.stderr.strip()[-500:]}")
    return home, env


def escr_ingest(config: BenchConfig, files: Sequence[Path], *, name: str, children_csv: Path,
                pages: int, timeout_s: float | None = None, extra_env: Mapping[str, str] | None = None,
                wrap: Sequence[str] = ()) -> RunResult:
    """`escr ingest FILES --json` in one process on a fresh home; pages/s from the first file's
    receipt to the last one filed (files overlap, so their stage times add up to more than that).
    `wrap` goes before the command (`ip netns exec NAME`: the intake as a host of its own)."""
    home, env = escr_home(config, name, children_csv, extra=extra_env)
    cmd = [*wrap, config.escr, "ingest", *files, "--operator", "bench", "--device", "bench-mfd", "--json"]
    measured = run_measured(cmd, env=env, timeout_s=timeout_s)
    try:
        results = json.loads(measured.stdout)
    except json.JSONDecodeError:
        return RunResult("escr ingest", pages, measured.wall_s, measured.cpu_s, measured.peak_tree_mb,
                         measured.peak_main_mb, ok=False,
                         problem=f"no JSON from escr ingest (exit {measured.returncode}): {measured.stderr.strip()[-400:]}")
    stages: dict[str, float] = {}
    for result in results:
        for stage, seconds in (result.get("timings") or {}).items():
            stages[stage] = stages.get(stage, 0.0) + seconds
    windows = [r["window"] for r in results if r.get("window")]
    pipeline_s = (max(w[1] for w in windows) - min(w[0] for w in windows)) if windows else sum(stages.values())
    statuses = [r.get("status") for r in results]
    states: dict[str, int] = {}
    for result in results:
        for doc in result.get("documents", []):
            states[doc["state"]] = states.get(doc["state"], 0) + 1
    unfiled = [s for s in statuses if s != "filed"]
    quarantine = [r.get("quarantine", {}).get("code") for r in results if r.get("quarantine")]
    run = RunResult(
        "escr ingest", pages, pipeline_s or measured.wall_s, measured.cpu_s, measured.peak_tree_mb,
        measured.peak_main_mb, ok=not unfiled,
        problem=f"{len(unfiled)} of {len(results)} files not filed ({', '.join(map(str, unfiled))})" if unfiled else None,
        detail={"process_wall_s": round(measured.wall_s, 3),
                "process_pages_per_s": round(pages / measured.wall_s, 4) if measured.wall_s else None,
                "pipeline_s": round(pipeline_s, 3), "stage_sum_s": round(sum(stages.values()), 3),
                "files": len(results), "statuses": statuses,
                "document_ids": [[d["id"] for d in r.get("documents", [])] for r in results],
                "document_states": states, "quarantine_codes": quarantine,
                "stage_seconds": {k: round(v, 3) for k, v in stages.items()},
                "home": str(home),
                "command": f"escr ingest FILES --json, ESCR_OCR__WORKERS={config.cores}"})
    return run


def stage_groups(stage_seconds: Mapping[str, float]) -> dict[str, float]:
    """Seconds per stage of the issue (receipt, preflight, split, OCR, ...), escr's own stages summed."""
    groups = {g: 0.0 for g in GROUP_ORDER}
    for stage, seconds in stage_seconds.items():
        group = STAGE_GROUPS.get(stage, f"other: {stage}")
        groups[group] = groups.get(group, 0.0) + seconds
    return groups


# --- OCRmyPDF ----------------------------------------------------------------------------------


def ocrmypdf_version(config: BenchConfig) -> str | None:
    if not config.ocrmypdf.exists():
        return None
    done = subprocess.run([str(config.ocrmypdf), "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or None


def ocrmypdf(config: BenchConfig, files: Sequence[Path], *, pages: int, keep: Path | None = None) -> RunResult:
    """`ocrmypdf --jobs N -l eng IN OUT` file after file (its default output: PDF/A); with `keep`,
    the outputs stay there as out-N.pdf."""
    version = ocrmypdf_version(config)
    if version is None:
        return RunResult("OCRmyPDF", pages, 0.0, 0.0, ok=False,
                         problem=f"not installed at {config.ocrmypdf} (make bench installs it in .bench-venv)")
    env = clean_env()
    env["PATH"] = f"{config.ocrmypdf.parent}:{env.get('PATH', '')}"
    wall = cpu = peak = 0.0
    failures = []
    with tempfile.TemporaryDirectory(prefix="bench-ocrmypdf-", dir=config.work_dir) as tmp:
        out_dir = keep or Path(tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        for n, path in enumerate(files):
            # Its default 180 s a page: on a busy machine a page past it is left without text, silently.
            measured = run_measured([config.ocrmypdf, "--jobs", str(config.cores), "-l", "eng",
                                     "--tesseract-timeout", "3600", path, out_dir / f"out-{n}.pdf"], env=env)
            wall, cpu, peak = wall + measured.wall_s, cpu + measured.cpu_s, max(peak, measured.peak_tree_mb)
            if measured.returncode != 0:
                failures.append(f"{Path(path).name}: exit {measured.returncode} {measured.stderr.strip()[-200:]}")
    return RunResult("OCRmyPDF", pages, wall, cpu, peak_tree_mb=peak, ok=not failures,
                     problem="; ".join(failures) or None,
                     detail={"version": version,
                             "command": f"ocrmypdf --jobs {config.cores} -l eng --tesseract-timeout 3600 IN OUT"})
