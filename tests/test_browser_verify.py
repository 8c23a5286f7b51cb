"""Verifying and correcting in Chromium, as people do it: the verify page shows every page beside
every indexed field (the child's name, date of birth and NHS number to check identity by), each
with its source and confidence, least certain first; a verifier corrects a field and so hands the
decision on; decisions are never offered unseen or to the person who asked. Then a correction of
a verified document: asked by one person, approved by a second on the Corrections pages, with the
misfiling record. At 1280 and 390 px, no sideways scrolling, no serious axe-core finding;
screenshots go to the test's temporary directory (and to ESCR_TEST_SCREENSHOTS, when set)."""

from __future__ import annotations

import re

import pytest

from tests.support.web import World, file_document, open_world
from tests.test_browser import (  # noqa: F401  (fixtures shared with the other browser tests)
    PHONE,
    allocate,
    base_url,
    browser,
    sign_in_at,
)
from tests.test_browser_reading import check as check_page

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Page, expect  # noqa: E402

DESKTOP = {"width": 1280, "height": 800}
WIDTHS = {"1280": DESKTOP, "390": PHONE}
LETTER = [["Letter from the GP surgery", "Date: 6 March 2026", "Re: Amelia Whitfield",
           "Amelia was seen for a routine check and is well."]]


@pytest.fixture(scope="module")
def world(tmp_path_factory, pytestconfig, postgres_server) -> World:
    """This module's own record: what it verifies and corrects is not the other browser tests' world."""
    yield from open_world(tmp_path_factory, pytestconfig, postgres_server, "browser-verify")


def check(page: Page, tmp_path_factory, step: str, width: str, problems: list[str]) -> None:
    check_page(page, tmp_path_factory, step, width, problems, journey="verify")


def field_row(page: Page, name: str):  # type: ignore[no-untyped-def]
    """The row(s) of the indexed fields whose field (its row header) starts with `name`."""
    return page.locator("table.fields tbody tr").filter(has=page.locator("th", has_text=name))


def confidences(page: Page) -> list[float]:
    cells = page.locator("table.fields tbody td[data-label=Confidence]").all_inner_texts()
    return [-1.0 if c.strip() == "none" else float(c) for c in cells]


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_the_verify_page_shows_every_field_beside_the_pages_least_certain_first(
        browser, base_url, world, tmp_path_factory, width):  # noqa: F811
    ref, tp = world.docs["referral"], world.docs["third_party"]
    problems: list[str] = []
    context, page = sign_in_at(browser, base_url, "bs.jones", WIDTHS[width])
    try:
        page.goto(f"/documents/{ref}/work")
        expect(page.get_by_role("img", name="Page 1 of 1 as scanned")).to_be_visible()
        fields = page.locator("table.fields")
        expect(fields.locator("caption")).to_have_text("Indexed fields, least certain first")
        child = page.locator("table.fields tbody tr").filter(has_text="AB123456")
        expect(child).to_contain_text("Amelia Rose Whitfield")  # identity, checked against the page
        expect(child).to_contain_text("Born 14 June 2015")
        expect(child).to_contain_text("NHS number 9434765919")
        expect(child).to_contain_text("Pipeline, from the cover sheet")
        expect(field_row(page, "Document type")).to_contain_text("Referral")
        expect(field_row(page, "Document date")).to_contain_text("3 March 2026")
        expect(field_row(page, "Third-party information")).to_contain_text("no")
        assert confidences(page) == sorted(confidences(page))  # least certain first
        expect(page.get_by_role("button", name="Approve: verified")).to_be_visible()
        check(page, tmp_path_factory, "referral", width, problems)

        # A police report: business support without the permission cannot open it, so no decision
        # is offered (nor the flag, nor the index): it waits for a verifier who may open it.
        page.goto(f"/documents/{tp}/work")
        expect(page.get_by_role("img", name=re.compile("as scanned"))).to_have_count(0)
        expect(page.get_by_text("so no decision on it is offered to you")).to_be_visible()
        for button in ("Approve: verified", "Reject", "Clear the third-party flag", "Save index"):
            expect(page.get_by_role("button", name=button)).to_have_count(0)
        check(page, tmp_path_factory, "unseen", width, problems)
    finally:
        context.close()

    assert not problems, "\n".join(problems)


def test_a_verifier_s_correction_makes_them_the_indexer_so_another_person_verifies(
        browser, base_url, world, tmp_path_factory):  # noqa: F811
    tp, width, problems = world.docs["third_party"], "1280", []
    context, page = sign_in_at(browser, base_url, "tm.north", WIDTHS[width])
    try:
        page.goto(f"/documents/{tp}/work")  # the team manager holds the permission: they see it all
        expect(page.get_by_role("img", name="Page 1 of 1 as scanned")).to_be_visible()
        expect(field_row(page, "Third-party information")) \
            .to_contain_text("Pipeline, matched in the OCR text")  # "provided in confidence"
        page.get_by_label("Why it holds no third-party information").fill(
            "A note the family wrote themselves, not from the police")
        page.get_by_role("button", name="Clear the third-party flag").click()
        expect(page.get_by_role("status").first).to_contain_text("no longer flagged")
        expect(page).to_have_url(re.compile(f"/documents/{tp}/work$"))  # back where they were verifying
        row = field_row(page, "Third-party information")
        expect(row).to_contain_text("Typed by a person (tm.north)")
        # Their correction makes them the indexer: yet another person verifies.
        expect(page.get_by_role("button", name="Approve: verified")).to_have_count(0)
        expect(page.get_by_text("someone else must verify it")).to_be_visible()
        check(page, tmp_path_factory, "corrected-by-verifier", width, problems)
    finally:
        context.close()

    context, page = sign_in_at(browser, base_url, "bs.jones", WIDTHS[width])
    try:  # no longer third-party, so business support may now open it, correct its date and pass it on
        page.goto(f"/documents/{tp}/work")
        expect(page.get_by_role("img", name="Page 1 of 1 as scanned")).to_be_visible()
        page.get_by_label("Document date").fill("2026-03-04")
        page.get_by_role("button", name="Save index").click()
        expect(page.get_by_role("status").first).to_contain_text("waits for verification by someone else")
        date_row = field_row(page, "Document date")
        expect(date_row).to_contain_text("4 March 2026")
        expect(date_row).to_contain_text("Typed by a person (bs.jones)")
        expect(page.get_by_role("button", name="Approve: verified")).to_have_count(0)
    finally:
        context.close()
    assert not problems, "\n".join(problems)


