"""Need-to-know, enforced on the server: every route and every CLI command called as every role, and the rules that
matter most played out (another team's caseworker, an auditor without a purpose, third-party
documents, break-glass, CSRF, API tokens of revoked tokens and disabled users).

The documents were filed by the real intake pipeline; requests go through the real app.
"""

from __future__ import annotations

import hashlib
import json
import re
from base64 import b64decode
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from escr.app import accounts
from escr.app.access import AccessDenied, host_operator
from escr.app.operations import Operations
from escr.cli.main import app as cli_app
from escr.record.events import Actor
from escr.record.models import BreakGlass, Event, WebSession
from escr.web import create_app
from tests.support.cli import home_env
from tests.support.web import PASSWORD, ROLE_USER, World, csrf_from, open_world, sign_in

ROLES = tuple(ROLE_USER)
ALL = set(ROLES)
READERS = {"business_support", "caseworker", "team_manager", "auditor"}


@pytest.fixture(scope="module")
def world(tmp_path_factory, pytestconfig, postgres_server) -> World:
    for w in open_world(tmp_path_factory, pytestconfig, postgres_server, "authz"):
        open_disclosure_request(w)
        yield w


def open_disclosure_request(world: World) -> None:
    """DR-1: a subject access request for the south child, prepared by dis.one (issue 18's routes)."""
    from escr.app.access import Principal, Role
    from escr.app.disclosure import Disclosures

    with world.services.db.session() as session:
        user = accounts.get_user(session, "dis.one")
        who = Principal(user.id, user.username, user.display_name, Role(user.role), third_party=True)
    opened = Disclosures(world.services, who).open_request(requester="Jayden Okonkwo", relationship="the child",
                                                           basis="subject_access", child_ids=["CD654321"])
    assert opened["ref"] == "DR-1"


@pytest.fixture(scope="module")
def app(world):
    return create_app(world.services)


@pytest.fixture(scope="module")
def tokens(world) -> dict[str, str]:
    """One API token per user name."""
    out = {}
    with world.services.db.session() as session:
        for name in ("bs.jones", "bs.scanner", "cw.north", "cw.south", "tm.north", "aud.one", "admin", "dis.one"):
            user = accounts.get_user(session, name)
            out[name] = accounts.create_token(session, user, "tests", actor=Actor(kind="user", name="setup"),
                                              scope="admin" if name == "admin" else "write").secret
    return out


@pytest.fixture(scope="module")
def browsers(app) -> dict[str, TestClient]:
    """A signed-in browser session per role."""
    clients = {}
    for role, user in ROLE_USER.items():
        client = TestClient(app)
        sign_in(client, user)
        clients[role] = client
    return clients


def api(app, token: str) -> TestClient:
    return TestClient(app, headers={"Authorization": f"Bearer {token}"})


def access_events(world: World, **where: Any) -> list[Event]:
    with world.services.db.session() as session:
        stmt = select(Event).where(Event.category == "access")
        for column, value in where.items():
            stmt = stmt.where(getattr(Event, column) == value)
        return list(session.scalars(stmt.order_by(Event.id)))


# --- the route table: every route of the app, and who may use it -------------------------------
# (method, path, request kwargs, roles allowed, error code for the others)
# Requests that change something are chosen to be harmless when allowed (a verify of a document
# already verified, a retry of a claim that does not exist): the point here is who gets past the
# rules, so "allowed" means any answer but 401/403, "denied" means 403 with the given code.

def api_routes(d: dict[str, str]) -> list[tuple[str, str, dict[str, Any], set[str], str]]:
    ref, south = d["referral"], d["south"]
    return [
        ("GET", "/api/v1/me", {}, ALL, ""),
        ("GET", "/api/v1/doctypes", {}, ALL, ""),
        ("GET", "/api/v1/children?q=Whitfield", {}, READERS, "role_forbidden"),
        ("POST", "/api/v1/children/find", {"json": {"q": "Whitfield"}}, READERS, "role_forbidden"),
        ("GET", "/api/v1/children/AB123456", {}, READERS, "role_forbidden"),
        ("GET", "/api/v1/children/AB123456/documents", {}, READERS, "role_forbidden"),
        ("GET", "/api/v1/children/AB123456/chronology", {}, READERS, "role_forbidden"),
        ("PUT", "/api/v1/views/Mine", {"json": {"state": "all"}}, READERS, "role_forbidden"),
        ("GET", "/api/v1/views", {}, READERS, "role_forbidden"),
        ("GET", "/api/v1/views/Mine", {}, READERS, "role_forbidden"),
        ("DELETE", "/api/v1/views/Mine", {}, READERS, "role_forbidden"),
        ("GET", "/api/v1/children/AB123456/search?q=bruising", {}, READERS, "role_forbidden"),
        ("POST", "/api/v1/children/AB123456/search", {"json": {"q": "bruising"}}, READERS, "role_forbidden"),
        ("POST", "/api/v1/children/AB123456/coversheet", {"json": {"doc_type": "referral", "pages": 2}},
         {"business_support"}, "role_forbidden"),
        ("POST", "/api/v1/children/EF111222/break-glass", {"json": {"reason": "duty call out of hours"}},
         {"caseworker", "team_manager"}, "role_forbidden"),
        ("POST", "/api/v1/children/AB123457/purpose", {"json": {"purpose": "case-file audit of this child"}},
         {"auditor"}, "role_forbidden"),
        ("PUT", "/api/v1/children/EF111222/allocation", {"json": {"username": "cw.north"}},
         {"team_manager", "administrator"}, "role_forbidden"),
        ("GET", "/api/v1/search?q=bruising", {}, READERS, "role_forbidden"),
        ("POST", "/api/v1/search", {"json": {"q": "bruising"}}, READERS, "role_forbidden"),
        ("GET", f"/api/v1/documents/{ref}", {}, READERS, "role_forbidden"),
        # Not yet verified: intake, verifiers and the child's team manager (and allocated worker) only.
        ("GET", f"/api/v1/documents/{ref}/content", {}, {"business_support", "team_manager"},
         "purpose_required|role_forbidden|not_yet_verified"),
        ("GET", f"/api/v1/documents/{ref}/pages/1", {}, {"business_support", "team_manager"},
         "purpose_required|role_forbidden|not_yet_verified"),
        ("GET", f"/api/v1/documents/{ref}/provenance", {}, READERS, "role_forbidden"),
        ("GET", f"/api/v1/documents/{ref}/provenance.csv", {}, READERS, "role_forbidden"),
        ("POST", f"/api/v1/documents/{south}/purpose", {"json": {"purpose": "complaint investigation 123"}},
         {"auditor"}, "role_forbidden"),
        # Harmless when allowed: an unknown type, a version nobody saw (409 conflict), a wrong state.
        ("POST", f"/api/v1/documents/{ref}/index", {"json": {"children": ["AB123456"], "doc_type": "no_such_type"}},
         {"business_support", "team_manager"}, "role_forbidden"),
        ("POST", f"/api/v1/documents/{ref}/verify?version=999", {}, {"business_support", "team_manager"},
         "role_forbidden"),
        ("POST", f"/api/v1/documents/{ref}/reject?version=999", {"json": {"reason": "page two is missing"}},
         {"business_support", "team_manager"}, "role_forbidden"),
        ("POST", f"/api/v1/documents/{ref}/accept-qc", {"json": {"reason": "faint but legible"}},
         {"business_support", "team_manager"}, "role_forbidden"),
        ("POST", f"/api/v1/documents/{south}/verify", {}, set(), "role_forbidden|not_your_team|cannot_see_to_decide"),
        ("POST", f"/api/v1/documents/{south}/withdraw", {"json": {"reason": "pages out of order"}},
         {"business_support"}, "role_forbidden"),
        ("POST", f"/api/v1/documents/{ref}/third-party", {"json": {"third_party": True, "reason": "short"}},
         {"business_support", "team_manager"}, "role_forbidden"),
        ("POST", f"/api/v1/documents/{south}/replaces", {"json": {"replaces": south}}, {"business_support"},
         "role_forbidden"),
        ("GET", f"/api/v1/documents/{ref}/corrections", {}, READERS, "role_forbidden"),
        ("POST", f"/api/v1/documents/{ref}/corrections", {"json": {"reason": "filed to the wrong child"}},
         {"business_support", "team_manager"}, "role_forbidden|not_yet_verified"),
        ("GET", "/api/v1/corrections", {}, {"business_support", "team_manager"}, "role_forbidden"),
        ("POST", "/api/v1/corrections/999999/approve", {"json": {}}, {"business_support", "team_manager"},
         "role_forbidden"),
        ("POST", "/api/v1/corrections/999999/refuse", {"json": {"reason": "it was filed right"}},
         {"business_support", "team_manager"}, "role_forbidden"),
        ("GET", "/api/v1/intake", {}, {"business_support"}, "role_forbidden"),
        ("GET", "/api/v1/queue", {}, {"business_support", "team_manager"}, "role_forbidden"),
        ("GET", "/api/v1/quarantine", {}, {"business_support"}, "role_forbidden"),
        ("POST", "/api/v1/quarantine/no-such-claim/retry", {}, {"business_support"}, "role_forbidden"),
        ("POST", "/api/v1/quarantine/retry", {"json": {"claim_ids": ["no-such-claim"]}}, {"business_support"},
         "role_forbidden"),
        ("POST", "/api/v1/quarantine/no-such-claim/discard", {"json": {"reason": "blank test page scanned"}},
         {"business_support"}, "role_forbidden"),
        ("GET", "/api/v1/access-log", {}, {"auditor"}, "role_forbidden"),
        ("GET", "/api/v1/access-log.csv", {}, {"auditor"}, "role_forbidden"),
        ("GET", "/api/v1/purposes", {}, {"auditor"}, "role_forbidden"),
        ("GET", "/api/v1/break-glass", {}, {"caseworker", "team_manager"}, "role_forbidden"),
        ("GET", "/api/v1/break-glass/reviews", {}, {"auditor"}, "role_forbidden"),
        ("POST", "/api/v1/break-glass/999999/review", {"json": {"outcome": "justified"}}, {"auditor"},
         "role_forbidden"),
        ("GET", "/api/v1/users", {}, {"administrator"}, "role_forbidden"),
        ("POST", "/api/v1/users", {"json": {"username": "new.person", "role": "wizard"}}, {"administrator"},
         "role_forbidden"),
        ("PATCH", "/api/v1/users/bs.jones", {"json": {}}, {"administrator"}, "role_forbidden"),
        ("POST", "/api/v1/users/no.such.user/reset-password", {}, {"administrator"}, "role_forbidden"),
        ("GET", "/api/v1/teams", {}, {"administrator"}, "role_forbidden"),
        ("POST", "/api/v1/teams", {"json": {"code": "north"}}, {"administrator"}, "role_forbidden"),
        ("PUT", "/api/v1/teams/north/members/cw.north", {}, {"administrator"}, "role_forbidden"),
        ("DELETE", "/api/v1/teams/north/members/no.such.user", {}, {"administrator"}, "role_forbidden"),
        ("GET", "/api/v1/tokens", {}, ALL, ""),
        ("POST", "/api/v1/tokens", {"json": {"name": "script"}}, set(), "token_cannot_create_tokens"),
        ("GET", "/api/v1/users/cw.north/tokens", {}, {"administrator"}, "role_forbidden"),
        ("DELETE", "/api/v1/admin/tokens/999999", {}, {"administrator"}, "role_forbidden"),
        ("DELETE", "/api/v1/tokens/999999", {}, ALL, ""),
    ] + records_routes(d) + audit_routes(d) + disclosure_routes(d, "/api/v1")


