"""The floor: Tesseract alone over page images, one thread per process, as many at once as cores.
Run as its own process so it is measured like the other tools:

    python -m bench.floor CORES SCRATCH_DIR IMAGE...            the `tesseract` command per page
    python -m bench.floor --library CORES SCRATCH_DIR IMAGE...  the library escr reads pages with
                                                                (tesserocr), loaded once per thread

The first is the issue's floor: the distribution's program. The second is the least work the
engine escr uses can do on the same pages (no start-up per page, text only), so escr's own
overhead is visible apart from the engine's version and build (docs/decisions/0006).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def main(argv: list[str]) -> int:
    library = argv[:1] == ["--library"]
    argv = argv[1:] if library else argv
    cores, scratch, images = int(argv[0]), Path(argv[1]), argv[2:]
    scratch.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    local = threading.local()

    def command(n: int) -> int:
        return subprocess.run(["tesseract", images[n], str(scratch / f"page-{n}"), "-l", "eng", "txt"],
                              env=env, capture_output=True, check=False).returncode

    def loaded(n: int) -> int:
        import tesserocr

        from escr.pages.engine import tessdata_dir  # the models escr itself would load

        if not hasattr(local, "api"):
            local.api = tesserocr.PyTessBaseAPI(path=f"{tessdata_dir(None)}/", lang="eng")
        local.api.SetImageFile(images[n])
        ok = local.api.Recognize()
        (scratch / f"page-{n}.txt").write_text(local.api.GetUTF8Text())
        return 0 if ok else 1

    with ThreadPoolExecutor(cores) as pool:
        failed = sum(code != 0 for code in pool.map(loaded if library else command, range(len(images))))
    if failed:
        print(f"{failed} tesseract runs failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
