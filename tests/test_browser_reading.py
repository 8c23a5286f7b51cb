"""The caseworker's journey in Chromium, with scripts on: home (the caseload), the child's
chronology, a document opened in the viewer in one click, the next page by the keyboard, and a
word searched for marked on the page image; at laptop and phone widths, with no sideways
scrolling and no serious axe-core finding on any page on the way. Screenshots of each step go
to the test's temporary directory (and to ESCR_TEST_SCREENSHOTS, when set)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.support.web import World, file_document, open_world
from tests.test_browser import (  # noqa: F401  (fixtures shared with the other browser tests)
    LAPTOP,
    PHONE,
    allocate,
    base_url,
    browser,
    serious_axe_findings,
    sign_in_at,
    widths,
)

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Page, expect  # noqa: E402

ASSESSMENT = [["Single assessment", "Date: 4 March 2026", "Completed by: Sam Patel",
               "Amelia lives with her mother and her brother."],
              ["Analysis", "The family support worker visited the home twice.",
               "Amelia was seen alone and spoke about school."]]


@pytest.fixture(scope="module")
def world(tmp_path_factory, pytestconfig, postgres_server) -> World:
    """This module's own record: the documents it adds are not the other browser tests' world."""
    yield from open_world(tmp_path_factory, pytestconfig, postgres_server, "browser-reading")


@pytest.fixture(scope="module")
def assessment(world, pytestconfig):
    # A second verified letter first, so the viewer has a document to move on to.
    file_document(world, pytestconfig, "letter", child_id="AB123456", doc_type="correspondence",
                  pages=[["Letter from the school", "Date: 2 February 2026", "Amelia's attendance has improved."]],
                  sheet="B-WEB00006", verify_by="tm.north")
    return file_document(world, pytestconfig, "assessment", child_id="AB123456", doc_type="assessment",
                         pages=ASSESSMENT, sheet="B-WEB00005", verify_by="tm.north")


def check(page: Page, tmp_path_factory, step: str, width: str, problems: list[str], journey: str = "reading") -> None:
    """No sideways scrolling, no serious axe finding; a screenshot named `journey-step-width.png`."""
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    wide, window = widths(page)
    if wide > window:
        problems.append(f"{step} scrolls sideways at {width}: {wide} px in {window} px")
    problems.extend(f"{step} at {width}: {finding}" for finding in serious_axe_findings(page))
    for folder in (tmp_path_factory.getbasetemp() / "screenshots", os.environ.get("ESCR_TEST_SCREENSHOTS")):
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(folder) / f"{journey}-{step}-{width}.png"), full_page=True)


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_a_caseworker_reads_a_document_from_the_caseload_to_a_marked_word(
        browser, base_url, world, assessment, tmp_path_factory, width):  # noqa: F811
    allocate(world, "AB123456", "cw.north")
    context, page = sign_in_at(browser, base_url, "cw.north", PHONE if width == "phone" else LAPTOP)
    problems: list[str] = []
    try:
        expect(page.get_by_role("heading", name="Your caseload")).to_be_visible()
        check(page, tmp_path_factory, "1-home", width, problems)
        page.get_by_role("link", name="Amelia Rose Whitfield").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Amelia Rose Whitfield")
        row = page.locator("table.chronology tbody tr").filter(has_text="Assessment")
        expect(row).to_contain_text("Single assessment")  # a line saying what it is
        expect(row).to_contain_text("Sam Patel")  # and whom it is from
        expect(page.get_by_text("2 documents are not yet verified and not shown")).to_be_visible()
        check(page, tmp_path_factory, "2-chronology", width, problems)

        page.get_by_role("link", name="Assessment").first.click()  # one click from the chronology
        expect(page.get_by_text("Page 1 of 2", exact=True)).to_be_visible()
        image = page.get_by_role("img", name="Page 1 of 2")
        expect(image).to_be_visible()
        assert page.evaluate("i => i.naturalWidth", image.element_handle()) > 600  # readable, not a thumbnail
        check(page, tmp_path_factory, "3-viewer", width, problems)
        # The file reads on from one document to the next in the chronology's order.
        where = page.get_by_text(re.compile(r"^Document \d+ of \d+ in the chronology$"))
        position, count = map(int, re.findall(r"\d+", where.inner_text()))
        assert count >= 2, "the world files more than one verified document to AB123456"
        later = position < count
        page.get_by_role("link", name="Later document →" if later else "← Earlier document").click()
        expect(where).to_have_text(f"Document {position + 1 if later else position - 1} of {count} in the chronology")
        page.get_by_role("link", name="← Earlier document" if later else "Later document →").click()
        expect(where).to_have_text(f"Document {position} of {count} in the chronology")
        expect(page.get_by_text("Page 1 of 2", exact=True)).to_be_visible()  # back on the assessment

        expect(page.locator("#keys")).to_be_visible()  # the viewer's script is listening (it shows the keys)
        page.locator("body").press("ArrowRight")  # the keyboard turns the page
        expect(page.get_by_text("Page 2 of 2", exact=True)).to_be_visible()
        expect(page).to_have_url(re.compile(r"page=2"))
        page.get_by_role("link", name="← Previous page").click()
        expect(page.get_by_text("Page 1 of 2", exact=True)).to_be_visible()

        page.get_by_label("Find in this document").fill("visited")
        page.get_by_role("button", name="Find", exact=True).click()
        expect(page.get_by_role("status").filter(has_text="visited")).to_contain_text("is on page 2")
        expect(page.get_by_text("Page 2 of 2", exact=True)).to_be_visible()  # opened at the hit
        mark = page.locator("svg.hits rect")
        expect(mark).to_have_count(1)
        box, sheet = mark.bounding_box(), page.locator(".sheet img").bounding_box()
        assert box and sheet and box["width"] > 10 and box["height"] > 5
        assert sheet["y"] < box["y"] < sheet["y"] + sheet["height"] / 2  # on the second line, near the top
        expect(page.get_by_text(f"Document {position} of {count} in the chronology")).to_be_visible()  # kept
        check(page, tmp_path_factory, "4-found", width, problems)

        page.locator("body").press("+")  # zoom in place; the page scrolls inside its frame, not sideways
        expect(page.locator(".sheet")).to_have_class(re.compile("zoom-150"))
        check(page, tmp_path_factory, "5-zoomed", width, problems)
    finally:
        context.close()
        allocate(world, "AB123456", None)
    assert not problems, "\n".join(problems)
