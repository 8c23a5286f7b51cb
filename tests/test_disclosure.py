"""Subject access and disclosure (issue 18): a request opened, redactions proposed from the OCR
word boxes and decided by a person, reviewed by a second officer, exported with the redactions
burnt in, and the copy given logged on the child's record.

The burn-in is proved on the bundle itself: no text extractor finds a word that was under a
redaction, the pixels under every box are black in the only image stream of the page, and the
PDF carries no metadata or attachments of the source.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator

import pikepdf
import pytest
from PIL import Image
from sqlalchemy import select

from escr.app.access import AccessDenied, Principal, Role
from escr.app.disclosure import Disclosures, add_month
from escr.app.verification import verify_document
from escr.errors import InvalidState, ProtocolViolation, ValidationFailed
from escr.intake.receipt import claim_copy
from escr.pages.coversheet import CoverSheet
from escr.pipelines import intake
from escr.record.models import CopyGiven, Event, User
from tests.support.ocr_cache import install_ocr_cache
from tests.support.scans import coversheet_page, write_pdf
from tests.support.web import SCANNER, World, open_world, page

NOTE = ["Family support note", "Date: 4 March 2026", "Jayden met his friend Oliver Whitfield today.",
        "Please call Mrs Patel on 07700 900123", "or email jpatel@example.org about the visit."]


def file_note(w: World, pytestconfig: pytest.Config) -> None:
    """A verified note in the south child's record naming another child, an adult, a phone number
    and an email address: what a disclosure officer must find (world.docs["note"])."""
    scan = write_pdf([coversheet_page(CoverSheet("B-DIS00001", ("CD654321",), "correspondence", 1)), page(NOTE)],
                     w.home / "note.pdf")
    patch = install_ocr_cache(pytestconfig)
    try:
        result = intake.run(claim_copy(scan, w.settings.processing_dir, operator=SCANNER, device="mfd-1"), w.services)
    finally:
        patch.undo()
    assert result.status == "filed", result
    w.docs["note"] = result.documents[0]["id"]
    with w.services.db.session() as session:
        verify_document(session, w.docs["note"], user="bs.jones")


@pytest.fixture(scope="module")
def world(tmp_path_factory, pytestconfig, postgres_server) -> Iterator[World]:
    for w in open_world(tmp_path_factory, pytestconfig, postgres_server, "disclosure"):
        file_note(w, pytestconfig)
        yield w


def officer(world: World, name: str) -> Disclosures:
    with world.services.db.session() as session:
        user = session.scalars(select(User).where(User.username == name)).one()
        principal = Principal(user.id, user.username, user.display_name, Role(user.role),
                              third_party=user.third_party_access)
    return Disclosures(world.services, principal)


def words_of(pdf: bytes, tmp_path) -> str:  # type: ignore[no-untyped-def]
    path = tmp_path / "bundle.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout


def test_a_bundle_is_prepared_reviewed_by_a_second_officer_exported_burnt_in_and_logged(world, tmp_path):
    one, two = officer(world, "dis.one"), officer(world, "dis.two")
    opened = one.open_request(requester="Jayden Okonkwo", relationship="the child himself", basis="care_leaver",
                              child_ids=["CD654321"])
    rid = opened["id"]
    assert opened["due_on"] == add_month(opened["received_on"]) and opened["state"] == "preparing"
    with pytest.raises(AccessDenied) as refused:  # dis.two does not work on it yet
        two.request(rid)
    assert refused.value.code == "not_your_request"

    found = one.propose(rid)
    assert {"other_child", "phone", "email", "adult_name"} <= set(found["by_source"]), found
    doc = one.document(rid, world.docs["note"])
    proposed = [r for r in doc["redactions"] if r["status"] == "proposed"]
    assert all(r["why"] and r["confidence"] for r in proposed)  # each says why and how sure
    # Nothing proposed is applied until a person accepts it: the bundle cannot go to review yet.
    with pytest.raises(InvalidState) as undecided:
        one.submit(rid, "dis.two")
    assert undecided.value.code == "proposals_undecided"
    keep = [r["id"] for r in proposed if r["source"] in ("other_child", "phone", "email", "adult_name")]
    assert one.decide(rid, keep, "accept") == len(keep)
    one.decide(rid, [r["id"] for r in proposed if r["id"] not in keep], "reject")
    searched = one.search_and_redact(rid, "the visit", "third_party")
    assert searched["proposed"] == 1
    one.decide(rid, [r["id"] for r in one.document(rid, world.docs["note"])["redactions"]
                     if r["status"] == "proposed"], "accept")
    drawn = one.redact(rid, world.docs["note"], reason="serious_harm", page=1, box=(0.1, 0.10, 0.6, 0.145))
    assert drawn["status"] == "accepted" and drawn["source"] == "person"

    with pytest.raises(ProtocolViolation):
        one.submit(rid, "dis.one")  # four-eyes: not the preparer
    one.submit(rid, "dis.two")
    with pytest.raises(ProtocolViolation):
        one.approve(rid)
    with pytest.raises(InvalidState) as unreviewed:
        two.approve(rid)
    assert unreviewed.value.code == "not_reviewed"  # every page first
    for d in two.request(rid)["documents"]:
        two.review_document(rid, d["id"])
    two.return_bundle(rid, "Please also redact the school name")
    assert one.request(rid)["state"] == "preparing"
    one.submit(rid, "dis.two")
    with pytest.raises(InvalidState):
        two.approve(rid)  # the earlier review was of another version
    for d in two.request(rid)["documents"]:
        two.review_document(rid, d["id"])
    assert two.approve(rid)["state"] == "approved"

    exported = one.export(rid)
    stream, _ = one.open_bundle(rid)
    with stream:
        pdf = stream.read()
    assert hashlib.sha256(pdf).hexdigest() == exported["bundle_sha256"]
    text = words_of(pdf, tmp_path)
    assert "Schedule of redactions" in text and "Index of documents" in text
    bundle_pages = _document_pages_text(pdf, tmp_path)
    for secret in ("Oliver", "Whitfield", "Patel", "07700", "900123", "jpatel", "visit", "Family support note"):
        assert secret not in bundle_pages, secret
    assert "Jayden" in bundle_pages  # the child's own name stays, in a fresh text layer

    # No image stream holds the original pixels of a redacted area; no metadata, no attachments.
    accepted = [r for r in one.document(rid, world.docs["note"])["redactions"] if r["status"] == "accepted"]
    with pikepdf.open(tmp_path / "bundle.pdf") as bundle:
        assert "/Info" not in bundle.trailer and "/Metadata" not in bundle.Root and "/Names" not in bundle.Root
        last = bundle.pages[-1]
        images = list(last.images.values())
        assert len(images) == 1
        pixels = pikepdf.PdfImage(images[0]).as_pil_image().convert("L")
        w, h = pixels.size
        for r in accepted:
            x0, y0, x1, y1 = r["box"]
            inner = pixels.crop((int(x0 * w) + 2, int(y0 * h) + 2, int(x1 * w) - 2, int(y1 * h) - 2))
            assert inner.getextrema()[1] < 40, r  # black, JPEG noise aside
        for obj in bundle.objects:
            if isinstance(obj, pikepdf.Stream) and obj.get("/Subtype") == "/Image":
                assert obj.get("/Filter") == "/DCTDecode"  # a fresh JPEG: nothing copied from the scan

    # Recording the copy given: on the child's record and in the access log.
    given = one.record_disclosure(rid, recipient="Jayden Okonkwo", method="secure_email")
    assert given["bundle_sha256"] == exported["bundle_sha256"]
    with world.services.db.session() as session:
        kinds = [e.kind for e in session.scalars(select(Event).where(Event.child_id == "CD654321"))]
        assert session.scalars(select(CopyGiven)).first() is not None
    for kind in ("disclosure_opened", "redactions_proposed", "redaction_changed", "disclosure_submitted",
                 "disclosure_returned", "disclosure_pages_reviewed", "disclosure_approved", "bundle_exported",
                 "copy_given"):
        assert kind in kinds, kind
    assert "accessed" in kinds
    assert one.request(rid)["state"] == "disclosed"
    # The request's certificate lists its own steps: each logged step names the request it belongs to.
    steps = [e["kind"] for e in one.certificate(rid)["events"]]
    assert steps[0] == "disclosure_opened" and {"bundle_exported", "copy_given"} <= set(steps)


def _document_pages_text(pdf: bytes, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """The text of the bundle's document pages (the last page here), as pdftotext reads it."""
    path = tmp_path / "bundle.pdf"
    path.write_bytes(pdf)
    with pikepdf.open(path) as p:
        count = len(p.pages)
    return subprocess.run(["pdftotext", "-f", str(count), "-l", str(count), str(path), "-"], capture_output=True,
                          text=True, check=True).stdout


