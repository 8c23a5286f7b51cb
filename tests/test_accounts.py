"""Accounts and API tokens as a council's security officer would test them: tokens expire, carry
a scope the API enforces, die with a password reset, a password change, a disable or a change of
rights and stay dead; a token cannot make tokens; administrators see and revoke anyone's tokens;
failed sign-ins are throttled per address without ever locking the account or telling known
names from unknown ones; a reset forces a new password; widening one's own access is flagged.
"""

from __future__ import annotations

import json
import re
from base64 import b64decode
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from escr.app import accounts
from escr.clock import as_utc
from escr.record.events import Actor
from escr.record.models import ApiToken, Event, WebSession
from escr.web import create_app
from tests.support.web import PASSWORD, World, csrf_from, open_world, sign_in

SETUP = Actor(kind="user", name="setup")
NEW_PASSWORD = "a different long passphrase"


@pytest.fixture(scope="module")
def world(tmp_path_factory, pytestconfig, postgres_server) -> World:
    yield from open_world(tmp_path_factory, pytestconfig, postgres_server, "accounts")


@pytest.fixture(scope="module")
def app(world):
    return create_app(world.services)


def api(app, token: str) -> TestClient:
    return TestClient(app, headers={"Authorization": f"Bearer {token}"})


def new_user(world: World, name: str, role: str = "caseworker", teams: tuple[str, ...] = ("north",)) -> None:
    with world.services.db.session() as session:
        accounts.add_user(session, name, role=role, actor=SETUP, teams=teams, password=PASSWORD)


def token_of(world: World, name: str, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with world.services.db.session() as session:
        user = accounts.get_user(session, name)
        return accounts.create_token(session, user, "test", actor=SETUP, limits=world.settings.web, **kwargs).secret


def browser_token(app, client: TestClient, body: dict) -> TestClient:  # type: ignore[type-arg]
    """A token made by a signed-in browser through the API, as a person would."""
    csrf = csrf_from(client.get("/account").text)
    made = client.post("/api/v1/tokens", json=body, headers={"X-CSRF-Token": csrf})
    assert made.status_code == 201, made.text
    return made.json()


def _sid(client: TestClient) -> str:
    return json.loads(b64decode(client.cookies["escr_session"].split(".")[0]))["sid"]


def same_page(html: str, name: str) -> str:
    """The page with the name typed and the form's one-off CSRF token taken out."""
    return re.sub(r'name="csrf_token" value="[^"]+"', "", html.replace(name, "NAME"))


def login(client: TestClient, username: str, password: str):  # type: ignore[no-untyped-def]
    csrf = csrf_from(client.get("/login").text)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": csrf},
                       follow_redirects=False)


# --- tokens ---------------------------------------------------------------------------------------


def test_a_token_expires_by_default_after_the_configured_days(app, world):
    new_user(world, "cw.expiry")
    client = TestClient(app)
    sign_in(client, "cw.expiry")
    made = browser_token(app, client, {"name": "script"})
    assert made["scope"] == "write"
    with world.services.db.session() as session:
        token = session.get(ApiToken, made["id"])
        lifetime = as_utc(token.expires_at) - as_utc(token.created_at)
    assert lifetime == timedelta(days=world.settings.web.token_days)
    too_long = client.post("/api/v1/tokens", json={"days": world.settings.web.token_max_days + 1},
                           headers={"X-CSRF-Token": csrf_from(client.get("/account").text)})
    assert too_long.status_code == 422


def test_a_read_only_token_reads_but_changes_nothing(app, world):
    new_user(world, "cw.reader")
    reader = api(app, token_of(world, "cw.reader", scope="read"))
    assert reader.get("/api/v1/children/AB123456/documents").status_code == 200
    for method, path, body in [("POST", "/api/v1/children/EF111222/break-glass", {"reason": "duty call out of hours"}),
                               ("DELETE", "/api/v1/tokens/1", None),
                               ("POST", "/api/v1/tokens", {"name": "more"})]:
        resp = reader.request(method, path, json=body)
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "token_scope", (path, resp.text)
    with world.services.db.session() as session:
        assert not session.scalars(select(Event).where(Event.kind == "break_glass", Event.actor == "cw.reader")).all()


def test_admin_routes_need_an_admin_scope_token(app, world):
    write = api(app, token_of(world, "admin", scope="write"))
    refused = write.get("/api/v1/users")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "token_scope"
    assert api(app, token_of(world, "admin", scope="admin")).get("/api/v1/users").status_code == 200
    with world.services.db.session() as session, pytest.raises(Exception, match="admin scope"):
        accounts.create_token(session, accounts.get_user(session, "cw.north"), "x", actor=SETUP, scope="admin")


