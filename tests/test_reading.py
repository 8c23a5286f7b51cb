"""Reading a record: the document viewer, search hits marked on the page, and its access rules."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from escr.app.reading import is_hit, query_prefixes
from escr.web import create_app
from tests.support.web import World, csrf_from, open_world, sign_in


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