def test_the_burn_in_paints_pixels_and_keeps_only_words_outside(tmp_path):
    from escr.pages import bundle

    image = Image.new("L", (200, 100), 255)
    burnt = bundle.burn_in(image, [(0.1, 0.1, 0.5, 0.5)])
    assert burnt.getpixel((50, 30)) == 0 and burnt.getpixel((150, 80)) == 255
    assert image.getpixel((50, 30)) == 255  # the source image is never changed
    assert bundle.overlaps((0.2, 0.2, 0.3, 0.3), (0.1, 0.1, 0.5, 0.5))
    assert not bundle.overlaps((0.6, 0.2, 0.7, 0.3), (0.1, 0.1, 0.5, 0.5))


def test_a_caseworker_and_an_auditor_cannot_work_on_disclosures(world):
    for name in ("cw.south", "aud.one"):
        with world.services.db.session() as session:
            user = session.scalars(select(User).where(User.username == name)).one()
            p = Principal(user.id, user.username, user.display_name, Role(user.role))
        with pytest.raises(AccessDenied) as refused:
            Disclosures(world.services, p).open_request(requester="x", relationship="parent", basis="subject_access",
                                                        child_ids=["CD654321"])
        assert refused.value.code == "role_forbidden"


def test_the_preparer_moves_a_saved_area_keeping_its_reason_and_author_and_the_move_is_logged(world):
    one, two = officer(world, "dis.one"), officer(world, "dis.two")
    rid = one.open_request(requester="A parent", relationship="mother", basis="subject_access",
                           child_ids=["CD654321"])["id"]
    drawn = one.redact(rid, world.docs["note"], reason="serious_harm", page=1, box=(0.1, 0.1, 0.5, 0.15))
    moved = one.move(rid, drawn["id"], (0.2, 0.6, 0.7, 0.65))
    assert moved["box"] == [0.2, 0.6, 0.7, 0.65]
    assert moved["reason"] == "serious_harm" and moved["created_by"] == "dis.one" and moved["status"] == "accepted"
    # The same through decide (the form and the API): one redaction, four edges.
    assert one.decide(rid, [drawn["id"]], "move", box=(0.3, 0.6, 0.8, 0.66)) == 1
    with pytest.raises(ValidationFailed):
        one.decide(rid, [drawn["id"]], "move")  # no edges
    with pytest.raises(ValidationFailed):
        one.decide(rid, [drawn["id"], drawn["id"] + 1], "move", box=(0.3, 0.6, 0.8, 0.66))  # one at a time
    whole = one.redact(rid, world.docs["note"], reason="serious_harm", page=1, whole="page")
    with pytest.raises(InvalidState):
        one.move(rid, whole["id"], (0.1, 0.1, 0.2, 0.2))  # a withheld page has no edges to move
    with world.services.db.session() as session:
        moves = [e for e in session.scalars(select(Event).where(Event.kind == "redaction_changed"))
                 if e.detail["parameters"].get("request_id") == rid and e.outcome == "move"]
    assert [m.detail["parameters"]["after"] for m in moves] == [[0.2, 0.6, 0.7, 0.65], [0.3, 0.6, 0.8, 0.66]]
    assert moves[0].detail["parameters"]["before"] == [0.1, 0.1, 0.5, 0.15] and moves[0].actor == "dis.one"
    one.decide(rid, [whole["id"]], "remove")
    with pytest.raises(AccessDenied):
        two.move(rid, drawn["id"], (0.1, 0.1, 0.2, 0.2))  # not the preparer
    one.submit(rid, "dis.two")
    for anyone in (one, two):
        with pytest.raises(InvalidState):
            anyone.move(rid, drawn["id"], (0.1, 0.1, 0.2, 0.2))  # only while it is being prepared
    area = next(r for r in one.document(rid, world.docs["note"])["redactions"] if r["id"] == drawn["id"])
    assert area["box"] == [0.3, 0.6, 0.8, 0.66]
