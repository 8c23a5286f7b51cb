"""The test suite's OCR cache, for tests that are not about OCR itself.

Keyed by the exact page pixels and the OCR settings, so a change to either is a miss; stored in
pytest's cache folder so the SQLite and PostgreSQL passes of CI share it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
from pathlib import Path

import pytest


def install_ocr_cache(pytestconfig: pytest.Config) -> pytest.MonkeyPatch:
    """Serve `escr.pages.ocr.ocr_page` from the cache; call `.undo()` on the result when done."""
    import escr.pages.ocr as ocr_module

    real = ocr_module.ocr_page
    cache_dir = Path(pytestconfig.cache.mkdir("escr-ocr"))
    # What a pickled page looks like: a changed OcrPage or OcrWord must miss, not unpickle wrongly.
    shape = repr([(cls.__name__, [f.name for f in dataclasses.fields(cls)], getattr(cls, "__slots__", None))
                  for cls in (ocr_module.OcrPage, ocr_module.OcrWord)])

    def cached(image, *, dpi, settings, metrics=None):  # type: ignore[no-untyped-def]
        key = hashlib.sha256(image.tobytes() + repr((image.mode, image.size, dpi, settings, shape)).encode()).hexdigest()
        path = cache_dir / f"{key}.pickle"
        if path.exists():
            return pickle.loads(path.read_bytes())
        page = real(image, dpi=dpi, settings=settings, metrics=metrics)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(pickle.dumps(page))
        os.replace(tmp, path)
        return page

    patch = pytest.MonkeyPatch()
    patch.setattr(ocr_module, "ocr_page", cached)
    return patch
