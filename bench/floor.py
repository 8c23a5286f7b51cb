"""The floor: the `tesseract` command alone over page images, one thread per process, as many
processes as cores. Run as its own process so it is measured like the other tools:

    python -m bench.floor CORES SCRATCH_DIR IMAGE...
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def main(argv: list[str]) -> int:
    cores, scratch, images = int(argv[0]), Path(argv[1]), argv[2:]
    scratch.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}

    def one(n: int) -> int:
        return subprocess.run(["tesseract", images[n], str(scratch / f"page-{n}"), "-l", "eng", "txt"],
                              env=env, capture_output=True, check=False).returncode

    with ThreadPoolExecutor(cores) as pool:
        failed = sum(code != 0 for code in pool.map(one, range(len(images))))
    if failed:
        print(f"{failed} tesseract runs failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
