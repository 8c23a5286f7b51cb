"""Issue 19 on the REST API: the record's paper, status history, disposal, timeliness and file
examinations answer JSON under the same rules as the application layer."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient

from escr.app import accounts
from escr.record.events import Actor
from escr.web import create_app
from tests.support.records import file_document

ADMIN = Actor(kind="user", name="admin")


@pytest.fixture
def client(with_children):
    services = with_children
    app = create_app(services)
    secrets = {}
    with services.db.session() as session:
        accounts.add_team(session, "north", actor=ADMIN)
        for name, role, teams in (("bs.jones", "business_support", []), ("tm.smith", "team_manager", ["north"]),
                                  ("sw.ahmed", "caseworker", ["north"]), ("rm.evans", "auditor", []),
                                  ("rm.lee", "auditor", [])):
            user, _ = accounts.add_user(session, name, role=role, actor=ADMIN, teams=teams)
            session.flush()
            secrets[name] = accounts.create_token(session, user, "tests", actor=ADMIN).secret

    def as_user(name: str) -> TestClient:
        return TestClient(app, headers={"Authorization": f"Bearer {secrets[name]}"})

    return services, as_user


def test_a_volume_is_registered_booked_out_and_shown_on_the_record(client):
    services, as_user = client
    bs, tm, sw = as_user("bs.jones"), as_user("tm.smith"), as_user("sw.ahmed")
    resp = bs.post("/api/v1/paper/volumes", json={"id": "AB123456-V1", "child_id": "AB123456", "kind": "volume",
                                                  "title": "Volume 1", "location": "Records store",
                                                  "covers_from": "2015-07-01", "covers_to": "2019-12-31"})
    assert resp.status_code == 201, resp.text
    due = (date.today() + timedelta(days=7)).isoformat()
    refused = bs.post("/api/v1/paper/volumes/AB123456-V1/book-out",
                      json={"recipient": "sw.ahmed", "authorised_by": "bs.jones", "due_back": due})
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "protocol_violation")
    move = bs.post("/api/v1/paper/volumes/AB123456-V1/book-out",
                   json={"recipient": "sw.ahmed", "authorised_by": "tm.smith", "due_back": due}).json()
    assert bs.post(f"/api/v1/paper/moves/{move['move_id']}/confirm").status_code == 409
    assert sw.post(f"/api/v1/paper/moves/{move['move_id']}/confirm").json()["confirmed_by"] == "sw.ahmed"
    record = sw.get("/api/v1/children/AB123456/components").json()
    assert (record["paper"][0]["location"], record["paper"][0]["state"]) == ("sw.ahmed", "booked_out")
    assert tm.get("/api/v1/paper/overdue").json() == {"items": []}
    exam = tm.post("/api/v1/children/AB123456/examinations",
                   json={"kind": "supervision", "purpose": "monthly supervision", "notes": "seen"})
    assert exam.status_code == 201
    assert sw.get("/api/v1/children/AB123456/examinations").json()["examinations"][0]["examined_by"] == "tm.smith"


def test_disposal_and_timeliness_through_the_api(client):
    services, as_user = client
    doc_id = file_document(services, ["EF111222"], retention_until=date(2020, 1, 1), locked=False)
    rm, lee = as_user("rm.evans"), as_user("rm.lee")
    assert rm.get("/api/v1/disposal/review").json()["items"][0]["id"] == doc_id
    pid = rm.post("/api/v1/disposal/proposals", json={"items": [{"kind": "document", "id": doc_id}],
                                                     "reason": "retention passed"}).json()["proposal_id"]
    assert rm.post(f"/api/v1/disposal/proposals/{pid}/decision",
                   json={"approve": True, "note": "mine"}).status_code == 409
    assert lee.post(f"/api/v1/disposal/proposals/{pid}/decision", json={"approve": True, "note": "ok"}).status_code == 200
    done = rm.post(f"/api/v1/disposal/proposals/{pid}/carry-out").json()
    assert done["disposed"] == [f"document {doc_id}"]
    assert rm.get("/api/v1/disposal/tombstones", params={"item_id": doc_id}).json()["items"][0]["approved_by"] == "rm.lee"

    bs = as_user("bs.jones")
    future = bs.post("/api/v1/paper/arrivals", json={"ref": "CS-1", "arrived_on": "2099-01-01"})
    assert (future.status_code, future.json()["error"]["code"]) == (422, "validation_failed")
    assert as_user("sw.ahmed").get("/api/v1/reports/timeliness", params={"month": "2024-05"}).status_code == 403
    exported = bs.get("/api/v1/reports/timeliness", params={"month": "2024-05", "format": "csv"})
    assert exported.headers["content-type"].startswith("text/csv")
    assert next(csv.reader(io.StringIO(exported.text)))[:3] == ["team", "month", "items"]


def test_the_cover_sheet_register_through_the_api(client):
    services, as_user = client
    from escr.app import coversheets
    from escr.app.accounts import get_user, principal_for

    with services.db.session() as session:
        coversheets.register_printed(session, principal_for(get_user(session, "bs.jones")), batch_id="B-9",
                                     child_ids=["AB123456"], doc_type="referral", declared_pages=2)
    bs = as_user("bs.jones")
    assert [i["cover_batch_id"] for i in bs.get("/api/v1/coversheets/unscanned", params={"days": 0}).json()["items"]] == ["B-9"]
    assert bs.get("/api/v1/coversheets/B-9/manifest").json()["problem"] == "nothing scanned under this cover sheet"
    listed = bs.post("/api/v1/coversheets/B-9/missing", json={"description": "whole letter", "pages": 2})
    assert listed.status_code == 201 and listed.json()["missing"][0]["pages"] == 2
