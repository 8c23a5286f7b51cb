"""Light-coloured print on colour scans, which grey loses, put back on the grey page OCR reads.

Tesseract is always given a grey page: it reads a colour one about 40 % slower (it binarises
every channel), and its colour reading loses highlighted lines (a highlighter's stripe turns
black with the words in it). But grey loses light-coloured print - orange, yellow, pink or light
blue text is as light as the paper - so where the colour holds such print, the grey page takes
the print's darkest channel there.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageChops

# `colour_print_mask` looks for it on a copy of about this resolution.
COLOUR_CHECK_DPI = 150
# Ink found in colour but not in grey counts for the decision only this far (pixels at
# COLOUR_CHECK_DPI) from the grey ink: colour fringes along dark strokes (JPEG's coarse colour)
# do not hold print of their own.
GREY_INK_MARGIN = 2
# More clustered pixels than this of ink that only colour shows, and the page has colour print.
# One small printed letter measures about 40; a colour photo's or letterhead's edges measure 0-10.
COLOUR_ONLY_INK_PIXELS = 24
# Blocks of this many pixels (at COLOUR_CHECK_DPI) that are more than SOLID_FRACTION ink in colour
# are areas, not print: a highlighter's stripe, a coloured box or band, a photograph. Strokes of
# print, bold 24 pt headings too, leave more paper than that in a block.
SOLID_BLOCK = 16
SOLID_FRACTION = 0.85


def colour_print_mask(image: Image.Image) -> np.ndarray | None:
    """Where this colour page has print that its grey copy loses, or None if it has none.

    Emulates tesseract's own binarisation (Otsu per channel; a pixel is ink if any convincing
    channel says so) on the colour image and on its grey copy; ink only the colour one has, outside
    solid colour areas, is print that grey loses where it lies away from the grey ink (the colour
    fringes along dark strokes are left alone). None for grey and bilevel images. The mask has the
    image's own size, one pixel wider than the print all round.
    """
    if image.mode != "RGB":
        return None
    colour_ink = _tesseract_ink(image)
    grey_ink = _tesseract_ink(image.convert("L"))
    only_colour = colour_ink & ~grey_ink & ~_solid_areas(colour_ink)
    away = only_colour & ~_dilated(grey_ink, GREY_INK_MARGIN)
    clustered = away[1:-1, 1:-1] & (away[:-2, 1:-1] | away[2:, 1:-1] | away[1:-1, :-2] | away[1:-1, 2:])
    if int(clustered.sum()) <= COLOUR_ONLY_INK_PIXELS:
        return None
    return _dilated(only_colour & _dilated(away, 2 * GREY_INK_MARGIN), 1)


def with_colour_print(grey: Image.Image, colour: Image.Image, mask: np.ndarray) -> Image.Image:
    """`grey` with the pixels under `mask` (scaled to the page) as dark as their darkest channel:
    orange print on white, 158 in grey, becomes 0; the paper around it stays as it was."""
    marks = Image.fromarray(mask.astype(np.uint8) * 255, "L")
    if marks.size != grey.size:
        marks = marks.resize(grey.size, Image.Resampling.NEAREST)
    if colour.size != grey.size:
        colour = colour.resize(grey.size)
    red, green, blue = colour.split()
    darkest = ImageChops.darker(ImageChops.darker(ImageChops.darker(red, green), blue), grey)
    out = Image.composite(darkest, grey, marks)
    out.info = dict(grey.info)
    return out


def _solid_areas(ink: np.ndarray) -> np.ndarray:
    """Blocks nearly all ink, and the blocks around them (a stripe's edges), as a pixel mask."""
    height, width = ink.shape
    rows, cols = -(-height // SOLID_BLOCK), -(-width // SOLID_BLOCK)
    padded = np.zeros((rows * SOLID_BLOCK, cols * SOLID_BLOCK), dtype=bool)
    padded[:height, :width] = ink
    blocks = padded.reshape(rows, SOLID_BLOCK, cols, SOLID_BLOCK).mean(axis=(1, 3)) > SOLID_FRACTION
    blocks = _dilated(blocks, 1)
    return np.repeat(np.repeat(blocks, SOLID_BLOCK, axis=0), SOLID_BLOCK, axis=1)[:height, :width]


def _tesseract_ink(image: Image.Image) -> np.ndarray:
    """Ink as tesseract's Otsu thresholding finds it (thresholding_method 0, its default).

    A channel is convincing when its Otsu split leaves under a quarter of the pixels on one side
    (that side is the ink); if none is, the least unconvincing one decides alone."""
    pixels = np.asarray(image)
    channels = [pixels] if pixels.ndim == 2 else [pixels[..., c] for c in range(pixels.shape[2])]
    histogram = image.histogram()
    ink = np.zeros(channels[0].shape, dtype=bool)
    convincing = False
    fallback: tuple[float, np.ndarray] | None = None
    for n, channel in enumerate(channels):
        split = _otsu(histogram[256 * n : 256 * (n + 1)])
        if split is None:
            continue
        threshold, below, total = split
        if below > 0.75 * total:
            ink |= channel > threshold
            convincing = True
        elif below < 0.25 * total:
            ink |= channel <= threshold
            convincing = True
        else:
            minority_dark = below < 0.5 * total
            distance = total - below if minority_dark else below
            if fallback is None or distance > fallback[0]:
                fallback = (distance, channel <= threshold if minority_dark else channel > threshold)
    if not convincing and fallback is not None:
        return fallback[1]
    return ink


def _otsu(histogram: list[int]) -> tuple[int, float, float] | None:
    """(threshold, pixels at or below it, all pixels) of Otsu's split; None if the channel is flat."""
    hist = np.asarray(histogram, dtype=np.float64)
    levels = np.arange(256, dtype=np.float64)
    total, mass = hist.sum(), (hist * levels).sum()
    below = np.cumsum(hist)[:-1]
    below_mass = np.cumsum(hist * levels)[:-1]
    above = total - below
    valid = (below > 0) & (above > 0)
    if not valid.any():
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        between = ((mass - below_mass) / above - below_mass / below) ** 2 * below * above
    between[~valid] = -1.0
    threshold = int(np.argmax(between))
    return threshold, float(below[threshold]), float(total)


def _dilated(mask: np.ndarray, radius: int) -> np.ndarray:
    """`mask` grown by `radius` pixels (a square), one pixel and one axis at a time."""
    out = mask
    for axis in (0, 1):
        for _ in range(radius):
            grown = out.copy()
            ahead, behind = [slice(None)] * 2, [slice(None)] * 2
            ahead[axis], behind[axis] = slice(1, None), slice(None, -1)
            grown[tuple(ahead)] |= out[tuple(behind)]
            grown[tuple(behind)] |= out[tuple(ahead)]
            out = grown
    return out
