"""OCR filling every core while the retrieval benchmark calls the API (issue 21, latency under
load): `config.cores` processes each read a dense scanned page with escr's own OCR, over and over,
at a given priority, exactly as the watcher and workers lower theirs (escr.runtime.priority).

Each loader notes when each page finished; the rate is taken between the first and the last page
finished inside the measured block, so it is not rounded to whole pages (a page is about 4 % of a
minute's work on these cores, more than the 3 % the throughput target allows).

Run as `python -m bench.ocr_load PAGE NICENESS TIMES_FILE` for one loader process."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.config import BenchConfig
from bench.runners import clean_env


@dataclass
class LoadResult:
    niceness: int
    processes: int
    pages: int = 0
    seconds: float = 0.0
    pages_per_min: float = 0.0

    def count(self, finished: list[list[float]], started: float, ended: float) -> None:
        """Pages finished inside [started, ended], and the rate: each loader's pages between its
        first and last finish in the block, over that time, added up across loaders."""
        self.seconds = ended - started
        rate = 0.0
        for times in finished:
            inside = [t for t in times if started <= t <= ended]
            self.pages += len(inside)
            if len(inside) >= 2 and inside[-1] > inside[0]:
                rate += (len(inside) - 1) / (inside[-1] - inside[0])
        self.pages_per_min = round(rate * 60, 2)


def dense_page(work: Path) -> Path:
    """One typed A4 page, scanned at 300 dpi: nothing on it can be skipped."""
    from bench.corpus import bench_children, letter_page, scanned

    path = work / "ocr-load-page.png"
    if not path.exists():
        work.mkdir(parents=True, exist_ok=True)
        rng = random.Random(21)
        scanned(letter_page(rng, bench_children()[0], "assessment", 2), rng).save(path, dpi=(300, 300))
    return path


@contextmanager
def ocr_load(config: BenchConfig, niceness: int) -> Iterator[LoadResult]:
    """OCR on every core for the duration of the block; the pages and rate are taken at the end."""
    page = dense_page(config.work_dir / "ocr-load")
    result = LoadResult(niceness=niceness, processes=config.cores)
    times_files = [config.work_dir / "ocr-load" / f"finished-{n}.json" for n in range(config.cores)]
    for times_file in times_files:
        times_file.unlink(missing_ok=True)
    loaders = [subprocess.Popen([sys.executable, "-m", "bench.ocr_load", str(page), str(niceness), str(times_file)],
                                env=clean_env()) for times_file in times_files]
    time.sleep(5)  # every loader past start-up and into its first page
    started = time.monotonic()  # CLOCK_MONOTONIC: the same clock in every process on Linux
    try:
        yield result
    finally:
        ended = time.monotonic()
        for loader in loaders:
            loader.send_signal(signal.SIGTERM)
        for loader in loaders:
            loader.wait(timeout=600)
        result.count([json.loads(f.read_text()) for f in times_files if f.exists()], started, ended)


def main(argv: list[str]) -> int:
    from PIL import Image

    from escr.pages.ocr import ocr_page
    from escr.runtime.priority import lower_priority
    from escr.settings import OcrSettings

    page, niceness, times_file = Path(argv[0]), int(argv[1]), Path(argv[2])
    settings = OcrSettings(niceness=niceness, low_io_priority=niceness > 0)
    lower_priority(settings)
    stop = False

    def finish(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, finish)
    image = Image.open(page)
    image.load()
    finished: list[float] = []
    while not stop:
        ocr_page(image, dpi=300, settings=settings)
        finished.append(time.monotonic())
    times_file.write_text(json.dumps(finished))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
