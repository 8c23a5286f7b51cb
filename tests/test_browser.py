"""The real pages in headless Chromium (Debian's `chromium`, driven by Playwright's Python
package; no browser download), with JavaScript switched off to show that every core task works
as plain HTML: each role signs in, finds a child, opens a document, verifies one, sees the
access log, as far as the role allows, and is refused the rest.

One screenshot per role goes to the test's temporary directory (a laptop-sized window).
"""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from escr.web import create_app
from tests.support.web import PASSWORD, World, open_world

playwright_api = pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
LAPTOP = {"width": 1366, "height": 768}


@pytest.fixture(scope="module")
def world(tmp_path_factory, pytestconfig, postgres_server) -> Iterator[World]:
    yield from open_world(tmp_path_factory, pytestconfig, postgres_server, "browser")


@pytest.fixture(scope="module")
def base_url(world) -> Iterator[str]:
    """The app under uvicorn on a free loopback port, in a thread of this process."""
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(world.services), host="127.0.0.1", port=port,
                                           access_log=False, log_config=None))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    if shutil.which(CHROMIUM) is None:
        pytest.fail("Debian's chromium is not installed (`make test` installs it: apt-get install chromium)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page_for(browser, base_url):
    """A fresh browser window (no cookies, no JavaScript) signed in as the named user."""
    contexts = []

    def open_as(username: str) -> Page:
        context = browser.new_context(java_script_enabled=False, viewport=LAPTOP, base_url=base_url, locale="en-GB")
        contexts.append(context)
        page = context.new_page()
        page.goto("/")
        expect(page).to_have_url(re.compile(r"/login\?next="))
        expect(page.get_by_role("heading", name="Sign in to escr")).to_be_visible()
        page.get_by_label("User name").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        return page

    yield open_as
    for context in contexts:
        context.close()


def assert_labelled(page: Page) -> None:
    """Every form control has a label a screen reader announces (label[for], wrapping label, aria-label)."""
    controls = page.locator("main input:not([type=hidden]), main select, main textarea")
    for i in range(controls.count()):
        control = controls.nth(i)
        ident = control.get_attribute("id")
        labelled = (ident and page.locator(f'label[for="{ident}"]').count() > 0) \
            or control.locator("xpath=ancestor::label").count() > 0 or control.get_attribute("aria-label")
        assert labelled, f"unlabelled control {control.get_attribute('name')} on {page.url}"


def find_child(page: Page, query: str, child_id: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Find a child").click()
    page.get_by_label("Child id, NHS number, name or date of birth").fill(query)
    page.get_by_role("button", name="Find").click()
    assert_labelled(page)
    page.get_by_role("link", name=child_id).click()


def image_loads(page: Page, src: str) -> bool:
    resp = page.request.get(src)
    return resp.status == 200 and resp.body().startswith(b"\x89PNG")


def allocate(world: World, child_id: str, username: str | None) -> None:
    from escr.app import accounts
    from escr.record.events import Actor

    with world.services.db.session() as session:
        accounts.allocate(session, child_id, username, actor=Actor(kind="user", name="setup"))


def shot(page: Page, tmp_path_factory, role: str) -> Path:
    out = tmp_path_factory.getbasetemp() / "screenshots" / f"{role}.png"
    out.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(out), full_page=True)
    return out


def test_caseworker_finds_a_child_opens_a_document_and_searches_the_record(page_for, world, tmp_path_factory):
    ref, tp = world.docs["referral"], world.docs["third_party"]
    allocate(world, "AB123456", "cw.north")  # before verification only the allocated worker reads it
    page = page_for("cw.north")
    expect(page.get_by_role("heading", name="Your caseload")).to_be_visible()  # home: their caseload
    expect(page.locator("main li.banner.cp").first).to_have_text("Child protection plan")  # status in words
    find_child(page, "Whitfield", "AB123456")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Amelia Rose Whitfield")
    expect(page.get_by_text("2 documents are not yet verified and not shown")).to_be_visible()
    page.get_by_role("link", name="Include them, marked").click()  # verified only, unless asked
    rows = page.locator("table.chronology tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("03/03/2026")  # the chronology: oldest first
    expect(rows.nth(1)).to_contain_text("third-party")
    assert_labelled(page)

    page.get_by_role("link", name=ref).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Referral")
    expect(page.get_by_text("Not yet verified").first).to_be_visible()
    thumb = page.get_by_role("img", name="Page 1 of 1")
    expect(thumb).to_be_visible()
    assert image_loads(page, thumb.get_attribute("src"))
    pdf = page.request.get(page.get_by_role("link", name="Download the searchable PDF").get_attribute("href"))
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf" and pdf.body().startswith(b"%PDF")
    # A download, never shown inline: under `CSP: sandbox` Chrome would only say the page is blocked.
    assert pdf.headers["content-disposition"].startswith("attachment;")
    assert pdf.headers["content-security-policy"] == "sandbox" and pdf.headers["x-content-type-options"] == "nosniff"
    expect(page.get_by_text("bs.scanner on mfd-1")).to_be_visible()  # who scanned it
    shot(page, tmp_path_factory, "caseworker")

    page.go_back()
    page.get_by_label("Search the text of this record").fill("bruising")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.get_by_role("link", name=ref)).to_be_visible()

    allocate(world, "AB123456", None)
    page.goto(f"/documents/{tp}")  # not yet verified, and not their allocated child: details only
    expect(page.get_by_text("is not yet verified")).to_be_visible()
    expect(page.get_by_role("img", name="Page 1 of 1")).to_have_count(0)

    page.goto("/access-log")
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    page.goto("/children/CD654321")  # another team's child: refused, break-glass offered
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(page.get_by_role("button", name="Open the record (break-glass)")).to_be_visible()
    assert_labelled(page)


def test_business_support_see_the_intake_verify_one_index_one_and_print_a_cover_sheet(
        page_for, world, tmp_path_factory):
    ref, unmatched = world.docs["referral"], world.docs["unmatched"]
    page = page_for("bs.jones")
    expect(page.get_by_role("heading", name="Intake")).to_be_visible()
    page.get_by_role("link", name="waiting for verification").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("waiting for verification")
    page.get_by_role("link", name=ref).click()

    image = page.get_by_role("img", name="Page 1 of 1 as scanned")
    expect(image).to_be_visible()
    assert image_loads(page, image.get_attribute("src"))
    expect(page.locator("table.fields")).to_contain_text("Amelia Rose Whitfield")  # the fields beside the image
    assert_labelled(page)
    shot(page, tmp_path_factory, "business_support")
    page.get_by_role("button", name="Approve: verified").click()
    expect(page.get_by_role("status").first).to_contain_text(f"Document {ref} verified.")

    page.get_by_role("link", name="Work queue").click()
    page.get_by_role("link", name="Waiting for indexing").click()
    page.get_by_role("link", name=unmatched).click()
    page.get_by_label(re.compile(r"AB123456 \(score")).check()  # the candidate the pipeline found
    page.get_by_label("Document type").select_option("correspondence")
    page.get_by_role("button", name="Save index").click()
    expect(page.get_by_role("status").first).to_contain_text("waits for verification by someone else")
    expect(page.get_by_role("button", name="Approve: verified")).to_have_count(0)  # four-eyes: not the indexer

    find_child(page, "AB123456", "AB123456")
    expect(page.locator("table tbody tr").filter(has_text=ref)).to_contain_text("bs.jones")
    page.get_by_label("Document type", exact=True).select_option("court_order")
    page.get_by_label("Pages after the sheet").fill("3")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download cover sheet (PDF)").click()
    assert Path(download.value.path()).read_bytes().startswith(b"%PDF")


def test_team_manager_opens_a_third_party_document_and_verifies_one_of_the_team(page_for, world, tmp_path_factory):
    tp = world.docs["third_party"]
    page = page_for("tm.north")
    find_child(page, "14/06/2015", "AB123456")
    page.get_by_role("link", name=re.compile(r"^Include (it|them), marked")).click()
    page.get_by_role("link", name=tp).click()
    expect(page.locator(".tag.third")).to_be_visible()
    expect(page.get_by_role("img", name="Page 1 of 1")).to_be_visible()  # they hold the permission
    shot(page, tmp_path_factory, "team_manager")
    page.get_by_role("link", name="Index or verify this document").click()
    page.get_by_role("button", name="Approve: verified").click()
    expect(page.get_by_role("status").first).to_contain_text(f"Document {tp} verified.")
    page.goto(f"/documents/{world.docs['south']}")  # the south team's document
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()


def test_auditor_sees_the_access_log_and_provenance_and_opens_content_after_stating_a_purpose(
        page_for, world, tmp_path_factory):
    ref = world.docs["referral"]
    page = page_for("aud.one")
    expect(page.get_by_role("heading", name="Integrity of the record")).to_be_visible()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Access log").click()
    page.get_by_label("Child id").fill("AB123456")
    page.get_by_label("User").fill("cw.north")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("table tbody tr")
    expect(rows.first).to_contain_text("cw.north")
    expect(page.locator("table tbody")).to_contain_text("Downloaded")
    assert_labelled(page)
    csv = page.request.get(page.get_by_role("link", name="Export these rows as CSV").get_attribute("href"))
    assert csv.status == 200 and "cw.north" in csv.text() and csv.text().startswith("seq,at,actor")
    shot(page, tmp_path_factory, "auditor")

    find_child(page, "Amelia", "AB123456")
    page.get_by_role("link", name=ref).click()
    expect(page.get_by_text("record a purpose before opening")).to_be_visible()
    expect(page.get_by_role("img", name="Page 1 of 1")).to_have_count(0)
    page.get_by_label("Purpose").fill("Case-file audit, March sample: referral handling")
    page.get_by_role("button", name="Record purpose and open").click()
    expect(page.get_by_role("img", name="Page 1 of 1")).to_be_visible()

    page.get_by_role("link", name="Provenance (every protocol event)").click()
    expect(page.get_by_role("status").first).to_contain_text("Hashes recomputed now")  # the verdict first
    steps = page.locator("ol.steps")
    expect(steps).to_contain_text("Received")
    expect(steps).to_contain_text("Stored")
    expect(steps).to_contain_text("bs.scanner (scanning operator)")  # who scanned it


def test_administrator_adds_a_user_and_reads_no_record(page_for, browser, base_url, tmp_path_factory):
    page = page_for("admin")
    expect(page.get_by_role("heading", name="Administration")).to_be_visible()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Users").click()
    expect(page.get_by_role("heading", name="Users")).to_be_visible()
    assert_labelled(page)
    page.get_by_label("User name", exact=True).fill("cw.newstarter")
    page.get_by_label("Full name").fill("New Starter")
    page.get_by_label("Role", exact=True).select_option("caseworker")
    page.get_by_label("North team (north)").check()
    page.get_by_role("button", name="Add user").click()
    expect(page.get_by_role("heading", name="User cw.newstarter added")).to_be_visible()
    password = page.locator("#secret").inner_text().strip()
    assert len(password) >= 12
    expect(page.get_by_text("must choose a password of their own")).to_be_visible()
    page.get_by_role("link", name="Done").click()
    expect(page.locator("table")).to_contain_text("cw.newstarter")
    shot(page, tmp_path_factory, "administrator")
    page.goto("/children/AB123456")
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    page.goto("/access-log")
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()

    # The administrator knows that password: the new starter must choose their own before anything else.
    starter = browser.new_context(java_script_enabled=False, viewport=LAPTOP, base_url=base_url,
                                  locale="en-GB").new_page()
    starter.goto("/login")
    starter.get_by_label("User name").fill("cw.newstarter")
    starter.get_by_label("Password").fill(password)
    starter.get_by_role("button", name="Sign in").click()
    expect(starter.get_by_role("alert")).to_contain_text("choose a new one of your own before you go on")
    starter.goto("/children")
    expect(starter).to_have_url(re.compile(r"/account$"))
    starter.get_by_label("Current password").fill(password)
    starter.get_by_label("New password (at least 12 characters)").fill("a starter's own passphrase")
    starter.get_by_label("New password again").fill("a starter's own passphrase")
    starter.get_by_role("button", name="Change password").click()
    starter.goto("/")
    expect(starter.get_by_role("heading", name="Your caseload")).to_be_visible()
    starter.context.close()


def test_keyboard_alone_signs_in_skips_the_menu_and_finds_a_child(browser, base_url):
    context = browser.new_context(java_script_enabled=False, viewport=LAPTOP, base_url=base_url, locale="en-GB")
    page = context.new_page()
    page.goto("/login")
    expect(page.get_by_label("User name")).to_be_focused()  # the sign-in form takes the focus
    page.keyboard.type("cw.north")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Your caseload")).to_be_visible()
    page.goto("/children")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    search = page.get_by_label("Child id, NHS number, name or date of birth")
    expect(search).to_be_focused()
    page.keyboard.type("AB123456")
    page.keyboard.press("Enter")
    expect(page.get_by_role("link", name="AB123456")).to_be_visible()
    for key in ("Tab", "Enter", "Tab", "Tab", "Tab"):  # the new page: skip link, search box, Find, first result
        page.keyboard.press(key)
    expect(page.get_by_role("link", name="AB123456")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Whitfield")
    context.close()


# --- every role's pages at desktop and phone widths: no sideways scrolling, no serious axe findings ---

PHONE = {"width": 390, "height": 844}
AXE_JS = Path(__file__).resolve().parent / "support" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
ROLE_PAGES = {
    "caseworker": ("cw.north", ["/", "/children/AB123456", "/children", "/break-glass", "/account", "/views"]),
    "team_manager": ("tm.north", ["/", "/children/AB123456", "/queue", "/timeliness?month=2026-03"]),
    "business_support": ("bs.jones", ["/", "/intake", "/queue", "/documents/{unmatched}/work", "/paper/files",
                                      "/scanner-checks"]),
    "auditor": ("aud.one", ["/", "/access-log", "/access-log/activity", "/break-glass/reviews?all=1",
                            "/documents/{referral}/provenance", "/integrity", "/audit/casefiles", "/audit/collation",
                            "/paper", "/disposal"]),
    "administrator": ("admin", ["/", "/admin/users", "/admin/teams", "/admin/users/admin/tokens", "/account"]),
    "disclosure_officer": ("dis.one", ["/", "/disclosures", "/disclosures/{request}", "/disclosures/{request}/documents/{south}",
                                       "/disclosures/{request}/certificate", "/account"]),
}
DESKTOP = {"width": 1280, "height": 800}


def disclosure_request(world: World) -> int:
    """A request of dis.one's for the south child, with escr's proposals on its verified letter."""
    from sqlalchemy import select

    from escr.app.access import Principal, Role
    from escr.app.disclosure import Disclosures
    from escr.record.models import User

    with world.services.db.session() as session:
        user = session.scalars(select(User).where(User.username == "dis.one")).one()
        who = Principal(user.id, user.username, user.display_name, Role(user.role), third_party=True)
    d = Disclosures(world.services, who)
    rid = int(d.open_request(requester="A parent", relationship="mother", basis="subject_access",
                             child_ids=["CD654321"])["id"])
    d.propose(rid)
    return rid


def sign_in_at(browser, base_url: str, username: str, viewport: dict[str, int],  # type: ignore[no-untyped-def]
               *, scripts: bool = True):
    """Scripts on and the page's CSP bypassed, only so that the test can run axe-core in the page;
    or, `scripts=False`, a plain browser with JavaScript off."""
    options = {"bypass_csp": True} if scripts else {"java_script_enabled": False}
    context = browser.new_context(viewport=viewport, base_url=base_url, locale="en-GB", **options)
    page = context.new_page()
    page.goto("/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    return context, page


def widths(page: Page) -> tuple[int, int]:
    """[how wide the page is, how wide the window is], once the page has loaded: a click's new
    page can show its text before its stylesheet applies, and be measured unstyled under load."""
    page.wait_for_load_state("load")
    wide, window = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    return int(wide), int(window)


def fits(page: Page) -> bool:
    wide, window = widths(page)
    return wide <= window


def serious_axe_findings(page: Page) -> list[str]:
    page.add_script_tag(path=str(AXE_JS))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {v['help']} - {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("width", ["desktop", "phone"])
@pytest.mark.parametrize("role", sorted(ROLE_PAGES))
def test_each_role_s_pages_fit_the_screen_and_pass_axe(browser, base_url, world, tmp_path_factory, role, width):
    if not AXE_JS.exists():
        pytest.fail("axe-core is not installed: `make test` installs it (npm install in tests/support/axe)")
    allocate(world, "AB123456", "cw.north")
    username, paths = ROLE_PAGES[role]
    ids = {**world.docs, "request": disclosure_request(world) if role == "disclosure_officer" else ""}
    context, page = sign_in_at(browser, base_url, username, PHONE if width == "phone" else DESKTOP)
    problems = []
    try:
        for path in paths:
            page.goto(path.format(**ids))
            assert page.locator("main").count() == 1, path
            expect(page.get_by_role("heading", level=1)).to_be_visible()
            overflow = widths(page)
            if overflow[0] > overflow[1]:
                problems.append(f"{path} scrolls sideways: {overflow[0]} px wide in {overflow[1]} px")
            problems += [f"{path}: {finding}" for finding in serious_axe_findings(page)]
            # A chart's words are read at their size: the chart shown is the one drawn for this width.
            heights = page.evaluate("""[...document.querySelectorAll('svg.chart')]
                .filter(s => s.getBoundingClientRect().width > 0)
                .flatMap(s => [...s.querySelectorAll('text')].filter(t => t.textContent.trim())
                    .map(t => [parseFloat(getComputedStyle(t).fontSize)
                               * s.getBoundingClientRect().width / s.viewBox.baseVal.width, t.textContent]))""")
            small = [f"{text!r} {size:.1f} px" for size, text in heights if size < 9]
            if small:
                problems.append(f"{path}: a chart's words are too small to read: {small[:3]}")
            name = re.sub(r"[^a-z0-9]+", "-", path.split("?")[0].lower()).strip("-") or "home"
            out = tmp_path_factory.getbasetemp() / "screenshots" / f"{role}-{name}-{width}.png"
            out.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(out), full_page=True)
    finally:
        context.close()
        allocate(world, "AB123456", None)
    assert not problems, "\n".join(problems)


def test_business_support_on_a_phone_watch_a_file_read_live_then_filter_and_reject_in_bulk(
        browser, base_url, world, tmp_path_factory):
    """Scripts on and the page's own CSP in force: the intake home's part that shows each file's
    pages updates without a reload; then the queue, filtered, and one scan rejected in bulk."""
    from tests.support.web import a_file_being_read

    with a_file_being_read(world, "arriving.pdf", "read_pages", 3, 12) as say:
        context = browser.new_context(viewport=PHONE, base_url=base_url, locale="en-GB")
        page = context.new_page()
        try:
            page.goto("/login")
            page.get_by_label("User name").fill("bs.jones")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            processing = page.locator("#processing")
            expect(processing).to_contain_text("arriving.pdf")
            expect(processing).to_contain_text("Reading the pages")
            expect(processing).to_contain_text("3 of 12 pages")
            expect(page.get_by_text("This part updates itself every 5 seconds.")).to_be_visible()
            page.evaluate("window.stillTheSamePage = true")
            say("build_reading_copies", 12, 12)
            expect(processing).to_contain_text("12 of 12 pages", timeout=30_000)
            expect(processing).to_contain_text("Making reading copies")
            assert page.evaluate("window.stillTheSamePage") is True  # updated in place, not reloaded
            assert fits(page)
            page.screenshot(path=str(tmp_path_factory.getbasetemp() / "screenshots" / "intake-live-phone.png"),
                            full_page=True)

            page.get_by_role("link", name="waiting for verification").click()
            page.get_by_label("Child (id or name)").fill("Marsh")
            page.get_by_role("button", name="Filter").click()
            rows = page.locator("table tbody tr")
            expect(rows).to_have_count(1)
            expect(rows.first).to_contain_text("Sophie Marsh")
            expect(rows.first).to_contain_text("from single.pdf")
            assert fits(page)
            own = world.docs["own_scan"]
            page.get_by_label(f"Choose document {own}").check()
            page.get_by_label("Reason (told to whoever rescans)").fill("Pages skewed: please rescan")
            page.get_by_role("button", name="Reject the chosen scans").click()
            expect(page.get_by_role("status").first).to_contain_text(f"1 rejected for a rescan: {own}")
            expect(page.get_by_label("Child (id or name)")).to_have_value("Marsh")  # back where they were
            page.screenshot(path=str(tmp_path_factory.getbasetemp() / "screenshots" / "queue-bulk-phone.png"),
                            full_page=True)
        finally:
            context.close()


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_business_support_retry_chosen_quarantined_files_with_scripts_off(browser, base_url, world,
                                                                        tmp_path_factory, width):
    """The quarantine list with its boxes fits the screen and passes axe; then, scripts off, two
    of three files are ticked and retried with one button, and the page says which went back."""
    from tests.support.web import quarantine_a_file

    claims = [quarantine_a_file(world, f"{name}-{width}.pdf") for name in ("letter", "report", "leave")]
    viewport = PHONE if width == "phone" else DESKTOP
    shots = tmp_path_factory.getbasetemp() / "screenshots"
    shots.mkdir(exist_ok=True)
    context, page = sign_in_at(browser, base_url, "bs.jones", viewport)
    try:
        page.goto("/intake#quarantine")
        expect(page.get_by_role("button", name="Retry the chosen files")).to_be_visible()
        assert fits(page)
        assert serious_axe_findings(page) == []
        page.screenshot(path=str(shots / f"quarantine-{width}.png"), full_page=True)
    finally:
        context.close()

    context, page = sign_in_at(browser, base_url, "bs.jones", viewport, scripts=False)
    try:
        page.goto("/intake")
        assert_labelled(page)
        page.get_by_label(f"Choose bs.scanner/mfd-1/letter-{width}.pdf").check()
        page.get_by_label(f"Choose bs.scanner/mfd-1/report-{width}.pdf").check()
        page.get_by_role("button", name="Retry the chosen files").click()
        expect(page.get_by_role("status").first).to_contain_text(
            f"2 files put back in the intake folder for another try: bs.scanner/mfd-1/letter-{width}.pdf, "
            f"bs.scanner/mfd-1/report-{width}.pdf.")
        expect(page.get_by_label(f"Choose bs.scanner/mfd-1/leave-{width}.pdf")).not_to_be_checked()  # still listed
        assert fits(page)
        page.screenshot(path=str(shots / f"quarantine-retried-{width}.png"), full_page=True)
    finally:
        context.close()
    assert (world.settings.intake_dir / "bs.scanner" / "mfd-1" / f"letter-{width}.pdf").exists()
    from escr.intake.quarantine import list_quarantine

    assert [e.claim_id for e in list_quarantine(world.settings.quarantine_dir)
            if e.claim_id in claims] == [claims[2]]


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_a_refused_form_comes_back_with_the_reason_and_what_was_typed(browser, base_url, tmp_path_factory, width):
    context, page = sign_in_at(browser, base_url, "aud.one", PHONE if width == "phone" else LAPTOP)
    try:
        page.goto("/disposal")
        page.get_by_text("Set a category hold").click()
        chosen = page.get_by_label("Hold every record").select_option(index=1)
        page.get_by_label("Why").fill("   ")  # passes the browser's `required`, not escr's
        page.get_by_role("button", name="Set hold").click()
        expect(page).to_have_url(f"{base_url}/disposal")  # the form's own page, not an error page
        expect(page.get_by_role("alert")).to_contain_text("Please check what you entered: required: reason")
        expect(page.get_by_label("Hold every record")).to_have_value(chosen[0])  # nothing typed is lost
        expect(page.get_by_label("Hold every record")).to_be_focused()
        assert fits(page)
        page.screenshot(path=str(tmp_path_factory.getbasetemp() / "screenshots" / f"refused-form-{width}.png"),
                        full_page=True)
        assert serious_axe_findings(page) == []
        page.reload()  # kept for one round trip only
        expect(page.get_by_role("alert")).to_have_count(0)
    finally:
        context.close()
