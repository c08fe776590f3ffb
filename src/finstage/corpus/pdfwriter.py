"""Japanese pages written with PyMuPDF's built-in fonts, which are referenced, never embedded.

ASCII runs are set in ``helv`` and everything else in the CJK font ``japan`` (Adobe-Japan1,
UniJIS-UTF16-H), so a page is 1–3 KB. ``insert_htmlbox`` is deliberately avoided: it embeds a full
CJK font on every page (one 3,000-page file reached 10.9 GB). Fixed metadata dates and no random
/ID make the same content give the same bytes.
"""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # loaded by the functions that use it: importing this module stays light
    import pymupdf

LATIN, CJK = "helv", "japan"
PAGE_W, PAGE_H = 595.0, 842.0  # A4 in points
LEFT, RIGHT = 56.0, PAGE_W - 56.0
PDF_DATE = "D:20250401000000+09'00'"

# figures stay whole when a paragraph wraps, so "1,234億円" or "3.2%増" is never split
_TOKEN = re.compile(
    r"△?\d[\d,]*(?:\.\d+)?(?:%[増減]?|兆円|億円|百万円|千円|円|件|人)?|[A-Za-z]+|.", re.S
)
_NO_LINE_START = set("、。，．）」』")


def _runs(text: str) -> list[tuple[str, str]]:
    """Split text into (font, run): ASCII in Helvetica, the rest in the CJK font."""
    return [
        (LATIN if latin else CJK, "".join(group))
        for latin, group in itertools.groupby(text, key=lambda ch: ch < "\x80")
    ]


def text_width(text: str, size: float) -> float:
    import pymupdf

    return sum(
        pymupdf.get_text_length(run, fontname=font, fontsize=size) for font, run in _runs(text)
    )


def put(
    shape: pymupdf.Shape, x: float, y: float, text: str, size: float, align: str = "left"
) -> None:
    """Write ``text`` with its baseline at ``y``; ``align`` is relative to ``x``."""
    import pymupdf

    width = text_width(text, size)
    if align == "right":
        x -= width
    elif align == "center":
        x -= width / 2
    for font, run in _runs(text):
        shape.insert_text((x, y), run, fontname=font, fontsize=size)
        x += pymupdf.get_text_length(run, fontname=font, fontsize=size)


def wrap(text: str, width: float, size: float, indent: float = 0.0) -> list[str]:
    """Greedy line breaking for Japanese prose (no spaces); figures are never split."""
    lines: list[str] = []
    current, used = "", indent
    for token in _TOKEN.findall(text):
        w = text_width(token, size)
        if current and used + w > width and token not in _NO_LINE_START:
            lines.append(current)
            current, used = "", 0.0
        current += token
        used += w
    if current:
        lines.append(current)
    return lines


class PdfWriter:
    """Lays out one document top to bottom, page by page. Layouts read ``index`` (the current
    0-based page) as they write, so the truth record says where each row and sentence landed."""

    BODY = 10.5
    LEADING = 17.0
    ROW_H = 18.0
    TABLE_SIZE = 9.5
    COL_EDGES = (LEFT, LEFT + 183.0, LEFT + 283.0, LEFT + 383.0, RIGHT)

    def __init__(self) -> None:
        import pymupdf

        self.doc = pymupdf.open()
        self.page: pymupdf.Page | None = None
        self.shape: pymupdf.Shape | None = None
        self.y = 0.0
        self.index = -1

    def new_page(self) -> None:
        self.flush()
        self.page = self.doc.new_page(width=PAGE_W, height=PAGE_H)
        self.shape = self.page.new_shape()
        self.y = 72.0
        self.index += 1

    def flush(self) -> None:
        if self.shape is not None:
            self.shape.commit()
            self.shape = None

    def line(
        self, text: str, size: float | None = None, align: str = "left", gap: float | None = None
    ) -> None:
        size = size or self.BODY
        x = {"left": LEFT, "right": RIGHT, "center": PAGE_W / 2}[align]
        put(self.shape, x, self.y, text, size, align)
        self.y += gap if gap is not None else self.LEADING

    def paragraph(self, text: str) -> None:
        indent = self.BODY
        for i, line in enumerate(wrap(text, RIGHT - LEFT, self.BODY, indent)):
            put(self.shape, LEFT + (indent if i == 0 else 0.0), self.y, line, self.BODY)
            self.y += self.LEADING
        self.y += 4.0

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        """A ruled grid; every row's cells share one baseline so text extraction rebuilds rows."""
        edges = self.COL_EDGES
        top = self.y
        ys = [top + i * self.ROW_H for i in range(len(rows) + 2)]
        for y in ys:
            self.shape.draw_line((edges[0], y), (edges[-1], y))
        for x in edges:
            self.shape.draw_line((x, ys[0]), (x, ys[-1]))
        self.shape.finish(width=0.6, color=(0, 0, 0))
        base = self.ROW_H - 5.5
        for i, cell in enumerate(header):
            put(
                self.shape,
                (edges[i] + edges[i + 1]) / 2,
                ys[0] + base,
                cell,
                self.TABLE_SIZE,
                "center",
            )
        for r, row in enumerate(rows, start=1):
            put(self.shape, edges[0] + 6.0, ys[r] + base, row[0], self.TABLE_SIZE)
            for c, cell in enumerate(row[1:], start=1):
                put(self.shape, edges[c + 1] - 6.0, ys[r] + base, cell, self.TABLE_SIZE, "right")
        self.y = ys[-1] + 24.0

    def finish(self, metadata: dict[str, str]) -> bytes:
        self.flush()
        total = self.doc.page_count
        for page in self.doc:
            shape = page.new_shape()
            put(shape, PAGE_W / 2, PAGE_H - 36.0, f"- {page.number + 1} -", 9.0, "center")
            shape.commit()
        self.doc.set_metadata(
            {
                **metadata,
                "creator": "finstage corpus generator",
                "producer": "finstage",
                "creationDate": PDF_DATE,
                "modDate": PDF_DATE,
            }
        )
        data = self.doc.tobytes(garbage=4, deflate=True, no_new_id=True)
        self.doc.close()
        assert total >= 1
        return data
