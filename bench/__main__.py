"""`python -m bench` (what `make bench` runs): every part of issue 6 in one run.

Each part runs on its own; one that fails or whose piece of escr is not there yet is reported
as such and the others still run. Results: a table on the terminal, and the run's JSON (with its
date, machine and escr commit) kept as bench/results/<date>-<time>-<commit>.json (BENCH_OUT), from
which docs/performance.md is regenerated (bench/performance.py).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import traceback
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import performance, report
from bench.config import BenchConfig, load_config
from bench.corpus import Corpus, dense_corpus, throughput_corpus
from bench.runners import (
    compile_escr,
    escr_ingest,
    library_floor,
    ocrmypdf,
    ocrmypdf_version,
    stage_groups,
    tesseract_floor,
)


def say(message: str) -> None:
    print(f"[bench {datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def run_throughput(config: BenchConfig, corpus: Corpus, *, name: str = "throughput",
                   with_ocrmypdf: bool | None = None, keep: Path | None = None,
                   with_library: bool = False) -> dict[str, Any]:
    """The floor, escr and OCRmyPDF one after another, `config.rounds` times.

    This machine's speed drifts by 10-30 % within minutes (a virtual machine beside others), so
    one run of each gives a ratio that is as much the drift as the tools; in rounds, each ratio
    compares runs minutes apart, and the median round's ratios are the result (all are kept).
    The order of the tools turns round by round (floor, escr, OCRmyPDF; then escr, OCRmyPDF,
    floor; ...), so that a machine slowing down or speeding up over a round favours none of them."""
    files = [Path(f.path) for f in corpus.files]

    def floor_run(prefix: str) -> Any:
        say(f"{prefix}floor: tesseract alone on {corpus.pages} page images, {config.cores} processes")
        return tesseract_floor(corpus.page_images, cores=config.cores, scratch=config.work_dir / "run" / f"{name}-floor")

    def escr_run(prefix: str) -> Any:
        say(f"{prefix}escr ingest on {len(files)} files")
        return escr_ingest(config, files, name=name, children_csv=corpus.children_csv, pages=corpus.pages)

    def ocrmypdf_run(prefix: str) -> Any:
        say(f"{prefix}OCRmyPDF --jobs {config.cores} on {len(files)} files")
        return ocrmypdf(config, files, pages=corpus.pages, keep=keep)

    def library_run(prefix: str) -> Any:
        say(f"{prefix}floor: escr's Tesseract library alone on {corpus.pages} page images, {config.cores} threads")
        return library_floor(corpus.page_images, cores=config.cores,
                             scratch=config.work_dir / "run" / f"{name}-library-floor")

    if with_ocrmypdf is None:
        with_ocrmypdf = "throughput" in config.sections
    tools = [floor_run, escr_run] + ([ocrmypdf_run] if with_ocrmypdf else []) + ([library_run] if with_library else [])
    rounds = []
    for number in range(1, config.rounds + 1):
        turn = (number - 1) % len(tools)
        done = {tool: tool(f"round {number}/{config.rounds}: ") for tool in tools[turn:] + tools[:turn]}
        runs = [done[tool] for tool in tools]  # floor, escr, OCRmyPDF whatever order they ran in
        rounds.append((runs, _throughput_ratios(runs), [done[tool].tool for tool in done]))
    ratios = {name: round(statistics.median_low(r[name] for _, r, _ in rounds if name in r), 3)
              for name in rounds[0][1] if all(name in r for _, r, _ in rounds)}
    # The table shows the round whose escr/floor is the median one, so its rows agree with each other.
    by_floor = sorted(rounds, key=lambda rr: rr[1].get("escr_over_floor", 0.0))
    shown = by_floor[(len(by_floor) - 1) // 2][0]
    return {"runs": [r.as_dict() for r in shown], "ratios": ratios,
            "rounds": [{"seconds": {r.tool: round(r.wall_s, 1) for r in runs}, "ratios": rr, "order": order}
                       for runs, rr, order in rounds]}


def run_dense(config: BenchConfig, corpus: Corpus) -> dict[str, Any]:
    """Issue 21's question on pages where nothing can be skipped: escr against tesseract alone
    (and OCRmyPDF) in rounds, then what each one read and how its text layer reads."""
    from bench.quality import measure_quality

    keep = config.work_dir / "run" / "dense-ocrmypdf"
    result = run_throughput(config, corpus, name="dense", with_ocrmypdf=True, keep=keep, with_library=True)
    escr = next((r for r in result["runs"] if r["tool"] == "escr ingest"), {})
    say("dense: character error rates of what each tool read")
    result["quality"] = measure_quality(
        corpus, floor_dir=config.work_dir / "run" / "dense-floor",
        escr_home=Path(escr["home"]) if escr.get("ok") else None, escr_documents=escr.get("document_ids", []),
        ocrmypdf_dir=keep)
    return result


def _throughput_ratios(runs: list[Any]) -> dict[str, float]:
    floor, escr = runs[0], runs[1]
    ratios = {}
    if escr.ok and floor.ok:
        ratios["escr_over_floor"] = round(escr.pages_per_s / floor.pages_per_s, 3)
        whole = escr.detail.get("process_wall_s")
        if whole:  # the whole `escr ingest` command, start-up and all, against the floor's
            ratios["escr_over_floor_whole_command"] = round((escr.pages / whole) / floor.pages_per_s, 3)
        ratios["escr_over_floor_cpu"] = round((floor.cpu_s / floor.pages) / (escr.cpu_s / escr.pages), 3)
    ocrmypdf_run = next((r for r in runs[2:] if r.tool == "OCRmyPDF"), None)
    if escr.ok and ocrmypdf_run is not None and ocrmypdf_run.ok:
        ratios["escr_over_ocrmypdf"] = round(escr.pages_per_s / ocrmypdf_run.pages_per_s, 3)
    library = next((r for r in runs[2:] if r.tool.startswith("tesseract library")), None)
    if escr.ok and library is not None and library.ok:  # escr's own overhead, the engine's build set aside
        ratios["escr_over_library_floor"] = round(escr.pages_per_s / library.pages_per_s, 3)
        ratios["escr_over_library_floor_cpu"] = round((library.cpu_s / library.pages) / (escr.cpu_s / escr.pages), 3)
    return ratios


def run_profile(config: BenchConfig, corpus: Corpus) -> dict[str, Any]:
    """py-spy over one `escr ingest`: where escr's own Python code spends CPU (not tesseract's)."""
    from bench.profile import profile_ingest

    return profile_ingest(config, corpus)


def guarded(name: str, results: dict[str, Any], work: Callable[[], Any]) -> None:
    try:
        results[name] = work()
    except Exception as exc:  # noqa: BLE001 - one part failing must not hide the others
        traceback.print_exc()
        results.setdefault("errors", {})[name] = f"{type(exc).__name__}: {exc}"[:500]


def main() -> int:
    config = load_config(os.environ)
    config.out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"machine": report.machine(config), "config": {
        "pages": config.pages, "file_pages": config.file_pages, "memory_pages": list(config.memory_pages),
        "seed_docs": config.seed_docs, "seed_children": config.seed_children, "sections": list(config.sections),
        "rounds": config.rounds, "celery_hosts": config.celery_hosts},
        "ocrmypdf_version": ocrmypdf_version(config)}
    compile_escr()
    corpus = None
    if {"throughput", "stages", "gap", "celery"} & set(config.sections):
        say(f"corpus: {config.pages} pages (generated once, then reused from {config.corpus_dir})")
        corpus = throughput_corpus(config.corpus_dir, config.pages, config.file_pages)
        results["corpus"] = corpus.summary()
    if corpus and {"throughput", "stages"} & set(config.sections):
        guarded("throughput", results, lambda: run_throughput(config, corpus))
        escr = next((r for r in results.get("throughput", {}).get("runs", []) if r["tool"] == "escr ingest"), None)
        if escr and escr.get("stage_seconds"):
            results["stages"] = {"seconds": {k: round(v, 3) for k, v in stage_groups(escr["stage_seconds"]).items()},
                                 "escr_stages": escr["stage_seconds"]}
    if "dense" in config.sections:
        say(f"dense: {config.dense_pages} dense text pages, nothing to skip (generated once, then reused)")
        dense = dense_corpus(config.corpus_dir, config.dense_pages)
        results["dense_corpus"] = dense.summary()
        guarded("dense", results, lambda: run_dense(config, dense))
    if corpus and "gap" in config.sections:
        from bench.gap import measure_gap

        say("gap: escr's per-page steps timed one at a time")
        guarded("gap", results, lambda: measure_gap(corpus))
    if "memory" in config.sections:
        from bench.memory import measure_memory

        say(f"memory: documents of {', '.join(map(str, config.memory_pages))} pages and a "
            f"{config.huge_side} px square page")
        guarded("memory", results, lambda: measure_memory(config))
    if "retrieval" in config.sections:
        from bench.retrieval_latency import measure_retrieval

        say(f"retrieval: PostgreSQL with {config.seed_docs:,} documents (seeded once, then reused)")
        guarded("retrieval", results, lambda: measure_retrieval(config, progress=say))
    if corpus and "celery" in config.sections:
        from bench.celery_scaling import measure_celery

        say("celery: 1 and 2 workers" + (", each in a network namespace" if config.celery_hosts == "netns" else ""))
        guarded("celery", results, lambda: measure_celery(config, corpus, progress=say))
    if corpus and config.profile:
        say("profile: py-spy over one escr ingest")
        guarded("profile", results, lambda: run_profile(config, corpus))
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["targets"] = report.targets(results, config)
    kept = config.out_dir / performance.result_name(results)
    kept.write_text(json.dumps(results, indent=1, default=str) + "\n")
    doc = performance.DOC if config.out_dir == performance.RESULTS.resolve() else config.out_dir / "performance.md"
    performance.write(config.out_dir, doc)
    print(report.render_text(results))
    say(f"results: {kept}; {doc} regenerated from the {len(list(config.out_dir.glob('*.json')))} runs there")
    return 1 if results.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
