"""Saved views in Chromium (issue 17): a team manager filters a child's chronology, saves it with a
name, finds it on the home page and opens it there in one click, then removes it; at 1280 and 390 px,
with no sideways scrolling and no serious axe-core finding on any page on the way. Screenshots of
each step go to the test's temporary directory (and to ESCR_TEST_SCREENSHOTS, when set)."""

from __future__ import annotations

import pytest

from tests.support.web import World, open_world
from tests.test_browser import (  # noqa: F401  (fixtures shared with the other browser tests)
    PHONE,
    base_url,
    browser,
    sign_in_at,
)
from tests.test_browser_reading import check as check_page

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Page, expect  # noqa: E402

DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def world(tmp_path_factory, pytestconfig, postgres_server) -> World:
    """This module's own record, so the views saved here are nobody else's test data."""
    yield from open_world(tmp_path_factory, pytestconfig, postgres_server, "browser-views")


def check(page: Page, tmp_path_factory, step: str, width: str, problems: list[str]) -> None:
    check_page(page, tmp_path_factory, step, width, problems, journey="views")


@pytest.mark.parametrize("width", ["1280", "390"])
def test_a_manager_saves_a_view_and_opens_it_from_home_in_one_click(
        browser, base_url, world, tmp_path_factory, width):  # noqa: F811
    context, page = sign_in_at(browser, base_url, "tm.north", PHONE if width == "390" else DESKTOP)
    name = f"Police reports ({width})"
    problems: list[str] = []
    try:
        page.goto("/children/AB123456")
        expect(page.get_by_text("None yet. Filter the chronology below")).to_be_visible()
        page.get_by_label("Report from police").check()
        page.get_by_label("Show", exact=True).select_option(label="All documents")
        page.get_by_label("Order", exact=True).select_option(label="Newest first")
        page.get_by_role("button", name="Show", exact=True).click()
        rows = page.locator("table.chronology tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("Police information")
        page.get_by_text("Save these filters as a view").click()
        check(page, tmp_path_factory, "1-chronology-filtered", width, problems)

        page.get_by_label("Name", exact=True).fill(name)
        page.get_by_role("button", name="Save view").click()
        expect(page.get_by_role("status").filter(has_text="saved.")).to_contain_text(name)
        expect(page.locator(".view-open")).to_contain_text("Report from police; all documents")
        expect(page.locator("table.chronology tbody tr")).to_have_count(1)
        check(page, tmp_path_factory, "2-view-open", width, problems)

        page.goto("/")
        expect(page.get_by_role("heading", name="Your saved views")).to_be_visible()
        check(page, tmp_path_factory, "3-home", width, problems)
        page.get_by_role("link", name=name).click()  # one click from home to the filtered record
        expect(page.locator(".view-open")).to_contain_text(name)
        expect(page.locator("table.chronology tbody tr").first).to_contain_text("Police information")

        page.get_by_role("link", name="Manage your views").click()
        expect(page.get_by_role("heading", name="Your saved views", level=1)).to_be_visible()
        check(page, tmp_path_factory, "4-views", width, problems)
        page.get_by_role("button", name=f"Remove the view {name}").click()
        expect(page.get_by_role("status").filter(has_text="View removed.")).to_be_visible()
        expect(page.get_by_text("You have no saved views yet.")).to_be_visible()
    finally:
        context.close()
    assert not problems, "\n".join(problems)
