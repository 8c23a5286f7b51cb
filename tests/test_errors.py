"""The error taxonomy: each class says how the CLI and the web answer it, and whether to retry."""

from __future__ import annotations

from pathlib import Path

import pytest

from escr.app.access import AccessDenied, Unauthenticated
from escr.app.accounts import SignInFailed
from escr.errors import (
    BrokerUnavailable,
    DatabaseError,
    EscrError,
    FileUnreadable,
    InputRejected,
    InvalidState,
    NotFound,
    ProtocolViolation,
    StorageError,
    ValidationFailed,
)
from escr.intake.preflight import preflight
from escr.record.states import INDEX, VERIFY, DocumentState, InvalidTransition, next_state
from escr.settings import PreflightLimits
from escr.web.auth import CsrfFailed


@pytest.mark.parametrize(("error", "status", "exit_code", "transient"), [
    (StorageError("x"), 503, 1, True),
    (DatabaseError("x"), 503, 1, True),
    (BrokerUnavailable("x"), 503, 1, True),
    (FileUnreadable("x"), 503, 1, True),
    (InputRejected("empty", "x", "y"), 400, 1, False),
    (ValidationFailed("x", code="reason_required"), 422, 1, False),
    (InvalidState("x", code="already_exists"), 409, 2, False),
    (ProtocolViolation("x"), 409, 2, False),
    (SignInFailed("x"), 409, 2, False),
    (NotFound("x"), 404, 1, False),
    (AccessDenied("x", code="not_your_team"), 403, 1, False),
    (CsrfFailed("x"), 403, 1, False),
    (Unauthenticated("x"), 401, 1, False),
    (EscrError("x"), 500, 1, False),
])
def test_each_class_knows_its_status_exit_code_and_retry(error: EscrError, status: int, exit_code: int,
                                                          transient: bool) -> None:
    assert (error.http_status, error.exit_code, error.transient) == (status, exit_code, transient)


def test_a_file_that_cannot_be_read_is_a_transient_error_not_a_rejection(tmp_path: Path) -> None:
    with pytest.raises(FileUnreadable) as caught:
        preflight(tmp_path / "vanished.pdf", limits=PreflightLimits())
    assert caught.value.transient and not isinstance(caught.value, InputRejected)


def test_a_move_the_state_table_does_not_allow_is_a_typed_conflict() -> None:
    assert next_state("D-1", "awaiting_verification", VERIFY, DocumentState.VERIFIED) == "verified"
    with pytest.raises(InvalidTransition) as caught:
        next_state("D-1", "verified", INDEX, DocumentState.AWAITING_VERIFICATION)
    assert caught.value.exit_code == 2 and caught.value.http_status == 409
    assert "it can be indexed only when needs_indexing or awaiting_verification" in caught.value.message
    with pytest.raises(InvalidTransition):
        next_state("D-1", "awaiting_verification", VERIFY, DocumentState.REJECTED)