def audit_routes(d: dict[str, str]) -> list[tuple[str, str, dict[str, Any], set[str], str]]:
    """Issue 17's auditor's tools (escr/web/api_audit.py); bodies that pass the rules but change nothing."""
    ref = d["referral"]
    return [
        ("GET", f"/api/v1/documents/{ref}/verdict", {}, READERS, "role_forbidden"),
        ("GET", f"/api/v1/documents/{ref}/certificate", {}, {"auditor"}, "role_forbidden"),
        ("GET", "/api/v1/integrity/runs", {}, {"auditor"}, "role_forbidden"),
        ("GET", "/api/v1/integrity/runs/999999", {}, {"auditor"}, "role_forbidden"),
        ("POST", "/api/v1/integrity/checks", {"json": {}}, {"auditor"}, "role_forbidden"),
        ("GET", "/api/v1/casefile-audits/due", {}, {"auditor"}, "role_forbidden"),
        ("POST", "/api/v1/casefile-audits/sample", {"json": {"month": "March"}}, {"auditor"}, "role_forbidden"),
        ("GET", "/api/v1/casefile-audits/collation", {}, {"auditor"}, "role_forbidden"),
        ("GET", "/api/v1/casefile-audits/collation.csv", {}, {"auditor"}, "role_forbidden"),
        ("GET", "/api/v1/children/AB123456/casefile-audit", {}, {"auditor"}, "role_forbidden"),
        ("POST", "/api/v1/children/AB123456/casefile-audit", {"json": {"standards": [], "grading": "good"}},
         {"auditor"}, "role_forbidden"),
        ("GET", "/api/v1/paper/custody", {}, {"business_support", "team_manager", "auditor"}, "role_forbidden"),
        ("GET", "/api/v1/access-log/activity", {}, {"auditor"}, "role_forbidden"),
    ]


def records_routes(d: dict[str, str]) -> list[tuple[str, str, dict[str, Any], set[str], str]]:
    """Issue 19's routes (escr/web/api_records.py); bodies that pass the rules but change nothing."""
    ref = d["referral"]
    keepers, managers = {"business_support", "team_manager", "auditor"}, {"team_manager", "auditor"}
    return [
        ("GET", "/api/v1/children/AB123456/statuses", {}, READERS, "role_forbidden"),
        ("POST", "/api/v1/children/AB123456/statuses", {"json": {"status": "adoption"}},
         {"business_support", "team_manager"}, "role_forbidden"),
        ("GET", "/api/v1/children/AB123456/examinations", {}, READERS, "role_forbidden"),
        ("POST", "/api/v1/children/AB123456/examinations",
         {"json": {"kind": "review", "purpose": "file review", "examined_on": "2999-01-01"}}, managers,
         "role_forbidden"),
        ("GET", "/api/v1/children/AB123456/components", {}, READERS, "role_forbidden"),
        ("POST", "/api/v1/paper/volumes", {"json": {"id": "bad id!", "child_id": "AB123456", "kind": "volume",
                                                    "title": "Volume 1", "location": "Store"}}, keepers,
         "role_forbidden"),
        ("PUT", f"/api/v1/documents/{ref}/volume", {"json": {"volume_id": "no-such"}}, keepers, "role_forbidden"),
        ("POST", "/api/v1/paper/volumes/no-such/book-out",
         {"json": {"recipient": "Court", "authorised_by": "tm.north", "due_back": "2999-01-01"}}, keepers,
         "role_forbidden"),
        ("POST", "/api/v1/paper/volumes/no-such/book-in", {"json": {"to": "Store"}}, keepers, "role_forbidden"),
        ("POST", "/api/v1/paper/moves/999999/confirm", {}, keepers | {"caseworker"}, "role_forbidden"),
        ("GET", "/api/v1/paper/overdue", {}, keepers, "role_forbidden"),
        ("GET", "/api/v1/paper/volumes/no-such", {}, keepers | {"caseworker"}, "role_forbidden"),
        ("GET", "/api/v1/paper/incidents", {}, keepers, "role_forbidden"),
        ("GET", "/api/v1/paper/arrivals", {}, keepers, "role_forbidden"),
        ("GET", "/api/v1/disposal/proposals", {}, managers, "role_forbidden"),
        ("GET", "/api/v1/disposal/holds", {}, managers, "role_forbidden"),
        ("POST", "/api/v1/paper/volumes/no-such/loss", {"json": {"kind": "missing", "description": "not on shelf"}},
         keepers | {"caseworker"}, "role_forbidden"),
        ("POST", "/api/v1/paper/incidents/999999/follow-ups", {"json": {"note": "searched the office"}}, keepers,
         "role_forbidden"),
        ("POST", "/api/v1/paper/incidents/999999/close", {"json": {"outcome": "not_found"}}, managers,
         "role_forbidden"),
        ("GET", "/api/v1/disposal/review", {}, managers, "role_forbidden"),
        ("POST", "/api/v1/disposal/proposals", {"json": {"items": [{"kind": "document", "id": ref}],
                                                         "reason": "retention passed"}}, {"auditor"},
         "role_forbidden"),
        ("POST", "/api/v1/disposal/proposals/999999/decision", {"json": {"approve": True, "note": "checked"}},
         managers, "role_forbidden"),
        ("POST", "/api/v1/disposal/proposals/999999/carry-out", {}, {"auditor"}, "role_forbidden"),
        ("GET", "/api/v1/disposal/tombstones", {}, managers, "role_forbidden"),
        ("POST", "/api/v1/disposal/holds", {"json": {"scope": "doc_type", "value": "no_such_type",
                                                     "reason": "authz test"}}, {"auditor"}, "role_forbidden"),
        ("POST", "/api/v1/disposal/holds/999999/release", {"json": {"reason": "authz test"}}, {"auditor"},
         "role_forbidden"),
        ("POST", "/api/v1/paper/arrivals", {"json": {"ref": "B-NONE", "arrived_on": "2999-01-01"}},
         {"business_support"}, "role_forbidden"),
        ("GET", "/api/v1/reports/timeliness?month=2026-03", {}, keepers, "role_forbidden"),
        ("GET", "/api/v1/coversheets/unscanned", {}, keepers, "role_forbidden"),
        ("GET", "/api/v1/coversheets/B-NONE/manifest", {}, keepers, "role_forbidden"),
        ("POST", "/api/v1/coversheets/B-NONE/missing", {"json": {"description": "a page"}}, keepers,
         "role_forbidden"),
        ("GET", "/api/v1/scanner-checks/target", {}, ALL, ""),
        ("GET", "/api/v1/scanner-checks", {}, keepers, "role_forbidden"),
        ("POST", "/api/v1/scanner-checks", {"data": {"device": "mfd-1"}, "files": {"scan": ("x.txt", b"not a scan")}},
         {"business_support"}, "role_forbidden"),
    ]


