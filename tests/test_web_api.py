"""The REST API: pagination, stable JSON errors, the OpenAPI description, and the business
support and auditor work done through it (indexing, four-eyes verification, quarantine, cover
sheets, exports) on documents filed by the real intake pipeline.
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from escr.record.models import Document, Event
from escr.web import create_app
from tests.support.web import World, open_world, quarantine_a_file, token_clients


@pytest.fixture(scope="module")
def world(tmp_path_factory, pytestconfig, postgres_server) -> World:
    yield from open_world(tmp_path_factory, pytestconfig, postgres_server, "api")


@pytest.fixture(scope="module")
def app(world):
    return create_app(world.services)


@pytest.fixture(scope="module")
def as_user(app, world):
    """A client with the named user's API token."""
    return token_clients(app, world)


def error_of(resp) -> tuple[int, str]:
    body = resp.json()
    assert set(body) == {"error"} and {"code", "message", "status"} <= set(body["error"])
    assert body["error"]["status"] == resp.status_code
    return resp.status_code, body["error"]["code"]


# --- OpenAPI, errors, pagination -----------------------------------------------------------------


def test_openapi_description_is_served_and_covers_the_api(as_user):
    spec = as_user("cw.north").get("/api/v1/openapi.json")  # to anyone signed in (web.openapi_access)
    assert spec.status_code == 200
    doc = spec.json()
    assert doc["openapi"].startswith("3.") and doc["info"]["title"] == "escr"
    paths = doc["paths"]
    for path in ("/api/v1/children", "/api/v1/children/{child_id}/documents", "/api/v1/documents/{doc_id}/content",
                 "/api/v1/documents/{doc_id}/verify", "/api/v1/access-log", "/api/v1/queue", "/api/v1/tokens"):
        assert path in paths, path
    assert not any(not p.startswith("/api/v1/") for p in paths)  # pages are not part of the API
    assert "not_your_team" in doc["info"]["description"]
    params = {p["name"] for p in paths["/api/v1/access-log"]["get"]["parameters"]}
    assert {"offset", "limit", "child", "user", "since", "until"} <= params
    assert "403" in paths["/api/v1/documents/{doc_id}"]["get"]["responses"]


def test_errors_are_json_with_stable_codes(app, world, as_user):
    bs = as_user("bs.jones")
    assert error_of(TestClient(app).get("/api/v1/me")) == (401, "unauthenticated")
    assert error_of(bs.get("/api/v1/documents/D-doesnotexist")) == (404, "not_found")
    assert error_of(bs.get("/api/v1/children/ZZ999999")) == (404, "not_found")
    assert error_of(bs.get("/api/v1/no/such/route")) == (404, "not_found")
    assert error_of(bs.delete("/api/v1/me")) == (405, "method_not_allowed")
    assert error_of(bs.get("/api/v1/children/AB123456/documents?since=yesterday")) == (422, "validation_failed")
    assert error_of(bs.get("/api/v1/queue?state=lost")) == (422, "validation_failed")
    assert error_of(bs.get("/api/v1/children?q=")) == (422, "validation_failed")
    assert error_of(bs.get("/api/v1/access-log")) == (403, "role_forbidden")
    assert error_of(bs.post(f"/api/v1/documents/{world.docs['referral']}/index",
                            json={"children": ["AB123456"]})) == (422, "validation_failed")
    # Messages carry ids, never the names or dates of birth that were searched for.
    resp = as_user("cw.south").get("/api/v1/children/AB123456")
    assert "Whitfield" not in resp.text and "2015" not in resp.text


