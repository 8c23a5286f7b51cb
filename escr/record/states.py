"""A document's state and the moves between them: the one place both are written down.

The intake files a new document in one of `FILING_STATES`; after that only a person (or the
disposal of an expired record) moves it, and only along `TRANSITIONS`; the four-eyes checks are
in `escr.app.verification`. The values are the strings stored in `documents.state`, so a
`DocumentState` compares equal to a stored row and to a query parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from escr.errors import InvalidState


class DocumentState(StrEnum):
    QC_FAILED = "qc_failed"  # an automated check failed: a person accepts it or rejects the scan
    NEEDS_INDEXING = "needs_indexing"  # the child or the type is not known beyond doubt
    AWAITING_VERIFICATION = "awaiting_verification"  # indexed: waits for a second person (four-eyes)
    VERIFIED = "verified"  # in the child's record
    REJECTED = "rejected"  # the paper must be rescanned; kept, out of the record
    WITHDRAWN = "withdrawn"  # the scanner took their own scan back for a rescan
    SUPERSEDED = "superseded"  # a rescan replaced it: out of the chronology, kept in the audit trail
    DISPOSED = "disposed"  # its retention ended and a disposal was carried out


# Where the intake may leave a new document.
FILING_STATES = (DocumentState.QC_FAILED, DocumentState.NEEDS_INDEXING, DocumentState.AWAITING_VERIFICATION)
# The people's work queues, in the order they are shown.
QUEUE_STATES = (DocumentState.NEEDS_INDEXING, DocumentState.QC_FAILED, DocumentState.AWAITING_VERIFICATION)
# The queues a person may pick: the work queues, and the scans rejected to be rescanned.
QUEUE_CHOICES = (*QUEUE_STATES, DocumentState.REJECTED)
BEFORE_VERIFICATION = (DocumentState.NEEDS_INDEXING, DocumentState.QC_FAILED, DocumentState.AWAITING_VERIFICATION)
# Out of the child's record: open to intake roles only, not listed in the chronology.
OUT_OF_RECORD = (DocumentState.REJECTED, DocumentState.WITHDRAWN, DocumentState.SUPERSEDED)
# What intake staff see that is not (yet) in a child's record.
INTAKE_STATES = (*BEFORE_VERIFICATION, *OUT_OF_RECORD)



class PaperState(StrEnum):
    """Where a paper volume or an original is: the strings stored in `paper_volumes.state`."""

    IN_PLACE = "in_place"  # in its recorded location
    BOOKED_OUT = "booked_out"  # moved out with a manager's authority, due back
    MISSING = "missing"  # reported missing: an incident is open
    STOLEN = "stolen"  # reported stolen: an incident is open
    DISPOSED = "disposed"  # destroyed at the end of its retention


# A loss one action reports; it opens an incident.
PAPER_LOSSES = (PaperState.MISSING, PaperState.STOLEN)

@dataclass(frozen=True)
class Transition:
    """A move: the states it starts from and the states it may lead to."""

    action: str  # past participle, as in "it can be verified only when ..."
    sources: tuple[DocumentState, ...]
    targets: tuple[DocumentState, ...]


INDEX = Transition("indexed", (DocumentState.NEEDS_INDEXING, DocumentState.AWAITING_VERIFICATION),
                   (DocumentState.AWAITING_VERIFICATION,))
ACCEPT_QC = Transition("accepted", (DocumentState.QC_FAILED,),
                       (DocumentState.AWAITING_VERIFICATION, DocumentState.NEEDS_INDEXING))
VERIFY = Transition("verified", (DocumentState.AWAITING_VERIFICATION,), (DocumentState.VERIFIED,))
REJECT = Transition("rejected", BEFORE_VERIFICATION, (DocumentState.REJECTED,))
WITHDRAW = Transition("withdrawn", BEFORE_VERIFICATION, (DocumentState.WITHDRAWN,))
SUPERSEDE = Transition("replaced by a rescan", (DocumentState.REJECTED, DocumentState.WITHDRAWN),
                       (DocumentState.SUPERSEDED,))
DISPOSE = Transition("disposed of", tuple(s for s in DocumentState if s is not DocumentState.DISPOSED),
                     (DocumentState.DISPOSED,))
TRANSITIONS = (INDEX, ACCEPT_QC, VERIFY, REJECT, WITHDRAW, SUPERSEDE, DISPOSE)


class InvalidTransition(InvalidState):
    """A move the table above does not allow from the document's current state."""


def require_state(doc_id: str, current: str, move: Transition) -> None:
    """Refuse `move` unless the document is in one of its source states."""
    if current not in move.sources:
        raise InvalidTransition(f"document {doc_id} is {current}; it can be {move.action} only when "
                                f"{' or '.join(move.sources)}")


def moved(doc_id: str, current: str, move: Transition, target: DocumentState) -> DocumentState:
    """The state after `move`; a target the table does not list is a bug, refused loudly."""
    require_state(doc_id, current, move)
    if target not in move.targets:
        raise InvalidTransition(f"document {doc_id} cannot become {target} by being {move.action}")
    return target
