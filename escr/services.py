"""What the pipelines and commands share: settings, database, object store, document types.

Built once at an entry point from the settings object and passed down explicitly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property

from escr.indexing.tagging import DocTypeCatalogue, load_doctypes
from escr.record.database import Database
from escr.record.retention import RetentionSchedule, load_retention
from escr.settings import Settings
from escr.storage import open_store
from escr.storage.objectstore import ObjectStore, private_dir


@dataclass
class Services:
    settings: Settings
    db: Database
    store: ObjectStore

    @cached_property
    def doctypes(self) -> DocTypeCatalogue:
        return load_doctypes(self.settings.config_file("doctypes.yaml"))

    @cached_property
    def retention(self) -> RetentionSchedule:
        return load_retention(self.settings.config_file("retention.yaml"))

    @cached_property
    def software(self) -> dict[str, str]:
        """Versions recorded with every protocol event, so a result can be traced to its tools."""
        import pikepdf
        import zxingcpp

        from escr import __version__
        from escr.pages.ocr import tesseract_version

        return {
            "escr": __version__,
            "tesseract": tesseract_version(self.settings.ocr),
            "pikepdf": pikepdf.__version__,
            "qpdf": pikepdf.__libqpdf_version__,
            "zxing-cpp": getattr(zxingcpp, "__version__", "unknown"),
        }


def open_services(settings: Settings) -> Services:
    for folder in (settings.home, settings.intake_dir, settings.processing_dir, settings.quarantine_dir):
        private_dir(folder)  # owner-only whatever the umask: they hold children's records
    db = Database(settings.resolved_database_url)
    db.create_schema()
    return Services(settings=settings, db=db, store=open_store(settings))


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