def test_every_list_is_paginated(world, as_user):
    bs = as_user("bs.jones")
    first = bs.get("/api/v1/children/AB123456/documents?limit=1").json()
    assert (first["offset"], first["limit"], first["total"], first["next_offset"]) == (0, 1, 2, 1)
    second = bs.get("/api/v1/children/AB123456/documents?limit=1&offset=1").json()
    assert second["next_offset"] is None
    assert [d["id"] for d in first["items"] + second["items"]] == [world.docs["referral"], world.docs["third_party"]]

    children = bs.get("/api/v1/children?q=Whitfield&limit=1").json()
    assert children["total"] == 2 and len(children["items"]) == 1 and children["next_offset"] == 1
    clamped = bs.get("/api/v1/queue?limit=100000").json()
    assert clamped["limit"] == world.settings.web.max_page_size
    assert error_of(bs.get("/api/v1/queue?offset=-1")) == (422, "validation_failed")

    auditor = as_user("aud.one")
    # Filtered by user: each read of the log is itself logged (as the auditor's), which would move
    # an unfiltered newest-first page by one between the two requests.
    log = auditor.get("/api/v1/access-log?limit=2&user=bs.jones").json()
    assert len(log["items"]) == 2 and log["total"] > 2
    rest = auditor.get(f"/api/v1/access-log?limit=2&user=bs.jones&offset={log['next_offset']}").json()
    assert {e["seq"] for e in log["items"]}.isdisjoint({e["seq"] for e in rest["items"]})
    assert log["items"][0]["seq"] > log["items"][1]["seq"]  # newest first
    prov = bs.get(f"/api/v1/documents/{world.docs['referral']}/provenance?limit=3").json()
    assert len(prov["events"]["items"]) == 3 and prov["events"]["total"] > 3


def test_the_chronology_is_in_date_order_and_filters_by_type_and_date(as_user, world):
    north = as_user("tm.north")
    docs = north.get("/api/v1/children/AB123456/documents").json()["items"]
    assert [(d["doc_date"], d["doc_type"]) for d in docs] == [("2026-03-03", "referral"),
                                                              ("2026-03-05", "police_report")]
    only = north.get("/api/v1/children/AB123456/documents?type=police_report").json()["items"]
    assert [d["id"] for d in only] == [world.docs["third_party"]]
    after = north.get("/api/v1/children/AB123456/documents?since=2026-03-04").json()["items"]
    assert [d["id"] for d in after] == [world.docs["third_party"]]


def test_find_a_child_by_id_name_nhs_number_or_date_of_birth(as_user):
    bs = as_user("bs.jones")

    def ids(q: str) -> list[str]:
        return [c["child_id"] for c in bs.get("/api/v1/children", params={"q": q}).json()["items"]]

    assert ids("AB123456") == ["AB123456"]
    assert ids("ab123456") == ["AB123456"]
    assert ids("whitfield") == ["AB123456", "AB123457"]
    assert ids("Amelia Whitfield") == ["AB123456"]
    assert ids("943 476 5919") == ["AB123456"]
    assert ids("14/06/2015") == ["AB123456"]
    assert ids("14 June 2015") == ["AB123456"]
    assert ids("Oliver 03/02/2017") == ["AB123457"]
    assert ids("nobody-of-that-name") == []


# --- business support work ------------------------------------------------------------------------


def test_manual_indexing_then_four_eyes_verification(world, as_user):
    doc = world.docs["unmatched"]
    bs = as_user("bs.jones")
    queue = bs.get("/api/v1/queue?state=needs_indexing").json()["items"]
    assert [d["id"] for d in queue] == [doc]
    assert "AB123456" in [c["child_id"] for c in queue[0]["candidates"]]  # named in the text, no date of birth

    indexed = bs.post(f"/api/v1/documents/{doc}/index",
                      json={"children": ["AB123456"], "doc_type": "correspondence", "doc_date": "2026-02-02"})
    assert indexed.status_code == 200 and indexed.json()["state"] == "awaiting_verification"
    own = bs.post(f"/api/v1/documents/{doc}/verify")
    assert error_of(own) == (409, "protocol_violation")  # the indexer may not verify
    scanner = as_user("bs.scanner").post(f"/api/v1/documents/{doc}/verify")
    assert error_of(scanner) == (409, "protocol_violation")  # nor the scanner
    verified = as_user("tm.north").post(f"/api/v1/documents/{doc}/verify")
    assert verified.status_code == 200 and verified.json()["state"] == "verified"
    shown = as_user("cw.north").get(f"/api/v1/documents/{doc}").json()
    assert (shown["verified_by"], shown["indexed_by"], shown["children"]) == ("tm.north", "bs.jones", ["AB123456"])
    with world.services.db.session() as session:
        kinds = [e.kind for e in session.scalars(select(Event).where(Event.document_id == doc,
                                                                     Event.category == "protocol"))]
    assert kinds[-3:] == ["indexed", "retention_changed", "verified"]  # hand indexing dates the retention