def test_a_token_cannot_create_tokens(app, world):
    new_user(world, "cw.minter")
    minted = api(app, token_of(world, "cw.minter")).post("/api/v1/tokens", json={"name": "child"})
    assert minted.status_code == 403 and minted.json()["error"]["code"] == "token_cannot_create_tokens"
    with world.services.db.session() as session:
        assert len(accounts.tokens_of(session, accounts.get_user(session, "cw.minter").id)) == 1


@pytest.mark.parametrize("change", ["reset", "own_change", "disable_enable", "role"])
def test_tokens_die_with_a_reset_a_password_change_a_disable_or_a_role_change_and_stay_dead(app, world, change):
    name = f"cw.tok.{change.replace('_', '')}"
    new_user(world, name)
    secret = token_of(world, name)
    assert api(app, secret).get("/api/v1/me").status_code == 200
    with world.services.db.session() as session:
        if change == "reset":
            accounts.reset_password(session, name, actor=SETUP)
        elif change == "own_change":
            accounts.change_own_password(session, accounts.get_user(session, name).id, PASSWORD, NEW_PASSWORD)
        elif change == "disable_enable":
            accounts.set_disabled(session, name, True, actor=SETUP)
        else:
            accounts.update_user(session, name, actor=SETUP, role="team_manager")
    if change == "disable_enable":
        with world.services.db.session() as session:
            accounts.set_disabled(session, name, False, actor=SETUP)
    after = api(app, secret).get("/api/v1/me")
    assert after.status_code == 401 and after.json()["error"]["code"] == "invalid_token"


def test_administrators_list_and_revoke_another_users_tokens(app, world):
    new_user(world, "cw.lostlaptop")
    secret = token_of(world, "cw.lostlaptop")
    admin = api(app, token_of(world, "admin", scope="admin"))
    listed = admin.get("/api/v1/users/cw.lostlaptop/tokens")
    assert listed.status_code == 200
    [row] = listed.json()
    assert row["user"] == "cw.lostlaptop" and not row["revoked"] and "token" not in row
    assert admin.delete(f"/api/v1/admin/tokens/{row['id']}").json()["revoked_reason"] == "by_administrator"
    assert api(app, secret).get("/api/v1/me").status_code == 401
    other = api(app, token_of(world, "cw.north")).get("/api/v1/users/cw.lostlaptop/tokens")
    assert other.status_code == 403


# --- sign-in throttling ---------------------------------------------------------------------------


def test_known_and_unknown_names_are_refused_alike_with_the_same_password_work(app, world, monkeypatch):
    new_user(world, "cw.probe")
    checked: list[str] = []
    real = accounts.password_matches
    monkeypatch.setattr(accounts, "password_matches", lambda stored, pw: checked.append("hash") or real(stored, pw))
    answers = []
    for name in ("cw.probe", "no.such.person"):
        client = TestClient(app, client=("198.51.100.7", 5000))
        resp = login(client, name, "not the password at all")
        answers.append((resp.status_code, same_page(resp.text, name)))
    assert answers[0] == answers[1] and answers[0][0] == 401
    assert checked == ["hash", "hash"]  # an unknown name costs the same argon2 verification


def test_a_stranger_cannot_lock_an_account_and_is_slowed_down_alike_for_any_name(world):
    from escr.services import Services

    new_user(world, "cw.target")
    slow = world.settings.web.model_copy(update={"login_backoff_seconds": 600.0})  # no wait ends during the test
    app = create_app(Services(world.settings.model_copy(update={"web": slow}), world.services.db,
                              world.services.store))
    stranger = TestClient(app, client=("203.0.113.9", 5000))
    limit = world.settings.web.login_max_failures
    for _ in range(limit + 3):
        assert login(stranger, "cw.target", "guessing wrongly").status_code == 401
    for _ in range(limit + 3):
        assert login(stranger, "ghost.user", "guessing wrongly").status_code == 401
    throttled_known = login(stranger, "cw.target", PASSWORD)
    throttled_unknown = login(stranger, "ghost.user", PASSWORD)
    assert throttled_known.status_code == throttled_unknown.status_code == 401
    assert same_page(throttled_known.text, "cw.target") == same_page(throttled_unknown.text, "ghost.user")
    assert "too many failed sign-ins" in throttled_known.text
    # The owner, elsewhere, signs in at once: nothing was locked.
    owner = TestClient(app, client=("192.0.2.44", 5000))
    assert login(owner, "cw.target", PASSWORD).status_code == 303
    with world.services.db.session() as session:
        outcomes = [e.outcome for e in session.scalars(select(Event).where(Event.kind == "sign_in",
                                                                          Event.actor == "cw.target"))]
        assert outcomes[-1] == "ok" and "throttled" in outcomes and "locked" not in outcomes
        assert accounts.get_user(session, "cw.target").locked_until is None


