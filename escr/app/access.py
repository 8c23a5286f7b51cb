"""Need-to-know: who may see which child's documents, and on what grounds.

This is the one place the rules live; the web pages and the REST API both ask it before every
read or change, so a rule holds whether or not a link to the page is shown.

- Caseworkers and team managers read the records of the children of their teams (the child
  index's `team` column) and of children allocated to them by name.
- Business support find any child (to index and print cover sheets) and list their documents,
  but open only documents still in intake (indexing, QC, verification) or taken out of the
  record (rejected, withdrawn, superseded).
- Before verification a document's content opens only to intake and verification roles and to
  the child's allocated worker and team manager (marked "not yet verified"); after rejection,
  withdrawal or a rescan only to intake roles. Search follows the same rules.
- Nobody decides on (verifies, rejects, passes QC on) a document whose pages they cannot open.
- Auditors see every document's metadata, provenance and the access log, and open a document's
  content only after recording a purpose for it (or for the child), which expires.
- Administrators manage accounts and teams and read no record.
- A document flagged as holding third-party information opens to the child's allocated worker
  and team manager; for everyone else the third-party permission governs.
- Disclosure officers read no record as casework does: they open the pages of a disclosure
  request they work on (its preparer or named reviewer), only its verified documents, and
  third-party documents only with the third-party permission (escr.app.disclosure).
- Break-glass: a caseworker or team manager may open one other child's record for a while by
  stating a reason; every read under it is flagged in the access log and the access waits for
  an auditor's review.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, case, false, or_, select, union
from sqlalchemy.orm import Session, aliased

from escr.app.retrieval import DocumentScope, Use
from escr.app.verification import MIN_REASON_CHARS
from escr.clock import as_utc
from escr.errors import Forbidden, InvalidState, NotFound, Unauthenticated, ValidationFailed  # noqa: F401  (Unauthenticated re-exported)
from escr.record import payloads
from escr.record.database import DocumentCondition
from escr.record.events import Actor, Kind, ProtocolEvent, now, record
from escr.record.models import AuditPurpose, BreakGlass, Child, ChildAllocation, Document, DocumentChild
from escr.record.states import BEFORE_VERIFICATION, INTAKE_STATES, OUT_OF_RECORD, DocumentState


class Role(StrEnum):
    BUSINESS_SUPPORT = "business_support"
    CASEWORKER = "caseworker"
    TEAM_MANAGER = "team_manager"
    AUDITOR = "auditor"
    ADMINISTRATOR = "administrator"
    DISCLOSURE_OFFICER = "disclosure_officer"  # prepares and reviews disclosure bundles; no casework
    HOST_OPERATOR = "host_operator"  # the server's own set-up and maintenance commands; never an account


# The roles an escr account may have (the host operator is not a person who signs in).
ACCOUNT_ROLES = tuple(r for r in Role if r is not Role.HOST_OPERATOR)


class Can(StrEnum):
    """What a role may do at all; whether it may do it to a given child is decided below."""

    FIND_CHILDREN = "find_children"
    READ_RECORDS = "read_records"  # the chronology and documents of children they have a need to know about
    INTAKE = "intake"  # dashboard, quarantine, cover sheets
    INDEX = "index"
    VERIFY = "verify"  # verify, reject, accept a QC failure (four-eyes applies)
    AUDIT = "audit"  # provenance and access log of everything; content only with a purpose
    REVIEW_BREAK_GLASS = "review_break_glass"
    BREAK_GLASS = "break_glass"
    ALLOCATE = "allocate"  # allocate a child of one's team to a worker
    ADMINISTER = "administer"  # users and teams
    DISCLOSE = "disclose"  # disclosure requests they work on: scope, redact, review, export (escr.app.disclosure)
    MAINTAIN = "maintain"  # schema, child index import, fixity, anchors, intake: no record content


class Scope(StrEnum):
    """What an API token may do: read changes nothing, write what the role may, admin also administers."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


