"""Japanese pages written with PyMuPDF's built-in fonts, which are referenced, never embedded.

ASCII runs are set in ``helv`` and everything else in the CJK font ``japan`` (Adobe-Japan1,
UniJIS-UTF16-H), so a page is 1–3 KB. ``insert_htmlbox`` is deliberately avoided: it embeds a full
CJK font on every page (one 3,000-page file reached 10.9 GB). Fixed metadata dates and no random
/ID make the same content give the same bytes.

Everything is drawn through PyMuPDF (``Shape`` for text, rules and filled paths, ``insert_image``
for scans) rather than hand-written content streams: PyMuPDF already writes the text with the
right CMaps, so charts and scans reuse one writer, and ``tobytes(garbage=4, deflate=True)``
Flate-compresses every stream, images included, deterministically.

Every page gets the running header and a ``- N -`` footer the way ministry PDFs do, plus the
footnotes (``※1 ...``) registered on it. The writer remembers which kinds of content each page
holds and the lines it printed, which is what the truth of a scanned page is made of.
"""

from __future__ import annotations

import itertools
import random
import re
from typing import TYPE_CHECKING, Any

from finstage.corpus.scan import scan_page

if TYPE_CHECKING:  # loaded by the functions that use it: importing this module stays light
    import pymupdf

LATIN, CJK = "helv", "japan"
PAGE_W, PAGE_H = 595.0, 842.0  # A4 in points
LEFT, RIGHT = 56.0, PAGE_W - 56.0
PDF_DATE = "D:20250401000000+09'00'"

