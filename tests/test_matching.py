"""Linking a document to a child from its text: one clear child, or a person decides."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import pytest

from escr.indexing.matching import ChildRecord, InMemoryChildLookup, MatchResult, match_child
from escr.indexing.tagging import DocTypeCatalogue, load_doctypes, tag_text
from escr.record.children import read_children_csv
from tests.support.scans import CHILDREN_CSV

DOCTYPES = Path(__file__).resolve().parents[1] / "config" / "doctypes.yaml"
CHILD_ID = r"\b[A-Z]{2}\d{6}\b"
TODAY = date(2025, 3, 20)


def _children() -> list[ChildRecord]:
    return [
        ChildRecord(
            child_id=row["child_id"],
            given_names=row["given_names"],
            family_name=row["family_name"],
            date_of_birth=(date.fromisoformat(row["date_of_birth"])
                           if row["date_of_birth"] else None),
            nhs_number=row["nhs_number"] or None,
        )
        for row in csv.DictReader(io.StringIO(CHILDREN_CSV))
    ]


# Amelia's twin, not in the shared fixture: same birthday, same surname.
ISLA = ChildRecord("AB123458", "Isla May", "Whitfield", date(2015, 6, 14), None)


@pytest.fixture(scope="module")
def catalogue() -> DocTypeCatalogue:
    return load_doctypes(DOCTYPES)


@pytest.fixture(scope="module")
def lookup() -> InMemoryChildLookup:
    return InMemoryChildLookup(_children())


@pytest.fixture(scope="module")
def twins_lookup() -> InMemoryChildLookup:
    return InMemoryChildLookup([*_children(), ISLA])


def _match(text: str, lookup: InMemoryChildLookup, catalogue: DocTypeCatalogue) -> MatchResult:
    tags = tag_text(text, catalogue=catalogue, child_id_pattern=CHILD_ID, today=TODAY)
    return match_child(tags, text, lookup)


def _no_personal_data(result: MatchResult) -> None:
    said = " ".join([*result.notes, *(r for c in result.candidates for r in c.reasons)])
    for secret in ("Amelia", "Whitfield", "Oliver", "Okonkwo", "Marsh", "2015", "9434765919",
                   "943 476", "4010232137"):
        assert secret not in said


def test_a_child_index_export_links_documents_through_escrs_own_reader(
        tmp_path: Path, catalogue: DocTypeCatalogue) -> None:
    """The council's CSV export read by escr (not by this test's own parser) finds the child by
    an NHS number written with spaces; a blank NHS number is no number, not an empty one."""
    export = tmp_path / "children.csv"
    export.write_text(CHILDREN_CSV)
    rows = {row.child_id: row for row in read_children_csv(export)}
    assert rows["EF111222"].nhs_number is None
    lookup = InMemoryChildLookup([ChildRecord(r.child_id, r.given_names, r.family_name, r.date_of_birth, r.nhs_number)
                                  for r in rows.values()])
    result = _match("Health visitor letter\nNHS Number: 943 476 5919\n", lookup, catalogue)
    assert (result.status, result.linked, result.basis) == ("linked", ("AB123456",), "nhs_number")


def test_links_by_child_id(lookup: InMemoryChildLookup, catalogue: DocTypeCatalogue) -> None:
    result = _match("Core group minutes\nChild ref: CD654321\nAll actions progressing.\n",
                    lookup, catalogue)
    assert (result.status, result.linked, result.basis) == ("linked", ("CD654321",), "child_id")
    assert result.candidates[0].child_id == "CD654321"
    assert result.candidates[0].score == 1.0


def test_links_by_nhs_number(lookup: InMemoryChildLookup, catalogue: DocTypeCatalogue) -> None:
    text = "Initial Health Assessment\nNHS Number: 401 023 2137\nImmunisations up to date.\n"
    result = _match(text, lookup, catalogue)
    assert (result.status, result.linked, result.basis) == ("linked", ("CD654321",), "nhs_number")
    _no_personal_data(result)


def test_id_and_nhs_of_the_same_child_link(lookup: InMemoryChildLookup,
                                           catalogue: DocTypeCatalogue) -> None:
    text = "Child: AB123456   NHS 943-476-5919   DOB: 14/06/2015\nAmelia Whitfield\n"
    result = _match(text, lookup, catalogue)
    assert (result.status, result.linked, result.basis) == ("linked", ("AB123456",), "child_id")
    assert len(result.candidates) == 1
    assert len(result.candidates[0].reasons) == 3  # id, NHS, name and date of birth
    _no_personal_data(result)


@pytest.mark.parametrize("written_name", ["Amelia Whitfleld", "Arnelia Whitfield",
                                          "AMELIA WHITFEILD", "Whit field, Amelia"])
def test_links_by_name_and_dob_despite_ocr_misreads(lookup: InMemoryChildLookup,
                                                    catalogue: DocTypeCatalogue,
                                                    written_name: str) -> None:
    text = f"Hillside Primary School\nPupil: {written_name}   D.O.B. 14.6.2015\nAttendance 91%\n"
    result = _match(text, lookup, catalogue)
    assert (result.status, result.linked, result.basis) == ("linked", ("AB123456",), "name_dob")
    assert 0.7 < result.candidates[0].score < 1.0
    _no_personal_data(result)


def test_a_different_surname_with_the_same_dob_does_not_link(
        lookup: InMemoryChildLookup, catalogue: DocTypeCatalogue) -> None:
    text = "Pupil: Amelia Whitman   DOB: 14/06/2015\n"
    result = _match(text, lookup, catalogue)
    assert (result.status, result.linked) == ("no_match", ())
    # Still offered to the person indexing, with a low score and the reason.
    assert [c.child_id for c in result.candidates] == ["AB123456"]
    assert result.candidates[0].score < 0.5
    assert "name not found" in result.candidates[0].reasons[0]


def test_family_name_alone_is_not_enough(lookup: InMemoryChildLookup,
                                         catalogue: DocTypeCatalogue) -> None:
    result = _match("Re: Miss Whitfield, date of birth 03/02/2017\n", lookup, catalogue)
    assert (result.status, result.linked) == ("no_match", ())
    assert [c.child_id for c in result.candidates] == ["AB123457"]
    assert "no given name" in result.candidates[0].reasons[0]


def test_name_without_a_dob_does_not_link(lookup: InMemoryChildLookup,
                                          catalogue: DocTypeCatalogue) -> None:
    result = _match("Dear Ms Okonkwo,\nI am writing about Jayden Okonkwo.\n", lookup, catalogue)
    assert (result.status, result.linked, result.candidates) == ("no_match", (), ())


def test_siblings_ids_on_one_letter_are_ambiguous(lookup: InMemoryChildLookup,
                                                  catalogue: DocTypeCatalogue) -> None:
    text = "Re: Amelia (AB123456) and Oliver (AB123457) Whitfield\nDear Ms Whitfield,\n"
    result = _match(text, lookup, catalogue)
    assert (result.status, result.linked, result.basis) == ("ambiguous", (), "")
    assert {c.child_id for c in result.candidates} == {"AB123456", "AB123457"}


def test_twins_both_named_are_ambiguous(twins_lookup: InMemoryChildLookup,
                                        catalogue: DocTypeCatalogue) -> None:
    text = "Children: Amelia Whitfield and Isla Whitfield\nDOB: 14/06/2015\n"
    result = _match(text, twins_lookup, catalogue)
    assert (result.status, result.linked) == ("ambiguous", ())
    assert {c.child_id for c in result.candidates} == {"AB123456", "AB123458"}


def test_twins_sharing_dob_and_surname_without_given_name_are_ambiguous(
        twins_lookup: InMemoryChildLookup, catalogue: DocTypeCatalogue) -> None:
    result = _match("Re: the Whitfield twins, DOB 14/06/2015\n", twins_lookup, catalogue)
    assert (result.status, result.linked) == ("ambiguous", ())
    assert {c.child_id for c in result.candidates} == {"AB123456", "AB123458"}


def test_given_name_tells_twins_apart(twins_lookup: InMemoryChildLookup,
                                      catalogue: DocTypeCatalogue) -> None:
    result = _match("Name: Isla Whitfield   DOB: 14/06/2015\n", twins_lookup, catalogue)
    assert (result.status, result.linked, result.basis) == ("linked", ("AB123458",), "name_dob")
    assert [c.child_id for c in result.candidates] == ["AB123458", "AB123456"]
    assert result.candidates[0].score > result.candidates[1].score


def test_id_not_in_index_is_no_match_with_a_note(lookup: InMemoryChildLookup,
                                                 catalogue: DocTypeCatalogue) -> None:
    result = _match("Child ref: ZZ999999\nNHS: 999 000 0018\n", lookup, catalogue)
    assert (result.status, result.linked, result.candidates) == ("no_match", (), ())
    assert any("ZZ999999" in n and "not in the child index" in n for n in result.notes)
    assert any(n.startswith("an NHS number") for n in result.notes)
    assert not any("999 000" in n or "9990000018" in n for n in result.notes)


def test_id_of_one_child_and_nhs_of_another_is_ambiguous(lookup: InMemoryChildLookup,
                                                         catalogue: DocTypeCatalogue) -> None:
    text = "Child ID: AB123456\nNHS number 9434765870\n"
    result = _match(text, lookup, catalogue)
    assert (result.status, result.linked) == ("ambiguous", ())
    reasons = {c.child_id: c.reasons for c in result.candidates}
    assert set(reasons) == {"AB123456", "AB123457"}
    assert "child id" in reasons["AB123456"][0] and "NHS number" in reasons["AB123457"][0]


def test_id_of_one_child_and_name_dob_of_another_is_ambiguous(
        lookup: InMemoryChildLookup, catalogue: DocTypeCatalogue) -> None:
    text = "Child ID: AB123456\nAlso present: Sophie Marsh, DOB 09/01/2009\n"
    result = _match(text, lookup, catalogue)
    assert (result.status, result.linked) == ("ambiguous", ())


def test_unknown_extra_id_is_noted_but_known_child_links(lookup: InMemoryChildLookup,
                                                         catalogue: DocTypeCatalogue) -> None:
    result = _match("Child ID: EF111222\nPrevious ref: QQ000001\n", lookup, catalogue)
    assert (result.status, result.linked) == ("linked", ("EF111222",))
    assert any("QQ000001" in n for n in result.notes)


def test_no_identifiers_no_match(lookup: InMemoryChildLookup,
                                 catalogue: DocTypeCatalogue) -> None:
    result = _match("Dear Sir,\nPlease find enclosed the report.\n", lookup, catalogue)
    assert result == MatchResult((), (), "no_match", "", ())


def test_in_memory_lookup_searches() -> None:
    lookup = InMemoryChildLookup(_children())
    assert [r.child_id for r in lookup.by_ids(["AB123457", "XX000000"])] == ["AB123457"]
    assert [r.child_id for r in lookup.by_nhs(["943 476 5919"])] == ["AB123456"]
    assert [r.child_id for r in lookup.by_dobs([date(2009, 1, 9)])] == ["EF111222"]
    assert lookup.by_nhs([]) == []


@pytest.mark.parametrize("filler_words", range(8))
def test_a_name_split_by_ocr_is_found_wherever_it_falls_in_a_long_file(
        lookup: InMemoryChildLookup, catalogue: DocTypeCatalogue, monkeypatch: pytest.MonkeyPatch,
        filler_words: int) -> None:
    """The words of a long file are held in chunks (here of 5 words, normally thousands): a
    name OCR split in two is still found when the split falls between two chunks."""
    monkeypatch.setattr("escr.indexing.matching._CHUNK_WORDS", 5)
    text = ("Attendance register " * 40 + "note " * filler_words
            + "Pupil Whit field, Amelia   D.O.B. 14.6.2015\n" + "Attendance was good " * 20)
    result = _match(text, lookup, catalogue)
    assert (result.status, result.linked, result.basis) == ("linked", ("AB123456",), "name_dob")
    assert f"family name at offset {text.index('Whit field')} " in result.candidates[0].reasons[0]
    assert f"given name at offset {text.index('Amelia')} " in result.candidates[0].reasons[0]
