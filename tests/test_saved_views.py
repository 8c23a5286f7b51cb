"""Saved views (issue 17): a person's named filters of a chronology, on the web, the API and the
command line. A view holds filters only: opening one is checked and logged as any read, and a
view is its owner's alone."""

from __future__ import annotations

import json
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from escr.app import accounts
from escr.app.saved_views import ViewFilters
from escr.cli.main import app as cli_app
from escr.errors import ValidationFailed
from escr.record.events import Actor
from escr.record.models import Event
from escr.web import create_app
from tests.support.cli import home_env
from tests.support.web import World, csrf_from, open_world, sign_in, token_clients


@pytest.fixture(scope="module")
def world(tmp_path_factory, pytestconfig, postgres_server) -> World:
    yield from open_world(tmp_path_factory, pytestconfig, postgres_server, "views")


@pytest.fixture(scope="module")
def app(world):
    return create_app(world.services)


@pytest.fixture(scope="module")
def api(app, world):
    return token_clients(app, world)


def browser(app, username: str) -> TestClient:
    client = TestClient(app)
    sign_in(client, username)
    return client


def rows_of(html: str) -> str:
    return html.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in html else ""


def list_events(world: World, username: str, child_id: str) -> list[Event]:
    with world.services.db.session() as session:
        return [e for e in session.scalars(select(Event).where(Event.category == "access", Event.actor == username,
                                                               Event.child_id == child_id).order_by(Event.id))
                if e.detail.get("action") == "list"]


def test_filters_are_checked_and_said_in_words():
    f = ViewFilters.parse(types=["referral", "", "police_report", "referral"], since="2026-03-01",
                          until=date(2026, 3, 31), state="all", third_party="only", text="  school   bruising ",
                          sort="newest")
    assert f.types == ("police_report", "referral") and f.text == "school bruising"
    assert f.describe() == ["1 March 2026 to 31 March 2026", "all documents",
                            "only documents with third-party information", "containing \u201cschool bruising\u201d",
                            "newest first"]
    assert ViewFilters.stored(f.as_dict()) == f
    assert ViewFilters.parse().describe() == []
    for bad in ({"since": "2026-04-01", "until": "2026-03-01"}, {"state": "deleted"}, {"sort": "sideways"},
                {"since": "31/02/2026"}, {"text": "x" * 201}, {"third_party": "maybe"}):
        with pytest.raises(ValidationFailed):
            ViewFilters.parse(**bad)  # type: ignore[arg-type]


def test_a_worker_saves_a_view_on_the_chronology_and_opens_it_in_one_click_from_home(app, world):
    manager = browser(app, "tm.north")
    page = manager.get("/children/AB123456")
    assert "Your saved views" in page.text and "None yet" in page.text
    saved = manager.post("/children/AB123456/views", follow_redirects=False, data={
        "csrf_token": csrf_from(page.text), "name": "Police, not yet verified", "type": "police_report",
        "state": "all"})
    assert saved.status_code == 303 and saved.headers["location"].endswith(
        "/children/AB123456?view=Police%2C+not+yet+verified#chronology")
    opened = manager.get(saved.headers["location"])
    assert "View \u201cPolice, not yet verified\u201d saved." in opened.text
    assert "Showing your view <strong>Police, not yet verified</strong>: Report from police; all documents" in opened.text
    rows = rows_of(opened.text)
    assert "Police information" in rows and "Referral to Children" not in rows
    assert 'aria-current="true">Police, not yet verified</a>' in opened.text

    home = manager.get("/").text
    assert 'href="/children/AB123456?view=Police%2C%20not%20yet%20verified#chronology">Police, not yet verified</a>' in home
    listed = manager.get("/views").text
    assert "Police, not yet verified" in listed and "Report from police; all documents" in listed

    # A view holds filters only: it opens on any record the person may read, under the usual rules.
    events = list_events(world, "tm.north", "AB123456")
    assert events[-1].outcome == "ok" and events[-1].detail["parameters"]["view"] and events[-1].detail["parameters"]["count"] == 1


def test_a_view_keeps_words_to_find_out_of_the_url_and_orders_newest_first(app, world):
    manager = browser(app, "tm.north")
    page = manager.get("/children/AB123456?state=all&sort=newest")
    assert page.text.index("Police information") < page.text.index("Referral to Children")  # 5 then 3 March
    saved = manager.post("/children/AB123456/views", follow_redirects=False, data={
        "csrf_token": csrf_from(page.text), "name": "Bruising", "state": "all", "sort": "newest",
        "text": "bruising"})
    assert "bruising" not in saved.headers["location"]
    rows = rows_of(manager.get(saved.headers["location"]).text)
    assert "Referral to Children" in rows and "Police information" not in rows


def test_a_view_that_cannot_be_saved_says_why_and_keeps_what_was_typed(app):
    manager = browser(app, "tm.north")
    page = manager.get("/children/AB123456")
    refused = manager.post("/children/AB123456/views", data={
        "csrf_token": csrf_from(page.text), "name": "a/b", "text": "school visit", "state": "all"})
    assert refused.status_code == 422
    assert "The view was not saved: a view&#39;s name cannot hold \u201c/\u201d" in refused.text
    assert 'value="a/b"' in refused.text and 'value="school visit"' in refused.text
    assert "<details id=\"save-view\" class=\"save-view\" open>" in refused.text