# What a read-only token may still do: look things up. Everything else changes something.
READ_CAPABILITIES = frozenset({Can.FIND_CHILDREN, Can.READ_RECORDS, Can.INTAKE, Can.AUDIT, Can.DISCLOSE})


def scope_allows(scope: Scope | None, what: Can) -> bool:
    """None: not a token (a password sign-in, SSO or the command line), so the role decides alone."""
    if scope is None or scope is Scope.ADMIN:
        return True
    if what is Can.ADMINISTER:
        return False
    return scope is Scope.WRITE or what in READ_CAPABILITIES


CAPABILITIES: dict[Role, frozenset[Can]] = {
    Role.BUSINESS_SUPPORT: frozenset({Can.FIND_CHILDREN, Can.INTAKE, Can.INDEX, Can.VERIFY}),
    Role.CASEWORKER: frozenset({Can.FIND_CHILDREN, Can.READ_RECORDS, Can.BREAK_GLASS}),
    Role.TEAM_MANAGER: frozenset({Can.FIND_CHILDREN, Can.READ_RECORDS, Can.BREAK_GLASS, Can.VERIFY, Can.ALLOCATE}),
    Role.AUDITOR: frozenset({Can.FIND_CHILDREN, Can.AUDIT, Can.REVIEW_BREAK_GLASS}),
    Role.ADMINISTRATOR: frozenset({Can.ADMINISTER, Can.ALLOCATE}),
    Role.DISCLOSURE_OFFICER: frozenset({Can.DISCLOSE}),
    Role.HOST_OPERATOR: frozenset({Can.MAINTAIN}),
}


class AccessDenied(Forbidden):
    """Refused by a role or need-to-know rule; `code` says which (stable, for API clients)."""

    code = "access_denied"


class PasswordChangeRequired(AccessDenied):
    """Nothing but the password form until the person sets a password of their own (after an
    administrator's reset): the web pages send them straight to it."""

    code = "password_change_required"


@dataclass(frozen=True)
class Principal:
    """The signed-in person, as the rules see them."""

    user_id: int
    username: str
    display_name: str
    role: Role
    teams: frozenset[str] = field(default_factory=frozenset)
    third_party: bool = False
    via: str = "session"  # session | token | sso | cli | host
    scope: Scope | None = None  # an API token's scope; None for every other way in
    must_change_password: bool = False  # after an administrator's reset, until they choose one

    @property
    def actor(self) -> Actor:
        if self.role is Role.HOST_OPERATOR:
            return Actor(kind="system", name=self.username)
        return Actor(kind="user", name=self.username)

    @property
    def may_change(self) -> bool:
        """False for a read-only API token: it may look, never change anything."""
        return self.scope is not Scope.READ

    def can(self, what: Can) -> bool:
        return what in CAPABILITIES[self.role] and scope_allows(self.scope, what)


@dataclass(frozen=True)
class Grant:
    """Why a read is allowed; becomes the `Use` written into the access event."""

    basis: str
    purpose: str | None = None
    break_glass_id: int | None = None
    not_yet_verified: bool = False  # content opened before verification: shown with a mark

    @property
    def use(self) -> Use:
        return Use(purpose=self.purpose, basis=self.basis, break_glass_id=self.break_glass_id)


def require(principal: Principal, what: Can) -> None:
    if what in CAPABILITIES[principal.role] and not scope_allows(principal.scope, what):
        raise AccessDenied(f"an API token of scope {principal.scope} may not {what.replace('_', ' ')}",
                           code="token_scope")
    if not principal.can(what):
        raise AccessDenied(f"the {principal.role} role may not {what.replace('_', ' ')}", code="role_forbidden")


def require_change(principal: Principal) -> None:
    """Before any change: a read-only API token changes nothing, whatever its role may do."""
    if not principal.may_change:
        raise AccessDenied("a read-only API token cannot change anything", code="token_scope")



# --- Children -----------------------------------------------------------------------------