def test_reject_needs_a_reason_and_sends_the_paper_back_for_rescanning(world, as_user):
    doc = world.docs["referral"]
    bs = as_user("bs.jones")
    assert error_of(bs.post(f"/api/v1/documents/{doc}/reject", json={"reason": " "})) == (422, "reason_required")
    resp = bs.post(f"/api/v1/documents/{doc}/reject", json={"reason": "page 2 is cut off at the bottom"})
    assert resp.status_code == 200 and resp.json()["state"] == "rejected"
    assert [d["id"] for d in bs.get("/api/v1/queue?state=rejected").json()["items"]] == [doc]


def test_intake_dashboard_and_quarantine_retry_and_discard(world, as_user):
    bs = as_user("bs.jones")
    keep = quarantine_a_file(world, "keep.pdf")
    drop = quarantine_a_file(world, "drop.pdf")
    dash = bs.get("/api/v1/intake").json()
    assert dash["quarantined"] == 2 and set(dash["counts"]) >= {"needs_indexing", "qc_failed", "awaiting_verification"}
    listed = bs.get("/api/v1/quarantine").json()["items"]
    assert {q["claim_id"] for q in listed} == {keep, drop}
    assert all(q["reason"] and q["what_to_do"] for q in listed)

    short = bs.post(f"/api/v1/quarantine/{drop}/discard", json={"reason": "dup"})
    assert error_of(short) == (422, "reason_required")
    discarded = bs.post(f"/api/v1/quarantine/{drop}/discard", json={"reason": "blank test page, scanned twice"})
    assert discarded.status_code == 200
    kept = world.settings.home / "discarded" / drop
    assert (kept / "drop.pdf").read_bytes().startswith(b"%PDF-1.4")  # the bytes are kept
    note = json.loads((kept / "discarded.json").read_text())
    assert (note["discarded_by"], note["reason"], note["keep_until"]) == (
        "bs.jones", "blank test page, scanned twice", discarded.json()["kept_until"])
    with world.services.db.session() as session:
        event = session.scalars(select(Event).where(Event.kind == "quarantine_discarded")).one()
    assert event.actor == "bs.jones" and event.detail["parameters"]["claim_id"] == drop

    retried = bs.post(f"/api/v1/quarantine/{keep}/retry")
    assert retried.status_code == 200
    assert (world.settings.intake_dir / retried.json()["returned_to"]).exists()
    assert bs.get("/api/v1/quarantine").json()["total"] == 0
    assert error_of(bs.post(f"/api/v1/quarantine/{keep}/retry")) == (404, "not_found")


def test_quarantined_files_are_retried_together_each_on_its_own_and_nothing_is_overwritten(world, as_user):
    """Two scans of the same name and one claim already gone: both files go back, the second
    beside the first rather than over it, each retry logged, and the missing one named."""
    bs = as_user("bs.jones")
    first, second = quarantine_a_file(world, "same.pdf"), quarantine_a_file(world, "same.pdf")
    too_many = bs.post("/api/v1/quarantine/retry", json={"claim_ids": [first] + [f"c{i}" for i in range(100)]})
    assert error_of(too_many) == (422, "validation_failed")
    assert "at most 100" in too_many.json()["error"]["message"]
    assert {q["claim_id"] for q in bs.get("/api/v1/quarantine").json()["items"]} == {first, second}  # none moved
    assert error_of(as_user("cw.north").post("/api/v1/quarantine/retry", json={"claim_ids": [first]})) == (
        403, "role_forbidden")
    assert error_of(bs.post("/api/v1/quarantine/retry", json={"claim_ids": [" "]})) == (422, "validation_failed")

    done = bs.post("/api/v1/quarantine/retry", json={"claim_ids": [first, second, "no-such-claim", first]})
    assert done.status_code == 200
    body = done.json()
    assert [r["claim_id"] for r in body["returned"]] == [first, second]
    assert [r["returned_to"] for r in body["returned"]] == ["bs.scanner/mfd-1/same.pdf",
                                                            "bs.scanner/mfd-1/same (retry 2).pdf"]
    for r in body["returned"]:
        assert (world.settings.intake_dir / r["returned_to"]).read_bytes().startswith(b"%PDF-1.4")
    assert [(r["claim_id"], r["code"]) for r in body["refused"]] == [("no-such-claim", "not_found")]
    assert "not in quarantine" in body["refused"][0]["why"]
    assert bs.get("/api/v1/quarantine").json()["total"] == 0
    with world.services.db.session() as session:
        released = session.scalars(select(Event).where(Event.kind == "quarantine_released")
                                   .order_by(Event.id.desc()).limit(2)).all()
    assert {(e.actor, e.detail["parameters"]["claim_id"]) for e in released} == {("bs.jones", first),
                                                                              ("bs.jones", second)}


