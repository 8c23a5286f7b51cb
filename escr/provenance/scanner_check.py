"""The scanner check (DOMAIN protocol step 1): a test target printed by escr, scanned on a device,
and measured, once per device and day.

The target is an A4 page with two black fiducial squares 150 mm apart (their distance gives the
resolution the scan really delivers, their angle the skew), a wedge of eight grey patches (how
many steps the scan still tells apart: exposure and tone), and known text (OCR character error
rate against it). The numbers are measured on the page as scanned, at its own resolution.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from io import BytesIO
from typing import Any

import numpy as np
from PIL import Image
from rapidfuzz.distance import Levenshtein
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas

TARGET_TEXT = (
    "ESCR SCANNER CHECK TARGET",
    "The quick brown fox jumps over the lazy dog 0123456789.",
    "Pack my box with five dozen liquor jugs, said Mrs Jones.",
    "Sphinx of black quartz, judge my vow: 14/06/2005.",
)
FIDUCIAL_MM = 10.0
FIDUCIAL_Y_MM = 25.0  # centre, from the top
FIDUCIAL_X_MM = (30.0, 180.0)  # centres: 150 mm apart
WEDGE_Y_MM = 60.0  # top of the wedge, from the top
WEDGE_X_MM = 25.0
PATCH_MM = (20.0, 15.0)
TONES = (0, 36, 73, 109, 146, 182, 219, 255)  # grey levels of the wedge, black to white
STEP_CONTRAST = 8  # grey levels two neighbouring patches must differ by to count as told apart


def target_pdf() -> bytes:
    """The printable target (A4 PDF)."""
    out = BytesIO()
    width, height = A4
    c = canvas.Canvas(out, pagesize=A4)
    c.setTitle("escr scanner check target")
    for x in FIDUCIAL_X_MM:
        c.rect((x - FIDUCIAL_MM / 2) * mm, height - (FIDUCIAL_Y_MM + FIDUCIAL_MM / 2) * mm, FIDUCIAL_MM * mm,
               FIDUCIAL_MM * mm, stroke=0, fill=1)
    for i, tone in enumerate(TONES):
        c.setFillGray(tone / 255)
        c.rect((WEDGE_X_MM + i * PATCH_MM[0]) * mm, height - (WEDGE_Y_MM + PATCH_MM[1]) * mm, PATCH_MM[0] * mm,
               PATCH_MM[1] * mm, stroke=0, fill=1)
    c.setFillGray(0)
    c.setFont("Helvetica", 14)
    for i, line in enumerate(TARGET_TEXT):
        c.drawString(25 * mm, height - (100 + i * 12) * mm, line)
    c.showPage()
    c.save()
    return out.getvalue()


@dataclass(frozen=True)
class Measures:
    declared_dpi: float
    effective_dpi: float | None
    skew_deg: float | None
    paper_white: int
    tones: list[int]
    tone_steps: int  # neighbouring patch pairs told apart (7 at best)
    cer: float | None  # OCR character error rate against the known text

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _centroid(mask: np.ndarray) -> tuple[float, float] | None:
    ys, xs = np.nonzero(mask)
    if xs.size < 20:
        return None
    return float(xs.mean()), float(ys.mean())


def measure_geometry(grey: np.ndarray, dpi: float) -> tuple[float | None, float | None, tuple[float, float] | None]:
    """Effective dpi, skew (degrees, counter-clockwise positive) and the left fiducial's centre."""
    h, w = grey.shape
    white = float(np.percentile(grey, 99))
    band = grey[: int(h * 0.15)] < white / 2  # above the wedge (60 mm down) even when skewed
    margin = int(w * 0.04)  # scanner edge shadow lives at the borders, never a fiducial
    band[:margin, :] = False
    band[:, :margin] = False
    band[:, w - margin:] = False
    left = _centroid(band[:, : w // 2])
    right = _centroid(band[:, w // 2:])
    if left is None or right is None:
        return None, None, None
    dx, dy = right[0] + w // 2 - left[0], right[1] - left[1]
    distance_in = (FIDUCIAL_X_MM[1] - FIDUCIAL_X_MM[0]) / 25.4
    return math.hypot(dx, dy) / distance_in, math.degrees(math.atan2(-dy, dx)), left


def measure_tones(grey: np.ndarray, dpi: float, left: tuple[float, float], skew_deg: float = 0.0) -> list[int]:
    """The median grey of each wedge patch, located from the left fiducial and turned by the skew."""
    px = dpi / 25.4
    cos, sin = math.cos(math.radians(skew_deg)), math.sin(math.radians(skew_deg))
    levels = []
    for i in range(len(TONES)):
        ox = (WEDGE_X_MM + (i + 0.5) * PATCH_MM[0] - FIDUCIAL_X_MM[0]) * px
        oy = (WEDGE_Y_MM + PATCH_MM[1] / 2 - FIDUCIAL_Y_MM) * px
        cx, cy = left[0] + ox * cos + oy * sin, left[1] - ox * sin + oy * cos
        rx, ry = PATCH_MM[0] * px / 4, PATCH_MM[1] * px / 4
        patch = grey[max(0, int(cy - ry)): int(cy + ry), max(0, int(cx - rx)): int(cx + rx)]
        levels.append(int(np.median(patch)) if patch.size else 255)
    return levels


def character_error_rate(found: str, expected: str = "\n".join(TARGET_TEXT)) -> float:
    norm = lambda s: " ".join(s.split())  # noqa: E731 - whitespace differences are not errors
    return Levenshtein.distance(norm(found), norm(expected)) / max(1, len(norm(expected)))


def measure(image: Image.Image, *, dpi: float, ocr_text: str | None) -> Measures:
    """Measure a scanned target (`image` at its own resolution `dpi`; `ocr_text` what OCR read)."""
    grey = np.asarray(image.convert("L"), dtype=np.uint8)
    effective, skew, left = measure_geometry(grey, dpi)
    tones = measure_tones(grey, effective or dpi, left, skew or 0.0) if left is not None else []
    steps = sum(1 for a, b in zip(tones, tones[1:], strict=False) if b - a >= STEP_CONTRAST)
    return Measures(declared_dpi=dpi, effective_dpi=round(effective, 1) if effective else None,
                    skew_deg=round(skew, 2) if skew is not None else None,
                    paper_white=int(np.percentile(grey, 99)), tones=tones, tone_steps=steps,
                    cer=round(character_error_rate(ocr_text), 4) if ocr_text is not None else None)
