"""Charts drawn on the server as SVG with reportlab's charting (already a dependency, for the
certificate's PDF): no script in the browser, the same picture with JavaScript off, and the
numbers always beside it in a table for anyone who would rather read them."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from html import escape

from reportlab.graphics import renderSVG
from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.shapes import Drawing, Line
from reportlab.lib import colors

# Colours of the pages' palette, distinguishable without colour vision by the legend's order.
PALETTE = ("#1d70b8", "#d4351c", "#f47738", "#00703c", "#505a5f")


# The two sizes drawn of every chart: one for a desktop's column, one for a phone held upright.
# A page shows one by its width (escr.css), so the words on either are read at about their size.
WIDE = (720, 300)
NARROW = (360, 420)
FONT = 11  # points in the drawing; each size is shown at about its own width, so about 11 px on screen
CHAR = 6.2  # the width of an average character of Helvetica at FONT, for laying out the labels


def bars(title: str, categories: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], *,
         stacked: bool = True, ident: str = "chart-title", target: tuple[str, float] | None = None) -> str:
    """Bars stacked, or side by side (stacked=False), as inline SVG markup, drawn twice: for a
    desktop and for a phone (CSS shows one). `ident` is the id of the chart's title, distinct for
    each chart of a page; `target` (name, value) a dashed line."""
    return (_draw(title, categories, series, stacked=stacked, ident=ident, target=target, size=WIDE, kind="wide")
            + _draw(title, categories, series, stacked=stacked, ident=f"{ident}-phone", target=target, size=NARROW,
                    kind="narrow"))


def _draw(title: str, categories: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], *, stacked: bool,
          ident: str, target: tuple[str, float] | None, size: tuple[int, int], kind: str) -> str:
    width, height = size
    names = list(categories) or [""]
    pairs = [(colors.HexColor(PALETTE[i % len(PALETTE)]), name) for i, (name, _) in enumerate(series)]
    if target is not None:
        pairs.append((colors.black, f"{target[0]}: {target[1]:g}"))
    # The legend: one row of entries on a desktop, one column on a phone, under the chart.
    legend_rows = min(len(pairs), 1) if kind == "wide" else len(pairs)
    legend_height = 8 + legend_rows * (FONT + 7)
    # The category names: level when they fit side by side, else turned to read upwards.
    plot_width = width - 64
    # Too many names to print each: every second (third...) one, counted back from the latest.
    step = max(1, math.ceil((FONT + 4) / (plot_width / len(names))))
    names = [n if (len(names) - 1 - i) % step == 0 else "" for i, n in enumerate(names)]
    widest = max(len(n) for n in names) * CHAR
    turned = widest + 6 > plot_width / len(names)
    label_height = (widest + 8) if turned else FONT + 10
    drawing = Drawing(width, height)
    chart = VerticalBarChart()
    chart.x, chart.y = 48, legend_height + label_height + 8
    chart.width, chart.height = plot_width, height - chart.y - 16
    chart.data = [list(values) or [0] for _, values in series] or [[0]]
    chart.categoryAxis.style = "stacked" if stacked else "parallel"
    chart.categoryAxis.categoryNames = names
    chart.categoryAxis.labels.fontName = chart.valueAxis.labels.fontName = "Helvetica"
    chart.categoryAxis.labels.fontSize = chart.valueAxis.labels.fontSize = FONT
    chart.categoryAxis.labels.angle = 90 if turned else 0
    chart.categoryAxis.labels.boxAnchor = "e" if turned else "n"
    chart.valueAxis.valueMin = 0
    top = max((sum(v) if stacked else max(v) for v in zip(*[values for _, values in series], strict=True)),
              default=0) if series else 0
    chart.valueAxis.valueMax = max(4, top, target[1] if target else 0)
    chart.valueAxis.valueStep = max(1, round(chart.valueAxis.valueMax / 4))
    chart.barSpacing = 1
    for i in range(len(series)):
        chart.bars[i].fillColor = colors.HexColor(PALETTE[i % len(PALETTE)])
        chart.bars[i].strokeColor = None
    drawing.add(chart)
    if target is not None:
        at = chart.y + chart.height * target[1] / chart.valueAxis.valueMax
        drawing.add(Line(chart.x, at, chart.x + chart.width, at, strokeColor=colors.black, strokeWidth=1.5,
                         strokeDashArray=[6, 3]))
    legend = Legend()
    legend.x, legend.y = 48, legend_height - 4
    legend.alignment = "right"
    legend.columnMaximum = legend_rows or 1
    legend.deltax = max((len(name) for _, name in pairs), default=10) * CHAR + 40
    legend.deltay = FONT + 7
    legend.fontName, legend.fontSize = "Helvetica", FONT + 1
    legend.colorNamePairs = pairs
    drawing.add(legend)
    svg = renderSVG.drawToString(drawing)
    svg = svg[svg.index("<svg"):]  # no XML prolog or DOCTYPE inside an HTML page
    svg = re.sub(r'<svg width="\d+" height="\d+"', f'<svg class="chart {kind}" role="img" aria-labelledby="{ident}"',
                 svg, count=1)
    svg = svg.replace("<title>...</title>", f'<title id="{ident}">{escape(title)}</title>', 1)
    # The pages' CSP (style-src 'self') ignores style="" attributes: the bars would be drawn black
    # and the labels at the default size. The same properties as presentation attributes are kept.
    svg = re.sub(r'style="([^"]*)"', _presentation, svg)
    # Each chart's own ids, so that two charts on one page never share one.
    svg = svg.replace('id="clip"', f'id="{ident}-clip"').replace("url(#clip)", f"url(#{ident}-clip)")
    svg = svg.replace('id="group"', f'id="{ident}-group"')
    return svg.replace("<desc>...</desc>", "<desc>The same numbers are in the table below the chart.</desc>", 1)


def _presentation(match: re.Match[str]) -> str:
    """style="fill: red; stroke: none" -> fill="red" stroke="none" (SVG presentation attributes)."""
    pairs = [part.split(":", 1) for part in match.group(1).split(";") if ":" in part]
    return " ".join(f'{name.strip()}="{escape(value.strip())}"' for name, value in pairs)