def _active_break_glass(session: Session, principal: Principal, child_id: str) -> BreakGlass | None:
    return session.scalars(
        select(BreakGlass).where(BreakGlass.user_id == principal.user_id, BreakGlass.child_id == child_id,
                                 BreakGlass.expires_at > now()).order_by(BreakGlass.id.desc())).first()


def _allocated_to(session: Session, principal: Principal, child_id: str) -> bool:
    allocation = session.get(ChildAllocation, child_id)
    return allocation is not None and allocation.user_id == principal.user_id


def need_to_know(session: Session, principal: Principal, child: Child) -> Grant | None:
    """The grounds a caseworker or team manager has for this child's record, if any."""
    if not principal.can(Can.READ_RECORDS):
        return None
    if child.team and child.team in principal.teams:
        return Grant("team")
    if _allocated_to(session, principal, child.child_id):
        return Grant("allocated")
    glass = _active_break_glass(session, principal, child.child_id)
    if glass is not None:
        return Grant("break_glass", purpose=glass.reason, break_glass_id=glass.id)
    return None


def child_grant(session: Session, principal: Principal, child_id: str) -> tuple[Child, Grant]:
    """May this person see the child's record page and list the child's documents?"""
    child = session.get(Child, child_id)
    if principal.role in (Role.BUSINESS_SUPPORT, Role.AUDITOR):  # they see the whole index
        if child is None:
            raise NotFound(f"no child {child_id} in the child index")
        return child, Grant("intake" if principal.role is Role.BUSINESS_SUPPORT else "audit")
    if not principal.can(Can.READ_RECORDS):
        raise AccessDenied(f"the {principal.role} role reads no records", code="role_forbidden")
    # Need-to-know: the same answer for a child this person may not see and for no child at all,
    # so the record cannot be used to find out which child ids exist.
    grant = need_to_know(session, principal, child) if child is not None else None
    if child is None and _active_break_glass(session, principal, child_id) is not None:
        # Only after a break-glass for this id (logged, waiting for review) is its absence told.
        raise NotFound(f"no child {child_id} in the child index")
    if child is None or grant is None:
        raise AccessDenied(f"child {child_id} is not in your teams or allocated to you; "
                           "use break-glass with a reason if you must see the record now", code="not_your_team")
    return child, grant


def search_grounds(session: Session, principal: Principal, child_id: str) -> Grant:
    """On what grounds this person saw a child's documents among search hits (for its access event)."""
    if principal.role is Role.BUSINESS_SUPPORT:
        return Grant("intake")
    if principal.role is Role.AUDITOR:
        purpose = session.scalars(
            select(AuditPurpose).where(AuditPurpose.user_id == principal.user_id, AuditPurpose.expires_at > now(),
                                       AuditPurpose.child_id == child_id).order_by(AuditPurpose.id.desc())).first()
        return Grant("audit_purpose", purpose=purpose.purpose if purpose else None)
    child = session.get(Child, child_id)
    grant = need_to_know(session, principal, child) if child is not None else None
    return grant or Grant("document_purpose")


def findable_children(session: Session, principal: Principal):  # type: ignore[no-untyped-def]
    """A WHERE clause limiting a child search to the children this person may look up (None: all)."""
    require(principal, Can.FIND_CHILDREN)
    if principal.role in (Role.BUSINESS_SUPPORT, Role.AUDITOR):
        return None
    return Child.child_id.in_(_known_children(principal))


def _of_known_children(principal: Principal) -> DocumentCondition:
    """A document belongs to a child this person knows (`_known_children`), as a look-up per
    document - its links, then each child's team - rather than a join against every child of
    the team: a search's few thousand candidate pages joined against a team's children cost
    seconds at 1M documents."""
    allocated = select(ChildAllocation.child_id).where(ChildAllocation.user_id == principal.user_id)
    glass = select(BreakGlass.child_id).where(BreakGlass.user_id == principal.user_id, BreakGlass.expires_at > now())

    def condition(doc_id: ColumnElement[str]) -> ColumnElement[bool]:
        link, child = aliased(DocumentChild), aliased(Child)
        return (select(link.document_id).join(child, child.child_id == link.child_id)
                .where(link.document_id == doc_id,
                       or_(child.team.in_(sorted(principal.teams)), link.child_id.in_(allocated),
                           link.child_id.in_(glass)))
                .exists())
    return condition


