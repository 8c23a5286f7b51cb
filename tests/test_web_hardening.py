"""The server's answers (issue 20): files served sandboxed and unsniffed, a NUL in a search is the
searcher's mistake, a caseworker cannot tell which child ids exist, "%" and "_" are not
wildcards, searched names stay out of URLs, and health, metrics and the OpenAPI description
say nothing to strangers."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from escr.web import create_app
from tests.support.web import World, csrf_from, open_world, sign_in, token_clients


@pytest.fixture(scope="module")
def world(tmp_path_factory, pytestconfig, postgres_server) -> World:
    yield from open_world(tmp_path_factory, pytestconfig, postgres_server, "hardening")


@pytest.fixture(scope="module")
def app(world):
    return create_app(world.services)


@pytest.fixture(scope="module")
def as_user(app, world):
    """A client with the named user's API token."""
    return token_clients(app, world)


def signed_in(app, name: str) -> TestClient:
    client = TestClient(app)
    sign_in(client, name)
    return client


# --- files that reach caseworkers ----------------------------------------------------------------


def test_pdfs_and_originals_are_served_sandboxed_and_unsniffed(app, world, as_user):
    doc, own = world.docs["south"], world.docs["own_scan"]  # own_scan is its scan's only document
    # cw.south reads the verified document; own_scan is not yet verified, so business support
    # opens its original (issue 16: before verification, intake roles).
    browser, intake = signed_in(app, "cw.south"), signed_in(app, "bs.jones")
    answers = [browser.get(f"/documents/{doc}/pdf"), browser.get(f"/documents/{doc}/pdf?download=1"),
               intake.get(f"/documents/{own}/original"),
               as_user("cw.south").get(f"/api/v1/documents/{doc}/content"),
               as_user("bs.jones").get(f"/api/v1/documents/{own}/content?original=true")]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-security-policy"] == "sandbox"
        assert answer.headers["x-content-type-options"] == "nosniff"
    page = browser.get(f"/documents/{doc}")  # pages keep their own, stricter policy
    assert "default-src 'self'" in page.headers["content-security-policy"]


# --- searches ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/search?q=a%00b", "/api/v1/children?q=Whit%00field",
                                  "/api/v1/children/AB123456/search?q=%00"])
def test_a_nul_in_a_search_is_a_clear_400_not_a_database_failure(as_user, caplog, path):
    caplog.set_level(logging.INFO)
    answer = as_user("tm.north").get(path)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "nul_character"
    assert "NUL" in answer.json()["error"]["message"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("query", ["%", "_", "%%", "W_itfield", "%field"])
def test_percent_and_underscore_are_not_wildcards_in_find_a_child(as_user, query):
    found = as_user("bs.jones").get("/api/v1/children", params={"q": query})
    assert found.status_code == 200 and found.json()["total"] == 0
    assert as_user("bs.jones").get("/api/v1/children", params={"q": "hitfiel"}).json()["total"] > 0


def test_a_caseworker_cannot_tell_whether_a_child_id_exists(as_user):
    """CD654321 exists (south team); ZZ999999 does not. cw.north sees neither, and cannot tell them apart."""
    north = as_user("cw.north")
    for path in ("/api/v1/children/{}", "/api/v1/children/{}/documents", "/api/v1/children/{}/search?q=visit"):
        real, missing = north.get(path.format("CD654321")), north.get(path.format("ZZ999999"))
        assert (real.status_code, real.json()["error"]["code"]) == (missing.status_code, missing.json()["error"]["code"])
        assert real.json()["error"]["message"].replace("CD654321", "?") == \
            missing.json()["error"]["message"].replace("ZZ999999", "?")
    assert as_user("bs.jones").get("/api/v1/children/ZZ999999").status_code == 404  # the whole index is theirs


def test_searches_from_the_pages_are_posted_so_names_stay_out_of_urls(app):
    browser = signed_in(app, "tm.north")
    for path, query, expect in (("/children", "Whitfield", "AB123456"), ("/search", "bruising", "bruising"),
                                ("/children/AB123456/search", "bruising", "bruising")):
        form = browser.get(path)
        assert 'method="post"' in form.text
        answer = browser.post(path, data={"q": query, "csrf_token": csrf_from(form.text)}, follow_redirects=False)
        assert answer.status_code == 200 and expect in answer.text
        assert f"q={query}" not in answer.text  # the pager does not put it in a link either


# --- health, metrics, the API description, the server's name -----------------------------------


def test_health_metrics_and_openapi_say_nothing_to_strangers_by_default(app, as_user):
    stranger = TestClient(app)
    health = stranger.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}  # enough for a load balancer
    assert "checks" in as_user("aud.one").get("/healthz").json()  # the detail, to someone signed in
    assert stranger.get("/api/v1/openapi.json").status_code == 401
    assert as_user("cw.north").get("/api/v1/openapi.json").json()["info"]["title"] == "escr"
    assert stranger.get("/metrics").status_code == 403  # from the server itself only
    assert as_user("admin").get("/metrics").status_code == 403


