"""Splitting at cover sheets and the automated QC checks, on page facts."""

from __future__ import annotations

from escr.pages import qc
from escr.pages.coversheet import CoverSheet
from escr.pages.split import split_batch
from escr.settings import QcThresholds

SHEET_A = CoverSheet("B-AAAA1111", ("AB123456",), "referral", 2)
SHEET_B = CoverSheet("B-BBBB2222", ("AB123456", "AB123457"), "correspondence", 1)


def test_batch_splits_at_each_cover_sheet_and_drops_the_sheets():
    result = split_batch(6, {0: SHEET_A, 3: SHEET_B})
    assert [(d.cover_index, d.pages) for d in result.documents] == [(0, (1, 2)), (3, (4, 5))]
    assert result.documents[1].cover == SHEET_B
    assert result.empty_covers == ()


def test_pages_before_the_first_sheet_and_a_file_without_sheets_are_documents_too():
    assert [d.pages for d in split_batch(4, {2: SHEET_A}).documents] == [(0, 1), (3,)]
    only = split_batch(3, {})
    assert len(only.documents) == 1 and only.documents[0].cover is None and only.documents[0].pages == (0, 1, 2)


def test_a_sheet_with_nothing_behind_it_is_reported_not_lost():
    result = split_batch(3, {0: SHEET_A, 1: SHEET_B})
    assert result.empty_covers == (0,)
    assert [d.pages for d in result.documents] == [(2,)]


def facts(seq=1, *, dpi=300.0, blank=False, dark=0.05, p1=20, skew=0.3, conf=91.0, words=120, rotation=0):
    return qc.PageFacts(seq, dpi, dpi, blank, dark, p1, skew, conf, words, rotation)


T = QcThresholds()


def statuses(pages, declared=None, ocr_expected=True):
    return {r.check: r.status for r in qc.check_document(pages, declared_pages=declared, ocr_expected=ocr_expected, thresholds=T)}


def test_a_good_scan_passes_every_check_but_the_missing_declaration():
    s = statuses([facts(1), facts(2)], declared=2)
    assert set(s.values()) == {"pass"}
    assert statuses([facts(1)])["page_count"] == "warn"


def test_resolution_fails_under_200_and_warns_under_300():
    assert statuses([facts(dpi=150)])["resolution"] == "fail"
    assert statuses([facts(dpi=240)])["resolution"] == "warn"
    low = qc.check_resolution([facts(1), facts(2, dpi=199.0)], T)
    assert low.numbers["pages_below_fail"] == [2] and low.numbers["min_dpi"] == 199.0


def test_page_count_reconciles_and_forgives_blank_backs():
    assert statuses([facts(1), facts(2)], declared=3)["page_count"] == "fail"
    assert statuses([facts(1), facts(2, blank=True)], declared=1)["page_count"] == "pass"


def test_blank_dark_light_skew_and_legibility():
    assert statuses([facts(blank=True, words=0, conf=None)])["blank_pages"] == "fail"
    assert statuses([facts(1), facts(2, blank=True)])["blank_pages"] == "warn"
    assert statuses([facts(dark=0.8)])["exposure"] == "fail"
    assert statuses([facts(p1=200)])["exposure"] == "fail"
    assert statuses([facts(skew=3.0)])["skew"] == "warn"
    assert statuses([facts(skew=-7.5)])["skew"] == "fail"
    assert statuses([facts(conf=30.0)])["legibility"] == "fail"
    assert statuses([facts(conf=60.0)])["legibility"] == "warn"
    assert statuses([facts(conf=20.0)], ocr_expected=False)["legibility"] == "pass"
    assert statuses([facts(rotation=180)])["orientation"] == "warn"


def test_identity_check_fails_when_the_text_names_only_another_child():
    from escr.indexing.matching import Candidate, MatchResult

    other = MatchResult((), (Candidate("CD654321", ("NHS number in text at offset 40",), 0.99),), "linked", "nhs_number")
    assert qc.check_identity(["AB123456"], other).status == "fail"
    sibling = MatchResult((), (Candidate("AB123456", ("child id in text at offset 3",), 0.99),
                               Candidate("AB123457", ("child id in text at offset 30",), 0.99)), "ambiguous", "")
    assert qc.check_identity(["AB123456"], sibling).status == "pass"
    weak = MatchResult((), (Candidate("CD654321", ("date of birth in text matches; name not found",), 0.2),), "no_match", "")
    assert qc.check_identity(["AB123456"], weak).status == "pass"
