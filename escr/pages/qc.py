"""Automated image QC: the checks of the scanning protocol that a machine can make.

Each check gives pass, warn or fail with the numbers behind it, so a verifier and later an
auditor can see why. A document with any fail waits in `qc_failed`; warnings are shown to the
verifier but do not hold the document.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import fmean
from typing import Any

from escr.settings import QcThresholds

PASS, WARN, FAIL = "pass", "warn", "fail"


@dataclass(frozen=True)
class PageFacts:
    """What QC needs to know about one page, from preflight and OCR."""

    seq: int
    dpi_x: float | None
    dpi_y: float | None
    blank: bool
    dark_fraction: float
    p1: int
    skew_deg: float | None
    mean_conf: float | None
    word_count: int
    rotation: int


@dataclass(frozen=True)
class CheckResult:
    check: str
    status: str
    message: str
    numbers: dict[str, Any] = field(default_factory=dict)


def _worst(statuses: Sequence[str]) -> str:
    return FAIL if FAIL in statuses else WARN if WARN in statuses else PASS


def check_resolution(pages: Sequence[PageFacts], t: QcThresholds) -> CheckResult:
    known = {p.seq: min(p.dpi_x, p.dpi_y) for p in pages if p.dpi_x and p.dpi_y}
    if not known:
        return CheckResult("resolution", WARN, "Resolution unknown: the file does not say it.", {})
    low = min(known.values())
    failing = sorted(s for s, d in known.items() if d < t.min_dpi_fail)
    warning = sorted(s for s, d in known.items() if t.min_dpi_fail <= d < t.min_dpi_warn)
    numbers = {"min_dpi": round(low, 1), "pages_below_fail": failing, "pages_below_warn": warning,
               "fail_below": t.min_dpi_fail, "warn_below": t.min_dpi_warn}
    if failing:
        return CheckResult("resolution", FAIL, f"Pages {failing} scanned below {t.min_dpi_fail:g} dpi; rescan at 300 dpi.", numbers)
    if warning:
        return CheckResult("resolution", WARN, f"Pages {warning} below {t.min_dpi_warn:g} dpi: fine for print, weak for OCR.", numbers)
    return CheckResult("resolution", PASS, f"All pages at {low:.0f} dpi or more.", numbers)


def check_blank_pages(pages: Sequence[PageFacts], t: QcThresholds) -> CheckResult:
    blank = [p.seq for p in pages if p.blank]
    numbers = {"blank_pages": blank, "pages": len(pages)}
    if pages and len(blank) == len(pages):
        return CheckResult("blank_pages", FAIL, "Every page is blank: the paper may have gone in face down.", numbers)
    if blank:
        return CheckResult("blank_pages", WARN, f"Blank pages {blank} (backs of pages?): check nothing is missing.", numbers)
    return CheckResult("blank_pages", PASS, "No blank pages.", numbers)


def check_page_count(pages: Sequence[PageFacts], declared: int | None) -> CheckResult:
    """Found against declared; blank backs of a duplex scan do not count as extra pages."""
    found, with_content = len(pages), sum(1 for p in pages if not p.blank)
    numbers = {"declared": declared, "found": found, "with_content": with_content}
    if declared is None:
        return CheckResult("page_count", WARN, "No page count declared on a cover sheet; nothing to reconcile against.", numbers)
    if declared == found:
        return CheckResult("page_count", PASS, f"{found} pages scanned, as declared.", numbers)
    if declared == with_content:
        return CheckResult("page_count", PASS, f"{with_content} pages with content, as declared, plus {found - with_content} blank.", numbers)
    return CheckResult("page_count", FAIL, f"Cover sheet declares {declared} pages but {found} were scanned: find the missing or extra pages.", numbers)


def check_exposure(pages: Sequence[PageFacts], t: QcThresholds) -> CheckResult:
    dark = sorted(p.seq for p in pages if p.dark_fraction > t.too_dark_fraction)
    light = sorted(p.seq for p in pages if not p.blank and p.p1 > t.too_light_p1)
    numbers = {"too_dark_pages": dark, "too_light_pages": light,
               "max_dark_fraction": round(max((p.dark_fraction for p in pages), default=0.0), 3),
               "max_p1": max((p.p1 for p in pages if not p.blank), default=None)}
    if dark or light:
        parts = ([f"too dark: pages {dark}"] if dark else []) + ([f"too light: pages {light}"] if light else [])
        return CheckResult("exposure", FAIL, "Exposure wrong, " + "; ".join(parts) + ". Adjust the scanner and rescan.", numbers)
    return CheckResult("exposure", PASS, "Exposure within limits.", numbers)


def check_skew(pages: Sequence[PageFacts], t: QcThresholds) -> CheckResult:
    skews = {p.seq: abs(p.skew_deg) for p in pages if p.skew_deg is not None}
    worst = max(skews.values(), default=0.0)
    numbers = {"max_skew_deg": round(worst, 2), "warn_at": t.skew_warn_deg, "fail_at": t.skew_fail_deg,
               "pages_measured": sorted(skews)}
    failing = sorted(s for s, v in skews.items() if v >= t.skew_fail_deg)
    warning = sorted(s for s, v in skews.items() if t.skew_warn_deg <= v < t.skew_fail_deg)
    if failing:
        return CheckResult("skew", FAIL, f"Pages {failing} skewed by {worst:.1f} degrees; straighten and rescan.", numbers)
    if warning:
        return CheckResult("skew", WARN, f"Pages {warning} slightly skewed ({worst:.1f} degrees).", numbers)
    return CheckResult("skew", PASS, "Pages straight.", numbers)


def check_orientation(pages: Sequence[PageFacts]) -> CheckResult:
    turned = {p.seq: p.rotation for p in pages if p.rotation}
    numbers = {"turned_pages": turned}
    if turned:
        return CheckResult("orientation", WARN, f"Pages {sorted(turned)} were scanned turned and have been shown upright in the reading copy.", numbers)
    return CheckResult("orientation", PASS, "All pages upright.", numbers)


def check_legibility(pages: Sequence[PageFacts], t: QcThresholds, *, ocr_expected: bool) -> CheckResult:
    scored = [p for p in pages if p.mean_conf is not None and p.word_count >= t.legibility_min_words]
    words = sum(p.word_count for p in pages)
    mean = fmean(p.mean_conf for p in scored) if scored else None  # type: ignore[misc]
    worst = min(scored, key=lambda p: p.mean_conf or 0.0) if scored else None
    numbers = {"mean_confidence": round(mean, 1) if mean is not None else None,
               "worst_page": worst.seq if worst else None,
               "worst_page_confidence": round(worst.mean_conf, 1) if worst and worst.mean_conf is not None else None,
               "words": words, "ocr_expected": ocr_expected}
    if not ocr_expected:
        return CheckResult("legibility", PASS, "Not typed text (e.g. a child's drawing): OCR legibility not required.", numbers)
    if mean is None:
        text_pages = [p for p in pages if not p.blank]
        status = WARN if text_pages else PASS
        return CheckResult("legibility", status, "Too little text recognised to judge legibility; check by eye.", numbers)
    if mean < t.legibility_fail_conf:
        return CheckResult("legibility", FAIL, f"Text barely legible to OCR (confidence {mean:.0f}); rescan or check the original.", numbers)
    if mean < t.legibility_warn_conf:
        return CheckResult("legibility", WARN, f"Text partly legible to OCR (confidence {mean:.0f}); check by eye.", numbers)
    return CheckResult("legibility", PASS, f"Text legible (OCR confidence {mean:.0f}).", numbers)


def check_document(
    pages: Sequence[PageFacts], *, declared_pages: int | None, ocr_expected: bool, thresholds: QcThresholds
) -> list[CheckResult]:
    return [
        check_resolution(pages, thresholds),
        check_blank_pages(pages, thresholds),
        check_page_count(pages, declared_pages),
        check_exposure(pages, thresholds),
        check_skew(pages, thresholds),
        check_orientation(pages),
        check_legibility(pages, thresholds, ocr_expected=ocr_expected),
    ]


def overall(results: Sequence[CheckResult]) -> str:
    return _worst([r.status for r in results])


def check_identity(linked: Sequence[str], match: Any) -> CheckResult:
    """A cover sheet on the wrong child's paper is the error that does most harm: catch it here.

    Fails when the text names children by id or NHS number and none of them is a linked child.
    """
    named = {c.child_id for c in (match.candidates if match else ()) if _strong(c.reasons)}
    numbers = {"linked": sorted(linked), "identified_in_text": sorted(named)}
    if linked and named and not named & set(linked):
        return CheckResult("identity", FAIL, "The text identifies a different child from the one the document is "
                           f"filed to ({', '.join(sorted(named))}); check the cover sheet.", numbers)
    return CheckResult("identity", PASS, "Identifiers in the text agree with the linked child(ren)." if named
                       else "No identifiers in the text to cross-check.", numbers)


def _strong(reasons: Sequence[str]) -> bool:
    return any(r.lower().startswith(("child id in text", "nhs number in text")) for r in reasons)
