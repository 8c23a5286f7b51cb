"""A small filed record for the web tests: children, teams, one user per role, and documents
filed by the real intake pipeline (once per test module; OCR results come from the same cache
as the rest of the suite, so repeats do not run Tesseract).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from escr.app import accounts
from escr.app.verification import verify_document
from escr.intake.receipt import claim_copy
from escr.pages.coversheet import CoverSheet
from escr.pipelines import intake
from escr.record.children import import_children, read_children_csv
from escr.record.events import Actor
from escr.record.models import Document
from escr.services import Services, open_services
from escr.settings import load_settings
from tests.support.ocr_cache import install_ocr_cache
from tests.support.scans import CHILDREN_CSV, coversheet_page, degrade, text_page, write_pdf

A5 = (5.83, 8.27)
PASSWORD = "correct horse battery staple"
SCANNER = "bs.scanner"  # the intake folder the documents were scanned into: business support too

# user name -> (role, teams, third-party permission)
USERS: dict[str, tuple[str, tuple[str, ...], bool]] = {
    "bs.jones": ("business_support", (), False),
    SCANNER: ("business_support", (), False),
    "cw.north": ("caseworker", ("north",), False),
    "cw.south": ("caseworker", ("south",), False),
    "tm.north": ("team_manager", ("north",), True),
    "aud.one": ("auditor", (), False),
    "admin": ("administrator", (), False),
    "dis.one": ("disclosure_officer", (), True),
    "dis.two": ("disclosure_officer", (), True),
}
ROLE_USER = {"business_support": "bs.jones", "caseworker": "cw.north", "team_manager": "tm.north",
             "auditor": "aud.one", "administrator": "admin",
             "disclosure_officer": "dis.one"}

UNMATCHED = ["Note of a telephone call", "Date: 2 February 2026",
             "A neighbour rang about the Whitfield girl,", "DOB 14/06/2015. She was crying at night."]
REFERRAL = ["Referral to Children's Social Care", "Date: 3 March 2026", "Child: Amelia Whitfield",
            "The school is worried about bruising seen today.", "Please contact the safeguarding lead."]
THIRD_PARTY = ["Police information", "Date: 5 March 2026", "Provided in confidence: not to be disclosed.",
               "Officers attended the address after a report from a neighbour."]
CONSENT = ["Consent form", "Date: 1 March 2026", "I agree to the assessment of my family.",
           "Signed by the parent."]
SOUTH_LETTER = ["Dear Mr Okonkwo,", "Letter dated 10/01/2026", "Thank you for meeting us about Jayden.",
                "We will visit again next week with the family support worker."]


def page(lines: list[str]):  # type: ignore[no-untyped-def]
    return degrade(text_page(lines, dpi=300, size_inches=A5, font_pt=12), noise=0.0005, seed=1)


@dataclass
class World:
    services: Services
    docs: dict[str, str] = field(default_factory=dict)  # label -> document id
    home: Path | None = None

    @property
    def settings(self):  # type: ignore[no-untyped-def]
        return self.services.settings


def open_world(tmp_path_factory, pytestconfig, postgres_server, name: str) -> Iterator[World]:  # type: ignore[no-untyped-def]
    """A module's world, on its own PostgreSQL database when the suite runs on one; removed after."""
    url = postgres_server.create() if postgres_server else None
    w = build_world(tmp_path_factory.mktemp(name), pytestconfig, url)
    yield w
    w.services.db.engine.dispose()
    if url:
        postgres_server.drop(url)