def disclosure_routes(d: dict[str, str], prefix: str) -> list[tuple[str, str, dict[str, Any], set[str], str]]:
    """Issue 18's routes, as JSON (prefix /api/v1) or forms: only a disclosure officer working on
    the request gets past the rules; bodies are refused later (wrong state, unknown ids) or harmless."""
    south, ref = d["south"], d["referral"]
    officer = {"disclosure_officer"}
    body = "json" if prefix else "data"
    dr = f"{prefix}/disclosures/DR-1"
    rows: list[tuple[str, str, dict[str, Any], set[str], str]] = [
        ("GET", f"{prefix}/disclosures", {}, officer, "role_forbidden"),
        ("POST", f"{prefix}/disclosures", {body: {"requester": "A parent", "relationship": "mother",
                                                   "basis": "subject_access",
                                                   "children": ["CD654321"] if prefix else "CD654321"}},
         officer, "role_forbidden"),
        ("GET", dr, {}, officer, "role_forbidden"),
        ("POST", f"{dr}/extend", {body: {"due_on": "2000-01-01", "reason": "more time is needed"}}, officer,
         "role_forbidden"),
        ("POST", f"{dr}/propose", {}, officer, "role_forbidden"),
        ("POST", f"{dr}/search-redact", {body: {"term": "zzzz", "reason": "third_party"}}, officer,
         "role_forbidden"),
        ("GET", f"{dr}/documents/{south}", {}, officer, "role_forbidden"),
        ("POST", f"{dr}/documents/{south}/redactions", {body: {"reason": "no_such_reason", "scope" if prefix else
                                                               "whole": "page", "page": 1}}, officer,
         "role_forbidden"),
        ("POST", f"{dr}/redactions/decide", {body: {"ids": [999999], "action": "accept"}}, officer,
         "role_forbidden"),
        ("POST", f"{dr}/submit", {body: {"reviewer": "dis.one"}}, officer, "role_forbidden"),
        ("POST", f"{dr}/documents/{south}/reviewed", {}, officer, "role_forbidden"),
        ("POST", f"{dr}/approve", {body: {}}, officer, "role_forbidden"),
        ("POST", f"{dr}/return", {body: {"note": "please look again"}}, officer, "role_forbidden"),
        ("POST", f"{dr}/export", {}, officer, "role_forbidden"),
        ("GET", f"{dr}/bundle.pdf", {}, officer, "role_forbidden"),
        ("GET", f"{dr}/schedule.csv", {}, officer, "role_forbidden"),
        ("POST", f"{dr}/copies", {body: {"recipient": "A parent", "method": "post"}}, officer, "role_forbidden"),
        ("GET", f"{dr}/certificate", {}, officer, "role_forbidden"),
        # The disclosure log of a child's record: whoever may see the record (not the disclosure role).
        ("GET", f"{prefix}/children/AB123456/copies-given", {}, READERS, "role_forbidden"),
        # A copy given outside a request: whoever may open the document (it is not yet verified: 409).
        ("POST", f"{prefix}/documents/{ref}/copies-given", {body: {"recipient": "Mother", "method": "in_person",
                                                                   "basis": "subject_access"}},
         {"business_support", "team_manager"}, "purpose_required|role_forbidden|not_yet_verified"),
    ]
    if not prefix:
        rows.append(("GET", f"{dr}/documents/{south}/pages/1.png", {}, officer, "role_forbidden"))
    return rows


def page_routes(d: dict[str, str]) -> list[tuple[str, str, dict[str, Any], set[str], str]]:
    ref, south = d["referral"], d["south"]
    return [
        ("GET", "/", {}, ALL, ""),
        ("GET", "/children", {}, READERS, "role_forbidden"),
        ("GET", "/children?q=Whitfield", {}, READERS, "role_forbidden"),
        ("GET", "/children/AB123456", {}, READERS, "role_forbidden"),
        ("POST", "/children/AB123456/views", {"data": {"name": "Mine", "state": "all"}}, READERS, "role_forbidden"),
        ("GET", "/views", {}, READERS, "role_forbidden"),
        ("POST", "/views/remove", {"data": {"name": "Mine"}}, READERS, "role_forbidden"),
        ("GET", "/children/AB123456/search?q=bruising", {}, READERS, "role_forbidden"),
        ("GET", "/search?q=bruising", {}, READERS, "role_forbidden"),
        ("POST", "/children", {"data": {"q": "Whitfield"}}, READERS, "role_forbidden"),
        ("POST", "/children/AB123456/search", {"data": {"q": "bruising"}}, READERS, "role_forbidden"),
        ("POST", "/search", {"data": {"q": "bruising"}}, READERS, "role_forbidden"),
        ("POST", "/children/AB123456/coversheet", {"data": {"doc_type": "referral"}}, {"business_support"},
         "role_forbidden"),
        ("POST", "/children/EF111222/allocation", {"data": {"username": "cw.north"}},
         {"team_manager", "administrator"}, "role_forbidden"),
        ("POST", "/children/AB123457/purpose", {"data": {"purpose": "case-file audit of this child"}},
         {"auditor"}, "role_forbidden"),
        ("GET", f"/documents/{ref}", {}, READERS, "role_forbidden"),
        ("GET", f"/documents/{ref}/pdf", {}, {"business_support", "team_manager"},
         "purpose_required|role_forbidden|not_yet_verified"),
        ("GET", f"/documents/{d['own_scan']}/original", {}, {"business_support", "caseworker", "team_manager"},
         "purpose_required|role_forbidden"),
        ("GET", f"/documents/{ref}/pages/1.png", {}, {"business_support", "team_manager"},
         "purpose_required|role_forbidden|not_yet_verified"),
        ("GET", f"/documents/{ref}/view", {}, READERS, "role_forbidden"),
        ("GET", f"/documents/{ref}/view?page=1&zoom=150", {}, READERS, "role_forbidden"),
        ("POST", f"/documents/{ref}/view", {"data": {"q": "bruising"}}, READERS, "role_forbidden"),
        ("GET", f"/documents/{ref}/provenance", {}, READERS, "role_forbidden"),
        ("GET", f"/documents/{ref}/provenance.csv", {}, READERS, "role_forbidden"),
        ("POST", f"/documents/{south}/purpose", {"data": {"purpose": "complaint investigation 123"}}, {"auditor"},
         "role_forbidden"),
        ("GET", f"/documents/{ref}/work", {}, READERS, "role_forbidden"),
        ("POST", f"/documents/{ref}/index", {"data": {"other_children": "AB123456", "doc_type": "no_such_type"}},
         {"business_support", "team_manager"}, "role_forbidden"),
        ("POST", f"/documents/{ref}/verify", {"data": {"version": "999"}}, {"business_support", "team_manager"},
         "role_forbidden"),
        ("POST", f"/documents/{ref}/reject", {"data": {"reason": "page two is missing", "version": "999"}},
         {"business_support", "team_manager"}, "role_forbidden"),
        ("POST", f"/documents/{ref}/accept-qc", {"data": {"reason": "faint but legible"}},
         {"business_support", "team_manager"}, "role_forbidden"),
        ("POST", f"/documents/{south}/withdraw", {"data": {"reason": "pages out of order"}}, {"business_support"},
         "role_forbidden"),
        ("POST", f"/documents/{ref}/third-party", {"data": {"third_party": "yes", "reason": "short"}},
         {"business_support", "team_manager"}, "role_forbidden"),
        ("POST", f"/documents/{south}/replaces", {"data": {"replaces": south}}, {"business_support"},
         "role_forbidden"),
        ("POST", f"/documents/{ref}/corrections", {"data": {"reason": "filed to the wrong child"}},
         {"business_support", "team_manager"}, "role_forbidden|not_yet_verified"),
        ("GET", "/corrections", {}, {"business_support", "team_manager"}, "role_forbidden"),
        ("POST", "/corrections/999999/approve", {}, {"business_support", "team_manager"}, "role_forbidden"),
        ("POST", "/corrections/999999/refuse", {"data": {"reason": "it was filed right"}},
         {"business_support", "team_manager"}, "role_forbidden"),
        ("GET", "/intake", {}, {"business_support"}, "role_forbidden"),
        ("GET", "/intake/processing", {}, {"business_support"}, "role_forbidden"),
        ("GET", "/queue", {}, {"business_support", "team_manager"}, "role_forbidden"),
        ("POST", "/queue/reject", {"data": {"documents": "NO-SUCH-DOC", "reason": "pages skewed, rescan"}},
         {"business_support", "team_manager"}, "role_forbidden"),
        ("POST", "/quarantine/no-such-claim/retry", {}, {"business_support"}, "role_forbidden"),
        ("POST", "/quarantine/retry", {"data": {"claim_ids": "no-such-claim"}}, {"business_support"}, "role_forbidden"),
        ("POST", "/quarantine/no-such-claim/discard", {"data": {"reason": "blank test page scanned"}},
         {"business_support"}, "role_forbidden"),
        ("GET", "/access-log", {}, {"auditor"}, "role_forbidden"),
        ("GET", "/access-log.csv", {}, {"auditor"}, "role_forbidden"),
        ("GET", "/access-log/activity", {}, {"auditor"}, "role_forbidden"),
        ("GET", f"/documents/{ref}/certificate?format=json", {}, {"auditor"}, "role_forbidden"),
        ("GET", "/integrity", {}, {"auditor"}, "role_forbidden"),
        ("POST", "/integrity", {"data": {"what": "child", "child": ""}}, {"auditor"}, "role_forbidden"),
        ("GET", "/integrity/runs/999999", {}, {"auditor"}, "role_forbidden"),
        ("GET", "/audit/casefiles", {}, {"auditor"}, "role_forbidden"),
        ("GET", "/audit/casefiles/go?child_id=AB123456", {}, {"auditor"}, "role_forbidden"),
        ("GET", "/audit/casefiles/AB123456", {}, {"auditor"}, "role_forbidden"),
        ("POST", "/audit/casefiles/AB123456", {"data": {"grading": "good"}}, {"auditor"}, "role_forbidden"),
        ("POST", "/audit/sample", {"data": {"month": "March"}}, {"auditor"}, "role_forbidden"),
        ("GET", "/audit/collation", {}, {"auditor"}, "role_forbidden"),
        ("GET", "/audit/collation.csv", {}, {"auditor"}, "role_forbidden"),
        ("GET", "/paper", {}, {"business_support", "team_manager", "auditor"}, "role_forbidden"),
        ("GET", "/break-glass", {}, {"caseworker", "team_manager"}, "role_forbidden"),
        ("POST", "/break-glass", {"data": {"child_id": "EF111222", "reason": "duty call out of hours"}},
         {"caseworker", "team_manager"}, "role_forbidden"),
        ("POST", "/break-glass/find", {"data": {"name": "Okonkwo", "date_of_birth": "30/11/2011"}},
         {"caseworker", "team_manager"}, "role_forbidden"),
        ("GET", "/break-glass/reviews", {}, {"auditor"}, "role_forbidden"),
        ("POST", "/break-glass/999999/review", {"data": {"outcome": "justified"}}, {"auditor"}, "role_forbidden"),
        ("GET", "/admin/users", {}, {"administrator"}, "role_forbidden"),
        ("POST", "/admin/users", {"data": {"username": "new.person", "role": "wizard"}}, {"administrator"},
         "role_forbidden"),
        ("POST", "/admin/users/no.such.user", {"data": {"role": "caseworker"}}, {"administrator"}, "role_forbidden"),
        ("POST", "/admin/users/no.such.user/reset-password", {}, {"administrator"}, "role_forbidden"),
        ("GET", "/admin/teams", {}, {"administrator"}, "role_forbidden"),
        ("POST", "/admin/teams", {"data": {"code": "north"}}, {"administrator"}, "role_forbidden"),
        ("GET", "/admin/users/cw.south/tokens", {}, {"administrator"}, "role_forbidden"),
        ("POST", "/admin/tokens/999999/revoke", {}, {"administrator"}, "role_forbidden"),
        ("POST", "/admin/teams/north/members", {"data": {"username": "cw.north"}}, {"administrator"},
         "role_forbidden"),
        ("POST", "/admin/teams/north/members/no.such.user/remove", {}, {"administrator"}, "role_forbidden"),
    ] + records_pages(d) + [
        ("GET", "/account", {}, ALL, ""),
        ("POST", "/account/password", {"data": {"current": "wrong password!", "new": "x" * 12, "repeat": "y" * 12}},
         ALL, ""),
        ("POST", "/account/tokens", {"data": {"name": "script"}}, ALL, ""),
        ("POST", "/account/tokens/999999/revoke", {}, ALL, ""),
    ] + disclosure_routes(d, "")


