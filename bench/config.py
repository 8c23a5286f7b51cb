"""The benchmark's one configuration object, read from BENCH_* variables at the entry point.

| variable | default | what |
|---|---|---|
| BENCH_PAGES | 48 | pages in the throughput corpus (cover sheets and blank pages included) |
| BENCH_FILE_PAGES | 8 | pages per scanned file of that corpus (an MFD batch) |
| BENCH_DENSE_PAGES | 24 | dense text pages, nothing to skip, in three files (issue 21), skewed by 1.5 degrees |
| BENCH_MEMORY_PAGES | 30,300 | page counts of the single documents whose peak memory is measured |
| BENCH_HUGE_SIDE | 35000 | pixels per side of the oversized page that must be refused or bounded |
| BENCH_SEED_DOCS | 1000000 | documents seeded into PostgreSQL for the retrieval benchmark |
| BENCH_SEED_CHILDREN | BENCH_SEED_DOCS / 10 | children they belong to |
| BENCH_SEED_PAGES_PER_DOC | 1 | page rows per seeded document |
| BENCH_SEED_WORDS | 250 | words per seeded page |
| BENCH_QUERIES | 200 | timed calls per retrieval measurement (after 20 warm-up calls) |
| BENCH_PG_URL | postgresql+psycopg://postgres@127.0.0.1:5432/escr_bench | the dedicated database |
| BENCH_API_HEADERS | (none) | extra HTTP headers for `escr serve`, "Name: value; Name: value" |
| BENCH_CELERY_ENV | (none) | extra environment for `escr watch`/`escr worker`, "KEY=value KEY=value" |
| BENCH_CELERY_TIMEOUT | 1800 | seconds a Celery run may take before it is reported as failed |
| BENCH_CELERY_HOSTS | local | `netns`: intake and each worker in a network namespace of its own, Redis per page counted (root, iproute2) |
| BENCH_CELERY_DELAY_MS | 0.5 | with `netns`: round-trip latency added on each host's link by `tc qdisc netem` (0: none), to model a LAN |
| BENCH_ROUNDS | 3 | rounds of parts 1 and 5, each tool once a round, one after another; the median round counts |
| BENCH_SECTIONS | throughput,dense,stages,gap,memory,retrieval,celery | which parts to run |
| BENCH_CORES | all cores | processes for the floor, --jobs for OCRmyPDF, OCR workers for escr |
| BENCH_OCRMYPDF | .bench-venv/bin/ocrmypdf | the OCRmyPDF command (its own venv, not escr's) |
| BENCH_PROFILE | 0 | 1: also record a py-spy profile of one `escr ingest` (needs .bench-venv/bin/py-spy) |
| BENCH_OUT | bench/results | folder the run's JSON is kept in; docs/performance.md is generated from it (elsewhere: performance.md beside the JSON) |
| BENCH_WORK | var/bench | cached corpora and scratch space |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ALL_SECTIONS = ("throughput", "dense", "stages", "gap", "memory", "retrieval", "celery")
# Where the scale-out section's workers run: beside the intake on this host, or each in a network
# namespace of its own, reaching the broker over a virtual link (bench/celery_scaling.py).
CELERY_HOSTS = ("local", "netns")


@dataclass(frozen=True)
class BenchConfig:
    pages: int = 48
    dense_pages: int = 24
    file_pages: int = 8
    memory_pages: tuple[int, ...] = (30, 300)
    huge_side: int = 35000
    seed_docs: int = 1_000_000
    seed_children: int = 100_000
    seed_pages_per_doc: int = 1
    seed_words: int = 250
    queries: int = 200
    pg_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/escr_bench"
    api_headers: dict[str, str] = field(default_factory=dict)
    celery_env: dict[str, str] = field(default_factory=dict)
    celery_timeout_s: float = 1800.0
    celery_hosts: str = "local"
    celery_delay_ms: float = 0.5
    rounds: int = 3
    sections: tuple[str, ...] = ALL_SECTIONS
    cores: int = os.cpu_count() or 1
    ocrmypdf: Path = REPO / ".bench-venv" / "bin" / "ocrmypdf"
    py_spy: Path = REPO / ".bench-venv" / "bin" / "py-spy"
    profile: bool = False
    out_dir: Path = REPO / "bench" / "results"
    work_dir: Path = REPO / "var" / "bench"
    escr: Path = REPO / ".venv" / "bin" / "escr"

    @property
    def corpus_dir(self) -> Path:
        return self.work_dir / "corpus"


def _pairs(raw: str, sep: str, kv: str) -> dict[str, str]:
    pairs = {}
    for item in (p.strip() for p in raw.split(sep)):
        if item:
            key, _, value = item.partition(kv)
            pairs[key.strip()] = value.strip()
    return pairs


def load_config(env: Mapping[str, str]) -> BenchConfig:
    """The only place BENCH_* variables are read; a bad value stops the run with a clear message."""
    def num(name: str, default: float) -> float:
        try:
            return float(env.get(name, default))
        except ValueError:
            raise SystemExit(f"{name} must be a number") from None

    seed_docs = int(num("BENCH_SEED_DOCS", 1_000_000))
    sections = tuple(s.strip() for s in env.get("BENCH_SECTIONS", ",".join(ALL_SECTIONS)).split(",") if s.strip())
    unknown = set(sections) - set(ALL_SECTIONS)
    if unknown:
        raise SystemExit(f"BENCH_SECTIONS: unknown {sorted(unknown)}; choose from {list(ALL_SECTIONS)}")
    celery_hosts = env.get("BENCH_CELERY_HOSTS", "local").strip() or "local"
    if celery_hosts not in CELERY_HOSTS:
        raise SystemExit(f"BENCH_CELERY_HOSTS: unknown {celery_hosts!r}; choose from {list(CELERY_HOSTS)}")
    work = Path(env.get("BENCH_WORK", REPO / "var" / "bench")).resolve()
    return BenchConfig(
        pages=max(3, int(num("BENCH_PAGES", 48))),
        file_pages=max(2, int(num("BENCH_FILE_PAGES", 8))),
        dense_pages=max(3, int(num("BENCH_DENSE_PAGES", 24))),
        memory_pages=tuple(int(p) for p in env.get("BENCH_MEMORY_PAGES", "30,300").split(",") if p.strip()),
        huge_side=int(num("BENCH_HUGE_SIDE", 35000)),
        seed_docs=seed_docs,
        seed_children=int(num("BENCH_SEED_CHILDREN", max(1, seed_docs // 10))),
        seed_pages_per_doc=max(1, int(num("BENCH_SEED_PAGES_PER_DOC", 1))),
        seed_words=max(25, int(num("BENCH_SEED_WORDS", 250))),
        queries=max(10, int(num("BENCH_QUERIES", 200))),
        pg_url=env.get("BENCH_PG_URL", BenchConfig.pg_url),
        api_headers=_pairs(env.get("BENCH_API_HEADERS", ""), ";", ":"),
        celery_env=_pairs(env.get("BENCH_CELERY_ENV", ""), " ", "="),
        celery_timeout_s=num("BENCH_CELERY_TIMEOUT", 1800),
        celery_hosts=celery_hosts,
        celery_delay_ms=max(0.0, num("BENCH_CELERY_DELAY_MS", 0.5)),
        rounds=max(1, int(num("BENCH_ROUNDS", 3))),
        sections=sections,
        cores=max(1, int(num("BENCH_CORES", os.cpu_count() or 1))),
        ocrmypdf=Path(env.get("BENCH_OCRMYPDF", REPO / ".bench-venv" / "bin" / "ocrmypdf")),
        profile=env.get("BENCH_PROFILE", "0") not in ("", "0", "false", "no"),
        out_dir=Path(env.get("BENCH_OUT", REPO / "bench" / "results")).resolve(),
        work_dir=work,
    )
