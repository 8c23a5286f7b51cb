"""Scale-out: `escr ingest` with page OCR sent to 1, then 2, `escr worker` processes of one slot each.

The broker is a Redis database of its own and a queue named for this run, so nothing else
on the machine takes or sends pages. Workers are started in their own process groups and
stopped by those ids when the run ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.config import BenchConfig
from bench.corpus import Corpus
from bench.runners import clean_env, escr_ingest, tesseract_floor

DEFAULT_BROKER = "redis://127.0.0.1:6379/14"


def worker_available(config: BenchConfig) -> bool:
    done = subprocess.run([str(config.escr), "worker", "--help"], capture_output=True, text=True, check=False)
    return done.returncode == 0


def _wait_for_workers(logs: Sequence[Path], timeout_s: float = 90) -> bool:
    """Each worker says "ready." in its log once it consumes (escr turns Celery's remote control off)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(log.exists() and " ready." in log.read_text(errors="replace") for log in logs):
            return True
        time.sleep(0.5)
    return False


def _task_seconds(logs: Sequence[Path]) -> list[float]:
    """Each page task's own time, from the workers' "ocr page done ... seconds=" lines: with two
    workers a page takes longer than with one when they, or the sender, compete for the cores."""
    seconds = []
    for log in logs:
        for line in log.read_text(errors="replace").splitlines() if log.exists() else ():
            if "ocr page done" in line and "seconds=" in line:
                seconds.append(float(line.rsplit("seconds=", 1)[1].split()[0]))
    return seconds


def _stop(workers: Sequence[subprocess.Popen[bytes]]) -> None:
    for proc in workers:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in workers:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_with_workers(config: BenchConfig, corpus: Corpus, count: int, broker: str, queue: str) -> dict[str, Any]:
    celery_env = {"ESCR_CELERY__BROKER_URL": broker, "ESCR_CELERY__QUEUE": queue, **config.celery_env}
    logs = config.work_dir / "run" / f"celery-{count}w"
    logs.mkdir(parents=True, exist_ok=True)
    names = [f"bench{os.getpid()}-{n}@localhost" for n in range(count)]
    env = clean_env({"ESCR_HOME": str(logs), **celery_env})
    workers = []
    log_files = [logs / f"{name.split('@')[0]}.log" for name in names]
    try:
        for name, log_file in zip(names, log_files, strict=True):
            with open(log_file, "wb") as log:
                workers.append(subprocess.Popen(
                    [str(config.escr), "worker", "--concurrency", "1", "--hostname", name, "--loglevel", "INFO"],
                    env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        if not _wait_for_workers(log_files):
            return {"workers": count, "ok": False, "problem": f"workers did not start (logs in {logs})"}
        run = escr_ingest(config, [Path(f.path) for f in corpus.files], name=f"celery-{count}w-home",
                          children_csv=corpus.children_csv, pages=corpus.pages,
                          timeout_s=config.celery_timeout_s, extra_env=celery_env)
        task_s = _task_seconds(log_files)
        return {"workers": count, "slots_per_worker": 1, "pages": run.pages, "seconds": round(run.wall_s, 2),
                "pages_per_s": round(run.pages_per_s, 4), "ok": run.ok, "problem": run.problem,
                "sender_cpu_s": round(run.cpu_s, 2), "worker_task_s": round(sum(task_s), 2),
                "worker_task_s_per_page": round(sum(task_s) / len(task_s), 3) if task_s else None}
    finally:
        _stop(workers)


def measure_celery(config: BenchConfig, corpus: Corpus) -> dict[str, Any]:
    """1 worker, 2 workers, then tesseract alone as 1 and 2 processes, `config.rounds` times; the
    round with the median 2/1 ratio is the result (the machine drifts between runs: see
    `run_throughput`), and every round's ratios are kept."""
    if not worker_available(config):
        return {"available": False, "problem": "`escr worker` is not available yet (issue 5)"}
    broker = config.celery_env.get("ESCR_CELERY__BROKER_URL", DEFAULT_BROKER)
    queue = f"bench.ocr.{os.getpid()}"
    rounds = []
    for _ in range(config.rounds):
        runs = [run_with_workers(config, corpus, n, broker, queue) for n in (1, 2)]
        one, two = runs[0].get("pages_per_s") or 0, runs[1].get("pages_per_s") or 0
        rounds.append({"runs": runs, "ratio_2_over_1": round(two / one, 3) if one and two else None,
                       "tesseract_alone": tesseract_scaling(config, corpus)})
    measured = sorted((r for r in rounds if r["ratio_2_over_1"] is not None), key=lambda r: r["ratio_2_over_1"])
    median = measured[(len(measured) - 1) // 2] if measured else rounds[-1]  # the lower one of an even count
    return {"available": True, "broker": broker.rsplit("@", 1)[-1], "queue": queue, **median,
            "rounds": [{"ratio_2_over_1": r["ratio_2_over_1"],
                        "tesseract_alone_2_over_1": r["tesseract_alone"].get("ratio_2_over_1"),
                        "seconds": [run.get("seconds") for run in r["runs"]]} for r in rounds]}


def tesseract_scaling(config: BenchConfig, corpus: Corpus) -> dict[str, Any]:
    """What this machine's two cores give two tesseracts, measured beside the workers: the same
    page images through `tesseract` alone as 1 process, then 2. Two workers cannot scale better
    than this, less what the sender takes from them."""
    scratch = config.work_dir / "run" / "celery-floor"
    runs = {n: tesseract_floor(corpus.page_images, cores=n, scratch=scratch) for n in (1, 2)}
    out: dict[str, Any] = {f"{n}_process_s": round(r.wall_s, 2) for n, r in runs.items()}
    out["ok"] = all(r.ok for r in runs.values())
    out["ratio_2_over_1"] = round(runs[1].wall_s / runs[2].wall_s, 3) if out["ok"] and runs[2].wall_s else None
    return out
