"""Reading a record: the document viewer, search hits marked on the page, and its access rules."""

from __future__ import annotations

import re
from datetime import date

import pytest
from fastapi.testclient import TestClient

from escr.app.labels import status_banners
from escr.app.reading import is_hit, query_prefixes
from escr.web import create_app
from tests.support.web import World, csrf_from, file_document, open_world, sign_in


@pytest.fixture(scope="module")
def world(tmp_path_factory, pytestconfig, postgres_server) -> World:
    yield from open_world(tmp_path_factory, pytestconfig, postgres_server, "reading")


@pytest.fixture(scope="module")
def app(world):
    return create_app(world.services)


def client_for(app, username: str) -> TestClient:
    client = TestClient(app)
    sign_in(client, username)
    return client


def test_a_searched_word_matches_its_other_forms_and_nothing_longer():
    prefixes = query_prefixes("Visit, families")
    assert [w for w in ["visited", "Visit.", "visitation", "family", "families", "famous"] if is_hit(w, prefixes)] \
        == ["visited", "Visit.", "family", "families"]


def test_the_viewer_shows_a_page_at_reading_size_and_marks_the_words_searched_for(app, world):
    south = world.docs["south"]
    cw = client_for(app, "cw.south")
    page = cw.get(f"/documents/{south}/view")
    assert page.status_code == 200
    assert "Page 1 of 1" in page.text and f'/documents/{south}/pages/1.png?size=view' in page.text
    assert "<svg class=\"hits\"" not in page.text
    image = cw.get(f"/documents/{south}/pages/1.png?size=view")
    thumb = cw.get(f"/documents/{south}/pages/1.png")
    assert image.content.startswith(b"\x89PNG") and len(image.content) > 4 * len(thumb.content)

    found = cw.post(f"/documents/{south}/view", data={"q": "visit", "csrf_token": csrf_from(page.text)})
    assert found.status_code == 200
    assert "is on page 1." in found.text and "1 match marked on this page" in found.text
    rects = re.findall(r'<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"', found.text)
    assert len(rects) == 1
    x, y, w, h = (float(v) for v in rects[0])
    assert 0 <= x < 500 and 0 < y < 1000 and 10 < w < 300 and 5 < h < 80  # a word's box, on the left half
    assert "visit" not in str(found.url) and "q=visit" not in found.text  # posted: no URL holds the words
    missing = cw.post(f"/documents/{south}/view", data={"q": "adoption", "csrf_token": csrf_from(page.text)})
    assert "is not in the text of this document" in missing.text


def test_the_viewer_keeps_need_to_know_and_third_party_rules_as_the_pdf_does(app, world):
    tp = world.docs["third_party"]
    north = client_for(app, "cw.north")  # the team's caseworker, not allocated: no unverified content
    page = north.get(f"/documents/{tp}/view")
    assert page.status_code == 200 and "is not yet verified" in page.text
    assert "size=view" not in page.text
    assert north.get(f"/documents/{tp}/pages/1.png?size=view").status_code == 403
    assert north.get(f"/documents/{tp}/pdf").status_code == 403
    refused = north.post(f"/documents/{tp}/view", data={"q": "neighbour", "csrf_token": csrf_from(page.text)})
    assert "<rect" not in refused.text and "neighbour" not in refused.text.split("<main", 1)[1].split("Find in", 1)[0]
    south = client_for(app, "cw.south")  # another team: nothing at all
    assert south.get(f"/documents/{tp}/view").status_code == 403
    assert south.get(f"/documents/{tp}/pages/1.png?size=view").status_code == 403


def test_the_chronology_reads_like_one_with_the_chronology_pinned_and_pending_marked(app, world, pytestconfig):
    file_document(world, pytestconfig, "chronology", child_id="CD654321", doc_type="chronology", sheet="B-WEB00009",
                  pages=[["Chronology of significant events", "Date: 20 January 2026",
                          "12/01/2026 Referral received from the school"]], verify_by="tm.north")
    south = client_for(app, "cw.south").get("/children/CD654321").text
    pinned = south.split('class="pinned"', 1)[1].split("</div>", 1)[0]
    assert "Chronology: Chronology of significant events" in pinned and "20 January 2026" in pinned
    rows = south.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert "Dear Mr Okonkwo" in rows  # the letter's first line as its summary
    assert f'href="/documents/{world.docs["south"]}/view?child=CD654321"' in rows  # one click to its pages

    north = client_for(app, "cw.north")
    verified_only = north.get("/children/AB123456").text
    assert "2 documents are not yet verified and not shown" in verified_only
    assert "No verified documents" in verified_only
    everything = north.get("/children/AB123456?pending=1").text
    rows = everything.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert rows.count('class="pending"') == 2 and "Waiting for verification" in rows
    assert "Police information" not in rows  # third-party and not theirs to open: no line from its text
    assert "Summary shown only to those who may open it" in rows
    manager = client_for(app, "tm.north").get("/children/AB123456?pending=1&type=police_report").text
    assert "Police information" in manager and "Referral to Children" not in manager  # the filter, in the URL


def test_status_banners_say_what_holds_now_in_words_with_dates(app):
    history = [{"status": "cin", "from": "2019-01-04", "to": "2020-03-01", "on": None},
               {"status": "cp", "from": "2020-03-01", "to": None, "on": None}]
    assert [b["text"] for b in status_banners(history, "cp", "open", date(2026, 1, 1))] == \
        ["Child protection plan since 1 March 2020", "Open since 4 January 2019"]
    closed = [{"status": "cla", "from": "2015-02-01", "to": "2024-05-03", "on": None},
              {"status": "care_leaver", "from": "2024-05-03", "to": None, "on": None},
              {"status": "closed", "from": "2025-07-01", "to": None, "on": "2025-07-01"}]
    assert [b["text"] for b in status_banners(closed, "care_leaver", "closed", date(2026, 1, 1))] == \
        ["Care leaver since 3 May 2024", "Closed: final contact 1 July 2025"]
    assert [b["text"] for b in status_banners([], "cp", "open")] == ["Child protection plan, open"]
    undated = [{"status": "cin", "from": None, "to": None, "on": None}]  # closed in the index, no final contact date
    assert [b["text"] for b in status_banners(undated, "cin", "closed", date(2026, 1, 1))] == ["Child in need", "Closed"]
    page = client_for(app, "cw.north").get("/children/AB123456").text
    banners = page.split('<ul class="banners lead"', 1)[1].split("</ul>", 1)[0]
    assert "Child protection plan" in banners and "cp" not in banners.replace('class="banner cp"', "")
