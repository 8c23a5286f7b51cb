"""Peak memory of `escr ingest` on one long document, and on a page far larger than any scan.

Pages must be streamed, never all decoded at once, so the peak for 300 pages should be the
peak for 30. A 35000 x 35000 pixel page must be refused before it is decoded, or handled
within the same bound.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.config import BenchConfig
from bench.corpus import huge_pdf, huge_png, single_document, write_children_csv
from bench.runners import escr_ingest


def measure_memory(config: BenchConfig) -> dict[str, Any]:
    documents = []
    for pages in config.memory_pages:
        corpus = single_document(config.corpus_dir, pages)
        run = escr_ingest(config, [Path(corpus.files[0].path)], name=f"memory-{pages}p",
                          children_csv=corpus.children_csv, pages=corpus.pages)
        documents.append({"pages": pages, "peak_main_mb": round(run.peak_main_mb, 1),
                          "peak_tree_mb": round(run.peak_tree_mb, 1), "pages_per_s": round(run.pages_per_s, 3),
                          "status": run.detail.get("statuses"), "ok": run.ok, "problem": run.problem})
    huge_dir = config.corpus_dir / "huge"
    huge_dir.mkdir(parents=True, exist_ok=True)
    side = config.huge_side
    huge = []
    for path in (huge_png(huge_dir / f"huge-{side}.png", side), huge_pdf(huge_dir / f"huge-{side}.pdf", side)):
        run = escr_ingest(config, [path], name=f"huge-{path.suffix[1:]}", pages=1,
                          children_csv=write_children_csv(huge_dir / "children.csv"), timeout_s=900)
        statuses = run.detail.get("statuses") or ["?"]
        codes = run.detail.get("quarantine_codes") or []
        huge.append({"file": path.name, "pixels": f"{side} x {side}", "outcome": statuses[0],
                     "quarantine_code": codes[0] if codes else None, "peak_main_mb": round(run.peak_main_mb, 1),
                     "peak_tree_mb": round(run.peak_tree_mb, 1), "seconds": round(run.detail.get("process_wall_s", 0), 2),
                     "problem": None if statuses[0] in ("filed", "quarantined") else run.problem})
    return {"documents": documents, "huge_pages": huge}
