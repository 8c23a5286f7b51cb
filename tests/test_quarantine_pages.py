"""Quarantine on the intake page (issue 17): business support choose several quarantined files and
retry them with one plain form, without JavaScript; each goes back or is named with its reason."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from escr.record.models import Event
from escr.web import create_app
from tests.support.web import World, csrf_from, open_world, quarantine_a_file, sign_in


@pytest.fixture(scope="module")
def world(tmp_path_factory, pytestconfig, postgres_server) -> World:
    yield from open_world(tmp_path_factory, pytestconfig, postgres_server, "quarantine_pages")


@pytest.fixture(scope="module")
def bs(world) -> TestClient:
    client = TestClient(create_app(world.services))
    sign_in(client, "bs.jones")
    return client


def test_chosen_quarantined_files_go_back_together_and_the_page_says_which(world, bs):
    first, second = quarantine_a_file(world, "letter.pdf"), quarantine_a_file(world, "report.pdf")
    page = bs.get("/intake").text
    assert "2 files in quarantine" in page
    # A plain form: each row's box belongs to it by the form attribute, so no script is needed.
    assert re.search(r'<form method="post" action="/quarantine/retry" id="retry-many"', page)
    for claim in (first, second):
        assert f'name="claim_ids" value="{claim}" form="retry-many"' in page
    assert "Choose bs.scanner/mfd-1/letter.pdf" in page  # each box is labelled by its file

    done = bs.post("/quarantine/retry", data={"claim_ids": [first, second, "gone-already"],
                                              "csrf_token": csrf_from(page)}, follow_redirects=True)
    assert done.status_code == 200
    assert ("2 files put back in the intake folder for another try: bs.scanner/mfd-1/letter.pdf, "
            "bs.scanner/mfd-1/report.pdf.") in done.text
    assert ("Quarantined file gone-already not retried: it is not in quarantine (already retried or "
            "discarded, or never there).") in done.text
    assert "No quarantined files." in done.text
    assert (world.settings.intake_dir / "bs.scanner" / "mfd-1" / "letter.pdf").exists()
    with world.services.db.session() as session:
        logged = {e.detail["parameters"]["claim_id"] for e in session.scalars(
            select(Event).where(Event.kind == "quarantine_released", Event.actor == "bs.jones"))}
    assert logged == {first, second}


def test_retrying_nothing_or_too_many_is_refused_on_the_page_and_nothing_moves(world, bs):
    claim = quarantine_a_file(world, "kept.pdf")
    token = csrf_from(bs.get("/intake").text)
    none = bs.post("/quarantine/retry", data={"csrf_token": token}, headers={"Referer": "http://testserver/intake"},
                   follow_redirects=True)
    assert "choose at least one of the quarantined files; nothing was retried" in none.text
    many = bs.post("/quarantine/retry", data={"claim_ids": [claim] + [f"c{i}" for i in range(100)],
                                              "csrf_token": token},
                   headers={"Referer": "http://testserver/intake"}, follow_redirects=True)
    assert "choose at most 100 quarantined files at once (101 were chosen); nothing was retried" in many.text
    assert f'value="{claim}" form="retry-many"' in bs.get("/intake").text  # still in quarantine
