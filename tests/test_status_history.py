"""Issue 19, status and retention (seed 001 sections 17-18, 24): the child index keeps a history of
statuses, imports update it, and retention reads the whole history (the longest period wins)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from escr.errors import InputRejected
from escr.record.children import import_children, read_children_csv
from escr.record.events import Actor
from escr.record.models import Child, Document, Event
from escr.record.retention import StatusPeriod, load_retention
from escr.record.retention_updates import retention_hook
from escr.services import open_services
from escr.settings import DEFAULT_CONFIG_DIR, load_settings
from escr.storage.objectstore import today_utc
from tests.support.records import file_document

SCHEDULE = load_retention(DEFAULT_CONFIG_DIR / "retention.yaml")
ADMIN = Actor(kind="user", name="admin")
HEAD = "child_id,given_names,family_name,date_of_birth,nhs_number,category,status,team,final_contact,adoption_order,date_of_death,status_history\n"


def _import(services, tmp_path: Path, rows: str, *, hook: bool = True):
    path = tmp_path / "children.csv"
    path.write_text(HEAD + rows)
    with services.db.session() as session:
        on_change = retention_hook(services.store, services.retention, ADMIN) if hook else None
        return import_children(session, read_children_csv(path), actor=ADMIN, on_retention_change=on_change)


def _history(services, child_id: str) -> list[tuple]:
    with services.db.session() as session:
        child = session.get(Child, child_id)
        return sorted((s.status, s.from_date, s.to_date, s.on_date) for s in child.statuses)


def test_an_import_keeps_several_statuses_and_ends_the_ones_no_longer_listed(services, tmp_path):
    _import(services, tmp_path, "AB123456,Amelia,Whitfield,2015-06-14,,cin;s47,open,north,,,,\n")
    assert _history(services, "AB123456") == [("cin", None, None, None), ("s47", None, None, None)]
    _import(services, tmp_path, "AB123456,Amelia,Whitfield,2015-06-14,,cp,open,north,,,,\n")
    today = today_utc()
    assert _history(services, "AB123456") == [("cin", None, today, None), ("cp", today, None, None),
                                              ("s47", None, today, None)]
    with services.db.session() as session:
        changes = session.scalars(select(Event).where(Event.kind == "child_status")).all()
        assert [e.outcome for e in changes] == ["imported", "imported"]
        assert {"status": "cp", "from": today.isoformat(), "to": None, "on": None} in changes[1].detail["parameters"]["after"]


def test_an_explicit_history_and_dated_statuses_are_imported(services, tmp_path):
    _import(services, tmp_path, "CD654321,Jayden,Okonkwo,2011-11-30,,,open,south,,2019-05-01,,"
                                "cla:2016-02-01/2019-05-01; cp:2015-01-10/2016-02-01\n")
    assert _history(services, "CD654321") == [
        ("adoption", date(2019, 5, 1), None, date(2019, 5, 1)),
        ("cla", date(2016, 2, 1), date(2019, 5, 1), None),
        ("cp", date(2015, 1, 10), date(2016, 2, 1), None)]


def test_a_bad_status_is_refused_and_nothing_is_imported(services, tmp_path):
    with pytest.raises(InputRejected) as err:
        _import(services, tmp_path, "AB123456,Amelia,Whitfield,2015-06-14,,cin,open,north,,,,\n"
                                    "CD654321,Jayden,Okonkwo,2011-11-30,,,open,south,,,,cla:2019-01-01/2018-01-01\n")
    assert "line 3: status_history" in err.value.message
    with services.db.session() as session:
        assert session.get(Child, "AB123456") is None


def test_retention_reads_the_whole_history():
    dob = date(2010, 3, 1)
    # Child in need, closed: 2 years after the final contact.
    assert SCHEDULE.keep_until_history([StatusPeriod("cin", date(2020, 1, 1), date(2021, 6, 30)),
                                        StatusPeriod("closed", date(2021, 6, 30), None, date(2021, 6, 30))],
                                       date_of_birth=dob) == date(2023, 6, 30)
    # Once on a CP plan, then CIN: the 75th birthday wins.
    assert SCHEDULE.keep_until_history([StatusPeriod("cp", date(2012, 1, 1), date(2013, 1, 1)),
                                        StatusPeriod("cin", date(2013, 1, 1), None),
                                        StatusPeriod("closed", on_date=date(2014, 1, 1))],
                                       date_of_birth=dob) == date(2085, 3, 1)
    # Adoption: 100 years from the order, which outlasts the 75th birthday of a looked-after child.
    assert SCHEDULE.keep_until_history([StatusPeriod("cla", date(2011, 1, 1), date(2012, 5, 4)),
                                        StatusPeriod("adoption", on_date=date(2012, 5, 4))],
                                       date_of_birth=dob) == date(2112, 5, 4)
    # Looked after and died before 18: 15 years after death.
    assert SCHEDULE.keep_until_history([StatusPeriod("cla", date(2011, 1, 1), date(2016, 8, 1)),
                                        StatusPeriod("died", on_date=date(2016, 8, 1))],
                                       date_of_birth=dob) == date(2031, 8, 1)
    # A closure that was reopened no longer gives a final contact: keep.
    assert SCHEDULE.keep_until_history([StatusPeriod("cin", date(2020, 1, 1), None),
                                        StatusPeriod("closed", date(2021, 1, 1), date(2021, 3, 1), date(2021, 1, 1))],
                                       date_of_birth=dob) is None


def test_an_import_that_changes_the_history_redates_the_documents_and_logs_both_dates(services, tmp_path):
    _import(services, tmp_path, "EF111222,Sophie,Marsh,2009-01-09,,cin,open,north,,,,\n")
    doc_id = file_document(services, ["EF111222"])
    _import(services, tmp_path, "EF111222,Sophie,Marsh,2009-01-09,,cin,closed,north,2024-03-01,,,\n")
    with services.db.session() as session:
        assert session.get(Document, doc_id).retention_until == date(2026, 3, 1)
    _import(services, tmp_path, "EF111222,Sophie,Marsh,2009-01-09,,cin,closed,north,2024-03-01,,,"
                                "cin:2019-01-01/2020-01-01; cla:2020-01-01/2024-03-01\n")
    with services.db.session() as session:
        assert session.get(Document, doc_id).retention_until == date(2084, 1, 9)
        event = session.scalars(select(Event).where(Event.kind == "retention_changed", Event.document_id == doc_id)
                                .order_by(Event.id.desc())).first()
        assert event.detail["parameters"]["old"] == "2026-03-01"
        assert event.detail["parameters"]["new"] == "2084-01-09"


def test_under_compliance_a_date_is_never_shortened_and_the_refusal_is_logged(tmp_path, database_url):
    services = open_services(load_settings(home=tmp_path / "home", database_url=database_url,
                                           store={"lock_mode": "COMPLIANCE"}))
    try:
        _import(services, tmp_path, "AB123456,Amelia,Whitfield,2015-06-14,,cp,open,north,,,,\n")
        doc_id = file_document(services, ["AB123456"], retention_until=date(2090, 6, 14))
        _import(services, tmp_path, "AB123456,Amelia,Whitfield,2015-06-14,,,open,north,,,,cin:2020-01-01/2021-01-01;"
                                    "closed:2021-01-01\n")
        with services.db.session() as session:
            doc = session.get(Document, doc_id)
            assert doc.retention_until == date(2090, 6, 14)
            assert services.store.get_retention(doc.searchable_key).until == date(2090, 6, 14)
            event = session.scalars(select(Event).where(Event.kind == "retention_not_shortened")).one()
            assert (event.detail["parameters"]["old"], event.detail["parameters"]["schedule"]) == ("2090-06-14", "2023-01-01")
            assert event.detail["parameters"]["lock_mode"] == "COMPLIANCE"
    finally:
        services.db.dispose()