def test_cover_sheet_from_the_record_reads_back_as_that_child(as_user, tmp_path):
    from pdf2image import convert_from_bytes

    from escr.pages.coversheet import find_coversheet

    resp = as_user("bs.jones").post("/api/v1/children/AB123456/coversheet",
                                    json={"doc_type": "court_order", "pages": 4, "siblings": ["AB123457"]})
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/pdf"
    (page,) = convert_from_bytes(resp.content, dpi=150, grayscale=True)
    sheet = find_coversheet(page)
    assert sheet is not None
    assert (sheet.child_ids, sheet.doc_type, sheet.declared_pages) == (("AB123456", "AB123457"), "court_order", 4)
    bad = as_user("bs.jones").post("/api/v1/children/AB123456/coversheet", json={"doc_type": "no_such_type"})
    assert error_of(bad) == (404, "not_found")


# --- auditors' exports ---------------------------------------------------------------------------


def test_access_log_filters_and_csv_export(world, as_user):
    as_user("cw.north").get(f"/api/v1/documents/{world.docs['third_party']}")
    auditor = as_user("aud.one")
    rows = auditor.get("/api/v1/access-log?child=AB123456&user=cw.north&action=view").json()["items"]
    assert rows and all((r["child_id"], r["actor"], r["action"]) == ("AB123456", "cw.north", "view") for r in rows)
    today = rows[0]["at"][:10]
    assert auditor.get("/api/v1/access-log?child=AB123456&until=2000-01-01").json()["total"] == 0
    assert auditor.get(f"/api/v1/access-log?child=AB123456&since={today}&until={today}").json()["total"] >= len(rows)

    exported = auditor.get("/api/v1/access-log.csv?child=AB123456&user=cw.north")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(exported.text)))
    assert table and {r["actor"] for r in table} == {"cw.north"} and {r["child_id"] for r in table} == {"AB123456"}
    assert {"seq", "at", "action", "document_id", "outcome", "purpose", "basis", "hash"} <= set(table[0])


def test_provenance_csv_lists_every_protocol_event_in_order(world, as_user):
    doc = world.docs["south"]
    resp = as_user("aud.one").get(f"/api/v1/documents/{doc}/provenance.csv")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    kinds = [r["kind"] for r in rows]
    assert kinds[0] == "received" and kinds[-1] == "verified" and "stored" in kinds
    assert [int(r["seq"]) for r in rows] == sorted(int(r["seq"]) for r in rows)
    assert rows[-1]["actor"] == "user:bs.jones" and len(rows[-1]["hash"]) == 64


def test_csv_cells_cannot_carry_a_spreadsheet_formula(world, as_user):
    auditor = as_user("aud.one")
    auditor.post(f"/api/v1/documents/{world.docs['south']}/purpose", json={"purpose": "=HYPERLINK(\"x\") audit"})
    as_user("aud.one").get(f"/api/v1/documents/{world.docs['south']}/content")
    text = auditor.get("/api/v1/access-log.csv?user=aud.one").text
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text


def test_health_and_metrics(app, world):
    client = TestClient(app, client=("127.0.0.1", 50000))  # on the server itself (web.metrics_access)
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and "escr_documents" in metrics.text
    with world.services.db.session() as session:
        verified = len(session.scalars(select(Document.id).where(Document.state == "verified")).all())
    assert f'escr_documents{{state="verified"}} {verified}' in metrics.text.replace(".0\n", "\n")