# figures stay whole when a paragraph wraps, so "1,234億円" or "3.2%増" is never split
# (and neither is a 和暦 date); \d also matches full-width digits
_TOKEN = re.compile(
    r"令和(?:元|\d+)年\d+月\d+日|△?\d[\d,，]*(?:[.．]\d+)?(?:%[増減]?|兆円|億円|百万円|千円|円|件|人)?"
    r"|[A-Za-z]+|.",
    re.S,
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
    HEADER_SIZE = 8.0
    NOTE_SIZE = 8.0
    NOTE_LEADING = 12.0
    FOOTER_Y = PAGE_H - 36.0
    COLUMN_GAP = 20.0

    def __init__(self, header: str) -> None:
        import pymupdf

        self.doc = pymupdf.open()
        self.header = header
        self.page: pymupdf.Page | None = None
        self.shape: pymupdf.Shape | None = None
        self.y = 0.0
        self.index = -1
        self.kinds: list[set[str]] = []  # per page: table, prose, two_column, chart
        self.printed: list[list[str]] = []  # per page: the lines drawn, in drawing order
        self.notes: list[list[tuple[str, str]]] = []  # per page: (mark, text) footnotes
        self.scans: dict[int, random.Random] = {}  # page -> the rng of its scan noise
        self.note_count = 0
        self.column_box: dict[int, dict[str, float]] = {}  # two-column page -> its column band

    def new_page(self) -> None:
        self.flush()
        self.page = self.doc.new_page(width=PAGE_W, height=PAGE_H)
        self.shape = self.page.new_shape()
        self.y = 72.0
        self.index += 1
        self.kinds.append(set())
        self.printed.append([])
        self.notes.append([])

    def flush(self) -> None:
        if self.shape is not None:
            self.shape.commit()
            self.shape = None

    def put(self, x: float, y: float, text: str, size: float, align: str = "left") -> None:
        """`put` on the current page, remembered as one printed line of it."""
        put(self.shape, x, y, text, size, align)
        self.printed[self.index].append(text)

    @property
    def bottom(self) -> float:
        """The lowest baseline body text may use: above the footnotes and the footer."""
        return self.FOOTER_Y - 24.0 - self.NOTE_LEADING * len(self.notes[self.index])

    def room(self, height: float) -> bool:
        return self.y + height <= self.bottom

    def footnote(self, text: str) -> str:
        """Register a footnote on the current page; returns its mark (``※1``, numbered through
        the document) for the caller to print where it applies."""
        self.note_count += 1
        mark = f"※{self.note_count}"
        self.notes[self.index].append((mark, text))
        return mark

    def line(
        self, text: str, size: float | None = None, align: str = "left", gap: float | None = None
    ) -> None:
        size = size or self.BODY
        x = {"left": LEFT, "right": RIGHT, "center": PAGE_W / 2}[align]
        self.put(x, self.y, text, size, align)
        self.y += gap if gap is not None else self.LEADING

    def paragraph(self, text: str) -> None:
        self.kinds[self.index].add("prose")
        indent = self.BODY
        for i, line in enumerate(wrap(text, RIGHT - LEFT, self.BODY, indent)):
            self.put(LEFT + (indent if i == 0 else 0.0), self.y, line, self.BODY)
            self.y += self.LEADING
        self.y += 4.0

    def columns(self, blocks: list[tuple[str, str]]) -> None:
        """Set ``blocks`` (``("heading", text)`` or ``("paragraph", text)``) in two columns: the
        lines flow down the left column and on down the right one, split where the two columns
        come out even (the way a page's last columns are balanced)."""
        self.kinds[self.index].update({"prose", "two_column"})
        width = (RIGHT - LEFT - self.COLUMN_GAP) / 2
        lines: list[tuple[float, str, float, float]] = []  # (indent, text, size, advance)
        for kind, text in blocks:
            if kind == "heading":
                lines.append((0.0, text, 11.0, 20.0))
                continue
            for i, line in enumerate(wrap(text, width, self.BODY, self.BODY)):
                lines.append((self.BODY if i == 0 else 0.0, line, self.BODY, self.LEADING))
            lines[-1] = (*lines[-1][:3], self.LEADING + 4.0)
        total = sum(advance for *_, advance in lines)
        top, used, split = self.y, 0.0, len(lines)
        for k, (*_, advance) in enumerate(lines):
            if used >= total / 2:
                split = k
                break
            used += advance
        right_x = LEFT + width + self.COLUMN_GAP
        heights = []
        for x, chunk in ((LEFT, lines[:split]), (right_x, lines[split:])):
            y = top
            for indent, text, size, advance in chunk:
                self.put(x + indent, y, text, size)
                y += advance
            heights.append(y - top)
        self.y = top + max(heights)
        # baselines run from top to y - advance; the band holds the glyphs above them too
        self.column_box[self.index] = {
            "top": top - self.LEADING,
            "bottom": self.y,
            "right_x": right_x,
        }

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        """A ruled grid; every row's cells share one baseline so text extraction rebuilds rows."""
        self.kinds[self.index].add("table")
        edges = self.COL_EDGES
        top = self.y
        ys = [top + i * self.ROW_H for i in range(len(rows) + 2)]
        for y in ys:
            self.shape.draw_line((edges[0], y), (edges[-1], y))
        for x in edges:
            self.shape.draw_line((x, ys[0]), (x, ys[-1]))
        self.shape.finish(width=0.6, color=(0, 0, 0))
        base = self.ROW_H - 5.5
        self.printed[self.index].append(" ".join(header))
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
            self.printed[self.index].append(" ".join(row))
            put(self.shape, edges[0] + 6.0, ys[r] + base, row[0], self.TABLE_SIZE)
            for c, cell in enumerate(row[1:], start=1):
                put(self.shape, edges[c + 1] - 6.0, ys[r] + base, cell, self.TABLE_SIZE, "right")
        self.y = ys[-1] + 24.0

    def scan(self, rng: random.Random) -> None:
        """Turn the current page into a scanned image when the document is finished."""
        self.scans[self.index] = rng

    def _furniture(self) -> None:
        """Running header, footnotes and the ``- N -`` footer on every page."""
        for page in self.doc:
            shape = page.new_shape()
            i = page.number
            shape.draw_line((LEFT, 48.0), (RIGHT, 48.0))
            shape.finish(width=0.4, color=(0.3, 0.3, 0.3))
            put(shape, LEFT, 42.0, self.header, self.HEADER_SIZE)
            self.printed[i].insert(0, self.header)
            if self.notes[i]:
                top = self.FOOTER_Y - 16.0 - self.NOTE_LEADING * len(self.notes[i])
                shape.draw_line((LEFT, top - 9.0), (LEFT + 120.0, top - 9.0))
                shape.finish(width=0.4, color=(0, 0, 0))
                for k, (mark, text) in enumerate(self.notes[i]):
                    line = f"{mark} {text}"
                    put(shape, LEFT, top + k * self.NOTE_LEADING, line, self.NOTE_SIZE)
                    self.printed[i].append(line)
            put(shape, PAGE_W / 2, self.FOOTER_Y, self.footer(i), 9.0, "center")
            self.printed[i].append(self.footer(i))
            shape.commit()

    def page_info(self, rotations: dict[int, float]) -> list[dict[str, Any]]:
        """Each page's truth: what it holds, its header/footer/footnotes, and for a scanned page
        the lines its image shows (it has no text layer to read them from)."""
        info = []
        for i, kinds in enumerate(self.kinds):
            entry: dict[str, Any] = {
                "page": i,
                "kinds": sorted(kinds | ({"scanned"} if i in rotations else set())),
                "header": self.header,
                "footer": self.footer(i),
                "footnotes": [{"mark": m, "text": t} for m, t in self.notes[i]],
                "scanned": i in rotations,
            }
            if i in self.column_box:
                entry["columns"] = self.column_box[i]
            if i in rotations:
                entry |= {"rotation_deg": rotations[i], "text": self.printed[i]}
            info.append(entry)
        return info

    @staticmethod
    def footer(index: int) -> str:
        return f"- {index + 1} -"

    def finish(self, metadata: dict[str, str]) -> tuple[bytes, dict[int, float]]:
        """The PDF's bytes, and the rotation (degrees) of each page that was scanned."""
        self.flush()
        assert self.doc.page_count >= 1
        self._furniture()
        rotations = {i: scan_page(self.doc, i, rng) for i, rng in sorted(self.scans.items())}
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
        return data, rotations
