"""Shared fixtures: a fresh data directory per test, with the real embedded backends."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from escr.services import Services, open_services
from escr.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus" / "scanners"

# Tests never read the developer's own ESCR_* settings, except the ones that point at test servers.
for _name in list(os.environ):
    if _name.startswith("ESCR_") and not _name.startswith("ESCR_TEST_"):
        del os.environ[_name]


@pytest.fixture(autouse=True)
def cached_ocr(request, monkeypatch, pytestconfig):
    """Reuse OCR results across runs (and across the SQLite and PostgreSQL passes) in tests that
    are not about OCR itself. Keyed by the exact page pixels and OCR settings, so a change to
    either is a cache miss; tests marked `real_ocr` always run Tesseract."""
    if request.node.get_closest_marker("real_ocr"):
        return
    import hashlib
    import pickle

    import escr.ocr as ocr_module

    real = ocr_module.ocr_page
    cache_dir = Path(pytestconfig.cache.mkdir("escr-ocr"))

    def cached(image, *, dpi, settings, metrics=None):
        key = hashlib.sha256(image.tobytes() + repr((image.mode, image.size, dpi, settings)).encode()).hexdigest()
        path = cache_dir / f"{key}.pickle"
        if path.exists():
            return pickle.loads(path.read_bytes())
        page = real(image, dpi=dpi, settings=settings, metrics=metrics)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(pickle.dumps(page))
        os.replace(tmp, path)
        return page

    monkeypatch.setattr(ocr_module, "ocr_page", cached)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(home=tmp_path / "home", stable_seconds=0.5, rescan_seconds=1.0,
                         database_url=os.environ.get("ESCR_TEST_DATABASE_URL"))


@pytest.fixture
def services(settings: Settings) -> Services:
    return open_services(settings)


@pytest.fixture
def children_csv(tmp_path: Path) -> Path:
    from tests.scans import CHILDREN_CSV

    path = tmp_path / "children.csv"
    path.write_text(CHILDREN_CSV)
    return path


@pytest.fixture
def with_children(services: Services, children_csv: Path) -> Services:
    from escr.children import import_children, read_children_csv
    from escr.events import Actor

    with services.db.session() as session:
        import_children(session, read_children_csv(children_csv), actor=Actor(kind="user", name="admin"))
    return services
