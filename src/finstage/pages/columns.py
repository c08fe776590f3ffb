"""Reading order for pages set in two columns: the left column's lines, then the right column's.

Rebuilding lines from words (`finstage.pages.render.group_lines`) keeps a table row whole, but on
a two-column page it joins the left column's line with the right column's line at the same
height: ``となりました。行政処分の件数は… 度比1.0%増の67,385億円となりました。``. As an OCR
target or a passage to quote, that teaches the model to read across the gutter.

So lines are first cut into *segments* where two neighbouring words are further apart than the
line's height (words within a phrase, even across a space, are much closer; a gutter is wider).
A run of lines that each have exactly two segments, both of them prose rather than figures, with
an empty band between them common to all (the gutter), is a two-column region once it holds
`MIN_ROWS` such lines. Lines within or just below it that lie wholly on one side of the gutter
(a paragraph's last line, the longer column's last lines) join it. Inside a region the left
segments are read top to bottom, then the right ones.

Everything else keeps its line as it is, so a table row is never split: a row of
``label  1,234  5,678`` has more than two segments, and a two-cell row's right cell is a
figure, which fails the prose test.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_ROWS = 2  # two-segment lines needed before a gutter is believed (a column may end early)
GAP = 0.75  # a gap wider than this many line heights separates segments
FOLLOW = 1.6  # a one-sided line this many line heights below the region still belongs to it
FIGURE_SHARE = 0.6  # a segment with more digits than this share is a figure, not prose


@dataclass(frozen=True)
class Word:
    x0: float
    x1: float
    y: float  # the vertical centre
    height: float
    text: str


Line = list[Word]  # left to right


def segments(line: Line) -> list[Line]:
    height = min(w.height for w in line)
    parts: list[Line] = [[line[0]]]
    for word in line[1:]:
        if word.x0 - parts[-1][-1].x1 > GAP * height:
            parts.append([word])
        else:
            parts[-1].append(word)
    return parts


def _prose(part: Line) -> bool:
    text = "".join(w.text for w in part)
    digits = sum(c.isdigit() for c in text)
    return digits <= FIGURE_SHARE * len(text)


def _gutter(line: Line) -> tuple[float, float] | None:
    """The empty band between a two-column line's halves, or None for any other line."""
    parts = segments(line)
    if len(parts) != 2 or not all(_prose(p) for p in parts):
        return None
    return parts[0][-1].x1, parts[1][0].x0


def reading_order(lines: list[Line]) -> list[Line]:
    """``lines`` (top to bottom) with every two-column region read column by column."""
    out: list[Line] = []
    k = 0
    while k < len(lines):
        end, band = _region(lines, k)
        if band is None:
            out.append(lines[k])
            k += 1
            continue
        halves = [segments(line) for line in lines[k:end]]
        left = [p for parts in halves for p in parts if p[-1].x1 <= band[0]]
        right = [p for parts in halves for p in parts if p[0].x0 >= band[1]]
        out += left + right
        k = end
    return out


def _region(lines: list[Line], start: int) -> tuple[int, tuple[float, float] | None]:
    """The end of the two-column region starting at ``start`` and its gutter; the gutter is None
    when no region starts there. The region takes two-column lines whose gutter overlaps the
    others', and lines on one side of it close below the line above (a column's paragraph end,
    the longer column's last lines)."""
    band = _gutter(lines[start])
    if band is None:
        return start, None
    rows, end = 1, start + 1
    while end < len(lines):
        line = lines[end]
        gap = _gutter(line)
        if gap is not None and max(band[0], gap[0]) < min(band[1], gap[1]):
            band, rows = (max(band[0], gap[0]), min(band[1], gap[1])), rows + 1
        elif not _one_side(line, band) or not _close(line, lines[end - 1]):
            break
        end += 1
    return (end, band) if rows >= MIN_ROWS else (start, None)


def _one_side(line: Line, band: tuple[float, float]) -> bool:
    return line[-1].x1 <= band[0] or line[0].x0 >= band[1]


def _close(line: Line, above: Line) -> bool:
    return line[0].y - above[0].y <= FOLLOW * min(w.height for w in line)
