"""Each role's home after signing in, the words that replace codes, and UK dates and times."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from escr.app import labels
from escr.app.access import Role
from escr.errors import ConfigError
from escr.settings import load_settings
from escr.web import create_app
from tests.support.web import SCANNER, World, a_file_being_read, open_world, sign_in


@pytest.fixture(scope="module")
def world(tmp_path_factory, pytestconfig, postgres_server) -> World:
    yield from open_world(tmp_path_factory, pytestconfig, postgres_server, "homes")


@pytest.fixture(scope="module")
def app(world):
    return create_app(world.services)


def client_for(app, username: str) -> TestClient:
    client = TestClient(app)
    sign_in(client, username)
    return client


def allocate(world: World, child_id: str, username: str | None) -> None:
    from escr.app import accounts
    from escr.record.events import Actor

    with world.services.db.session() as session:
        accounts.allocate(session, child_id, username, actor=Actor(kind="user", name="setup"))


def test_uk_dates_local_times_with_the_zone_and_words_for_codes():
    assert labels.uk_date("2025-06-14") == "14 June 2025"
    assert labels.uk_date("2025-06-14", short=True) == "14/06/2025"
    assert labels.local_time("2025-06-14T14:04:00+00:00") == "14 June 2025, 15:04 BST"
    assert labels.local_time("2025-01-14T14:04:00+00:00", short=True) == "14/01/2025 14:04 GMT"
    assert labels.local_time(datetime(2025, 6, 14, 14, 4, tzinfo=UTC), "Europe/Paris") == "14 June 2025, 16:04 CEST"
    assert labels.child_banner("cp", "open") == "Child protection plan, open"
    assert labels.label("third_party_permission_required", "error").startswith("This document holds third-party")
    assert labels.label("awaiting_verification", "document_state") == "Waiting for verification"
    assert labels.label("some_new_code", "document_state") == "Some new code"
    assert labels.reason("no child identified beyond doubt (no_match)") == \
        "no child identified beyond doubt (no likely child found)"
    assert labels.reason("QC: page 2 (skewed 4 degrees)") == "QC: page 2 (skewed 4 degrees)"
    assert set(labels.ROLES) == {r.value for r in Role}


def test_the_time_zone_is_a_setting_and_a_wrong_one_is_refused(tmp_path):
    assert load_settings(home=tmp_path).web.timezone == "Europe/London"
    with pytest.raises(ConfigError, match="web.timezone"):
        load_settings(home=tmp_path, web={"timezone": "Mars/Olympus"})


def test_a_caseworker_starts_on_their_caseload_with_new_documents_marked(app, world):
    allocate(world, "AB123456", "cw.north")
    try:
        cw = client_for(app, "cw.north")
        page = cw.get("/")
        assert page.status_code == 200
        html = page.text
        assert "Your caseload" in html and "Amelia Rose Whitfield" in html
        assert '<li class="banner cp">Child protection plan</li>' in html and "cp / open" not in html  # in words
        assert "14/06/2015" in html  # born, a UK date
        assert "new</span>" in html and "not opened yet" in html
        cw.get("/children/AB123456")  # reading the record...
        again = cw.get("/").text
        assert "Nothing new" in again and "last looked" in again  # ...clears the new mark
        assert "Oliver" not in again  # a caseworker sees their allocated children only
    finally:
        allocate(world, "AB123456", None)


def test_a_team_manager_sees_the_team_and_the_documents_waiting_for_verification(app, world):
    html = client_for(app, "tm.north").get("/").text
    assert "Your team’s caseload" in html
    assert "Amelia Rose Whitfield" in html and "Oliver Whitfield" in html and "Jayden" not in html
    assert "Waiting for verification" in html and f"/documents/{world.docs['referral']}/work" in html
    sophie = html[html.index("Sophie"):html.index("</tr>", html.index("Sophie"))]
    assert '<li class="banner closed">Closed</li>' in sophie and "Open" not in sophie  # cin / closed, in words


def test_business_support_start_on_the_intake_with_each_file_s_stage_and_pages(app, world):
    with a_file_being_read(world, "in-progress.pdf", "read_pages", 3, 12) as say:
        bs = client_for(app, "bs.jones")
        html = bs.get("/").text
        assert "<h1>Intake</h1>" in html and "in-progress.pdf" in html
        assert "Reading the pages" in html and "3 of 12 pages" in html
        # Without JavaScript the page refreshes itself; with it, the part below is fetched again.
        assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in html
        assert 'href="/">Refresh now' in html and 'data-src="/intake/processing"' in html
        assert "waiting for indexing" in html and "oldest waiting" in html
        say("build_reading_copies", 12, 12)
        part = bs.get("/intake/processing")
        assert part.status_code == 200 and "<html" not in part.text
        assert "Making reading copies" in part.text and "12 of 12 pages" in part.text
        assert "BST" in part.text or "GMT" in part.text  # "As of" in local time with the zone
        assert client_for(app, "cw.north").get("/intake/processing").status_code == 403
    calm = client_for(app, "bs.jones").get("/").text
    assert "No file is being processed" in calm and "http-equiv" not in calm


def test_an_auditor_starts_on_the_integrity_verdict_and_the_break_glass_to_review(app, world):
    south = client_for(app, "cw.south")
    from tests.support.web import csrf_from

    token = csrf_from(south.get("/break-glass").text)
    south.post("/break-glass", data={"child_id": "AB123456", "reason": "Out-of-hours duty call about Amelia",
                                     "csrf_token": token})
    html = client_for(app, "aud.one").get("/").text
    assert "Integrity of the record" in html
    assert "No fixity run yet" in html and "not been anchored yet" in html
    assert "waiting for review (1)" in html and "Out-of-hours duty call" in html


def test_an_administrator_starts_on_users_teams_tokens_and_the_state_of_the_system(app, world):
    allocate(world, "AB123456", "cw.north")
    try:
        html = client_for(app, "admin").get("/").text
    finally:
        allocate(world, "AB123456", None)
    assert "Administration" in html and "The system is working" in html
    assert "Team manager: 1" in html and '<td data-label="Team">North team</td>' in html
    assert '<td data-label="Children">3</td><td data-label="Allocated">1</td>' in html  # north: 3, one allocated
    assert "Largest caseloads: cw.north 1" in html
    assert "0 files being read now; 0 in quarantine" in html and "No whole-record fixity check" in html
    assert "Manage users" in html


def test_break_glass_from_a_search_by_name_and_date_of_birth_keeping_what_was_typed(app, world):
    from tests.support.web import csrf_from

    north = client_for(app, "cw.north")
    token = csrf_from(north.get("/break-glass").text)
    found = north.post("/break-glass/find", data={"name": "okonkwo", "date_of_birth": "30/11/2011",
                                                  "csrf_token": token})
    assert found.status_code == 200 and "Jayden Okonkwo" in found.text and "born 30 November 2011" in found.text
    assert 'value="CD654321"' in found.text  # the break-glass form for that child
    wrong_date = north.post("/break-glass/find", data={"name": "Okonkwo", "date_of_birth": "1/12/2011",
                                                       "csrf_token": token})
    assert "No child has that name and date of birth" in wrong_date.text and "Jayden" not in wrong_date.text
    garbled = north.post("/break-glass/find", data={"name": "Okonkwo", "date_of_birth": "last spring",
                                                    "csrf_token": token})
    assert garbled.status_code == 422 and "date of birth was not understood" in garbled.text
    assert 'value="Okonkwo"' in garbled.text and 'value="last spring"' in garbled.text  # what was typed stays
    opened = north.post("/break-glass", data={"child_id": "CD654321", "reason": "Duty call: police at the door",
                                              "csrf_token": token}, follow_redirects=True)
    assert "under break-glass access" in opened.text and ("BST" in opened.text or "GMT" in opened.text)


def test_business_support_see_throughput_and_queue_ages_as_charts_and_as_tables(app, world):
    import re
    from html import unescape

    html = client_for(app, "bs.jones").get("/").text
    charts = re.findall(r'<svg class="chart (?:wide|narrow)" role="img" aria-labelledby="([a-z-]+)".*?</svg>', html, re.S)
    # Two charts drawn on the server, each titled, each drawn for a desktop and for a phone.
    assert charts == ["throughput-title", "throughput-title-phone", "ages-title", "ages-title-phone"]
    assert "Documents filed and verified each day" in html and "<script" not in html.split("<main")[1]
    # The numbers as tables: today's row counts the documents the world filed today.
    rows = re.findall(r'<tr><td data-label="Day">([^<]+)</td><td data-label="Documents filed">(\d+)</td>', html)
    assert len(rows) == 14 and int(rows[-1][1]) >= len(world.docs)
    assert re.match(r"\d{1,2} [A-Z][a-z]+ \d{4}$", rows[-1][0])  # 5 December 2026
    ages = re.search(r'Waiting for verification</a></td><td data-label="Under a day">(\d+)</td>', unescape(html))
    assert ages and int(ages.group(1)) >= 1


def test_the_queue_shows_first_pages_names_and_file_names_filters_and_rejects_in_bulk(app, world):
    from tests.support.web import csrf_from

    bs = client_for(app, "bs.jones")
    html = bs.get("/queue?state=awaiting_verification").text
    ref, own = world.docs["referral"], world.docs["own_scan"]
    assert f'src="/documents/{ref}/pages/1.png"' in html and bs.get(f"/documents/{ref}/pages/1.png").status_code == 200
    assert "Amelia Rose Whitfield" in html and "from batch.pdf" in html and "from single.pdf" in html
    assert "(no_match)" not in bs.get("/queue?state=needs_indexing").text  # codes in words
    assert 'name="documents"' in html and "Approve" not in html  # a bulk rejection, never a bulk verify
    narrowed = bs.get("/queue?state=awaiting_verification&child=whitfield").text
    assert ref in narrowed and own not in narrowed and 'value="whitfield"' in narrowed  # the filter stays shown
    assert "matches these filters" in bs.get("/queue?child=nobody-by-this-name").text
    assert own in bs.get(f"/queue?operator={SCANNER}&doc_type=consent_form").text

    done = bs.post("/queue/reject", data={"documents": [own, "NO-SUCH-DOC"], "reason": "Pages skewed: rescan them",
                                          "back_to": "/queue?state=awaiting_verification",
                                          "csrf_token": csrf_from(html)}, follow_redirects=True)
    assert done.status_code == 200 and f"1 rejected for a rescan: {own}" in done.text
    assert "Document NO-SUCH-DOC not rejected: Not found." in done.text
    assert own in bs.get("/queue?state=rejected").text and own not in bs.get("/queue?state=awaiting_verification").text
    short = bs.post("/queue/reject", data={"documents": [ref], "reason": "bad", "csrf_token": csrf_from(html)})
    assert short.status_code == 422 and "at least 10 characters" in short.text
