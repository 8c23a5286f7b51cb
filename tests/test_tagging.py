"""Document type, document date, identifiers and the third-party flag from OCR text."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from unittest.mock import patch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from escr.errors import ConfigError
from escr.indexing import tagging
from escr.indexing.tagging import DocTypeCatalogue, Tag, _fold, load_doctypes, tag_text

DOCTYPES = Path(__file__).resolve().parents[1] / "config" / "doctypes.yaml"
CHILD_ID = r"\b[A-Z]{2}\d{6}\b"
TODAY = date(2025, 3, 20)

REQUIRED_TYPES = {
    "referral", "assessment", "child_in_need_plan", "child_protection_plan",
    "cp_conference_minutes", "strategy_discussion", "core_group_minutes", "lac_review",
    "pathway_plan", "personal_education_plan", "chronology", "case_summary",
    "closure_transfer_summary", "risk_assessment", "court_order", "consent_form",
    "correspondence", "health_report", "school_report", "police_report", "childs_own_work",
    "certificate",
}


@pytest.fixture(scope="module")
def catalogue() -> DocTypeCatalogue:
    return load_doctypes(DOCTYPES)


def _tags(text: str, catalogue: DocTypeCatalogue) -> dict[str, list[Tag]]:
    out: dict[str, list[Tag]] = {}
    for tag in tag_text(text, catalogue=catalogue, child_id_pattern=CHILD_ID, today=TODAY):
        out.setdefault(tag.name, []).append(tag)
    return out


# Short documents as OCR returns them: letterheads first, broken words, misread letters.
DOCUMENTS = {
    "referral": """Northshire Multi-Agency Safeguarding Hub
MULTI-AGENCY REFERRAL F0RM (MARF)
Referrer's name: Mrs K Patel   Role: DSL   Date: 10/03/2025
Child: Amelia Whitfield  DOB: 14/06/2015
Reason for referral: Amelia told her teacher she was frightened to go home.
Are the parents aware of this referral? Yes
""",
    "assessment": """Northshire Children's Services
Chi1d and Fami1y Assessment
Date assessment started: 02/01/2025   Date completed: 14/02/2025
Child's developmental needs: Oliver is meeting his milestones.
Parenting capacity: Mother engages well with the health visitor.
Family and environmental factors: housing is overcrowded.
Analysis of the assessment: needs can be met through a child in need plan.
""",
    "child_in_need_plan": """CHILD IN NEED PLAN
Section 17 Children Act 1989
Child: Sophie Marsh   Date of plan: 20/01/2025
Desired outcome: Sophie attends school every day.
What needs to happen: Mum to take Sophie to school. Who will do it: Mum. By when: Feb.
""",
    "child_protection_plan": """Child Protection Plan
Category of harm: neglect
Outline plan agreed at conference on 03/03/2025.
Desired outcomes / What needs to happen / Who is responsible / Timescales
Contingency plan: if the plan is not followed a legal planning meeting will be held.
""",
    "cp_conference_minutes": """Northshire Safeguarding Children Partnership
MINUTES OF INITIAL CHILD PROTECT ION CONFERENCE (ICPC)
Date of conference: 03/03/2025     Chair: J Smith, Independent Chair
Present: Mother, social worker, health visitor, PC 4471. Apologies: class teacher.
Decision of the conference: Amelia to be subject to a child protection plan,
category of harm emotional abuse.
""",
    "strategy_discussion": """Strat egy Discuss ion Record
Date of discussion: 05/02/2025
Attendees: Police (DS Brown), Health (named nurse), Social Care (team manager).
Threshold for Section 47 enquiry met. Joint visit today.
""",
    "core_group_minutes": """Core Gr oup Meeting - Minutes
Date of meeting: 17/03/2025
Progress against the plan since the last core group: school attendance is improving.
""",
    "lac_review": """Looked After Child Review
Independent Reviewing Officer: Ms A Khan
Date of review: 12/02/2025
Jayden has lived with his foster carers for six months; placement stability good.
The IRO agreed the care plan.
""",
    "pathway_plan": """PATHWAY PLAN (Care Leavers)
Young person: Jayden Okonkwo       Personal Adviser: T Lewis
Independent living skills: can cook simple meals. Staying put with carers until 21.
""",
    "personal_education_plan": """Personal Educat ion Plan (PEP)
