"""The auditor's main journey in Chromium (issue 17), at desktop and phone widths: the home's
verdict, an integrity check of a document, the provenance verdict and a step's details, picking
the month's files, a case-file audit recorded, the quarter's collation, paper custody and the
access log's activity chart. Every page: no sideways scrolling, no serious axe-core finding, and
a screenshot (in the test's temporary directory, `screenshots/auditor-journey-*`)."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from escr.app import accounts, paper
from tests.test_browser import (  # noqa: F401 - fixtures shared with the other browser tests
    AXE_JS,
    LAPTOP,
    PHONE,
    allocate,
    base_url,
    browser,
    serious_axe_findings,
    sign_in_at,
    widths,
    world,
)

playwright_api = pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect  # noqa: E402


@pytest.fixture(scope="module")
def paper_volume(world):  # noqa: F811
    with world.services.db.session() as session:
        keeper = accounts.principal_for(accounts.get_user(session, "bs.jones"))
        paper.register(session, keeper, volume_id="AB123456-V1", child_id="AB123456", kind="volume",
                       title="Paper file volume 1, 2015 to 2024", location="Records store, bay 4, shelf 2")
        paper.book_out(session, keeper, "AB123456-V1", recipient="Family court (care proceedings)",
                       authorised_by="tm.north", due_back=date.today() + timedelta(days=14))
    return "AB123456-V1"


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_the_auditor_s_journey_fits_the_screen_and_passes_axe(browser, base_url, world, paper_volume,  # noqa: F811
                                                              tmp_path_factory, width):
    if not AXE_JS.exists():
        pytest.fail("axe-core is not installed: `make test` installs it (npm install in tests/support/axe)")
    allocate(world, "AB123456", "cw.north")
    context, page = sign_in_at(browser, base_url, "aud.one", PHONE if width == "phone" else LAPTOP)
    problems: list[str] = []

    def look(name: str) -> None:
        assert page.locator("main").count() == 1
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        wide = widths(page)
        if wide[0] > wide[1]:
            problems.append(f"{name} scrolls sideways: {wide[0]} px wide in {wide[1]} px")
        problems.extend(f"{name}: {finding}" for finding in serious_axe_findings(page))
        out = tmp_path_factory.getbasetemp() / "screenshots" / f"auditor-journey-{name}-{width}.png"
        out.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(out), full_page=True)

    ref = world.docs["referral"]
    try:
        expect(page.get_by_role("heading", name="Integrity of the record")).to_be_visible()
        expect(page.get_by_role("heading", name=re.compile("Case-file audits due"))).to_be_visible()
        look("home")

        tools = page.get_by_role("navigation", name="Auditor's tools")
        tools.get_by_role("link", name="Integrity checks").click()
        look("integrity")
        page.get_by_label("Scans received in a period").check()
        page.get_by_label("Received from").fill("2026-03-31")
        page.get_by_label("Received to").fill("2026-03-01")
        page.get_by_role("button", name="Run the check").click()
        expect(page.get_by_role("alert")).to_contain_text("the period ends (1 March 2026) before it starts")
        expect(page.get_by_label("Received to")).to_have_value("2026-03-01")  # what was typed, kept
        look("integrity-refused")
        page.get_by_label("One document").check()
        page.get_by_label("Document id").fill(ref)
        page.get_by_role("button", name="Run the check").click()
        expect(page.get_by_role("heading", name=re.compile(r"Integrity check \d+"))).to_be_visible()
        expect(page.locator(".verdict")).to_contain_text("Nothing wrong found.")
        look("integrity-run")

        page.goto(f"/documents/{ref}/provenance")
        verdict = page.locator(".verdict")
        expect(verdict).to_contain_text("Hashes recomputed now")
        expect(verdict).to_contain_text("Stored files checked")
        expect(verdict).to_contain_text("Not verified yet")
        page.locator("ol.steps details summary").first.click()
        expect(page.locator("ol.steps details").first).to_contain_text("Position in the chain")
        look("provenance")

        page.goto("/children/AB123456")
        expect(page.get_by_role("link", name="Case-file audit of this file")).to_be_visible()
        look("child")

        page.get_by_role("navigation", name="Main").get_by_role("link", name="Case-file audits").click()
        page.get_by_role("button", name="Pick the files").click()
        expect(page.get_by_role("status").first).to_contain_text("picked")
        page.get_by_label("Child id").fill("AB123456")
        page.get_by_role("button", name="Open the audit tool").click()
        expect(page.get_by_role("heading", name="Case-file audit of AB123456")).to_be_visible()
        for number in range(1, 15):
            page.get_by_role("group", name=f"Is standard {number} met?").get_by_label(
                "Yes" if number != 14 else "N/A", exact=True).check()
        page.get_by_role("group", name="Grading of the file").get_by_label("Good").check()
        page.get_by_label("The auditor's comments about the file overall").fill("Clear plan; child seen alone.")
        page.get_by_role("button", name="Record the audit").click()
        expect(page.get_by_role("status").first).to_contain_text("Case-file audit of AB123456 recorded: Good")
        look("casefile-audit")

        tools = page.get_by_role("navigation", name="Auditor's tools")
        tools.get_by_role("link", name="Quarterly collation").click()
        expect(page.get_by_role("heading", name="Team: north")).to_be_visible()
        look("collation")

        page.get_by_role("navigation", name="Auditor's tools").get_by_role("link", name="Paper custody").click()
        expect(page.locator("main")).to_contain_text("With Family court (care proceedings)")
        look("paper")

        page.get_by_role("navigation", name="Auditor's tools").get_by_role("link", name="Access-log activity").click()
        expect(page.get_by_role("img", name=re.compile("Uses of children's records per day"))).to_be_visible()
        look("activity")
    finally:
        context.close()
        allocate(world, "AB123456", None)
    assert not problems, "\n".join(problems)
