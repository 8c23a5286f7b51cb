"""docs/performance.md is generated from the benchmark's JSON (bench/performance.py), never typed in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import performance


def run(date: str, commit: str, *, escr_over_floor: float, ocrmypdf_status: str = "NOT MET") -> dict[str, Any]:
    """A small result as `python -m bench` writes it: the machine, one throughput round, targets."""
    return {
        "machine": {"date": date, "cpu": "AMD EPYC", "cores": 2, "cores_used": 2, "memory_gib": 23.5,
                    "tesseract": "tesseract 5.3.0", "escr_commit": commit, "load_average_at_start": [0.5, 0.6, 0.7]},
        "config": {"pages": 48, "sections": ["throughput"], "rounds": 1, "seed_docs": 1_000_000},
        "ocrmypdf_version": "17.13.0",
        "throughput": {"runs": [
            {"tool": "tesseract alone (floor)", "pages": 48, "wall_s": 51.7, "pages_per_s": 0.928, "ok": True},
            {"tool": "escr ingest", "pages": 48, "wall_s": 51.6, "pages_per_s": 0.931, "ok": True},
        ], "ratios": {"escr_over_floor": escr_over_floor}},
        "targets": [
            {"target": "escr / Tesseract-alone floor", "value": escr_over_floor, "goal": ">= 0.95",
             "status": "met" if escr_over_floor >= 0.95 else "NOT MET", "note": ""},
            {"target": "escr / OCRmyPDF", "value": 1.748, "goal": ">= 2.0", "status": ocrmypdf_status, "note": ""},
            {"target": "list a child's documents p95", "value": None, "goal": "< 20 ms at 1M documents",
             "status": "not measured", "note": ""},
        ],
    }


def keep(folder: Path, result: dict[str, Any]) -> Path:
    path = folder / performance.result_name(result)
    path.write_text(json.dumps(result))
    return path


def test_each_run_is_kept_under_its_date_and_commit(tmp_path: Path) -> None:
    path = keep(tmp_path, run("2026-12-03 09:48 UTC", "8592200+changes", escr_over_floor=1.003))
    assert path.name == "2026-12-03-0948-8592200-dirty.json"


def test_the_page_lists_every_run_newest_first_with_its_targets(tmp_path: Path) -> None:
    keep(tmp_path, run("2026-12-02 18:15 UTC", "0ceeb3f", escr_over_floor=0.919))
    keep(tmp_path, run("2026-12-03 09:48 UTC", "8592200", escr_over_floor=1.003, ocrmypdf_status="met"))
    out = performance.write(tmp_path, tmp_path / "docs" / "performance.md")
    page = out.read_text()
    rows = [line for line in page.splitlines() if line.startswith("| 2026-")]
    assert rows == [
        "| 2026-12-03 09:48 UTC | 8592200 | AMD EPYC, 2 cores | 48 pages, parts: throughput "
        "| 1.003 (met) | 1.748 (met) | - | - | - |",
        "| 2026-12-02 18:15 UTC | 0ceeb3f | AMD EPYC, 2 cores | 48 pages, parts: throughput "
        "| 0.919 (NOT MET) | 1.748 (NOT MET) | - | - | - |",
    ]
    # Each run's own tables follow, as the benchmark rendered them.
    assert page.index("## 2026-12-03 09:48 UTC, escr 8592200") < page.index("## 2026-12-02 18:15 UTC, escr 0ceeb3f")
    assert "| escr ingest | 48 | 51.6 | 0.931 |" in page
    assert "do not edit by hand" in page


def test_no_results_yet_says_so_and_how_to_make_one(tmp_path: Path) -> None:
    page = performance.write(tmp_path / "none", tmp_path / "performance.md").read_text()
    assert "No benchmark results are kept yet" in page and "make bench" in page