# --- passwords and sessions -----------------------------------------------------------------------


def test_changing_your_password_ends_your_other_sessions_but_not_this_one(app, world):
    new_user(world, "cw.changer")
    here, elsewhere = TestClient(app), TestClient(app)
    sign_in(here, "cw.changer")
    sign_in(elsewhere, "cw.changer")
    other_sid = _sid(elsewhere)
    csrf = csrf_from(here.get("/account").text)
    done = here.post("/account/password", data={"csrf_token": csrf, "current": PASSWORD, "new": NEW_PASSWORD,
                                                "repeat": NEW_PASSWORD}, follow_redirects=False)
    assert done.status_code == 303
    assert here.get("/children/AB123456").status_code == 200
    gone = elsewhere.get("/children/AB123456", follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"].startswith("/login")
    with world.services.db.session() as session:
        assert session.get(WebSession, accounts.token_digest(other_sid)).end_reason == "password_changed"


def test_an_administrators_reset_forces_a_new_password_at_the_next_sign_in(app, world):
    new_user(world, "cw.forgot")
    admin = TestClient(app)
    sign_in(admin, "admin")
    csrf = csrf_from(admin.get("/account").text)
    given = admin.post("/api/v1/users/cw.forgot/reset-password", headers={"X-CSRF-Token": csrf}).json()["password"]
    person = TestClient(app)
    sign_in(person, "cw.forgot", given)
    refused = person.get("/api/v1/children/AB123456")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "password_change_required"
    sent = person.get("/children/AB123456", follow_redirects=False)  # a page: straight to the form
    assert sent.status_code == 303 and sent.headers["location"] == "/account"
    page = person.get("/account")
    assert page.status_code == 200 and "choose a new one of your own before you go on" in page.text
    person.post("/account/password", data={"csrf_token": csrf_from(page.text), "current": given,
                                           "new": NEW_PASSWORD, "repeat": NEW_PASSWORD})
    assert person.get("/api/v1/children/AB123456").status_code == 200


def test_an_administrator_adding_themselves_to_a_team_is_flagged_for_the_auditor(app, world):
    admin = api(app, token_of(world, "admin", scope="admin"))
    assert admin.put("/api/v1/teams/south/members/admin").status_code == 200
    assert admin.put("/api/v1/teams/south/members/cw.north").status_code == 200  # someone else: not flagged
    auditor = api(app, token_of(world, "aud.one"))
    flagged = auditor.get("/api/v1/access-log?outcome=flagged_for_review").json()["items"]
    assert [(e["actor"], e["action"], e["parameters"]["team"]) for e in flagged] == [("admin", "self_grant", "south")]


# --- the audit trail ------------------------------------------------------------------------------


def access_events(world: World, **where) -> list[Event]:  # type: ignore[no-untyped-def]
    with world.services.db.session() as session:
        stmt = select(Event).where(Event.category == "access")
        for column, value in where.items():
            stmt = stmt.where(getattr(Event, column) == value)
        return list(session.scalars(stmt.order_by(Event.id)))


def test_every_read_of_a_childs_index_entry_through_the_api_is_logged(app, world):
    new_user(world, "cw.lookups")
    client = api(app, token_of(world, "cw.lookups"))
    before = len(access_events(world, actor="cw.lookups", child_id="AB123456"))
    for _ in range(12):
        entry = client.get("/api/v1/children/AB123456")
        assert entry.status_code == 200 and entry.json()["nhs_number"]
    logged = access_events(world, actor="cw.lookups", child_id="AB123456")[before:]
    assert len(logged) == 12
    assert all(e.detail["parameters"] == {"object": "index_entry", "basis": "team"} for e in logged)


def test_auditors_reading_or_exporting_the_access_log_and_break_glass_reviews_are_logged(app, world):
    new_user(world, "aud.watcher", role="auditor", teams=())
    auditor = api(app, token_of(world, "aud.watcher"))
    assert auditor.get("/api/v1/access-log?child=AB123456").status_code == 200
    assert auditor.get("/api/v1/access-log.csv").status_code == 200
    assert auditor.get("/api/v1/break-glass/reviews").status_code == 200
    seen = [(e.detail["action"], e.detail["parameters"]["object"]) for e in access_events(world, actor="aud.watcher")]
    assert seen == [("view", "access_log"), ("download", "access_log"), ("view", "break_glass_reviews")]
    assert access_events(world, actor="aud.watcher")[0].detail["parameters"]["child_id"] == "AB123456"


def test_a_search_across_records_names_each_child_in_the_hits_with_the_grounds(app, world):
    new_user(world, "cw.southsearch", teams=("south",))
    # Break-glass opens verified documents only (issue 16): the child's team manager verifies the referral.
    new_user(world, "tm.northverifier", role="team_manager", teams=("north",))
    referral = world.docs["referral"]
    state = api(app, token_of(world, "tm.northverifier")).post(f"/api/v1/documents/{referral}/verify")
    assert state.status_code in (200, 409), state.text  # 409: already verified by an earlier test
    client = api(app, token_of(world, "cw.southsearch"))
    assert client.post("/api/v1/children/AB123456/break-glass",
                       json={"reason": "duty call out of hours about bruising"}).status_code == 201
    hits = client.get("/api/v1/search?q=bruising").json()["items"]
    assert any("AB123456" in h["children"] for h in hits)
    per_child = [e for e in access_events(world, actor="cw.southsearch", child_id="AB123456")
                 if e.detail["action"] == "search"]
    assert len(per_child) == 1
    assert per_child[0].outcome == "break_glass" and per_child[0].detail["parameters"]["basis"] == "break_glass"
    assert per_child[0].detail["parameters"]["break_glass_id"]


def test_an_administrator_revokes_another_users_token_on_the_web_page(app, world):
    new_user(world, "cw.webtoken")
    secret = token_of(world, "cw.webtoken")
    admin = TestClient(app)
    sign_in(admin, "admin")
    page = admin.get("/admin/users/cw.webtoken/tokens")
    assert page.status_code == 200 and "Revoke token test of cw.webtoken" in page.text
    token_id = int(re.search(r'action="/admin/tokens/(\d+)/revoke"', page.text).group(1))
    done = admin.post(f"/admin/tokens/{token_id}/revoke", data={"csrf_token": csrf_from(page.text)},
                      follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/admin/users/cw.webtoken/tokens"
    assert "revoked (by administrator)" in admin.get("/admin/users/cw.webtoken/tokens").text
    assert api(app, secret).get("/api/v1/me").status_code == 401


def test_escr_tokens_lists_and_revokes_anyones_tokens_signed_in_as_an_administrator(with_children):
    """`escr tokens` acts as the administrator signed in (ESCR_TOKEN), never as whoever --user names;
    and a token, even an administrator's, cannot make another token."""
    from typer.testing import CliRunner

    from escr.cli.main import app as cli_app
    from tests.support.cli import cli_env

    env = cli_env(with_children, "it.admin", "administrator")
    with with_children.db.session() as session:
        user, _ = accounts.add_user(session, "cw.cli", role="caseworker", actor=SETUP, password=PASSWORD)
        secret = accounts.create_token(session, user, "script", actor=SETUP, scope="read").secret
        accounts.create_token(session, user, "other", actor=SETUP)

    def escr(*args: str, ok: bool = True) -> str:
        result = CliRunner().invoke(cli_app, list(args), env=env, catch_exceptions=False)
        assert (result.exit_code == 0) == ok, result.output
        return result.output

    listed = json.loads(escr("tokens", "list", "cw.cli", "--json"))
    assert [(t["scope"], t["revoked"]) for t in listed] == [("read", False), ("write", False)]
    assert secret not in json.dumps(listed)
    assert "token_cannot_create_tokens" in escr("users", "token", "cw.cli", ok=False)
    escr("tokens", "revoke", "--any", str(listed[0]["id"]))
    assert "1 API token(s) of cw.cli revoked" in escr("tokens", "revoke-all", "cw.cli")
    after = json.loads(escr("tokens", "list", "cw.cli", "--json"))
    assert [t["revoked_reason"] for t in after] == ["by_administrator", "by_administrator"]
    with with_children.db.session() as session:
        assert accounts.user_for_token(session, secret) is None


def test_the_application_refuses_a_read_only_token_what_changes_even_without_the_web_guard(world):
    """The rule lives in the application layer, so a command line using a read token obeys it too."""
    from escr.app.access import AccessDenied
    from escr.app.operations import Operations

    new_user(world, "aud.readonly", role="auditor", teams=())
    new_user(world, "bs.readonly", role="business_support", teams=())

    def ops_of(name: str) -> Operations:
        with world.services.db.session() as session:
            user, token = accounts.token_for(session, token_of(world, name, scope="read"))
            return Operations(world.services, accounts.principal_for(user, via="token", scope=token.scope))

    auditor, support = ops_of("aud.readonly"), ops_of("bs.readonly")
    assert auditor.access_log(0, 5, child_id=None, user=None, since=None, until=None, action=None, outcome=None).limit == 5
    for attempt in (lambda: auditor.record_purpose("case-file audit of this child", child_id="AB123456"),
                    lambda: support.discard_quarantined("no-such-claim", "blank test page scanned"),
                    lambda: support.retry_quarantined("no-such-claim"),
                    lambda: auditor.create_token("more", None)):
        with pytest.raises(AccessDenied) as refused:
            attempt()
        assert refused.value.code == "token_scope"