Virtual School Northshire     Designated teacher: Mr R Hill
Pupil premium plus will fund extra reading support.
""",
    "chronology": """CHRONOLOGY OF SIGNIFICANT EVENTS
Date        Event                                   Source
14/06/2015  Amelia born                             Health
02/01/2025  Referral from school                    School
""",
    "case_summary": """Case Summary
Summary of involvement: the family has been known since 2019.
Background information: three referrals about neglect.
""",
    "closure_transfer_summary": """CASE CL0SURE SUMMARY
Reason for closure: outcomes of the plan achieved; step down to early help.
Date: 28/02/2025
""",
    "risk_assessment": """CSE Risk Assessment
Risk factors: missing episodes, older boyfriend.  Protective factors: good school links.
Risk level: medium. Date: 01/03/2025
""",
    "court_order": """IN THE FAMILY COURT sitting at Northshire
Case No: NR25C00123
The Children Act 1989
Before District Judge Brown sitting in private on 10 January 2025
IT IS ORDERED THAT Jayden is placed in the interim care of the local authority.
INTERIM CARE ORDER
""",
    "consent_form": """Consent Form - Sharing Information
I give my consent to Northshire Children's Services to share information with the school
and health. I have parental responsibility for the child named above.
Signature of parent/carer: ............   Date: 05/03/2025
""",
    "correspondence": """Northshire County Council, County Hall, Northshire NS1 1AA
Our ref: AB123457
12 March 2025
Dear Ms Whitfield,
Re: home visit
Thank you for meeting me on Tuesday. I will visit again next week.
Yours sincerely
J Smith, Social Worker
""",
    "health_report": """Northshire NHS Foundation Trust - Community Paediatrics
Initial Health Assessment
Consultant paediatrician: Dr M Rao    Date of report: 20/02/2025
Immunisations up to date. Weight centile 25th. GP informed.
""",
    "school_report": """Hillside Primary School
Report to Children's Social Care
Pupil: Sophie Marsh    Year 6
Attendance this term: 82%. The designated safeguarding lead has spoken to Sophie.
Head teacher: Mrs P Jones         Date: 14.1.2025
""",
    "police_report": """NORTHSHIRE CONSTABULARY
PUBLIC PROTECTION NOTICE (PPN)
Crime reference: NC/1234/25   Officer in charge: PC 2231
Date: 02/02/2025
Attending officers were called to a domestic abuse incident at the family home.
""",
    "childs_own_work": """my name is Sophie and I am 9
I like my foster carer and I miss my mum
love from Sophie xx
""",
    "certificate": """CERTIFIED COPY OF AN ENTRY OF BIRTH
Registration district Northshire
When and where born: Fourteenth June 2015, Northshire General Hospital
Births and Deaths Registration Act 1953
""",
    "adoption_papers": """CHILD PERMANENCE REPORT