def records_pages(d: dict[str, str]) -> list[tuple[str, str, dict[str, Any], set[str], str]]:
    """Issue 19's pages (escr/web/pages_records.py); forms that pass the rules but change nothing."""
    ref = d["referral"]
    keepers, managers = {"business_support", "team_manager", "auditor"}, {"team_manager", "auditor"}
    return [
        ("POST", "/children/AB123456/statuses", {"data": {"status": "adoption"}}, {"business_support", "team_manager"},
         "role_forbidden"),
        ("POST", "/children/AB123456/examinations",
         {"data": {"kind": "review", "purpose": "file review", "examined_on": "2999-01-01"}}, managers,
         "role_forbidden"),
        ("POST", "/children/AB123456/volumes", {"data": {"volume_id": "bad id!", "kind": "volume", "title": "Volume 1",
                                                         "location": "Store"}}, keepers, "role_forbidden"),
        ("GET", "/paper/files", {}, keepers, "role_forbidden"),
        ("POST", "/paper/arrivals", {"data": {"ref": "B-NONE", "arrived_on": "2999-01-01"}}, {"business_support"},
         "role_forbidden"),
        ("GET", "/paper/volumes/no-such", {}, keepers | {"caseworker"}, "role_forbidden"),
        ("POST", "/paper/volumes/no-such/book-out",
         {"data": {"recipient": "Court", "authorised_by": "tm.north", "due_back": "2999-01-01"}}, keepers,
         "role_forbidden"),
        ("POST", "/paper/volumes/no-such/book-in", {"data": {"to": "Store"}}, keepers, "role_forbidden"),
        ("POST", "/paper/volumes/no-such/link", {"data": {"document_id": ref}}, keepers, "role_forbidden"),
        ("POST", "/paper/volumes/no-such/loss", {"data": {"kind": "missing", "description": "not on shelf"}},
         keepers | {"caseworker"}, "role_forbidden"),
        ("POST", "/paper/moves/999999/confirm", {}, keepers | {"caseworker"}, "role_forbidden"),
        ("POST", "/paper/incidents/999999/follow-ups", {"data": {"note": "searched the office"}}, keepers,
         "role_forbidden"),
        ("POST", "/paper/incidents/999999/close", {"data": {"outcome": "not_found"}}, managers, "role_forbidden"),
        ("GET", "/coversheets/B-NONE", {}, keepers, "role_forbidden"),
        ("POST", "/coversheets/B-NONE/missing", {"data": {"description": "a page"}}, keepers, "role_forbidden"),
        ("GET", "/timeliness?month=2026-03", {}, keepers, "role_forbidden"),
        ("GET", "/timeliness.csv?month=2026-03", {}, keepers, "role_forbidden"),
        ("GET", "/disposal", {}, managers, "role_forbidden"),
        ("POST", "/disposal/proposals", {"data": {"items": f"document:{ref}", "reason": "retention passed"}},
         {"auditor"}, "role_forbidden"),
        ("POST", "/disposal/proposals/999999/decision", {"data": {"decision": "approve", "note": "checked"}},
         managers, "role_forbidden"),
        ("POST", "/disposal/proposals/999999/carry-out", {}, {"auditor"}, "role_forbidden"),
        ("POST", "/disposal/holds", {"data": {"class": "doc_type:no_such_type", "reason": "authz test"}},
         {"auditor"}, "role_forbidden"),
        ("POST", "/disposal/holds/999999/release", {"data": {"reason": "authz test"}}, {"auditor"}, "role_forbidden"),
        ("GET", "/scanner-checks", {}, keepers, "role_forbidden"),
        ("GET", "/scanner-checks/target.pdf", {}, ALL, ""),
        ("POST", "/scanner-checks", {"data": {"device": "mfd-1"}}, {"business_support"}, "role_forbidden"),
    ]


# Routes anyone may reach without signing in, and why.
PUBLIC = {"/login", "/logout", "/healthz", "/metrics", "/api/v1/openapi.json", "/static"}


def _template(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path.split("?")[0])


def _normalise(path: str, d: dict[str, str]) -> str:
    path = path.split("?")[0]
    for doc_id in d.values():
        path = path.replace(doc_id, "{}")
    path = re.sub(r"/children/[A-Z]{2}\d{6}", "/children/{}", path)
    path = re.sub(r"/(quarantine|break-glass|tokens|users|teams|corrections)/[^/]+", r"/\1/{}", path)
    path = re.sub(r"/(members|pages)/[^/]+", r"/\1/{}", path)
    path = re.sub(r"/(volumes|moves|incidents|proposals|holds|coversheets|disclosures)/[^/]+", r"/\1/{}", path)
    path = re.sub(r"/(runs|casefiles)/[^/]+", r"/\1/{}", path)
    path = re.sub(r"^/api/v1/views/[^/]+", "/api/v1/views/{}", path)
    return path.replace("{}.png", "{}")


