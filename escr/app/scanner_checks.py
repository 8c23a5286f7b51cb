"""The scanner check per device per day (DOMAIN protocol step 1).

Business support print escr's test target (`target_pdf`), scan it on the device, and hand the
scan here: it is measured (effective resolution, skew, paper white, grey steps, OCR character
error rate against the known text), kept in the store as evidence, and logged per device and
day with pass or fail. `qc_for` says what a document scanned on a device that day gets in QC
when no check passed (`records.scanner_check_qc`: warn, fail or off) and names the check that
passed, for the certificate of scanning to cite.
"""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path
from typing import Any

import pikepdf
from PIL import Image, UnidentifiedImageError
from sqlalchemy import select
from sqlalchemy.orm import Session

from escr.app.access import AccessDenied, Principal, Role
from escr.errors import ValidationFailed
from escr.pages.imaging import render_page
from escr.pages.ocr import PageJob
from escr.pages.slots import OcrSlots
from escr.provenance.scanner_check import Measures, measure, target_pdf
from escr.record import payloads
from escr.record.events import Kind, ProtocolEvent, now, record
from escr.record.models import ScannerCheck
from escr.services import Services
from escr.settings import RecordsSettings

PDF = "application/pdf"
IMAGES = {".png": "image/png", ".tif": "image/tiff", ".tiff": "image/tiff", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


def printable_target() -> bytes:
    """The test target to print (A4 PDF): fiducials, a grey wedge and known text."""
    return target_pdf()


def _native_dpi(path: Path, media_type: str) -> float:
    """The resolution the scan was made at: the image's own, or a PDF page image's width over the page."""
    try:
        if media_type == PDF:
            with pikepdf.open(path) as pdf:
                page = pdf.pages[0]
                images = list(page.get_images().values())
                if not images:
                    raise ValidationFailed("the PDF's first page holds no scanned image")
                width_in = float(page.mediabox[2] - page.mediabox[0]) / 72
                return float(images[0].Width) / width_in
        with Image.open(path) as img:
            dpi = img.info.get("dpi")
        if not dpi or float(dpi[0]) <= 1:
            raise ValidationFailed("the scan declares no resolution")
        return float(dpi[0])
    except (OSError, UnidentifiedImageError, pikepdf.PdfError) as exc:
        raise ValidationFailed(f"the scan cannot be read ({type(exc).__name__})", code="validation_failed") from exc


def judge(m: Measures, rules: RecordsSettings) -> list[str]:
    """What failed, in words; empty when the check passes."""
    failures = []
    if m.effective_dpi is None:
        failures.append("the target's fiducial marks were not found")
    else:
        if abs(m.effective_dpi - m.declared_dpi) > m.declared_dpi * rules.scanner_dpi_tolerance:
            failures.append(f"effective resolution {m.effective_dpi:g} dpi, declared {m.declared_dpi:g}")
        if m.effective_dpi < rules.scanner_min_dpi * (1 - rules.scanner_dpi_tolerance):
            failures.append(f"effective resolution {m.effective_dpi:g} dpi is below {rules.scanner_min_dpi:g}")
    if m.skew_deg is not None and abs(m.skew_deg) > rules.scanner_max_skew_deg:
        failures.append(f"skew {m.skew_deg:g} degrees")
    if m.paper_white < rules.scanner_min_white:
        failures.append(f"too dark: paper white {m.paper_white}")
    if m.tone_steps < rules.scanner_min_tone_steps:
        failures.append(f"only {m.tone_steps} of 7 grey steps told apart")
    if m.cer is None or m.cer > rules.scanner_max_cer:
        failures.append("the known text was not read" if m.cer is None else f"OCR character error rate {m.cer:.1%}")
    return failures


def run_check(services: Services, principal: Principal, *, device: str, path: Path,
              day: date | None = None) -> ScannerCheck:
    """Measure a scanned target for `device` and log the result for the day."""
    if principal.role is not Role.BUSINESS_SUPPORT:
        raise AccessDenied("business support run the scanner check", code="role_forbidden")
    device = (device or "").strip()
    if not device:
        raise ValidationFailed("required: device")
    media_type = PDF if path.suffix.lower() == ".pdf" else IMAGES.get(path.suffix.lower())
    if media_type is None:
        raise ValidationFailed("the scan is a PDF, PNG, TIFF or JPEG file")
    dpi = _native_dpi(path, media_type)
    image = render_page(path, media_type, 0, dpi=round(dpi))
    slots = OcrSlots()  # its own child, ended after: a Tesseract crash costs the check, not the web app
    try:
        page = slots.read(PageJob(path=path, media_type=media_type, index=0, dpi=round(dpi)), services.settings.ocr)
    finally:
        slots.close()
    measures = measure(image, dpi=dpi, ocr_text=page.text)
    failures = judge(measures, services.settings.records)
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    key = f"scanner-checks/{sha}{path.suffix.lower()}"
    services.store.put_bytes(key, data, content_type=media_type, retain_until=None)  # kept as evidence
    with services.db.session() as session:
        stamp = now()
        row = ScannerCheck(device=device, day=day or stamp.date(), passed=not failures, measures=measures.as_dict(),
                           failures=failures, scan_key=key, scan_sha256=sha, checked_by=principal.username,
                           checked_at=stamp)
        session.add(row)
        session.flush()
        record(session, ProtocolEvent(kind=Kind.SCANNER_CHECKED, actor=principal.actor,
                                      outcome="pass" if row.passed else "fail",
                                      inputs=payloads.TargetScanInput(target_scan=sha),
                                      parameters=payloads.ScannerChecked(
                                          check_id=row.id, device=device, day=row.day.isoformat(),
                                          measures=payloads.ScannerMeasures(**row.measures), failures=failures)))
        session.expunge(row)
    return row


def passing_check(session: Session, device: str, day: date) -> ScannerCheck | None:
    """The day's latest passing check of the device, for QC and the certificate of scanning."""
    return session.scalars(select(ScannerCheck).where(ScannerCheck.device == device, ScannerCheck.day == day,
                                                      ScannerCheck.passed.is_(True))
                           .order_by(ScannerCheck.id.desc())).first()


def qc_for(session: Session, rules: RecordsSettings, device: str, day: date) -> dict[str, Any]:
    """What a document scanned on `device` on `day` gets: pass with the check's id, or the
    configured warning or failure when no check passed that day."""
    check = passing_check(session, device, day)
    if check is not None:
        return {"check": "scanner_check", "status": "pass", "numbers": {"check_id": check.id},
                "message": f"scanner check {check.id} passed on {day.isoformat()}"}
    status = "pass" if rules.scanner_check_qc == "off" else rules.scanner_check_qc
    return {"check": "scanner_check", "status": status, "numbers": {"check_id": None},
            "message": f"no passing scanner check for {device} on {day.isoformat()}"}


def checks(session: Session, principal: Principal, *, device: str | None = None) -> list[dict[str, Any]]:
    if principal.role not in (Role.BUSINESS_SUPPORT, Role.AUDITOR, Role.TEAM_MANAGER):
        raise AccessDenied(f"the {principal.role} role reads no scanner checks", code="role_forbidden")
    stmt = select(ScannerCheck).order_by(ScannerCheck.day.desc(), ScannerCheck.id.desc())
    if device:
        stmt = stmt.where(ScannerCheck.device == device)
    return [{"id": c.id, "device": c.device, "day": c.day.isoformat(), "passed": c.passed, "measures": c.measures,
             "failures": c.failures, "scan_sha256": c.scan_sha256, "checked_by": c.checked_by}
            for c in session.scalars(stmt)]