Prepared for the adoption panel by Northshire adoption agency
The prospective adopters were approved on 12/01/2025.
""",
}


def test_catalogue_holds_every_domain_type_with_labels(catalogue: DocTypeCatalogue) -> None:
    assert set(catalogue.types) >= REQUIRED_TYPES
    assert all(t.label and t.rules for t in catalogue.types.values())


@pytest.mark.parametrize("expected", sorted(DOCUMENTS))
def test_classifies_realistic_documents(catalogue: DocTypeCatalogue, expected: str) -> None:
    tag = catalogue.classify(DOCUMENTS[expected])
    assert tag is not None
    assert (tag.name, tag.value) == ("doc_type", expected)
    assert tag.source.startswith("rule:")
    assert tag.confidence >= 0.5


def test_every_type_the_shipped_catalogue_lists_is_recognised(catalogue: DocTypeCatalogue) -> None:
    """Each shipped type has a realistic document above that test_classifies_realistic_documents
    reads; a type added to config/doctypes.yaml without one fails here."""
    assert set(catalogue.types) == set(DOCUMENTS)


def test_nothing_recognisable_gives_no_type(catalogue: DocTypeCatalogue) -> None:
    assert catalogue.classify("Lorem ipsum dolor sit amet, consectetur adipiscing.") is None
    assert catalogue.classify("") is None


def test_title_outweighs_a_passing_mention(catalogue: DocTypeCatalogue) -> None:
    # A conference's minutes mention the child protection plan; the title decides.
    tag = catalogue.classify(DOCUMENTS["cp_conference_minutes"])
    assert tag is not None and tag.value == "cp_conference_minutes"
    assert "runner_up=" in (tag.detail or "")


def test_close_call_has_lower_confidence_than_a_clear_one(catalogue: DocTypeCatalogue) -> None:
    clear = catalogue.classify(DOCUMENTS["court_order"])
    close = catalogue.classify("Strategy discussion and core group meeting notes")
    assert clear is not None and close is not None
    assert close.confidence <= 0.6 < clear.confidence


def test_detail_holds_offsets_not_text(catalogue: DocTypeCatalogue) -> None:
    for name, text in DOCUMENTS.items():
        for tag in _tags(text, catalogue).get("doc_type", []):
            assert "Whitfield" not in (tag.detail or "") and "offset=" in (tag.detail or ""), name


@pytest.mark.parametrize(
    ("code", "keep", "ocr", "third_party"),
    [
        ("court_order", True, True, False),
        ("certificate", True, True, False),
        ("childs_own_work", True, False, False),
        ("consent_form", True, True, False),
        ("adoption_papers", True, True, False),
        ("police_report", False, True, True),
        ("health_report", False, True, True),
        ("school_report", False, True, True),
        ("correspondence", False, True, False),
    ],
)
def test_paper_handling_flags(catalogue: DocTypeCatalogue, code: str, keep: bool, ocr: bool,
                              third_party: bool) -> None:
    kind = catalogue.types[code]
    assert (kind.keep_original, kind.ocr_expected, kind.third_party_default) == (
        keep, ocr, third_party)


# --- document date ---------------------------------------------------------------------------


def test_labelled_meeting_date_is_the_document_date(catalogue: DocTypeCatalogue) -> None:
    tags = _tags(DOCUMENTS["cp_conference_minutes"], catalogue)
    assert [(t.value, t.confidence) for t in tags["doc_date"]] == [("2025-03-03", 0.9)]


def test_dob_is_never_the_document_date(catalogue: DocTypeCatalogue) -> None:
    text = "Re: Amelia Whitfield, DOB 14/06/2015\nSeen at home 14/06/2015 and 02/03/2025.\n"
    tags = _tags(text, catalogue)
    assert [t.value for t in tags["doc_date"]] == ["2025-03-02"]
    assert [t.value for t in tags["date_of_birth"]] == ["2015-06-14"]


def test_unlabelled_letter_date_has_lower_confidence(catalogue: DocTypeCatalogue) -> None:
    tags = _tags(DOCUMENTS["correspondence"], catalogue)
    (doc_date,) = tags["doc_date"]
    assert doc_date.value == "2025-03-12"
    assert doc_date.confidence < 0.9


def test_future_and_next_meeting_dates_are_not_the_document_date(
        catalogue: DocTypeCatalogue) -> None:
    text = "Date of next meeting: 01/04/2025\nReview due 2026-01-01\nWritten 18 March 2025\n"
    assert [t.value for t in _tags(text, catalogue)["doc_date"]] == ["2025-03-18"]


def test_labelled_date_beats_an_earlier_unlabelled_one(catalogue: DocTypeCatalogue) -> None:
    text = "Incident on 01/02/2025 discussed.\nDated: 4th March 2025\n"
    assert [t.value for t in _tags(text, catalogue)["doc_date"]] == ["2025-03-04"]


def test_no_date_no_doc_date_tag(catalogue: DocTypeCatalogue) -> None:
    assert "doc_date" not in _tags(DOCUMENTS["pathway_plan"], catalogue)


# --- identifiers -----------------------------------------------------------------------------


def test_identifiers_become_tags_once_each_with_offsets(catalogue: DocTypeCatalogue) -> None:
    text = ("Child: AB123456  NHS No 943 476 5919  DOB: 14/06/2015\n"
            "Sibling: AB123457\nAgain AB123456, NHS 9434765919 and a bad one 943 476 5918\n")
    tags = _tags(text, catalogue)
    assert [t.value for t in tags["child_id"]] == ["AB123456", "AB123457"]
    assert [t.value for t in tags["nhs_number"]] == ["9434765919"]
    assert [t.value for t in tags["date_of_birth"]] == ["2015-06-14"]
    first = tags["child_id"][0]
    assert first.source == "text" and first.detail == f"offsets=7,{text.index('AB123456', 20)}"
    assert all("943" not in (t.detail or "") for t in tags["nhs_number"])


def test_identifier_on_every_page_of_a_long_file_fits_the_record(catalogue: DocTypeCatalogue) -> None:
    """A 300-page file whose every page header names the child: the tag keeps the first offsets
    and the count, within the record's 512 characters, so the file is not refused for it."""
    header = "Child: AB123456  NHS No 943 476 5919  DOB: 14/06/2015\n"
    text = "\n\f\n".join(header + f"Page {n} of 300. Notes of the visit.\n" for n in range(1, 301))
    tags = _tags(text, catalogue)
    for name in ("child_id", "nhs_number", "date_of_birth"):
        (tag,) = tags[name]
        assert tag.detail is not None and len(tag.detail) <= 512
        assert tag.detail.startswith("offsets=") and tag.detail.endswith("300 in all")
    assert tags["child_id"][0].detail.startswith(f"offsets={text.index('AB123456')},{text.index('AB123456', 10)},")