def _all_routes(routes, prefix: str = ""):  # type: ignore[no-untyped-def]
    """Every route, including those of included routers (which FastAPI may keep unexpanded)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _all_routes(inner.routes, prefix + getattr(route.include_context, "prefix", ""))
        else:
            yield prefix, route


def test_every_route_of_the_app_is_in_the_table(app, world):
    """A new route without a rule in this table fails here, so none can be added unchecked."""
    tested = {(m, _normalise(p, world.docs)) for m, p, *_ in api_routes(world.docs) + page_routes(world.docs)}
    declared = set()
    for prefix, route in _all_routes(app.routes):
        path = prefix + getattr(route, "path", "")
        if any(path == p or path.startswith(p + "/") for p in PUBLIC):
            continue
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD":
                declared.add((method, _normalise(_template(path), world.docs)))
    assert declared - tested == set()
    assert tested - declared == set()


def _check(resp, role: str, allowed: set[str], deny_codes: str, label: str, as_json: bool) -> None:
    if role in allowed:
        assert resp.status_code not in (401, 403) and resp.status_code < 500, (label, role, resp.status_code,
                                                                                resp.text[:300])
    else:
        assert resp.status_code == 403, (label, role, resp.status_code, resp.text[:300])
        if as_json:
            assert resp.json()["error"]["code"] in deny_codes.split("|"), (label, role, resp.json())
        else:
            assert any(f'data-error-code="{c}"' in resp.text for c in deny_codes.split("|")), (label, role)


@pytest.mark.parametrize("role", ROLES)
def test_api_routes_as_every_role(app, world, tokens, role):
    client = api(app, tokens[ROLE_USER[role]])
    for method, path, kwargs, allowed, codes in api_routes(world.docs):
        resp = client.request(method, path, **kwargs)
        _check(resp, role, allowed, codes, f"{method} {path}", as_json=True)


@pytest.mark.parametrize("role", ROLES)
def test_pages_as_every_role(browsers, world, role):
    client = browsers[role]
    token = csrf_from(client.get("/account").text)
    for method, path, kwargs, allowed, codes in page_routes(world.docs):
        if method == "POST":
            kwargs = {"data": {**kwargs.get("data", {}), "csrf_token": token}}
        resp = client.request(method, path, follow_redirects=False, **kwargs)
        _check(resp, role, allowed, codes, f"{method} {path}", as_json=False)


def test_nobody_signed_in_gets_401_from_the_api_and_the_sign_in_page_from_the_app(app, world):
    client = TestClient(app)
    for method, path, kwargs, *_ in api_routes(world.docs):
        resp = client.request(method, path, **kwargs)
        if method == "GET":
            assert resp.status_code == 401, path
            assert resp.json()["error"]["code"] == "unauthenticated"
        else:  # a POST without a session has no CSRF token either: refused before anything else
            assert resp.status_code in (401, 403), path
    for method, path, *_ in page_routes(world.docs):
        if method == "GET":
            resp = client.get(path, follow_redirects=False)
            assert resp.status_code == 303 and resp.headers["location"].startswith("/login?next="), path


# --- the command line: the same rules, the same roles --------------------------------------------
# (arguments, roles allowed, error code for the others). Like the routes above, changes are chosen
# to be harmless when allowed; "allowed" means no refusal by a rule, "denied" means that error code.

def cli_commands(d: dict[str, str], out: str) -> list[tuple[list[str], set[str], str]]:
    ref, south = d["referral"], d["south"]
    return [
        (["documents", "--child", "AB123456"], READERS, "role_forbidden"),
        (["views", "save", "Mine", "--child", "AB123456"], READERS, "role_forbidden|not_your_team"),
        (["views", "list"], READERS, "role_forbidden"),
        (["views", "remove", "Mine"], READERS, "role_forbidden"),
        (["show", ref], READERS, "role_forbidden"),
        (["get", ref, "-o", out], {"business_support", "caseworker", "team_manager"},
         "purpose_required|role_forbidden"),
        (["search", "bruising"], READERS, "role_forbidden"),
        (["provenance", ref], READERS, "role_forbidden"),
        (["queue"], {"business_support", "team_manager"}, "role_forbidden"),
        (["coversheet", "--child", "AB123456", "--doc-type", "referral", "-o", out], {"business_support"},
         "role_forbidden"),
        (["index", south, "--child", "CD654321", "--doc-type", "correspondence"], {"business_support"},
         "role_forbidden|not_your_team"),  # team managers may correct indexing, of their teams' children only
        (["qc", "verify", south], {"business_support"}, "role_forbidden|not_your_team"),
        (["qc", "reject", south, "--reason", "page two is missing"], {"business_support"},
         "role_forbidden|not_your_team"),
        (["qc", "accept", south, "--reason", "faint but legible"], {"business_support"},
         "role_forbidden|not_your_team"),
        (["qc", "withdraw", south, "--reason", "pages out of order"], {"business_support"},
         "role_forbidden"),  # (bs.jones did not scan it: refused by four-eyes, not by the role)
        (["third-party", ref, "--set", "--reason", "short"], {"business_support", "team_manager"},
         "role_forbidden"),
        (["rescan", south, "--replaces", south], {"business_support"}, "role_forbidden"),
        (["corrections", "list"], {"business_support", "team_manager"}, "role_forbidden"),
        (["corrections", "list", "--doc", ref], READERS, "role_forbidden"),
        (["corrections", "ask", ref, "--reason", "filed to the wrong child", "--child", "CD654321"],
         {"business_support", "team_manager"}, "role_forbidden|not_yet_verified"),
        (["corrections", "approve", "999999"], {"business_support", "team_manager"}, "role_forbidden"),
        (["corrections", "refuse", "999999", "--reason", "it was filed right"], {"business_support", "team_manager"},
         "role_forbidden"),
        (["quarantine", "list"], {"business_support"}, "role_forbidden"),
        (["quarantine", "retry", "no-such-claim"], {"business_support"}, "role_forbidden"),
        (["quarantine", "retry", "no-such-claim", "no-such-claim-2"], {"business_support"}, "role_forbidden"),
        (["quarantine", "discard", "no-such-claim", "--reason", "blank test page scanned"], {"business_support"},
         "role_forbidden"),
        (["paper", "due"], {"business_support", "auditor"}, "role_forbidden"),
        (["paper", "unconfirmed"], {"business_support", "auditor"}, "role_forbidden"),
        (["hold", "release", ref, "--reason", "no hold to release"], {"auditor"}, "role_forbidden"),
        (["retention", "show", ref], {"auditor"}, "role_forbidden"),
        (["audit", "casefile", "--child", "AB123456"], {"auditor"}, "role_forbidden"),
        (["audit", "collation"], {"auditor"}, "role_forbidden"),
        (["audit", "record", "--child", "AB123456", "--judge", "1=yes", "--grading", "good"], {"auditor"},
         "role_forbidden"),  # harmless when allowed: 13 standards not judged, nothing recorded
        (["report", "--doc", ref, "--format", "json", "-o", out], {"auditor"}, "role_forbidden"),
        (["users", "list"], {"administrator"}, "role_forbidden"),
        (["users", "add", "new.person", "--role", "wizard"], {"administrator"}, "role_forbidden"),
        (["users", "update", "bs.jones"], {"administrator"}, "role_forbidden"),
        (["users", "disable", "no.such.user"], {"administrator"}, "role_forbidden"),
        (["users", "reset", "no.such.user"], {"administrator"}, "role_forbidden"),
        (["users", "token", "no.such.user"], {"administrator"}, "role_forbidden"),
        (["users", "revoke-token", "999999"], {"administrator"}, "role_forbidden"),
        (["teams", "list"], {"administrator"}, "role_forbidden"),
        (["teams", "add", "north"], {"administrator"}, "role_forbidden"),
        (["teams", "add-member", "north", "cw.north"], {"administrator"}, "role_forbidden"),
        (["teams", "remove-member", "north", "no.such.user"], {"administrator"}, "role_forbidden"),
        (["teams", "allocate", "EF111222", "--worker", "cw.north"], {"team_manager", "administrator"},
         "role_forbidden"),
        (["access-log", "--child", "AB123456"], {"auditor"}, "role_forbidden"),
        (["purpose", "--child", "AB123457", "--reason", "case-file audit of this child"], {"auditor"},
         "role_forbidden"),
        (["break-glass", "--child", "EF111222", "--reason", "duty call out of hours"], {"caseworker", "team_manager"},
         "role_forbidden"),
        # Issue 19 (escr/cli/records.py): harmless when allowed, as above.
        (["status", "list", "AB123456"], READERS, "role_forbidden"),
        (["status", "add", "AB123456", "--status", "adoption"], {"business_support", "team_manager"},
         "role_forbidden"),
        (["examination", "list", "AB123456"], READERS, "role_forbidden"),
        (["examination", "add", "AB123456", "--kind", "review", "--purpose", "file review", "--on", "2999-01-01"],
         {"team_manager", "auditor"}, "role_forbidden"),
        (["volume", "list", "AB123456"], READERS, "role_forbidden"),
        (["volume", "show", "no-such"], READERS, "role_forbidden"),
        (["volume", "register", "bad id!", "--child", "AB123456", "--title", "V1", "--location", "Store"],
         {"business_support", "team_manager", "auditor"}, "role_forbidden"),
        (["volume", "out", "no-such", "--to", "Court", "--authorised-by", "tm.north", "--due-back", "2999-01-01"],
         {"business_support", "team_manager", "auditor"}, "role_forbidden"),
        (["volume", "confirm", "999999"], READERS, "role_forbidden"),
        (["volume", "overdue"], {"business_support", "team_manager", "auditor"}, "role_forbidden"),
        (["volume", "lost", "no-such", "--kind", "missing", "--description", "not on shelf"], READERS,
         "role_forbidden"),
        (["volume", "close", "999999", "--outcome", "not_found"], {"team_manager", "auditor"}, "role_forbidden"),
        (["disposal", "review"], {"team_manager", "auditor"}, "role_forbidden"),
        (["disposal", "holds"], {"team_manager", "auditor"}, "role_forbidden"),
        (["disposal", "hold", "--scope", "doc_type", "--value", "no_such_type", "--reason", "authz test"],
         {"auditor"}, "role_forbidden"),
        (["disposal", "decide", "999999", "--approve", "--note", "checked"], {"team_manager", "auditor"},
         "role_forbidden"),
        (["arrival", "B-NONE", "--on", "2999-01-01"], {"business_support"}, "role_forbidden"),
        (["timeliness", "--month", "2026-03"], {"business_support", "team_manager", "auditor"}, "role_forbidden"),
        (["coversheets", "unscanned"], {"business_support", "team_manager", "auditor"}, "role_forbidden"),
        (["coversheets", "manifest", "B-NONE"], {"business_support", "team_manager", "auditor"}, "role_forbidden"),
        (["scanner-check", "list"], {"business_support", "team_manager", "auditor"}, "role_forbidden"),
        (["disclosure", "list"], {"disclosure_officer"}, "role_forbidden"),
        (["disclosure", "show", "DR-1"], {"disclosure_officer"}, "role_forbidden"),
        (["disclosure", "approve", "DR-1"], {"disclosure_officer"}, "role_forbidden"),
        (["tokens", "list"], ALL, ""),
        (["tokens", "create", "--name", "script"], ALL, ""),
        (["tokens", "revoke", "999999"], ALL, ""),
    ]


REFUSED = re.compile(r"error \((role_forbidden|not_your_team|purpose_required|third_party_permission_required|"
                     r"not_in_intake|unauthenticated|invalid_token|sign_in_failed)\)")


def escr(world: World, args: list[str], token: str = "") -> Any:
    """`escr ARGS` in a fresh environment holding only where the data is and ESCR_TOKEN."""
    return CliRunner().invoke(cli_app, args, env={**home_env(world.services), "ESCR_TOKEN": token})


@pytest.mark.parametrize("role", ROLES)
def test_cli_commands_as_every_role(world, tokens, role, tmp_path):
    for args, allowed, codes in cli_commands(world.docs, str(tmp_path / "out")):
        result = escr(world, args, tokens[ROLE_USER[role]])
        label = " ".join(args)
        assert result.exception is None or isinstance(result.exception, SystemExit), (label, role, result.output)
        if role in allowed:
            assert not REFUSED.search(result.output), (label, role, result.output)
        else:
            assert result.exit_code != 0, (label, role, result.output)
            assert any(f"error ({c})" in result.output for c in codes.split("|")), (label, role, result.output)


def test_cli_commands_that_touch_the_record_refuse_anyone_not_signed_in(world, tmp_path):
    for args, *_ in cli_commands(world.docs, str(tmp_path / "out")):
        result = escr(world, args)
        assert result.exit_code != 0 and "error (unauthenticated)" in result.output, (args, result.output)
        assert "ESCR_TOKEN" in result.output  # it says what to do


def test_the_cli_names_nobody_by_user_alone_and_an_unknown_user_lists_nothing(world):
    """Issue 15: `escr documents --child AB123456 --user nobody-at-all` listed another team's child."""
    result = escr(world, ["documents", "--child", "AB123456", "--user", "nobody-at-all"])
    assert result.exit_code != 0 and "error (unauthenticated)" in result.output
    assert world.docs["referral"] not in result.output
    assert not access_events(world, actor="nobody-at-all")
    # --user does not turn a south caseworker's token into anyone else either.
    south = accounts_token(world, "cw.south")
    refused = escr(world, ["documents", "--child", "AB123456", "--user", "cw.north"], south)
    assert refused.exit_code != 0 and "error (not_your_team)" in refused.output
    assert [e.outcome for e in access_events(world, actor="cw.south", child_id="AB123456")][-1] == "denied"