def _known_children(principal: Principal):  # type: ignore[no-untyped-def]
    """The children of the person's teams, allocated to them, or open to them by break-glass, as
    one UNION: the planner estimates it well (one team's children, not half the index)."""
    return union(
        select(Child.child_id).where(Child.team.in_(sorted(principal.teams))),
        select(ChildAllocation.child_id).where(ChildAllocation.user_id == principal.user_id),
        select(BreakGlass.child_id).where(BreakGlass.user_id == principal.user_id, BreakGlass.expires_at > now()))


# --- Documents ----------------------------------------------------------------------------


def _audit_purpose(session: Session, principal: Principal, doc: Document) -> AuditPurpose | None:
    child_ids = [c.child_id for c in doc.children]
    scope = AuditPurpose.document_id == doc.id
    if child_ids:
        scope = or_(scope, AuditPurpose.child_id.in_(child_ids))
    return session.scalars(
        select(AuditPurpose).where(AuditPurpose.user_id == principal.user_id, AuditPurpose.expires_at > now(), scope)
        .order_by(AuditPurpose.id.desc())).first()


_BASIS_ORDER = {"team": 0, "allocated": 1, "break_glass": 2}


def _record_grant(session: Session, principal: Principal, doc: Document) -> Grant | None:
    """The best grounds over the document's children (a sibling letter is readable via either child)."""
    grants = [g for c in doc.children if (child := session.get(Child, c.child_id)) is not None
              and (g := need_to_know(session, principal, child)) is not None]
    return min(grants, key=lambda g: _BASIS_ORDER[g.basis]) if grants else None


def document_grant(session: Session, principal: Principal, doc: Document, *, content: bool) -> Grant:
    """May this person see the document's metadata (content=False), or open its pages (content=True)?"""
    grant = _document_grant(session, principal, doc, content=content)
    if content and doc.third_party and not principal.third_party and close_to_child(session, principal, doc) is None:
        raise AccessDenied(f"document {doc.id} holds third-party information; opening it needs the "
                           "third-party permission (or to be the child's allocated worker or team manager)",
                           code="third_party_permission_required")
    if content and doc.state != DocumentState.VERIFIED:
        return replace(grant, not_yet_verified=True)
    return grant


def close_to_child(session: Session, principal: Principal, doc: Document) -> str | None:
    """'allocated' when one of the document's children is allocated to this person, 'team_manager'
    when this team manager's team holds one of them; else None."""
    if not principal.can(Can.READ_RECORDS):
        return None
    if any(_allocated_to(session, principal, link.child_id) for link in doc.children):
        return "allocated"
    if principal.role is Role.TEAM_MANAGER:
        for link in doc.children:
            child = session.get(Child, link.child_id)
            if child is not None and child.team and child.team in principal.teams:
                return "team_manager"
    return None


def original_grant(session: Session, principal: Principal, doc: Document) -> Grant:
    """May this person open the untouched scan the document came from?

    One scanned file may hold several documents, for different children (a batch split at its
    cover sheets), so the original opens only to someone who may open every document in it.
    """
    grant = document_grant(session, principal, doc, content=True)
    for other in doc.batch.documents:
        if other.id == doc.id:
            continue
        try:
            document_grant(session, principal, other, content=True)
        except AccessDenied:
            raise AccessDenied(f"the original scan of document {doc.id} also holds documents you may not open; "
                               "open the document's own PDF instead", code="original_holds_other_records") from None
    return grant