def test_configured_child_id_pattern_is_used(catalogue: DocTypeCatalogue) -> None:
    tags = tag_text("Person ref P-0042117, AB123456", catalogue=catalogue,
                    child_id_pattern=r"\bP-\d{7}\b", today=TODAY)
    assert [t.value for t in tags if t.name == "child_id"] == ["P-0042117"]


def test_bad_child_id_pattern_is_a_config_error(catalogue: DocTypeCatalogue) -> None:
    with pytest.raises(ConfigError):
        tag_text("text", catalogue=catalogue, child_id_pattern="(", today=TODAY)


# --- third party ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "phrase",
    [
        "Information provided by the child's GP.",
        "NOT TO BE DISCLOSED to the family.",
        "This letter contains third party information.",
        "CONFIDENTIAL - POLICE",
        "Confidential: Police information, do not share with parents",
        "This must not be shared with the father.",
    ],
)
def test_third_party_phrases_flag_the_document(catalogue: DocTypeCatalogue, phrase: str) -> None:
    text = f"Dear Ms Smith,\nThank you for your letter of 3 March.\n{phrase}\nYours sincerely\n"
    tags = _tags(text, catalogue)
    (flag,) = tags["third_party"]
    assert flag.value == "true" and flag.source.startswith("rule:tp.")
    assert flag.confidence > 0.5


def test_ordinary_letter_is_not_third_party(catalogue: DocTypeCatalogue) -> None:
    assert "third_party" not in _tags(DOCUMENTS["correspondence"], catalogue)


def test_police_report_is_third_party_by_default(catalogue: DocTypeCatalogue) -> None:
    (flag,) = _tags(DOCUMENTS["police_report"], catalogue)["third_party"]
    assert flag.detail == "default for doc type police_report"


def test_a_cover_sheets_type_decides_the_third_party_default(catalogue: DocTypeCatalogue) -> None:
    # The prose of a care plan may read like a health report; the cover sheet says what the paper is.
    plan = tag_text(DOCUMENTS["health_report"], catalogue=catalogue, child_id_pattern=CHILD_ID, today=TODAY,
                    declared_type="child_in_need_plan")
    assert [t.value for t in plan if t.name == "doc_type"] == ["health_report"]  # the guess is still recorded
    assert not [t for t in plan if t.name == "third_party"]
    police = tag_text(DOCUMENTS["correspondence"], catalogue=catalogue, child_id_pattern=CHILD_ID, today=TODAY,
                      declared_type="police_report")
    (flag,) = [t for t in police if t.name == "third_party"]
    assert flag.source == "coversheet" and flag.detail == "default for doc type police_report"
    phrase = DOCUMENTS["correspondence"] + "This letter contains third party information.\n"
    (flag,) = [t for t in tag_text(phrase, catalogue=catalogue, child_id_pattern=CHILD_ID, today=TODAY,
                                   declared_type="child_in_need_plan") if t.name == "third_party"]
    assert flag.source.startswith("rule:tp.")  # what the text says still flags, whatever the type