def test_the_cli_refuses_a_third_party_report_to_a_caseworker_without_the_permission(world, tokens, tmp_path):
    """Issue 15: `escr get DOC --user cw.ali` wrote a third-party report the web refuses to that user."""
    out = tmp_path / "police.pdf"
    tp = world.docs["third_party"]
    for args in (["get", tp, "-o", str(out)], ["get", tp, "-o", str(out), "--original"],
                 ["get", tp, "-o", str(out), "--user", "tm.north"]):  # tm.north has the permission; no matter
        result = escr(world, args, tokens["cw.north"])
        assert result.exit_code != 0, result.output
        # Refused for the permission, or (issue 16) earlier still because it is not yet verified and
        # cw.north is not allocated the child; never written.
        refusals = ("third_party_permission_required", "original_holds_other_records", "not_yet_verified")
        assert any(f"error ({code})" in result.output for code in refusals), result.output
        assert not out.exists()
    denied = access_events(world, actor="cw.north", document_id=tp, outcome="denied")
    cli_codes = {e.detail["parameters"]["code"] for e in denied}
    assert cli_codes and cli_codes <= set(refusals)
    web = api(create_app(world.services), tokens["cw.north"]).get(f"/api/v1/documents/{tp}/content")
    assert web.status_code == 403 and web.json()["error"]["code"] in cli_codes  # the same rule on both faces


def test_the_cli_verifies_only_as_a_real_person_other_than_the_scanner(world, tokens):
    """Issue 15: `escr qc verify DOC --user ghost.verifier` verified as a person who does not exist."""
    ref = world.docs["referral"]
    ghost = escr(world, ["qc", "verify", ref, "--user", "ghost.verifier"])
    assert ghost.exit_code != 0 and "error (unauthenticated)" in ghost.output
    forged = escr(world, ["qc", "verify", ref], "escr_not-a-real-token")
    assert forged.exit_code != 0 and "error (invalid_token)" in forged.output
    scanner = escr(world, ["qc", "verify", ref], accounts_token(world, "bs.scanner"))
    assert scanner.exit_code == 2 and "four-eyes" in scanner.output
    shown = escr(world, ["show", ref, "--json"], tokens["bs.jones"])
    assert json.loads(shown.output)["state"] == "awaiting_verification"
    with world.services.db.session() as session:
        refused = session.scalars(select(Event).where(Event.kind == "sign_in", Event.outcome == "refused")).all()
    assert any(e.detail["parameters"].get("via") == "cli-token" for e in refused)  # the forged token, logged


def test_a_disabled_users_token_stops_working_at_the_cli_too(world):
    setup = Actor(kind="user", name="setup")
    with world.services.db.session() as session:
        user, _ = accounts.add_user(session, "cw.cli.leaver", role="caseworker", actor=setup, teams=["north"],
                                    password=PASSWORD)
        secret = accounts.create_token(session, user, "cli", actor=setup).secret
    assert escr(world, ["documents", "--child", "AB123456"], secret).exit_code == 0
    with world.services.db.session() as session:
        accounts.set_disabled(session, "cw.cli.leaver", True, actor=setup)
    refused = escr(world, ["documents", "--child", "AB123456"], secret)
    assert refused.exit_code != 0 and "error (invalid_token)" in refused.output


def test_the_host_operator_reads_no_record(world):
    """Set-up commands act as the host operator, which may maintain escr and read nothing of the record."""
    operator = Operations(world.services, host_operator("tests"))
    for read in (lambda: operator.child_documents("AB123456", doc_type=None, since=None, until=None, offset=0,
                                                  limit=10),
                 lambda: operator.document(world.docs["referral"]),
                 lambda: operator.open_content(world.docs["referral"]),
                 lambda: operator.search("bruising", child_id=None, offset=0, limit=10),
                 lambda: operator.find_children("Whitfield", 0, 10)):
        with pytest.raises(AccessDenied):
            read()


def accounts_token(world: World, username: str) -> str:
    with world.services.db.session() as session:
        user = accounts.get_user(session, username)
        return accounts.create_token(session, user, "cli tests", actor=Actor(kind="user", name="setup")).secret


# --- another team's caseworker -------------------------------------------------------------------


def test_another_teams_caseworker_is_refused_the_childs_documents_by_child_id_and_by_document_id(
        app, world, tokens):
    south = api(app, tokens["cw.south"])
    ref, tp = world.docs["referral"], world.docs["third_party"]
    for path in ("/api/v1/children/AB123456", "/api/v1/children/AB123456/documents",
                 "/api/v1/children/AB123456/search?q=bruising", f"/api/v1/documents/{ref}",
                 f"/api/v1/documents/{ref}/content", f"/api/v1/documents/{ref}/content?original=true",
                 f"/api/v1/documents/{ref}/pages/1", f"/api/v1/documents/{ref}/provenance",
                 f"/api/v1/documents/{tp}"):
        resp = south.get(path)
        assert resp.status_code == 403, path
        assert resp.json()["error"]["code"] == "not_your_team", path
    # Not findable, and searching all documents finds nothing of that child.
    assert south.get("/api/v1/children?q=Whitfield").json()["total"] == 0
    assert south.get("/api/v1/search?q=bruising").json()["total"] == 0
    # Their own team's child is fine.
    assert south.get("/api/v1/children/CD654321/documents").json()["total"] == 1
    # Each refusal is itself in the access log.
    denied = access_events(world, actor="cw.south", outcome="denied")
    assert {e.detail["action"] for e in denied} >= {"list", "view", "download", "search", "provenance"}
    assert {e.document_id for e in denied} >= {ref}
    assert all(e.detail["parameters"]["code"] == "not_your_team" for e in denied)


