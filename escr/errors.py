"""One exception hierarchy for escr: each class says what the failure means.

A class carries what every caller needs to know, so nobody dispatches on message strings or
codes: `transient` (an outage: retry later, the file or request is not at fault),
`http_status` for the web app and REST API, `exit_code` for the CLI. `code` stays a stable,
machine-readable name for API clients and logs; a subclass or a raise may narrow it.

    EscrError                      500 / exit 1
      Transient                    503 / exit 1, retry later (storage, database, broker, a file unreadable now)
      InputRejected                400 / exit 1, the scan goes to quarantine
      ValidationFailed             422 / exit 1, bad input from a person
      Conflict                     409 / exit 2, not allowed now (InvalidState, ProtocolViolation)
      NotFound                     404 / exit 1
      Forbidden                    403 / exit 1 (escr.app.access.AccessDenied)
      Unauthenticated              401 / exit 1

Third-party errors (SQLAlchemy, minio, pikepdf, Pillow, OSError, tesseract) are translated into
these at the module boundary that calls the library, so callers only ever catch `EscrError`.
Messages carry ids, never personal data: they end up in logs.
"""

from __future__ import annotations


class EscrError(Exception):
    """Base of every error escr raises on purpose; on its own, an internal failure."""

    code = "escr_error"
    http_status = 500
    exit_code = 1
    transient = False

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ConfigError(EscrError):
    code = "config_invalid"


class OcrError(EscrError):
    code = "ocr_failed"


class Transient(EscrError):
    """An outage, not a fault of the input: the same call may succeed later, so retry it."""

    code = "unavailable"
    http_status = 503
    transient = True


class StorageError(Transient):
    """The object store failed or returned bytes that do not match what was written."""

    code = "storage_failed"


class DatabaseError(Transient):
    code = "database_failed"


class BrokerUnavailable(Transient):
    """The broker or the workers did not answer: the file waits in processing/ and is retried."""

    code = "ocr_workers_unavailable"


class FileUnreadable(Transient):
    """A file could not be read at all (it vanished, a permission, an I/O error): not the file's
    fault, so it is not quarantined but left where it is for a retry."""

    code = "unreadable"


class InputRejected(EscrError):
    """A scan that cannot be filed; it goes to quarantine with this reason beside it.

    `code` is stable and machine-readable, `message` says in plain English what is wrong and
    `action` what business support should do about it.
    """

    code = "input_rejected"
    http_status = 400

    def __init__(self, code: str, message: str, action: str) -> None:
        super().__init__(message, code=code)
        self.action = action


class ValidationFailed(EscrError):
    """A person's input that is missing or malformed (a date, a reason too short, a weak password)."""

    code = "validation_failed"
    http_status = 422


class Conflict(EscrError):
    """Well-formed, but not allowed now: the record's state or the protocol stands in the way."""

    code = "conflict"
    http_status = 409
    exit_code = 2


class InvalidState(Conflict):
    """An action not allowed in the document's (or account's) current state."""

    code = "invalid_state"


class ProtocolViolation(Conflict):
    """An action the controlled-scanning protocol forbids (e.g. verifying your own scan)."""

    code = "protocol_violation"


class NotFound(EscrError):
    code = "not_found"
    http_status = 404


class Forbidden(EscrError):
    """Refused to this person: a role or need-to-know rule, a failed CSRF check."""

    code = "forbidden"
    http_status = 403


class Unauthenticated(EscrError):
    """Nobody (known) is signed in."""

    code = "unauthenticated"
    http_status = 401
