"""One exception hierarchy for escr: each class says what the failure means.

A class carries what every caller needs to know, so nobody dispatches on code strings:
`transient` (an outage: retry later; the file or request is not at fault), `http_status` for the
web pages and the REST API, `exit_code` for the CLI. `code` stays a stable, machine-readable name
for API clients and logs; a subclass or a raise may narrow it, never to change how it is answered.

    EscrError                 500, exit 1   an internal failure (ConfigError, OcrError)
      Transient               503, exit 75  retry later: StorageError, DatabaseError,
                                            BrokerUnavailable, FileUnreadable
      InputRejected           400, exit 1   a scan or import that cannot be filed (quarantine)
      ValidationFailed        422, exit 1   a person's input is missing or malformed
      Conflict                409, exit 2   well-formed but not allowed now: InvalidState,
                                            ProtocolViolation (four-eyes, append-only)
      NotFound                404, exit 1
      Forbidden               403, exit 1   a role or need-to-know rule (escr.app.access.AccessDenied)
      Unauthenticated         401, exit 1   nobody (known) is signed in

Exit 75 is sysexits' EX_TEMPFAIL, so a script can tell "try again later" from "this is wrong".
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

    def __reduce__(self) -> tuple[object, ...]:
        """An error raised in an OCR slot's child reaches the intake whole, whatever its __init__ takes."""
        return (_rebuilt, (type(self), self.args, dict(self.__dict__)))


def _rebuilt(cls: type[EscrError], args: tuple[object, ...], state: dict[str, object]) -> EscrError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class ConfigError(EscrError):
    code = "config_invalid"


class OcrError(EscrError):
    """Tesseract or the page renderer failed on a page (not the file's fault, not an outage)."""

    code = "ocr_failed"


class OcrTimeout(OcrError):
    """A page took longer than ocr.page_timeout_s: the page is too hard, not merely unreadable."""

    code = "ocr_timeout"


class Transient(EscrError):
    """An outage, not a fault of the input: the same call may succeed later, so retry it."""

    code = "unavailable"
    http_status = 503
    exit_code = 75
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
    """A file could not be read at all (it vanished, a permission, an I/O error). Not the file's
    fault, so it is not quarantined but left in processing/ for a retry."""

    code = "unreadable"


class InputRejected(EscrError):
    """A scan that cannot be filed; it goes to quarantine with this reason beside it.

    `code` is stable and machine-readable, `message` says in plain English what is wrong and
    `action` what business support should do about it.
    """

    code = "input_rejected"
    http_status = 400
    exit_code = 1
    transient = False  # stated, so a subclass that is also a DatabaseError is still quarantined

    def __init__(self, code: str, message: str, action: str) -> None:
        super().__init__(message, code=code)
        self.action = action


class ValidationFailed(EscrError):
    """A person's input that is missing or malformed (a date, a reason too short, a weak password)."""

    code = "validation_failed"
    http_status = 422


class RequestTooLarge(EscrError):
    """A request body larger than the web app takes (web.max_body_kb; a scan: preflight's limit)."""

    code = "request_too_large"
    http_status = 413


class Conflict(EscrError):
    """Well-formed, but not allowed now: the record's state, the protocol, or someone else's
    change since this person looked (`code` "conflict") stands in the way."""

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
    """Nobody (known) is signed in: a missing or invalid token, a failed sign-in."""

    code = "unauthenticated"
    http_status = 401