def test_the_north_caseworker_reads_the_north_childs_record_and_every_read_is_logged(app, world, tokens):
    north = api(app, tokens["cw.north"])
    ref = world.docs["referral"]
    docs = north.get("/api/v1/children/AB123456/documents").json()
    assert ref in [d["id"] for d in docs["items"]]
    # The referral is not yet verified: a caseworker of the team not allocated the child cannot open it.
    refused = north.get(f"/api/v1/documents/{ref}/content")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_yet_verified"
    assert north.get("/api/v1/children/AB123456/search?q=bruising").json()["total"] == 0
    with world.services.db.session() as session:
        accounts.allocate(session, "AB123456", "cw.north", actor=Actor(kind="user", name="setup"))
    try:
        pdf = north.get(f"/api/v1/documents/{ref}/content")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        assert "not-yet-verified" in pdf.headers["content-disposition"]
        assert north.get(f"/api/v1/documents/{ref}").json()["content"]["not_yet_verified"] is True
        assert north.get(f"/api/v1/documents/{ref}/pages/1").content.startswith(b"\x89PNG")
        hits = north.get("/api/v1/children/AB123456/search?q=bruising").json()
        assert [(h["id"], h["not_yet_verified"]) for h in hits["items"]] == [(ref, True)]
    finally:
        with world.services.db.session() as session:
            accounts.allocate(session, "AB123456", None, actor=Actor(kind="user", name="setup"))
    mine = [e for e in access_events(world, actor="cw.north") if e.outcome == "ok"]
    actions = {(e.detail["action"], e.document_id) for e in mine}
    assert {("list", None), ("download", ref), ("view", ref), ("search", None)} <= actions
    assert all(e.detail["parameters"].get("basis") == "team" for e in mine if e.child_id == "AB123456")


def test_a_worker_allocated_a_child_outside_their_team_may_read_it(app, world, tokens):
    with world.services.db.session() as session:
        accounts.allocate(session, "AB123457", "cw.south", actor=Actor(kind="user", name="setup"))
    try:
        resp = api(app, tokens["cw.south"]).get("/api/v1/children/AB123457/documents")
        assert resp.status_code == 200
        event = access_events(world, actor="cw.south", child_id="AB123457")[-1]
        assert event.detail["parameters"]["basis"] == "allocated"
    finally:
        with world.services.db.session() as session:
            accounts.allocate(session, "AB123457", None, actor=Actor(kind="user", name="setup"))
    assert api(app, tokens["cw.south"]).get("/api/v1/children/AB123457/documents").status_code == 403


# --- auditors ------------------------------------------------------------------------------------


def test_an_auditor_sees_provenance_and_logs_but_opens_content_only_after_recording_a_purpose(app, world):
    with world.services.db.session() as session:
        user, _ = accounts.add_user(session, "aud.two", role="auditor", actor=Actor(kind="user", name="setup"),
                                    password=PASSWORD)
        token = accounts.create_token(session, user, "t", actor=Actor(kind="user", name="setup")).secret
    auditor = api(app, token)
    ref = world.docs["referral"]
    assert auditor.get(f"/api/v1/documents/{ref}/provenance").status_code == 200
    assert auditor.get("/api/v1/access-log?child=AB123456").status_code == 200
    meta = auditor.get(f"/api/v1/documents/{ref}").json()
    assert meta["content"] == {"allowed": False, "basis": None, "code": "purpose_required",
                               "message": f"record a purpose before opening document {ref}", "not_yet_verified": True}
    refused = auditor.get(f"/api/v1/documents/{ref}/content")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "purpose_required"
    assert auditor.get("/api/v1/children/AB123456/search?q=bruising").json()["total"] == 0

    too_short = auditor.post(f"/api/v1/documents/{ref}/purpose", json={"purpose": "audit"})
    assert too_short.status_code == 422 and too_short.json()["error"]["code"] == "reason_required"
    purpose = "Complaint investigation C-2026-014: referral handling"
    assert auditor.post(f"/api/v1/documents/{ref}/purpose", json={"purpose": purpose}).status_code == 201

    opened = auditor.get(f"/api/v1/documents/{ref}/content")
    assert opened.status_code == 200 and opened.content.startswith(b"%PDF")
    download = [e for e in access_events(world, actor="aud.two") if e.detail["action"] == "download"][-1]
    assert download.detail["purpose"] == purpose
    assert download.detail["parameters"]["basis"] == "audit_purpose"
    # The purpose opened that document only: the third-party one beside it stays closed.
    assert auditor.get(f"/api/v1/documents/{world.docs['third_party']}/content").status_code == 403


# --- third-party information -----------------------------------------------------------------------


def test_third_party_documents_open_only_with_the_extra_permission(app, world, tokens):
    tp = world.docs["third_party"]
    caseworker = api(app, tokens["cw.north"])  # north team, no third-party permission, not allocated
    meta = caseworker.get(f"/api/v1/documents/{tp}")
    assert meta.status_code == 200 and meta.json()["third_party"] is True
    assert meta.json()["content"]["code"] == "not_yet_verified"  # and third-party (test_human_protocol)
    for path in (f"/api/v1/documents/{tp}/content", f"/api/v1/documents/{tp}/pages/1"):
        resp = caseworker.get(path)
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "not_yet_verified"
    assert caseworker.get("/api/v1/search?q=confidence").json()["total"] == 0

    manager = api(app, tokens["tm.north"])  # north team, with the permission
    assert manager.get(f"/api/v1/documents/{tp}/content").content.startswith(b"%PDF")
    assert tp in [h["id"] for h in manager.get("/api/v1/search?q=confidence").json()["items"]]


def test_the_original_scan_opens_only_to_those_who_may_open_every_document_in_it(app, world, tokens):
    """The batch holding the referral also holds the south team's letter: its original stays closed."""
    from escr.record.models import Document

    north = api(app, tokens["tm.north"])  # may open the north documents before verification
    ref, own = world.docs["referral"], world.docs["own_scan"]
    refused = north.get(f"/api/v1/documents/{ref}/content?original=true")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "original_holds_other_records"
    assert north.get(f"/api/v1/documents/{ref}").json()["original_allowed"] is False
    original = north.get(f"/api/v1/documents/{own}/content?original=true")
    assert original.status_code == 200
    with world.services.db.session() as session:
        scanned_sha256 = session.get(Document, own).batch.sha256
    assert hashlib.sha256(original.content).hexdigest() == scanned_sha256  # the untouched scan
    event = access_events(world, actor="tm.north", document_id=own)[-1]
    assert event.detail["action"] == "download" and event.detail["parameters"]["object"] == "original"


def test_business_support_open_documents_in_intake_only(app, world, tokens):
    bs = api(app, tokens["bs.jones"])
    assert bs.get(f"/api/v1/documents/{world.docs['referral']}/content").status_code == 200
    verified = bs.get(f"/api/v1/documents/{world.docs['south']}/content")
    assert verified.status_code == 403 and verified.json()["error"]["code"] == "not_in_intake"


# --- break-glass -----------------------------------------------------------------------------------


