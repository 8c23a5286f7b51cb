"""One exception hierarchy for escr.

Third-party errors (SQLAlchemy, minio, pikepdf, Pillow, tesseract) are translated into these
at the module boundary that calls the library, so callers only ever catch `EscrError`.
Messages carry ids, never personal data: they end up in logs.
"""

from __future__ import annotations


class EscrError(Exception):
    """Base of every error escr raises on purpose."""

    code = "escr_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ConfigError(EscrError):
    code = "config_invalid"


class InputRejected(EscrError):
    """A scan that cannot be filed; it goes to quarantine with this reason beside it.

    `code` is stable and machine-readable, `message` says in plain English what is wrong and
    `action` what business support should do about it.
    """

    code = "input_rejected"

    def __init__(self, code: str, message: str, action: str) -> None:
        super().__init__(message, code=code)
        self.action = action


class OcrError(EscrError):
    code = "ocr_failed"


class StorageError(EscrError):
    """The object store failed or returned bytes that do not match what was written."""

    code = "storage_failed"


class DatabaseError(EscrError):
    code = "database_failed"


class NotFound(EscrError):
    code = "not_found"


class ProtocolViolation(EscrError):
    """An action the controlled-scanning protocol forbids (e.g. verifying your own scan)."""

    code = "protocol_violation"


class InvalidState(EscrError):
    """An action not allowed in the document's current state."""

    code = "invalid_state"


class Conflict(InvalidState):
    """Someone else changed the document since this person saw it (two people deciding at once)."""

    code = "conflict"