def test_a_capital_dotted_i_before_a_phrase_does_not_shift_where_it_is_found(catalogue: DocTypeCatalogue) -> None:
    # "İ" lower-cases to two characters; the folded text must still keep one per source character.
    offsets = []
    for name in ("Mr Ince", "Mr İnce"):
        text = f"Dear {name},\nThank you.\nThis letter contains third party information.\n"
        (flag,) = _tags(text, catalogue)["third_party"]
        offsets.append((flag.source, flag.detail, text.index("third party")))
    assert offsets[0] == offsets[1]
    assert offsets[1][1].removeprefix("offsets=").split(",")[0] == str(offsets[1][2])


def _fold_one_by_one(text: str) -> tuple[str, list[int], dict[int, int]]:
    """What folding means, a character at a time: keep letters, digits, "|" and "!"; lower-case
    to one character; fold OCR look-alikes; an "r" then an "n" become one "m" spanning both."""
    look_alike = str.maketrans({"1": "l", "i": "l", "|": "l", "!": "l", "0": "o"})
    chars: list[str] = []
    starts: list[int] = []
    long_ends: dict[int, int] = {}
    for pos, ch in enumerate(text):
        if not (ch.isalnum() or ch in "|!"):
            continue
        folded = ch.lower()[0].translate(look_alike)
        if folded == "n" and chars and chars[-1] == "r" and len(chars) - 1 not in long_ends:
            chars[-1] = "m"
            long_ends[len(chars) - 1] = pos + 1
            continue
        chars.append(folded)
        starts.append(pos)
    return "".join(chars), starts, long_ends


@given(st.text(alphabet=st.sampled_from("rnRNmi1|!0oO İß.,-\n\t"), max_size=60) | st.text(max_size=60))
def test_folding_keeps_every_letter_s_place_in_the_text(text: str) -> None:
    # Where a phrase is found is reported as an offset in the OCR text, so each folded character
    # must point back at exactly the character (or "rn") it came from.
    folded, starts, long_ends = _fold(text)
    assert (folded, list(starts), long_ends) == _fold_one_by_one(text)
    with patch.object(tagging, "_FOLD_SLICE", 3):  # long texts are folded a slice at a time
        folded, starts, long_ends = _fold(text)
    assert (folded, list(starts), long_ends) == _fold_one_by_one(text)


def test_ocr_broken_third_party_phrase_still_flags(catalogue: DocTypeCatalogue) -> None:
    text = "Dear Sir\nThis inf0rmation was provi ded in confidence by a neighbour.\n"
    assert "third_party" in _tags(text, catalogue)


# --- loading the catalogue ---------------------------------------------------------------------

GOOD_RULE = "{id: x.one, phrase: 'some words', weight: 1}"


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "doctypes.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def _minimal(types: str, third_party: str = f"  rules: [{GOOD_RULE.replace('x.one', 'tp.one')}]"
             ) -> str:
    return f"version: 1\nthird_party:\n{third_party}\ntypes:\n{types}"


def test_minimal_catalogue_loads(tmp_path: Path) -> None:
    cat = load_doctypes(_write(tmp_path, _minimal(
        f"  - code: letter\n    label: Letter\n    rules: [{GOOD_RULE}]\n")))
    assert set(cat.types) == {"letter"}
    assert cat.classify("Here are some   words.") is not None