def test_business_support_find_their_views_on_the_intake_home(api, app):
    api("bs.jones").put("/api/v1/views/Consent forms", json={"child_id": "EF111222", "types": ["consent_form"],
                                                              "state": "all"})
    home = browser(app, "bs.jones").get("/").text
    assert 'href="/children/EF111222?view=Consent%20forms#chronology">Consent forms</a>' in home
    assert "Your saved views" not in browser(app, "admin").get("/admin/users").text


def test_views_are_their_owners_alone_and_hold_no_access(app, world):
    north = browser(app, "cw.north")
    page = north.get("/children/AB123456")
    north.post("/children/AB123456/views", data={"csrf_token": csrf_from(page.text), "name": "Mine"})
    assert "Mine" in north.get("/views").text
    other = browser(app, "tm.north")
    assert "Mine" not in other.get("/views").text and "Mine" not in other.get("/").text
    assert other.get("/children/AB123456?view=Mine").status_code == 404
    gone = other.post("/views/remove", data={"csrf_token": csrf_from(other.get("/views").text), "name": "Mine"})
    assert gone.status_code == 404 and "Mine" in north.get("/views").text

    # The view opens another child's record only for those who may read it: the refusal is logged.
    assert north.get("/children/CD654321?view=Mine").status_code == 403
    assert list_events(world, "cw.north", "CD654321")[-1].outcome != "ok"

    removed = north.post("/views/remove", follow_redirects=False,
                         data={"csrf_token": csrf_from(north.get("/views").text), "name": "Mine"})
    assert removed.status_code == 303 and "Mine" not in north.get("/views").text


def test_the_api_saves_lists_opens_and_removes_views(api, world):
    manager = api("tm.north")
    put = manager.put("/api/v1/views/Police", json={"child_id": "AB123456", "types": ["police_report"],
                                                     "state": "all"})
    assert put.status_code == 201 and put.json()["filters"]["types"] == ["police_report"]
    again = manager.put("/api/v1/views/Police", json={"child_id": "AB123456", "types": ["police_report"],
                                                       "state": "pending"})
    assert again.status_code == 200 and again.json()["filters"]["state"] == "pending"
    assert "Police" in [v["name"] for v in manager.get("/api/v1/views").json()]
    assert manager.get("/api/v1/views/Police").json()["child_id"] == "AB123456"

    chronology = manager.get("/api/v1/children/AB123456/chronology", params={"view": "Police"})
    assert chronology.status_code == 200
    body = chronology.json()
    assert [d["doc_type"] for d in body["documents"]["items"]] == ["police_report"]
    assert body["filters"]["state"] == "pending" and body["view"] == "Police"
    plain = manager.get("/api/v1/children/AB123456/chronology", params={"state": "all", "sort": "newest"}).json()
    assert [d["doc_type"] for d in plain["documents"]["items"]] == ["police_report", "referral"]
    assert manager.get("/api/v1/children/AB123456/chronology", params={"state": "gone"}).status_code == 422

    caseworker = api("cw.north")
    assert caseworker.get("/api/v1/views/Police").status_code == 404  # another's view does not exist for them
    assert caseworker.delete("/api/v1/views/Police").status_code == 404
    assert caseworker.get("/api/v1/children/AB123456/chronology", params={"view": "Police"}).status_code == 404
    south = api("cw.south")
    south.put("/api/v1/views/Everything", json={"state": "all"})
    refused = south.get("/api/v1/children/AB123456/chronology", params={"view": "Everything"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_your_team"

    assert manager.delete("/api/v1/views/Police").status_code == 204
    assert manager.get("/api/v1/views/Police").status_code == 404


def test_a_read_only_token_lists_views_but_saves_none(app, world):
    with world.services.db.session() as session:
        user = accounts.get_user(session, "cw.north")
        secret = accounts.create_token(session, user, "read", actor=Actor(kind="user", name="setup"),
                                       scope="read").secret
    reader = TestClient(app, headers={"Authorization": f"Bearer {secret}"})
    assert reader.get("/api/v1/views").status_code == 200
    refused = reader.put("/api/v1/views/Anything", json={})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "token_scope"


def escr(world: World, token: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli_app, list(args), env={**home_env(world.services), "ESCR_TOKEN": token})
    return result.exit_code, result.output


def test_the_cli_saves_lists_opens_and_removes_views(world):
    with world.services.db.session() as session:
        user = accounts.get_user(session, "tm.north")
        token = accounts.create_token(session, user, "cli", actor=Actor(kind="user", name="setup")).secret
    code, said = escr(world, token, "views", "save", "Referrals", "--child", "AB123456", "--type", "referral",
                      "--state", "all")
    assert code == 0 and "view Referrals saved" in said
    code, listed = escr(world, token, "views", "list", "--json")
    assert code == 0 and [v["name"] for v in json.loads(listed) if v["name"] == "Referrals"]
    code, docs = escr(world, token, "documents", "--child", "AB123456", "--view", "Referrals", "--json")
    assert code == 0 and [d["doc_type"] for d in json.loads(docs)] == ["referral"]
    code, table = escr(world, token, "documents", "--child", "AB123456", "--view", "Referrals")
    assert code == 0 and "view Referrals" in table
    code, bad = escr(world, token, "views", "save", "Wrong", "--sort", "sideways")
    assert code == 1 and "error (validation_failed)" in bad and "order must be one of" in bad
    code, _ = escr(world, token, "views", "remove", "Referrals")
    assert code == 0
    code, missing = escr(world, token, "documents", "--child", "AB123456", "--view", "Referrals")
    assert code == 1 and "no saved view of that name" in missing
