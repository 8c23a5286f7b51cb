"""DocumentState: one enum and one table of moves (escr/record/states.py) that every rule uses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from escr.app import labels
from escr.app.verification import reject_document, verify_document
from escr.errors import Conflict
from escr.record.models import Document
from escr.record.states import FILING_STATES, TRANSITIONS, DocumentState, InvalidTransition
from tests.support.records import file_document


def test_every_state_reads_as_words_and_has_a_way_in():
    for state in DocumentState:
        assert labels.label(state, "document_state") == labels.DOCUMENT_STATES[state]  # never the code itself
        assert state in FILING_STATES or any(state in move.targets for move in TRANSITIONS), state


def test_a_move_the_table_does_not_list_is_a_conflict_and_changes_nothing(with_children):
    services = with_children
    verified = file_document(services, ["AB123456"], verified_at=datetime(2024, 1, 9, tzinfo=UTC))
    waiting = file_document(services, ["AB123456"])
    with services.db.session() as session:
        with pytest.raises(InvalidTransition, match="it can be verified only when awaiting_verification") as caught:
            verify_document(session, verified, user="tm.okafor")
        assert isinstance(caught.value, Conflict) and caught.value.http_status == 409
        verify_document(session, waiting, user="tm.okafor")
    with services.db.session() as session:
        assert session.get(Document, verified).state == DocumentState.VERIFIED
        assert session.get(Document, waiting).state == DocumentState.VERIFIED
        with pytest.raises(InvalidTransition, match="it can be rejected only when"):
            reject_document(session, waiting, user="tm.other", reason="the pages are upside down")