def test_the_settings_can_open_or_close_them(world):
    web = world.settings.web.model_copy(update={"health_access": "signed_in", "openapi_access": "open",
                                                "metrics_access": "signed_in"})
    services = world.services.__class__(settings=world.settings.model_copy(update={"web": web}),
                                        db=world.services.db, store=world.services.store)
    stranger = TestClient(create_app(services))
    assert stranger.get("/healthz").status_code == 401
    assert stranger.get("/api/v1/openapi.json").status_code == 200
    assert stranger.get("/metrics").status_code == 401


PROXY = "10.0.0.5"  # a TLS-terminating proxy in front of escr, listed in web.trusted_proxies


def _behind_a_proxy(world, proxies: list[str], **web):  # type: ignore[no-untyped-def]
    settings = world.settings.web.model_copy(update={"trusted_proxies": proxies, **web})
    return create_app(world.services.__class__(settings=world.settings.model_copy(update={"web": settings}),
                                               db=world.services.db, store=world.services.store))


def _sign_in_as(app, username: str, password: str, peer: str, forwarded_for: str | None = None) -> int:
    client = TestClient(app, client=(peer, 5000))
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    form = client.get("/login", headers=headers)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": csrf_from(form.text)},
                       headers=headers, follow_redirects=False).status_code


def test_a_stranger_behind_the_proxy_cannot_stop_everyone_else_signing_in(world):
    """Behind a proxy every request comes from its address: the throttle must count the person's."""
    from tests.support.web import PASSWORD

    app = _behind_a_proxy(world, [f"{PROXY}/32"], login_backoff_seconds=600.0)
    tries = world.settings.web.login_client_max_failures + 3
    for n in range(tries):
        assert _sign_in_as(app, f"guess{n}", "wrong password here", PROXY, "203.0.113.9") == 401
    assert _sign_in_as(app, "admin", PASSWORD, PROXY, "203.0.113.9") == 401  # the stranger is slowed down
    assert _sign_in_as(app, "admin", PASSWORD, PROXY, "192.0.2.10") == 303  # everyone else signs in
    # A header from anyone but the proxy is not believed: a fresh made-up address per try buys nothing.
    for n in range(tries):
        _sign_in_as(app, f"guess{n}", "wrong password here", "198.51.100.9", f"192.0.2.{n}")
    assert _sign_in_as(app, "admin", PASSWORD, "198.51.100.9", "192.0.2.200") == 401


def test_metrics_and_health_detail_stay_local_when_a_proxy_on_the_server_forwards_requests(world):
    app = _behind_a_proxy(world, ["127.0.0.1/32"])
    from_outside = TestClient(app, client=("127.0.0.1", 5000), headers={"X-Forwarded-For": "203.0.113.9"})
    assert from_outside.get("/metrics").status_code == 403
    assert from_outside.get("/healthz").json() == {"status": "ok"}
    # A proxy on the server that is not listed still says it forwarded the request.
    unlisted = TestClient(_behind_a_proxy(world, []), client=("127.0.0.1", 5000),
                          headers={"X-Forwarded-For": "203.0.113.9"})
    assert unlisted.get("/metrics").status_code == 403
    assert TestClient(app, client=("127.0.0.1", 5000)).get("/metrics").status_code == 200  # a local scraper


def test_a_huge_form_or_body_is_refused_with_413_not_held_in_memory(app, as_user):
    """A stranger's 300 MB form posted to the sign-in page was held whole in memory before anything
    looked at it; now anything past web.max_body_kb is refused, declared or not."""
    stranger = TestClient(app)
    form = {"content-type": "application/x-www-form-urlencoded"}
    big = b"username=" + b"a" * (2 * 1024 * 1024) + b"&password=x&csrf_token=y"
    declared = stranger.post("/login", content=big, headers=form)
    assert declared.status_code == 413 and "too large" in declared.text

    def chunks():  # no Content-Length: counted as it arrives
        yield b"username="
        for _ in range(40):
            yield b"a" * (64 * 1024)
    assert stranger.post("/login", content=chunks(), headers=form).status_code == 413
    answer = as_user("tm.north").post("/api/v1/search", content=chunks(), headers={"content-type": "application/json"})
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "request_too_large"
    assert as_user("tm.north").post("/api/v1/search", json={"q": "bruising"}).status_code == 200  # ordinary ones pass


def test_the_api_takes_searches_in_the_body_too(as_user):
    manager = as_user("tm.north")
    found = manager.post("/api/v1/children/find", json={"q": "Whitfield"}).json()
    assert "AB123456" in [c["child_id"] for c in found["items"]]
    for path in ("/api/v1/search", "/api/v1/children/AB123456/search"):
        hits = manager.post(path, json={"q": "bruising"}).json()
        assert hits["total"] > 0 and all("bruising" in h["snippet"].lower() for h in hits["items"])
    assert manager.post("/api/v1/search", json={"q": "a\x00b"}).json()["error"]["code"] == "nul_character"