def _document_grant(session: Session, principal: Principal, doc: Document, *, content: bool) -> Grant:
    if principal.role is Role.BUSINESS_SUPPORT:
        if content and doc.state not in INTAKE_STATES:
            raise AccessDenied(f"document {doc.id} has left intake; business support open only documents "
                               "waiting for indexing, QC or verification", code="not_in_intake")
        return Grant("intake")
    if principal.role is Role.AUDITOR:
        if not content:
            return Grant("audit")
        purpose = _audit_purpose(session, principal, doc)
        if purpose is None:
            raise AccessDenied(f"record a purpose before opening document {doc.id}", code="purpose_required")
        return Grant("audit_purpose", purpose=purpose.purpose)
    if not principal.can(Can.READ_RECORDS):
        raise AccessDenied(f"the {principal.role} role reads no records", code="role_forbidden")
    if doc.state in OUT_OF_RECORD:  # its links ended with it (escr.app.verification.take_out_of_record)
        raise AccessDenied(f"document {doc.id} is {doc.state}: it is out of the child's record and opens to "
                           "intake roles only", code="not_in_record")
    grant = _record_grant(session, principal, doc)
    if grant is None:
        raise AccessDenied(f"document {doc.id} is not in the record of a child in your teams or allocated "
                           "to you", code="not_your_team")
    if content and doc.state != DocumentState.VERIFIED and close_to_child(session, principal, doc) is None:
        raise AccessDenied(f"document {doc.id} is not yet verified; before verification it opens only to "
                           "intake and verification roles and the child's allocated worker and team manager",
                           code="not_yet_verified")
    return grant


def verify_grant(session: Session, principal: Principal, doc: Document) -> Grant:
    """May this person verify, reject, pass QC on or correct the document? Only if they may open
    every page of it: verification means seeing. (Four-eyes is checked after.)"""
    require(principal, Can.VERIFY)
    if principal.role is Role.TEAM_MANAGER:
        grant = _record_grant(session, principal, doc)
        if grant is None or grant.basis == "break_glass":
            raise AccessDenied(f"team managers verify documents of their own teams' children; {doc.id} is not one",
                               code="not_your_team")
    else:
        grant = Grant("intake")
    try:
        document_grant(session, principal, doc, content=True)
    except AccessDenied as exc:
        raise AccessDenied(f"you cannot open every page of document {doc.id}, so you cannot decide on it "
                           f"({exc.code}); it waits for a verifier who may open it",
                           code="cannot_see_to_decide") from None
    return grant


def queue_condition(principal: Principal) -> ColumnElement[bool] | None:
    """Which documents the work queues show this person: those they could decide on. Third-party
    documents wait for verifiers who may open them (business support need the permission)."""
    if principal.role is Role.BUSINESS_SUPPORT and not principal.third_party:
        return Document.third_party.is_(False)
    return None


def index_grant(session: Session, principal: Principal, doc: Document) -> Grant:
    """May this person index the document, or correct its indexing before verification? Business
    support index; a verifier may correct what they are verifying (and so becomes its indexer)."""
    if principal.can(Can.INDEX):
        try:
            return document_grant(session, principal, doc, content=True)
        except AccessDenied as exc:
            raise AccessDenied(f"you cannot open document {doc.id}, so you cannot index it ({exc.code})",
                               code="cannot_see_to_decide") from None
    return verify_grant(session, principal, doc)


def correction_targets(session: Session, principal: Principal, child_ids: Sequence[str]) -> None:
    """A verifier correcting the indexing files only to children they may see. An unknown id and
    another team's child get the same answer, so the form cannot be used to find which ids exist;
    business support (who see the whole index) file to anyone."""
    for child_id in child_ids:
        child = session.get(Child, child_id)
        if child is None or need_to_know(session, principal, child) is None:
            raise AccessDenied(f"child {child_id} is not one of your children or your teams' children; business "
                               "support index to children outside your teams", code="not_your_team")


