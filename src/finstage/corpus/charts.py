"""Vector charts as ministry PDFs draw them: filled paths for bars, a polyline for trends, every
value printed next to its mark, and the chart's truth.

Charts are drawn as PDF paths and text (not pictures) because that is how 予算の概要 PDFs carry
them: the values are in the text layer, placed by the bar they belong to, so the words near a
bar are what a model must learn to read off it. Two forms:

- ``bar`` (horizontal): categories down the left (budget items), bars to the right, the value at
  each bar's end;
- ``bar`` (vertical) or ``line``: fiscal years along the bottom, a y axis with ticks, the value
  above each bar or point.

Truth (one entry of a document's ``charts``)::

    {"kind": "bar"|"line", "orientation": "horizontal"|"vertical", "title", "unit", "page",
     "footnote" (the ※ mark printed after the title), "series": [{"name", "points": [{"label",
     "value" (int or float), "text" (the value as printed)}]}]}
"""

from __future__ import annotations

import math
from typing import Any

from finstage.corpus.pdfwriter import LEFT, RIGHT, PdfWriter

TITLE_SIZE, LABEL_SIZE, VALUE_SIZE = 10.0, 8.0, 7.5
BAR_COLOUR, LINE_COLOUR, AXIS_COLOUR = (0.33, 0.47, 0.72), (0.78, 0.28, 0.2), (0.2, 0.2, 0.2)
ROW_PITCH, BAR_H = 20.0, 12.0  # horizontal bars
PLOT_H = 130.0  # vertical charts
Point = tuple[str, int | float, str]  # (category label, value, value as printed)


def height(orientation: str, n_points: int) -> float:
    """Points of page the chart takes, title to bottom labels (for `PdfWriter.room`)."""
    body = n_points * ROW_PITCH if orientation == "horizontal" else PLOT_H + 18.0
    return 34.0 + body + 18.0


def draw_chart(
    b: PdfWriter, kind: str, orientation: str, title: str, unit: str, points: list[Point], note: str
) -> dict[str, Any]:
    """Draw the chart at ``b.y`` on a page with room for it (a new page when this one is full),
    with ``note`` as its footnote; returns its truth."""
    if not b.room(height(orientation, len(points)) + b.NOTE_LEADING):
        b.new_page()
    b.kinds[b.index].add("chart")  # PdfWriter infers tables and prose; a chart is drawn here
    mark = b.footnote(note)
    b.put(LEFT, b.y, f"{title}{mark}", TITLE_SIZE)
    b.put(RIGHT, b.y + 14.0, f"（単位：{unit}）", LABEL_SIZE, "right")
    top = b.y + 24.0
    if orientation == "horizontal":
        _horizontal_bars(b, top, points)
    else:
        _vertical(b, kind, top, points)
    b.y += height(orientation, len(points))
    return {
        "kind": kind,
        "orientation": orientation,
        "title": title,
        "unit": unit,
        "page": b.index,
        "footnote": mark,
        "series": [
            {
                "name": title,
                "points": [{"label": c, "value": v, "text": t} for c, v, t in points],
            }
        ],
    }


def _horizontal_bars(b: PdfWriter, top: float, points: list[Point]) -> None:
    x0 = LEFT + 170.0
    longest = RIGHT - 70.0 - x0
    scale = longest / max(v for _, v, _ in points)
    shape = b.shape
    for k, (label, value, text) in enumerate(points):
        y = top + k * ROW_PITCH
        shape.draw_rect((x0, y, x0 + value * scale, y + BAR_H))
        shape.finish(width=0, fill=BAR_COLOUR, color=None)
        b.put(x0 - 6.0, y + BAR_H - 3.0, label, LABEL_SIZE, "right")
        b.put(x0 + value * scale + 4.0, y + BAR_H - 3.0, text, VALUE_SIZE)
    shape.draw_line((x0, top - 4.0), (x0, top + len(points) * ROW_PITCH))
    shape.finish(width=0.6, color=AXIS_COLOUR, closePath=False)


def _nice_step(top: float) -> float:
    """A 1/2/2.5/5 x 10^k tick step giving about four ticks up to ``top``."""
    raw = top / 4
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def _tick_text(value: float, step: float) -> str:
    return f"{value:,.0f}" if float(step).is_integer() else f"{value:,.1f}"


def _vertical(b: PdfWriter, kind: str, top: float, points: list[Point]) -> None:
    x0, x1 = LEFT + 56.0, RIGHT - 10.0
    base = top + PLOT_H
    step = _nice_step(max(v for _, v, _ in points))
    ceiling = step * math.ceil(max(v for _, v, _ in points) / step)
    shape = b.shape

    def y_of(value: float) -> float:
        return base - (value / ceiling) * (PLOT_H - 14.0)

    ticks = round(ceiling / step)
    for t in range(ticks + 1):
        y = y_of(t * step)
        shape.draw_line((x0 - 3.0, y), (x1, y) if t else (x0, y))
        b.put(x0 - 6.0, y + 2.5, _tick_text(t * step, step), LABEL_SIZE - 1.0, "right")
    shape.finish(width=0.3, color=(0.7, 0.7, 0.7), closePath=False)
    shape.draw_line((x0, top), (x0, base))
    shape.draw_line((x0, base), (x1, base))
    shape.finish(width=0.6, color=AXIS_COLOUR, closePath=False)
    slot = (x1 - x0) / len(points)
    centres = [x0 + slot * (k + 0.5) for k in range(len(points))]
    if kind == "bar":
        for cx, (_, value, _) in zip(centres, points, strict=True):
            shape.draw_rect((cx - slot * 0.3, y_of(value), cx + slot * 0.3, base))
        shape.finish(width=0, fill=BAR_COLOUR, color=None)
    else:
        shape.draw_polyline([(cx, y_of(v)) for cx, (_, v, _) in zip(centres, points, strict=True)])
        shape.finish(width=1.5, color=LINE_COLOUR, closePath=False)
        for cx, (_, value, _) in zip(centres, points, strict=True):
            y = y_of(value)
            shape.draw_rect((cx - 2.5, y - 2.5, cx + 2.5, y + 2.5))
        shape.finish(width=0, fill=LINE_COLOUR, color=None)
    for cx, (label, value, text) in zip(centres, points, strict=True):
        b.put(cx, y_of(value) - 5.0, text, VALUE_SIZE, "center")
        b.put(cx, base + 12.0, label, LABEL_SIZE, "center")