def test_a_correction_is_asked_by_one_person_and_approved_by_another_with_a_misfiling_record(
        browser, base_url, world, pytestconfig, tmp_path_factory):  # noqa: F811
    letter = file_document(world, pytestconfig, "gp_letter", child_id="AB123457", doc_type="correspondence",
                           pages=LETTER, sheet="B-WEB00010", verify_by="bs.jones")
    problems: list[str] = []
    allocate(world, "AB123457", "cw.north")
    context, page = sign_in_at(browser, base_url, "cw.north", DESKTOP)
    try:  # the allocated worker of the wrong child opens it, sees it is Amelia's, and asks
        page.goto(f"/documents/{letter}")
        page.get_by_label("Why it is wrong").fill("This letter is about Amelia, not her brother Oliver")
        page.get_by_label("The right child ids (leave empty to keep)").fill("AB123456")
        page.get_by_role("button", name="Ask for the correction").click()
        expect(page.get_by_role("status").first).to_contain_text("second person")
        card = page.locator(".card").filter(has_text="asked by cw.north")
        expect(card).to_contain_text("pending")
        # They asked, so they are not offered the decision (four-eyes).
        expect(card).to_contain_text("You asked for this correction, so a second person approves or refuses it.")
        expect(page.get_by_role("button", name=re.compile("^Approve correction"))).to_have_count(0)
        expect(page.get_by_role("button", name=re.compile("^Refuse correction"))).to_have_count(0)
    finally:
        context.close()
        allocate(world, "AB123457", None)

    for width, viewport in WIDTHS.items():
        context, page = sign_in_at(browser, base_url, "tm.north", viewport)
        try:
            page.goto("/corrections")
            row = page.locator("table tbody tr").filter(has_text=letter)
            expect(row).to_contain_text("cw.north")
            expect(row).to_contain_text("AB123457 → AB123456")
            check(page, tmp_path_factory, "corrections", width, problems)
            row.get_by_role("link", name=letter).click()
            expect(page.get_by_role("button", name=re.compile("^Approve correction"))).to_be_visible()
            check(page, tmp_path_factory, "correction-waiting", width, problems)
        finally:
            context.close()

    context, page = sign_in_at(browser, base_url, "tm.north", DESKTOP)
    try:
        page.goto(f"/documents/{letter}")
        page.get_by_role("button", name=re.compile("^Approve correction")).click()
        expect(page.get_by_role("status").first).to_contain_text("approved")
        page.goto(f"/documents/{letter}")
        card = page.locator(".card").filter(has_text="asked by cw.north")
        expect(card).to_contain_text("Approved by tm.north")
        expect(card).to_contain_text(re.compile(r"while filed to AB123457, opened by .*cw\.north"))
        check(page, tmp_path_factory, "correction-approved", "1280", problems)
        page.goto("/corrections")
        expect(page.get_by_text("No correction is waiting for you.")).to_be_visible()
    finally:
        context.close()
    assert not problems, "\n".join(problems)


def test_the_scanner_withdraws_a_scan_links_its_rescan_and_the_record_shows_the_current_one(
        browser, base_url, world, pytestconfig, tmp_path_factory):  # noqa: F811
    old = world.docs["own_scan"]  # scanned by bs.scanner, waiting for verification
    new = file_document(world, pytestconfig, "rescan", child_id="EF111222", doc_type="consent_form",
                        pages=[["Consent form", "Date: 1 March 2026", "I agree to the assessment of my family."]],
                        sheet="B-WEB00011")
    problems: list[str] = []
    context, page = sign_in_at(browser, base_url, "bs.scanner", DESKTOP)
    try:
        page.goto(f"/documents/{old}/work")
        page.get_by_label("Reason").fill("The second page went through the feeder twice")
        page.get_by_role("button", name="Withdraw for rescan").click()
        expect(page.get_by_role("status").first).to_contain_text(f"Scan {old} withdrawn for a rescan.")
        page.goto(f"/documents/{new}")
        check(page, tmp_path_factory, "rescan-choice", "1280", problems)
        page.get_by_role("group", name="This is a rescan of").get_by_label(re.compile(old)).check()  # offered
        page.get_by_role("button", name="Link the rescan").click()
        expect(page.get_by_role("status").first).to_contain_text("now superseded")
    finally:
        context.close()
    for width, viewport in WIDTHS.items():
        context, page = sign_in_at(browser, base_url, "bs.scanner", viewport)
        try:
            page.goto(f"/documents/{old}")
            scans = page.locator("ol.versions li")
            expect(scans).to_have_count(2)
            expect(scans.nth(0)).to_contain_text(f"{old} (this one): Replaced by a rescan")
            expect(scans.nth(1)).to_contain_text("the current version")
            expect(page.get_by_text("The rescan that replaces it is")).to_be_visible()
            check(page, tmp_path_factory, "superseded", width, problems)
        finally:
            context.close()
    assert not problems, "\n".join(problems)