def readable_document_ids(session: Session, principal: Principal) -> DocumentScope:
    """The documents whose text this person may search (the same rules as opening them), as a
    condition the search applies in the database: a team's documents are tens of thousands at a
    council's scale, too many to list for every search."""
    if not principal.can(Can.FIND_CHILDREN):  # administrators and the host operator read no records
        return DocumentScope(session, lambda doc_id: false())

    def state_of(doc_id: ColumnElement[str]):  # type: ignore[no-untyped-def]
        # A per-document look-up (documents' primary key), made only for documents the rule let
        # through, instead of a join over every document the rule admits.
        other = aliased(Document)
        return select(other.state).where(other.id == doc_id).scalar_subquery()

    close = None
    known: DocumentCondition | None = None  # caseworkers and team managers: whose child it is, asked first
    if principal.role is Role.BUSINESS_SUPPORT:
        rule = lambda doc_id: state_of(doc_id).in_(INTAKE_STATES)  # noqa: E731
    elif principal.role is Role.AUDITOR:
        purposes = session.scalars(select(AuditPurpose).where(AuditPurpose.user_id == principal.user_id,
                                                              AuditPurpose.expires_at > now())).all()
        doc_ids = sorted({p.document_id for p in purposes if p.document_id})
        of_children = select(DocumentChild.document_id).where(
            DocumentChild.child_id.in_(sorted({p.child_id for p in purposes if p.child_id})))
        rule = lambda doc_id: or_(doc_id.in_(doc_ids), doc_id.in_(of_children))  # noqa: E731
    else:
        require(principal, Can.FIND_CHILDREN)
        known = _of_known_children(principal)
        allocated = select(ChildAllocation.child_id).where(ChildAllocation.user_id == principal.user_id)
        close_children = (union(allocated, select(Child.child_id).where(Child.team.in_(sorted(principal.teams))))
                          if principal.role is Role.TEAM_MANAGER else allocated)
        close = select(DocumentChild.document_id).where(DocumentChild.child_id.in_(close_children))

        def rule(doc_id: ColumnElement[str]) -> ColumnElement[bool]:
            state = state_of(doc_id)
            return or_(state == DocumentState.VERIFIED, state.in_(BEFORE_VERIFICATION) & doc_id.in_(close))

    def without_third_party(doc_id: ColumnElement[str]) -> ColumnElement[bool]:
        other = aliased(Document)
        flag = select(other.third_party).where(other.id == doc_id).scalar_subquery()
        allowed = flag.is_(False) if close is None else or_(flag.is_(False), doc_id.in_(close))
        return rule(doc_id) & allowed

    readable = rule if principal.third_party else without_third_party
    if known is None:
        return DocumentScope(session, readable)
    gate = known

    def of_known_children(doc_id: ColumnElement[str]) -> ColumnElement[bool]:
        # CASE, not AND: the database may order an AND's terms as it likes, and PostgreSQL looked
        # up the state and third-party flag of every page matching a search (twenty times the
        # caseworker's own at a council's scale) before asking whose child it was.
        return case((gate(doc_id), readable(doc_id)), else_=false())

    return DocumentScope(session, of_known_children, children=_known_children(principal))


# --- Break-glass and auditors' purposes ----------------------------------------------------


def _reason(text: str, what: str) -> str:
    text = (text or "").strip()
    if len(text) < MIN_REASON_CHARS:
        raise ValidationFailed(f"{what} must be stated in at least {MIN_REASON_CHARS} characters", code="reason_required")
    return text[:2000]


