"""A document's state and the moves between them: the one place both are written down.

The intake files a document in one of `FILING_STATES`; after that only a person moves it, and
only along `TRANSITIONS` (the four-eyes checks are in `escr.app.verification`). The values are
the strings stored in `documents.state`, so a `DocumentState` compares equal to a stored row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from escr.errors import InvalidState, ValidationFailed


class DocumentState(StrEnum):
    QC_FAILED = "qc_failed"
    NEEDS_INDEXING = "needs_indexing"
    AWAITING_VERIFICATION = "awaiting_verification"
    VERIFIED = "verified"
    REJECTED = "rejected"

    @property
    def label(self) -> str:
        """What a person reads in a queue's heading."""
        return _LABELS[self]


_LABELS = {
    DocumentState.QC_FAILED: "failed QC",
    DocumentState.NEEDS_INDEXING: "waiting for indexing",
    DocumentState.AWAITING_VERIFICATION: "waiting for verification",
    DocumentState.VERIFIED: "verified",
    DocumentState.REJECTED: "rejected, to be rescanned",
}

# Where the intake may leave a new document, and the people's work queues.
FILING_STATES = (DocumentState.QC_FAILED, DocumentState.NEEDS_INDEXING, DocumentState.AWAITING_VERIFICATION)
QUEUE_STATES = (DocumentState.NEEDS_INDEXING, DocumentState.QC_FAILED, DocumentState.AWAITING_VERIFICATION)
# Not yet part of a child's record: only intake staff and verifiers see these.
INTAKE_STATES = (*QUEUE_STATES, DocumentState.REJECTED)


@dataclass(frozen=True)
class Transition:
    """A person's action: the states it starts from and the states it may lead to."""

    action: str  # past participle, as in "it can be verified only when ..."
    sources: tuple[DocumentState, ...]
    targets: tuple[DocumentState, ...]


INDEX = Transition("indexed", (DocumentState.NEEDS_INDEXING, DocumentState.AWAITING_VERIFICATION),
                   (DocumentState.AWAITING_VERIFICATION,))
ACCEPT_QC = Transition("accepted", (DocumentState.QC_FAILED,),
                       (DocumentState.AWAITING_VERIFICATION, DocumentState.NEEDS_INDEXING))
VERIFY = Transition("verified", (DocumentState.AWAITING_VERIFICATION,), (DocumentState.VERIFIED,))
REJECT = Transition("rejected", (DocumentState.AWAITING_VERIFICATION, DocumentState.QC_FAILED,
                                 DocumentState.NEEDS_INDEXING), (DocumentState.REJECTED,))
TRANSITIONS = (INDEX, ACCEPT_QC, VERIFY, REJECT)


class InvalidTransition(InvalidState):
    """A move the table above does not allow (a conflict with the document's current state)."""


def require_state(doc_id: str, current: str, move: Transition) -> None:
    """Refuse `move` unless the document is in one of its source states."""
    if current not in move.sources:
        raise InvalidTransition(f"document {doc_id} is {current}; it can be {move.action} only when "
                                f"{' or '.join(move.sources)}")


def next_state(doc_id: str, current: str, move: Transition, target: DocumentState) -> DocumentState:
    """The state after `move`; a target the table does not list is a bug, refused loudly."""
    require_state(doc_id, current, move)
    if target not in move.targets:
        raise InvalidTransition(f"document {doc_id} cannot become {target} by being {move.action}")
    return target


def parse_states(values: Iterable[str], allowed: Iterable[DocumentState]) -> list[DocumentState]:
    """Turn query values into states; anything else is a ValidationFailed naming the choices."""
    choices = tuple(allowed)
    try:
        states = [DocumentState(v) for v in values]
    except ValueError:
        states = []
    if not states or any(s not in choices for s in states):
        raise ValidationFailed(f"state must be one of {', '.join(choices)}")
    return states
