"""The disclosure officer's journey in headless Chromium (issue 18): open a request, have escr
propose redactions, draw one with the mouse and one with the keyboard, accept the proposals, send
the bundle to a second officer who checks every document and approves it, export it, and find
nothing of a redacted word in the PDF downloaded. Every page is checked at 1366 px and 390 px:
no sideways scrolling, no serious axe-core findings. Screenshots go to the test's temporary
directory (and to $ESCR_TEST_SCREENSHOTS when set).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.web import World, open_world
from tests.test_browser import AXE_JS, LAPTOP, PHONE, base_url, browser, serious_axe_findings, sign_in_at, widths  # noqa: F401
from tests.test_disclosure import file_note

playwright_api = pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Page, expect  # noqa: E402


@pytest.fixture(scope="module")
def world(tmp_path_factory, pytestconfig, postgres_server) -> Iterator[World]:
    for w in open_world(tmp_path_factory, pytestconfig, postgres_server, "browser_disclosure"):
        file_note(w, pytestconfig)
        yield w


def check(page: Page, name: str, width: str, tmp_path_factory) -> list[str]:  # type: ignore[no-untyped-def]
    """No sideways scrolling, no serious axe findings; a screenshot to look at."""
    if not AXE_JS.exists():
        pytest.fail("axe-core is not installed: `make test` installs it (npm install in tests/support/axe)")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    problems = []
    wide, window = widths(page)
    if wide > window:
        problems.append(f"{name} scrolls sideways at {width}: {wide} px in {window} px")
    problems += [f"{name} ({width}): {f}" for f in serious_axe_findings(page)]
    folder = Path(os.environ.get("ESCR_TEST_SCREENSHOTS") or tmp_path_factory.getbasetemp() / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"disclosure-{name}-{width}.png"), full_page=True)
    return problems


def test_a_disclosure_officer_prepares_a_bundle_a_second_approves_it_and_the_pdf_hides_what_was_redacted(
        browser, base_url, world, tmp_path_factory, tmp_path):  # noqa: F811
    problems: list[str] = []
    context, page = sign_in_at(browser, base_url, "dis.one", LAPTOP)
    try:
        expect(page.get_by_role("heading", name="Disclosure requests")).to_be_visible()  # their home
        problems += check(page, "list", "desktop", tmp_path_factory)
        page.get_by_label("Who is asking").fill("Jayden Okonkwo")
        page.get_by_label("Their relationship to the child").fill("the child")
        page.get_by_label("Legal basis").select_option("care_leaver")
        page.get_by_label("Child ids").fill("CD654321")
        page.get_by_role("button", name="Open the request").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Disclosure request DR-")
        request_url = page.url
        page.get_by_role("button", name="Propose redactions").click()
        expect(page.get_by_role("status").first).to_contain_text("redactions proposed")
        problems += check(page, "request", "desktop", tmp_path_factory)

        page.get_by_role("link", name=world.docs["note"]).click()
        sheet = page.locator('.sheet[data-page="1"]')
        expect(sheet).to_be_visible()
        # Mouse: drag a box over the heading line; the edges fill in, then redact it.
        box = sheet.bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] * 0.12, box["y"] + box["height"] * 0.105)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.145, steps=5)
        page.mouse.up()
        assert float(page.get_by_label("Left %").first.input_value()) == pytest.approx(12, abs=1)
        page.get_by_label("Reason", exact=True).first.select_option("serious_harm")
        page.get_by_role("button", name="Redact this area").first.click()
        expect(page.get_by_role("status").first).to_contain_text("Area of page 1 redacted")
        # Keyboard: focus the page, move a box with the arrows, widen it with Shift, Enter redacts.
        page.locator('.sheet[data-page="1"]').focus()
        for key in ("ArrowDown",) * 60 + ("Shift+ArrowRight",) * 5:
            page.keyboard.press(key)
        page.keyboard.press("Enter")
        expect(page.get_by_role("status").first).to_contain_text("Area of page 1 redacted")
        # Accept every proposal on the page.
        for check_box in page.locator('ul.redactions li.proposed input[type="checkbox"]').all():
            check_box.check()
        page.get_by_role("button", name="Accept ticked").first.click()
        expect(page.get_by_role("status").first).to_contain_text("accepted")
        problems += check(page, "document", "desktop", tmp_path_factory)

        page.goto(request_url)
        page.get_by_label("Reviewer's user name").fill("dis.two")
        page.get_by_role("button", name="Send for review").click()
        expect(page.get_by_role("status").first).to_contain_text("Sent to dis.two for review")
    finally:
        context.close()

    context, page = sign_in_at(browser, base_url, "dis.two", LAPTOP)
    try:
        page.goto(request_url)
        expect(page.get_by_role("button", name="Approve the bundle")).to_have_count(0)  # not before every page
        page.get_by_role("link", name=world.docs["note"]).click()
        expect(page.get_by_role("button", name="Redact this area")).to_have_count(0)  # the reviewer changes nothing
        page.get_by_role("button", name=re.compile("I have checked all")).click()
        for link in page.locator("table a[href*='/documents/']").all():
            href = link.get_attribute("href")
            page.goto(href)
            page.get_by_role("button", name=re.compile("I have checked all")).click()
        page.get_by_role("button", name="Approve the bundle").click()
        expect(page.get_by_role("status").first).to_contain_text("Bundle approved")
    finally:
        context.close()

    context, page = sign_in_at(browser, base_url, "dis.one", LAPTOP)
    try:
        page.goto(request_url)
        page.get_by_role("button", name="Export the bundle").click()
        expect(page.get_by_role("status").first).to_contain_text("Bundle exported")
        pdf = page.request.get(page.get_by_role("link", name="Download the bundle (PDF)").get_attribute("href"))
        assert pdf.status == 200 and pdf.body().startswith(b"%PDF")
        path = tmp_path / "bundle.pdf"
        path.write_bytes(pdf.body())
        text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
        body = text.split("Schedule of redactions")[-1]
        for secret in ("Whitfield", "Patel", "900123", "jpatel"):
            assert secret not in body, secret
        page.get_by_role("button", name="Record the copy given").click()
        expect(page.get_by_role("status").first).to_contain_text("Copy given recorded")
        problems += check(page, "request-disclosed", "desktop", tmp_path_factory)
        page.get_by_role("link", name="Provenance and certificate of this disclosure").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Certificate of disclosure")
        problems += check(page, "certificate", "desktop", tmp_path_factory)
    finally:
        context.close()
    assert not problems, "\n".join(problems)


def test_the_disclosure_pages_fit_a_phone_and_pass_axe(browser, base_url, world, tmp_path_factory):  # noqa: F811
    from sqlalchemy import select

    from escr.app.access import Principal, Role
    from escr.app.disclosure import Disclosures
    from escr.record.models import User

    with world.services.db.session() as session:
        user = session.scalars(select(User).where(User.username == "dis.one")).one()
        who = Principal(user.id, user.username, user.display_name, Role(user.role), third_party=True)
    d = Disclosures(world.services, who)
    rid = d.open_request(requester="A parent", relationship="mother", basis="subject_access",
                         child_ids=["CD654321"])["id"]
    d.propose(rid)
    problems: list[str] = []
    context, page = sign_in_at(browser, base_url, "dis.one", PHONE)
    try:
        for name, path in (("list", "/disclosures"), ("request", f"/disclosures/{rid}"),
                           ("document", f"/disclosures/{rid}/documents/{world.docs['note']}"),
                           ("certificate", f"/disclosures/{rid}/certificate")):
            page.goto(path)
            problems += check(page, name, "phone", tmp_path_factory)
    finally:
        context.close()
    assert not problems, "\n".join(problems)


def test_a_saved_area_dragged_to_another_line_is_burnt_in_there_and_not_where_it_was(
        browser, base_url, world, tmp_path_factory, tmp_path):  # noqa: F811
    from tests.test_disclosure import _document_pages_text, officer

    one, two = officer(world, "dis.one"), officer(world, "dis.two")
    rid = one.open_request(requester="Jayden Okonkwo", relationship="the child", basis="care_leaver",
                           child_ids=["CD654321"])["id"]
    one.propose(rid)
    proposed = [r for r in one.document(rid, world.docs["note"])["redactions"] if r["status"] == "proposed"]
    phone = next(r for r in proposed if r["source"] == "phone")["box"]  # the line "Please call Mrs Patel on ..."
    one.decide(rid, [r["id"] for r in proposed], "reject")  # only the box moved below is applied
    saved = one.redact(rid, world.docs["note"], reason="serious_harm", page=1, box=(0.1, 0.10, 0.6, 0.145))
    problems: list[str] = []
    context, page = sign_in_at(browser, base_url, "dis.one", LAPTOP)
    try:
        page.goto(f"/disclosures/{rid}/documents/{world.docs['note']}")
        sheet = page.locator('.sheet[data-page="1"]').bounding_box()
        assert sheet is not None
        # Take hold of the saved box over the heading and drag it down onto the phone number's line.
        dy = (phone[1] + phone[3]) / 2 - 0.1225
        page.mouse.move(sheet["x"] + sheet["width"] * 0.35, sheet["y"] + sheet["height"] * 0.1225)
        page.mouse.down()
        page.mouse.move(sheet["x"] + sheet["width"] * 0.35, sheet["y"] + sheet["height"] * (0.1225 + dy), steps=8)
        page.mouse.up()
        top = page.get_by_label("New top %")
        assert float(top.input_value()) == pytest.approx((0.1 + dy) * 100, abs=1)
        assert float(page.get_by_label("New left %").input_value()) == pytest.approx(10, abs=1)
        problems += check(page, "document-moving", "desktop", tmp_path_factory)
        page.get_by_role("button", name="Move this area").click()
        expect(page.get_by_role("status").first).to_contain_text("1 redaction moved")
        # The form shows the new place, and the keyboard moves it too: N selects it, arrows move it.
        assert float(page.get_by_label("New top %").input_value()) == pytest.approx((0.1 + dy) * 100, abs=1)
        page.locator('.sheet[data-page="1"]').focus()
        for key in ("n", "ArrowLeft", "ArrowLeft"):
            page.keyboard.press(key)
        assert float(page.get_by_label("New left %").input_value()) == pytest.approx(8, abs=0.5)
        page.keyboard.press("Enter")
        expect(page.get_by_role("status").first).to_contain_text("1 redaction moved")
    finally:
        context.close()
    moved = next(r for r in one.document(rid, world.docs["note"])["redactions"] if r["id"] == saved["id"])
    assert moved["box"][0] == pytest.approx(0.08, abs=0.005) and moved["box"][1] == pytest.approx(0.1 + dy, abs=0.01)
    assert moved["reason"] == "serious_harm" and moved["created_by"] == "dis.one"

    one.submit(rid, "dis.two")
    for d in two.request(rid)["documents"]:
        two.review_document(rid, d["id"])
    two.approve(rid)
    one.export(rid)
    stream, _ = one.open_bundle(rid)
    with stream:
        text = _document_pages_text(stream.read(), tmp_path)
    assert "Family support note" in text  # where the box was: readable again
    for gone in ("Please", "call", "Mrs"):  # where it is now: burnt in
        assert gone not in text, gone
    assert not problems, "\n".join(problems)
