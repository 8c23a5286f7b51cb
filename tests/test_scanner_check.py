"""DOMAIN protocol step 1: the scanner check per device per day. escr's printed target, scanned
(here: rendered by poppler at 300 dpi, as a flatbed would give it), is measured and logged; a
skewed or dark scan fails, and documents from a device without a passing check get a warning."""

from __future__ import annotations

import subprocess
from datetime import date

import img2pdf
import pytest
from PIL import Image
from sqlalchemy import select

from escr.app import scanner_checks
from escr.app.access import AccessDenied
from escr.record.events import Actor
from escr.record.models import Event
from tests.support.records import add_people

ADMIN = Actor(kind="user", name="admin")


@pytest.fixture(scope="module")
def scanned_target(tmp_path_factory):
    folder = tmp_path_factory.mktemp("target")
    (folder / "target.pdf").write_bytes(scanner_checks.printable_target())
    subprocess.run(["pdftoppm", "-r", "300", "-gray", "-png", "-singlefile", str(folder / "target.pdf"),
                    str(folder / "scan")], check=True)
    return Image.open(folder / "scan.png").convert("L")


@pytest.fixture
def people(services):
    return services, add_people(services, [
        ("bs.jones", "business_support", []),
        ("sw.ahmed", "caseworker", []),
    ])


@pytest.mark.ocr
def test_a_good_scan_of_the_target_passes_and_is_logged_for_the_device_and_day(people, scanned_target, tmp_path):
    services, p = people
    path = tmp_path / "good.png"
    scanned_target.save(path, dpi=(300, 300))
    with pytest.raises(AccessDenied):
        scanner_checks.run_check(services, p["sw.ahmed"], device="mfd-2", path=path)
    check = scanner_checks.run_check(services, p["bs.jones"], device="mfd-2", path=path)
    assert check.passed, check.failures
    assert check.measures["tone_steps"] == 7 and check.measures["cer"] <= 0.02
    assert abs(check.measures["effective_dpi"] - 300) < 3
    assert services.store.stat(check.scan_key).sha256 == check.scan_sha256
    with services.db.session() as session:
        assert scanner_checks.qc_for(session, services.settings.records, "mfd-2", check.day)["status"] == "pass"
        assert scanner_checks.qc_for(session, services.settings.records, "mfd-9", check.day)["status"] == "warn"
        event = session.scalars(select(Event).where(Event.kind == "scanner_checked")).one()
        assert (event.outcome, event.detail["parameters"]["device"]) == ("pass", "mfd-2")


@pytest.mark.ocr
def test_a_skewed_dark_scan_fails_with_the_reasons(people, scanned_target, tmp_path):
    services, p = people
    bad = scanned_target.rotate(3, fillcolor=255, resample=Image.BICUBIC).point(lambda v: v * 180 // 255)
    png = tmp_path / "bad.png"
    bad.save(png, dpi=(300, 300))
    pdf = tmp_path / "bad.pdf"
    pdf.write_bytes(img2pdf.convert(str(png)))
    check = scanner_checks.run_check(services, p["bs.jones"], device="mfd-3", path=pdf, day=date(2026, 3, 2))
    assert not check.passed
    assert any("skew 3" in f for f in check.failures) and any("too dark" in f for f in check.failures)
    with services.db.session() as session:
        assert scanner_checks.passing_check(session, "mfd-3", date(2026, 3, 2)) is None
        assert [c["passed"] for c in scanner_checks.checks(session, p["bs.jones"], device="mfd-3")] == [False]


@pytest.mark.ocr
def test_the_target_is_printed_and_a_scan_uploaded_through_the_api(people, scanned_target, tmp_path):
    from fastapi.testclient import TestClient

    from escr.app import accounts
    from escr.web import create_app

    services, _ = people
    with services.db.session() as session:
        secret = accounts.create_token(session, accounts.get_user(session, "bs.jones"), "t", actor=ADMIN).secret
    client = TestClient(create_app(services), headers={"Authorization": f"Bearer {secret}"})
    assert client.get("/api/v1/scanner-checks/target").content.startswith(b"%PDF")
    path = tmp_path / "good.png"
    scanned_target.save(path, dpi=(300, 300))
    with open(path, "rb") as fh:
        resp = client.post("/api/v1/scanner-checks", data={"device": "mfd-2"}, files={"scan": ("good.png", fh)})
    assert resp.status_code == 201 and resp.json()["passed"], resp.text
    assert client.get("/api/v1/scanner-checks", params={"device": "mfd-2"}).json()["items"][0]["passed"]