def build_world(root: Path, pytestconfig: pytest.Config, database_url: str | None) -> World:
    settings = load_settings(home=root / "home", stable_seconds=0.5, rescan_seconds=1.0, database_url=database_url)
    services = open_services(settings)
    admin = Actor(kind="user", name="setup")
    csv = root / "children.csv"
    csv.write_text(CHILDREN_CSV)
    with services.db.session() as session:
        import_children(session, read_children_csv(csv), actor=admin)
        for team in ("north", "south"):
            accounts.add_team(session, team, actor=admin, name=f"{team.title()} team")
        for name, (role, teams, third_party) in USERS.items():
            accounts.add_user(session, name, role=role, actor=admin, display_name=name.replace(".", " ").title(),
                              teams=teams, third_party=third_party, password=PASSWORD)

    scan = write_pdf([page(UNMATCHED),
                      coversheet_page(CoverSheet("B-WEB00001", ("AB123456",), "referral", 1)), page(REFERRAL),
                      coversheet_page(CoverSheet("B-WEB00002", ("AB123456",), "police_report", 1)), page(THIRD_PARTY),
                      coversheet_page(CoverSheet("B-WEB00003", ("CD654321",), "correspondence", 1)),
                      page(SOUTH_LETTER)], root / "batch.pdf")
    single = write_pdf([coversheet_page(CoverSheet("B-WEB00004", ("EF111222",), "consent_form", 1)), page(CONSENT)],
                       root / "single.pdf")
    patch = install_ocr_cache(pytestconfig)
    try:
        results = [intake.run(claim_copy(path, settings.processing_dir, operator=SCANNER, device="mfd-1"), services)
                   for path in (scan, single)]
    finally:
        patch.undo()
    assert [r.status for r in results] == ["filed", "filed"], results
    labels = ["unmatched", "referral", "third_party", "south", "own_scan"]
    filed = results[0].documents + results[1].documents
    world = World(services, {label: d["id"] for label, d in zip(labels, filed, strict=True)}, root)
    with services.db.session() as session:
        states = {label: session.get(Document, doc_id).state for label, doc_id in world.docs.items()}
        third = session.get(Document, world.docs["third_party"]).third_party
        verify_document(session, world.docs["south"], user="bs.jones")
    assert states == {"unmatched": "needs_indexing", "referral": "awaiting_verification",
                      "third_party": "awaiting_verification", "south": "awaiting_verification",
                      "own_scan": "awaiting_verification"}, states
    assert third, "the police report should be flagged as third-party"
    return world


def quarantine_a_file(world: World, name: str = "broken.pdf") -> str:
    """A file that cannot be filed, quarantined by the real pipeline; returns its claim id."""
    bad = (world.home or Path(".")) / name
    bad.write_bytes(b"%PDF-1.4\nthis is not really a PDF\n")
    claim = claim_copy(bad, world.settings.processing_dir, operator=SCANNER, device="mfd-1")
    result = intake.run(claim, world.services)
    assert result.status == "quarantined", result
    return claim.claim_id


def sign_in(client: Any, username: str, password: str = PASSWORD) -> None:
    """Sign in a TestClient through the real form (CSRF token taken from the page)."""
    page_html = client.get("/login").text
    token = csrf_from(page_html)
    answer = client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                         follow_redirects=False)
    assert answer.status_code == 303, answer.text


def csrf_from(html: str) -> str:
    import re

    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def token_clients(app: FastAPI, world: World) -> Callable[[str], TestClient]:
    """`client(name)`: an API client holding a token of the named user, made once per name."""
    clients: dict[str, TestClient] = {}

    def client(name: str) -> TestClient:
        if name not in clients:
            with world.services.db.session() as session:
                user = accounts.get_user(session, name)
                secret = accounts.create_token(session, user, "tests", actor=Actor(kind="user", name="setup")).secret
            clients[name] = TestClient(app, headers={"Authorization": f"Bearer {secret}"})
        return clients[name]

    return client


def file_document(world: World, pytestconfig: pytest.Config, name: str, *, child_id: str, doc_type: str,
                  pages: list[list[str]], sheet: str, verify_by: str | None = None) -> str:
    """One more document of several pages, behind its cover sheet, filed by the real pipeline
    (and verified by `verify_by`); returns its id and keeps it in `world.docs[name]`."""
    root = world.home or Path(".")
    scan = write_pdf([coversheet_page(CoverSheet(sheet, (child_id,), doc_type, len(pages))),
                      *(page(lines) for lines in pages)], root / f"{name}.pdf")
    patch = install_ocr_cache(pytestconfig)
    try:
        result = intake.run(claim_copy(scan, world.settings.processing_dir, operator=SCANNER, device="mfd-1"),
                            world.services)
    finally:
        patch.undo()
    assert result.status == "filed", result
    doc_id = str(result.documents[0]["id"])
    if verify_by:
        with world.services.db.session() as session:
            verify_document(session, doc_id, user=verify_by)
    world.docs[name] = doc_id
    return doc_id


@contextmanager
def a_file_being_read(world: World, name: str, stage: str, done: int, total: int) -> Iterator[Callable[..., None]]:
    """A file claimed from the intake folder whose pipeline says `stage`, `done` of `total` pages;
    yields a function that says a later stage. Removed afterwards."""
    import json
    import shutil

    scan = (world.home or Path(".")) / name
    scan.write_bytes(b"%PDF-1.4\n% a file the pipeline is reading\n")
    claim = claim_copy(scan, world.settings.processing_dir, operator=SCANNER, device="mfd-1")
    work = world.settings.home / "work" / claim.claim_id
    work.mkdir(parents=True)

    def say(stage: str, done: int, total: int) -> None:
        (work / "progress.json").write_text(json.dumps({"stage": stage, "pages_done": done, "pages_total": total}))

    say(stage, done, total)
    try:
        yield say
    finally:
        shutil.rmtree(world.settings.processing_dir / claim.claim_id, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