# --- break-glass, allocation and corrections do not tell which child ids exist -------------------
# These change the module's world (break-glass opens CD654321 to cw.north), so they come last.


def _same(real, missing, real_id: str, missing_id: str) -> None:
    """Two answers a user cannot tell apart, once the ids they typed are set aside."""
    def shape(answer, child_id):  # type: ignore[no-untyped-def]
        body = answer.json()
        if isinstance(body, dict):
            body = {k: v for k, v in body.items() if k not in ("id", "started_at", "expires_at")}
        return answer.status_code, str(body).replace(child_id, "?")
    assert shape(real, real_id) == shape(missing, missing_id)


def test_a_team_manager_cannot_tell_whether_a_child_id_exists_by_allocating_it(as_user):
    manager = as_user("tm.north")  # CD654321 is a south child; ZZ999999 is nobody
    real = manager.put("/api/v1/children/CD654321/allocation", json={"username": "cw.north"})
    missing = manager.put("/api/v1/children/ZZ999999/allocation", json={"username": "cw.north"})
    assert real.status_code == 403
    _same(real, missing, "CD654321", "ZZ999999")
    assert as_user("admin").put("/api/v1/children/ZZ999999/allocation",
                                json={"username": "cw.north"}).status_code == 404  # the whole index is theirs


def test_a_correction_to_an_unknown_child_is_accepted_like_any_and_stopped_at_approval(world, as_user):
    from escr.app import accounts
    from escr.record.events import Actor

    with world.services.db.session() as session:  # the south team's manager, to decide
        accounts.add_user(session, "tm.south", role="team_manager", actor=Actor(kind="user", name="setup"),
                          display_name="Tm South", teams=("south",), third_party=False, password="x" * 16)
    worker, doc = as_user("cw.south"), world.docs["south"]
    reason = "Filed to the wrong child: the letter is about another boy."
    asked = worker.post(f"/api/v1/documents/{doc}/corrections", json={"reason": reason, "children": ["ZZ999999"]})
    assert asked.status_code == 201 and asked.json()["status"] == "pending"
    # While it waits, another try answers the same for a real child and for nobody.
    real = worker.post(f"/api/v1/documents/{doc}/corrections", json={"reason": reason, "children": ["AB123456"]})
    missing = worker.post(f"/api/v1/documents/{doc}/corrections", json={"reason": reason, "children": ["ZZ888888"]})
    assert real.status_code == 409
    _same(real, missing, "AB123456", "ZZ888888")
    # The second person is told, and the document stays where it was.
    manager = as_user("tm.south")
    approve = manager.post(f"/api/v1/corrections/{asked.json()['id']}/approve", json={"note": ""})
    assert approve.status_code == 409 and "ZZ999999" in approve.json()["error"]["message"]
    assert "not in the child index" in approve.json()["error"]["message"]
    assert worker.get(f"/api/v1/documents/{doc}").json()["children"] == ["CD654321"]
    refused = manager.post(f"/api/v1/corrections/{asked.json()['id']}/refuse", json={"reason": "No such child id."})
    assert refused.status_code == 200


def test_break_glass_to_an_id_not_in_the_index_answers_and_is_listed_as_for_a_real_child(app, as_user):
    worker, reason = as_user("cw.north"), {"reason": "Duty call at night: a child said to be at risk."}
    real = worker.post("/api/v1/children/CD654321/break-glass", json=reason)
    missing = worker.post("/api/v1/children/ZZ999999/break-glass", json=reason)
    assert real.status_code == 201
    _same(real, missing, "CD654321", "ZZ999999")
    mine = worker.get("/api/v1/break-glass").json()["items"]
    assert [g["child_id"] for g in mine][:2] == ["ZZ999999", "CD654321"]
    assert [sorted(g) for g in mine[:2]] == [sorted(mine[0])] * 2  # the same fields for both
    # On the web page too: both listed alike, both waiting for review.
    browser = signed_in(app, "cw.north")
    page = browser.get("/break-glass").text
    assert page.count("Waiting for review") >= 2 and "ZZ999999" in page and "CD654321" in page
    # Only after the break-glass (logged, waiting for review) does the record say the id is unknown.
    assert worker.get("/api/v1/children/ZZ999999").json()["error"]["code"] == "not_found"
    assert worker.get("/api/v1/children/CD654321").status_code == 200
    # The reviewer sees which ids were not in the index: a probe or a typo, to ask about.
    reviews = as_user("aud.one").get("/api/v1/break-glass/reviews").json()["items"]
    flags = {g["child_id"]: g["in_index"] for g in reviews if g["user"] == "cw.north"}
    assert flags == {"ZZ999999": False, "CD654321": True}
    review_page = signed_in(app, "aud.one").get("/break-glass/reviews").text
    assert review_page.count("Not in the child index") == 1