def break_glass(session: Session, principal: Principal, child_id: str, reason: str, *, minutes: float) -> BreakGlass:
    """Open one child's record outside the rules for a while; logged and flagged for review."""
    require(principal, Can.BREAK_GLASS)
    reason = _reason(reason, "the reason for break-glass access")
    if not child_id or len(child_id) > 64:
        raise ValidationFailed("give the child's id (at most 64 characters)")
    child = session.get(Child, child_id)
    # An id that is not in the index is recorded and answered exactly as a real one: asking
    # cannot tell anyone which ids exist, and every try waits in the reviewers' queue (marked).
    existing = need_to_know(session, principal, child) if child is not None else None
    if existing is not None and existing.basis != "break_glass":
        raise InvalidState(f"you already have access to child {child_id}; break-glass is not needed",
                           code="already_allowed")
    stamp = now()
    glass = BreakGlass(user_id=principal.user_id, child_id=child_id, reason=reason, started_at=stamp,
                       expires_at=stamp + timedelta(minutes=minutes))
    session.add(glass)
    session.flush()
    record(session, ProtocolEvent(kind=Kind.BREAK_GLASS, actor=principal.actor, child_id=child_id,
                                  outcome="flagged_for_review",
                                  parameters=payloads.BreakGlass(break_glass_id=glass.id, reason=reason,
                                                                 expires_at=glass.expires_at.isoformat())))
    return glass


REVIEW_OUTCOMES = ("justified", "not_justified")


def review_break_glass(session: Session, principal: Principal, glass_id: int, outcome: str, note: str) -> BreakGlass:
    require(principal, Can.REVIEW_BREAK_GLASS)
    glass = session.get(BreakGlass, glass_id)
    if glass is None:
        raise NotFound(f"no break-glass access {glass_id}")
    if outcome not in REVIEW_OUTCOMES:
        raise ValidationFailed(f"review outcome must be one of {', '.join(REVIEW_OUTCOMES)}")
    if glass.reviewed_at is not None:
        raise InvalidState(f"break-glass access {glass_id} was already reviewed", code="already_reviewed")
    if glass.user_id == principal.user_id:
        raise AccessDenied("nobody reviews their own break-glass access", code="own_access")
    glass.reviewed_by, glass.reviewed_at = principal.username, now()
    glass.review_outcome, glass.review_note = outcome, (note or "").strip()[:2000] or None
    record(session, ProtocolEvent(kind=Kind.BREAK_GLASS_REVIEWED, actor=principal.actor, child_id=glass.child_id,
                                  outcome=outcome, parameters=payloads.BreakGlassReviewed(break_glass_id=glass.id,
                                                                                           note=glass.review_note)))
    return glass


def record_purpose(session: Session, principal: Principal, purpose: str, *, minutes: float,
                   document_id: str | None = None, child_id: str | None = None) -> AuditPurpose:
    """An auditor states why they need to open a document (or a child's documents)."""
    require(principal, Can.AUDIT)
    require_change(principal)
    purpose = _reason(purpose, "the purpose")
    if (document_id is None) == (child_id is None):
        raise ValidationFailed("a purpose is for one document or one child")
    if document_id is not None and session.get(Document, document_id) is None:
        raise NotFound(f"no document {document_id}")
    if child_id is not None and session.get(Child, child_id) is None:
        raise NotFound(f"no child {child_id} in the child index")
    stamp = now()
    row = AuditPurpose(user_id=principal.user_id, document_id=document_id, child_id=child_id, purpose=purpose,
                       started_at=stamp, expires_at=stamp + timedelta(minutes=minutes))
    session.add(row)
    session.flush()
    record(session, ProtocolEvent(kind=Kind.AUDIT_PURPOSE, actor=principal.actor, document_id=document_id,
                                  child_id=child_id, parameters=payloads.AuditPurpose(
                                      purpose_id=row.id, purpose=purpose, expires_at=row.expires_at.isoformat())))
    return row


def is_active(expires_at: datetime) -> bool:
    return as_utc(expires_at) > now()


def host_operator(login: str) -> Principal:
    """The principal of a set-up or maintenance command run on the server: named after the login
    that ran it, able to maintain escr and to read nothing of the record."""
    name = f"host-operator:{login or 'unknown'}"
    return Principal(user_id=0, username=name, display_name=name, role=Role.HOST_OPERATOR, via="host")


def roles() -> Iterable[str]:
    return [r.value for r in ACCOUNT_ROLES]
