"""OCR filling every core while the retrieval benchmark calls the API (issue 21, latency under
load): `config.cores` processes each read a dense scanned page with escr's own OCR, over and over,
at a given priority, exactly as the watcher and workers lower theirs (escr.runtime.priority).

Run as `python -m bench.ocr_load PAGE NICENESS COUNT_FILE` for one loader process."""

from __future__ import annotations

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

    @property
    def pages_per_min(self) -> float:
        return round(self.pages * 60 / self.seconds, 2) if self.seconds else 0.0


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
    """OCR on every core for the duration of the block; the pages done are counted at the end."""
    page = dense_page(config.work_dir / "ocr-load")
    result = LoadResult(niceness=niceness, processes=config.cores)
    counts = [config.work_dir / "ocr-load" / f"count-{n}" for n in range(config.cores)]
    for count in counts:
        count.unlink(missing_ok=True)
    loaders = [subprocess.Popen([sys.executable, "-m", "bench.ocr_load", str(page), str(niceness), str(count)],
                                env=clean_env()) for count in counts]
    time.sleep(5)  # every loader past start-up and into its first page
    started = time.monotonic()
    try:
        yield result
    finally:
        result.seconds = time.monotonic() - started
        for loader in loaders:
            loader.send_signal(signal.SIGTERM)
        for loader in loaders:
            loader.wait(timeout=600)
        result.pages = sum(int(c.read_text()) for c in counts if c.exists())


def main(argv: list[str]) -> int:
    from PIL import Image

    from escr.pages.ocr import ocr_page
    from escr.runtime.priority import lower_priority
    from escr.settings import OcrSettings

    page, niceness, count_file = Path(argv[0]), int(argv[1]), Path(argv[2])
    settings = OcrSettings(niceness=niceness, low_io_priority=niceness > 0)
    lower_priority(settings)
    stop = False

    def finish(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, finish)
    image = Image.open(page)
    image.load()
    done, counting = 0, time.monotonic() + 5  # pages finished before the measurement began do not count
    while not stop:
        ocr_page(image, dpi=300, settings=settings)
        if time.monotonic() > counting:
            done += 1
    count_file.write_text(str(done))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
