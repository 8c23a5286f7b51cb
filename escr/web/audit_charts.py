"""Charts drawn on the server as SVG with reportlab's charting (already a dependency, for the
certificate's PDF): no script in the browser, the same picture with JavaScript off, and the
numbers always beside it in a table for anyone who would rather read them."""

from __future__ import annotations

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


def stacked_bars(title: str, categories: Sequence[str], series: Sequence[tuple[str, Sequence[int]]], *,
                 width: int = 720, height: int = 300) -> str:
    """A stacked bar chart as inline SVG markup (role img, titled) for a template to place."""
    return bars(title, categories, series, width=width, height=height)


def bars(title: str, categories: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], *,
         stacked: bool = True, ident: str = "chart-title", target: tuple[str, float] | None = None,
         width: int = 720, height: int = 300) -> str:
    """Bars stacked, or side by side (stacked=False), as inline SVG markup; `ident` is the id of
    the chart's title, distinct for each chart of a page; `target` (name, value) a dashed line."""
    drawing = Drawing(width, height)
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 48, 80, width - 64, height - 96
    chart.data = [list(values) or [0] for _, values in series] or [[0]]
    chart.categoryAxis.style = "stacked" if stacked else "parallel"
    chart.categoryAxis.categoryNames = list(categories) or [""]
    chart.categoryAxis.labels.fontName = chart.valueAxis.labels.fontName = "Helvetica"
    chart.categoryAxis.labels.fontSize = 11
    chart.valueAxis.labels.fontSize = 11
    chart.categoryAxis.labels.angle = 0 if len(categories) <= 16 else 90
    chart.categoryAxis.labels.boxAnchor = "n" if len(categories) <= 16 else "e"
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
    pairs = [(colors.HexColor(PALETTE[i % len(PALETTE)]), name) for i, (name, _) in enumerate(series)]
    if target is not None:
        at = chart.y + chart.height * target[1] / chart.valueAxis.valueMax
        drawing.add(Line(chart.x, at, chart.x + chart.width, at, strokeColor=colors.black, strokeWidth=1.5,
                         strokeDashArray=[6, 3]))
        pairs.append((colors.black, f"{target[0]}: {target[1]:g}"))
    legend = Legend()
    legend.x, legend.y = 48, 14
    legend.alignment = "right"
    legend.columnMaximum = 1
    legend.deltax = 150
    legend.fontName, legend.fontSize = "Helvetica", 12
    legend.colorNamePairs = pairs
    drawing.add(legend)
    svg = renderSVG.drawToString(drawing)
    svg = svg[svg.index("<svg"):]  # no XML prolog or DOCTYPE inside an HTML page
    svg = re.sub(r'<svg width="\d+" height="\d+"', f'<svg class="chart" role="img" aria-labelledby="{ident}"', svg,
                 count=1)
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