def test_break_glass_opens_the_record_with_a_reason_logged_and_flagged_for_review(app, world, tokens):
    south = api(app, tokens["cw.south"])
    assert south.get("/api/v1/children/AB123457/documents").status_code == 403
    no_reason = south.post("/api/v1/children/AB123457/break-glass", json={"reason": "now"})
    assert no_reason.status_code == 422 and no_reason.json()["error"]["code"] == "reason_required"

    reason = "Out-of-hours duty call: police at the address, need history"
    glass = south.post("/api/v1/children/AB123457/break-glass", json={"reason": reason})
    assert glass.status_code == 201 and glass.json()["active"] is True
    assert south.get("/api/v1/children/AB123457/documents").status_code == 200
    assert "AB123457" in [c["child_id"] for c in south.get("/api/v1/children?q=Oliver").json()["items"]]

    event = access_events(world, actor="cw.south", child_id="AB123457")[-1]
    assert event.outcome == "break_glass"
    assert event.detail["purpose"] == reason
    assert event.detail["parameters"]["break_glass_id"] == glass.json()["id"]
    with world.services.db.session() as session:
        row = session.get(BreakGlass, glass.json()["id"])
        assert row.reviewed_at is None and row.reason == reason
        protocol = session.scalars(select(Event).where(Event.kind == "break_glass")).all()
        assert [e.outcome for e in protocol] == ["flagged_for_review"]

    auditor = api(app, tokens["aud.one"])
    pending = auditor.get("/api/v1/break-glass/reviews?pending=true").json()["items"]
    assert [(g["user"], g["child_id"], g["reason"]) for g in pending] == [("cw.south", "AB123457", reason)]
    flagged = auditor.get("/api/v1/access-log?outcome=break_glass").json()["items"]
    assert {e["actor"] for e in flagged} == {"cw.south"}
    review = auditor.post(f"/api/v1/break-glass/{glass.json()['id']}/review",
                          json={"outcome": "justified", "note": "police call confirmed"})
    assert review.status_code == 200
    assert auditor.get("/api/v1/break-glass/reviews?pending=true").json()["total"] == 0
    again = auditor.post(f"/api/v1/break-glass/{glass.json()['id']}/review", json={"outcome": "justified"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_reviewed"


def test_break_glass_from_the_refusal_page_in_the_browser(browsers, world):
    """A caseworker refused a child's record is offered break-glass right there (plain form)."""
    with world.services.db.session() as session:
        user, _ = accounts.add_user(session, "cw.duty", role="caseworker", actor=Actor(kind="user", name="setup"),
                                    teams=["south"], password=PASSWORD)
    client = TestClient(browsers["caseworker"].app)
    sign_in(client, "cw.duty")
    refused = client.get("/children/AB123456")
    assert refused.status_code == 403 and "Open the record (break-glass)" in refused.text
    opened = client.post("/break-glass", data={"child_id": "AB123456", "reason": "duty social worker call",
                                               "csrf_token": csrf_from(refused.text)})
    assert opened.status_code == 200 and "under break-glass access" in opened.text
    assert world.docs["referral"] in client.get("/children/AB123456?pending=1").text  # not yet verified


# --- CSRF and sessions --------------------------------------------------------------------------------


def test_a_form_post_without_the_csrf_token_is_refused(browsers, world):
    client = browsers["business_support"]
    claim = "no-such-claim"
    for data in ({}, {"csrf_token": "forged"}):
        resp = client.post(f"/quarantine/{claim}/retry", data=data, follow_redirects=False)
        assert resp.status_code == 403 and "The form had expired" in resp.text
    resp = client.post("/children/AB123456/coversheet", data={"doc_type": "referral"}, follow_redirects=False)
    assert resp.status_code == 403
    # The same session calling the API with a cookie needs the token in a header.
    api_resp = client.post("/api/v1/children/AB123456/coversheet", json={"doc_type": "referral"})
    assert api_resp.status_code == 403 and api_resp.json()["error"]["code"] == "csrf_failed"
    token = csrf_from(client.get("/account").text)
    ok = client.post("/api/v1/children/AB123456/coversheet", json={"doc_type": "referral"},
                     headers={"X-CSRF-Token": token})
    assert ok.status_code == 200 and ok.content.startswith(b"%PDF")


def test_sign_in_is_refused_for_a_wrong_password_and_throttled_after_repeated_failures(app, world):
    with world.services.db.session() as session:
        accounts.add_user(session, "cw.lock", role="caseworker", actor=Actor(kind="user", name="setup"),
                          password=PASSWORD)
    client = TestClient(app)
    for _ in range(world.settings.web.login_max_failures):
        token = csrf_from(client.get("/login").text)
        resp = client.post("/login", data={"username": "cw.lock", "password": "not the password",
                                           "csrf_token": token})
        assert resp.status_code == 401 and "not recognised" in resp.text
    token = csrf_from(client.get("/login").text)
    locked = client.post("/login", data={"username": "cw.lock", "password": PASSWORD, "csrf_token": token})
    assert locked.status_code == 401 and "too many failed sign-ins" in locked.text
    with world.services.db.session() as session:
        outcomes = [e.outcome for e in session.scalars(select(Event).where(Event.kind == "sign_in",
                                                                          Event.actor == "cw.lock"))]
    assert outcomes == ["failed"] * world.settings.web.login_max_failures + ["throttled"]


def test_session_cookie_is_httponly_and_samesite(app):
    client = TestClient(app)
    resp = client.get("/login")
    cookie = resp.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert resp.headers["cache-control"] == "no-store"
    assert resp.headers["referrer-policy"] == "same-origin"


def _cookie(client: TestClient) -> str:
    return client.cookies["escr_session"]


def test_signing_out_ends_the_session_on_the_server_so_a_kept_copy_of_the_cookie_is_worthless(app, world):
    client = TestClient(app)
    sign_in(client, "cw.north")
    kept = _cookie(client)
    token = csrf_from(client.get("/account").text)
    out = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    replay = TestClient(app, cookies={"escr_session": kept})
    resp = replay.get("/children/AB123456", follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"].startswith("/login")
    assert replay.get("/api/v1/me").status_code == 401
    with world.services.db.session() as session:
        row = session.get(WebSession, accounts.token_digest(json.loads(b64decode(kept.split(".")[0]))["sid"]))
        assert row.end_reason == "signed_out" and row.ended_at is not None


def test_a_slow_answer_begun_before_a_form_was_saved_does_not_lose_the_forms_notice(app):
    # A browser still loading the last page's images when "Save" is pressed gets those answers after
    # the POST's; had they re-sent the session cookie, it would be the older one, without the notice.
    client = TestClient(app)
    sign_in(client, "cw.north")
    page = client.get("/account")
    assert "set-cookie" not in page.headers  # a signed-in page leaves the cookie alone
    before = _cookie(client)
    saved = client.post("/account/password", data={"csrf_token": csrf_from(page.text), "current": PASSWORD,
                                                    "new": "one new password", "repeat": "another password"},
                        follow_redirects=False)
    assert saved.status_code == 303 and "set-cookie" in saved.headers
    late = TestClient(app, cookies={"escr_session": before}).get("/children/AB123456")
    assert late.status_code == 200 and "set-cookie" not in late.headers
    assert "The two new passwords differ; nothing was changed." in client.get("/account").text


def test_a_session_left_idle_too_long_ends_and_the_person_signs_in_again(app, world):
    client = TestClient(app)
    sign_in(client, "cw.north")
    assert client.get("/children/AB123456").status_code == 200
    sid = json.loads(b64decode(_cookie(client).split(".")[0]))["sid"]
    idle = timedelta(minutes=world.settings.web.idle_minutes, seconds=1)
    with world.services.db.session() as session:
        row = session.get(WebSession, accounts.token_digest(sid))
        row.last_seen_at = row.last_seen_at - idle
        row.started_at = row.started_at - idle
    resp = client.get("/children/AB123456", follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"].startswith("/login")
    with world.services.db.session() as session:
        assert session.get(WebSession, accounts.token_digest(sid)).end_reason == "idle"


# --- API tokens ------------------------------------------------------------------------------------


def test_api_token_works_until_revoked_and_a_disabled_users_token_and_session_stop(app, world):
    setup = Actor(kind="user", name="setup")
    with world.services.db.session() as session:
        user, _ = accounts.add_user(session, "cw.leaver", role="caseworker", actor=setup, teams=["north"],
                                    password=PASSWORD)
        first = accounts.create_token(session, user, "one", actor=setup)
        second = accounts.create_token(session, user, "two", actor=setup)
        stored = [t.token_sha256 for t in accounts.tokens_of(session, user.id)]
    assert first.secret not in stored and accounts.token_digest(first.secret) in stored  # kept hashed

    assert api(app, first.secret).get("/api/v1/children/AB123456/documents").status_code == 200
    revoked = api(app, first.secret).delete(f"/api/v1/tokens/{first.token.id}")
    assert revoked.status_code == 200
    after = api(app, first.secret).get("/api/v1/me")
    assert after.status_code == 401 and after.json()["error"]["code"] == "invalid_token"

    browser = TestClient(app)
    sign_in(browser, "cw.leaver")
    assert browser.get("/children/AB123456").status_code == 200
    assert api(app, second.secret).get("/api/v1/me").status_code == 200
    with world.services.db.session() as session:
        accounts.set_disabled(session, "cw.leaver", True, actor=setup)
    disabled = api(app, second.secret).get("/api/v1/me")
    assert disabled.status_code == 401 and disabled.json()["error"]["code"] == "invalid_token"
    gone = browser.get("/children/AB123456", follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"].startswith("/login")
    assert api(app, "escr_made-up-token").get("/api/v1/me").status_code == 401


# --- single sign-on header -------------------------------------------------------------------------


def test_sso_header_is_trusted_only_when_configured_and_only_from_the_trusted_proxy(world):
    from escr.services import Services

    plain = create_app(world.services)
    spoofed = TestClient(plain, client=("127.0.0.1", 5000), headers={"X-Remote-User": "cw.north"})
    assert spoofed.get("/api/v1/me").status_code == 401  # off by default: the header means nothing

    web = world.settings.web.model_copy(update={"sso_header": "X-Remote-User", "trusted_proxies": ["127.0.0.1/32"]})
    settings = world.settings.model_copy(update={"web": web})
    sso_app = create_app(Services(settings=settings, db=world.services.db, store=world.services.store))
    via_proxy = TestClient(sso_app, client=("127.0.0.1", 5000), headers={"X-Remote-User": "cw.north"})
    me = via_proxy.get("/api/v1/me")
    assert me.status_code == 200 and me.json()["username"] == "cw.north" and me.json()["via"] == "sso"
    assert via_proxy.get("/children/AB123456").status_code == 200
    not_proxy = TestClient(sso_app, client=("192.0.2.9", 5000), headers={"X-Remote-User": "cw.north"})
    assert not_proxy.get("/api/v1/me").status_code == 401
    unknown = TestClient(sso_app, client=("127.0.0.1", 5000), headers={"X-Remote-User": "nobody"})
    resp = unknown.get("/api/v1/me")
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "sso_user_unknown"
    # A state-changing form through SSO still needs the CSRF token of the session.
    assert via_proxy.post("/break-glass", data={"child_id": "EF111222", "reason": "x" * 20}).status_code == 403


def test_a_stale_sign_in_is_dropped_when_anyone_signs_in_not_only_its_owner(app, world):
    """A leaver never signs in again: their old session rows must not stay on the server for ever."""
    leaver = TestClient(app)
    sign_in(leaver, "cw.north")
    sid = json.loads(b64decode(_cookie(leaver).split(".")[0]))["sid"]
    stale = 2 * timedelta(hours=world.settings.web.session_hours) + timedelta(minutes=1)
    with world.services.db.session() as session:
        row = session.get(WebSession, accounts.token_digest(sid))
        row.last_seen_at, row.started_at = row.last_seen_at - stale, row.started_at - stale
    sign_in(TestClient(app), "cw.south")
    with world.services.db.session() as session:
        assert session.get(WebSession, accounts.token_digest(sid)) is None
    assert leaver.get("/children/AB123456", follow_redirects=False).status_code == 303  # and it signs no one in