@pytest.mark.parametrize(
    ("types", "message"),
    [
        ("  - code: a\n    label: A\n    rules: [{id: a.1, regex: '(unclosed', weight: 1}]\n",
         "regex does not compile"),
        ("  - code: a\n    label: A\n    rules: [{id: a.1, weight: 1}]\n", "exactly one"),
        ("  - code: a\n    label: A\n    rules: [{id: a.1, phrase: x, regex: x}]\n",
         "exactly one"),
        ("  - code: a\n    label: A\n    rules: [{id: a.1, phrase: x, weight: 0}]\n",
         "weight must not be 0"),
        (f"  - code: a\n    label: A\n    rules: [{GOOD_RULE}]\n"
         f"  - code: a\n    label: B\n    rules: [{GOOD_RULE.replace('x.one', 'x.two')}]\n",
         "codes used twice: a"),
        (f"  - code: a\n    label: A\n    rules: [{GOOD_RULE}, {GOOD_RULE}]\n",
         "rule ids used twice: x.one"),
        (f"  - code: Bad Code\n    label: A\n    rules: [{GOOD_RULE}]\n", "types.0.code"),
        (f"  - code: a\n    label: A\n    keep_orignal: true\n    rules: [{GOOD_RULE}]\n",
         "keep_orignal"),
        ("  - code: a\n    label: A\n    rules: []\n", "types.0.rules"),
    ],
)
def test_bad_catalogue_is_a_clear_config_error(tmp_path: Path, types: str, message: str) -> None:
    path = _write(tmp_path, _minimal(types))
    with pytest.raises(ConfigError, match=message) as info:
        load_doctypes(path)
    assert str(path) in str(info.value)


def test_missing_or_unparsable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_doctypes(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML at line 3"):
        load_doctypes(_write(tmp_path, "version: 1\ntypes: [\n  - :\n"))
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_doctypes(_write(tmp_path, "- just a list\n"))


def test_misread_title_still_classifies(catalogue: DocTypeCatalogue) -> None:
    text = "Minutes of the chi1d protectlon conferance (review)\nPresent: see list"
    tag = catalogue.classify(text)
    assert tag is not None and tag.value == "cp_conference_minutes"


def test_title_decides_over_body_mentions(catalogue: DocTypeCatalogue) -> None:
    body = "Actions were reviewed one by one and progress noted. " * 10
    text = ("CORE GROUP MEETING - MINUTES\n" + body
            + "\nThe outcome of the strategy discussion (section 47) held last month was shared.\n")
    tag = catalogue.classify(text)
    assert tag is not None and tag.value == "core_group_minutes"
    assert "runner_up=strategy_discussion" in (tag.detail or "")


def test_tag_confidence_must_be_a_probability() -> None:
    with pytest.raises(ValueError):
        Tag("doc_type", "referral", "text", 1.5)


def test_third_party_footer_on_a_late_page_still_flags(catalogue: DocTypeCatalogue) -> None:
    text = "Dear Sir\n" + "The family were seen at home and spoke openly. " * 1000
    text += "\nNOT TO BE DISCLOSED WITHOUT THE AUTHOR'S CONSENT\n"
    assert len(text) > catalogue.scan_chars
    (flag,) = _tags(text, catalogue)["third_party"]
    assert flag.detail == f"offsets={text.index('NOT TO BE')}"


@pytest.mark.parametrize("filler", range(0, 40, 3))
def test_misread_third_party_footer_is_found_wherever_the_search_windows_fall(
        catalogue: DocTypeCatalogue, monkeypatch: pytest.MonkeyPatch, filler: int) -> None:
    """A long file is searched a window at a time (here 40 letters, normally 65,536): a
    misread phrase across a window's edge still flags, at its own offset."""
    monkeypatch.setattr("escr.indexing.tagging._FUZZY_WINDOW", 40)
    body = "The family were seen at home and spoke openly. " * 12 + "x" * filler
    footer = "\nN0T T0 BE DISCL0SFD WITHOUT THE AUTHOR'S CONSENT\n"
    (flag,) = _tags(body + footer, catalogue)["third_party"]
    assert flag.detail == f"offsets={len(body) + 1}"


@pytest.mark.parametrize("at", [65536 - 30, 65536 - 20, 65536 - 1, 2 * 65536 - 7])  # -30: "rn" on the edge
def test_a_phrase_on_the_edge_of_a_long_text_s_slices_still_flags_third_party(catalogue: DocTypeCatalogue,
                                                                               at: int) -> None:
    """A 300-page file's text is folded a slice at a time (to keep memory flat): a footer that
    straddles a slice's edge, OCR's "rn" for "m" included, still flags the document."""
    text = ("Home visit notes. " * 10000)[:at] + "Not to be disclosed to the farnily." + " More notes." * 50
    tags = _tags(text, catalogue)
    assert [t.value for t in tags["third_party"]] == ["true"]
    folded, starts, long_ends = _fold(text)  # and every letter still knows its place in the text
    assert (folded, list(starts), long_ends) == _fold_one_by_one(text)
