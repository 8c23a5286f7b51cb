"""escr: scanned paper into a child's Electronic Social Care Record."""

__version__ = "0.1.0"
