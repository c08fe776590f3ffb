"""Render every valid PDF of the store into page shards: an RGB PNG and the page's text layer.

Training and evaluation see a page as pixels plus the text a grounded teacher may quote. The text
must be in reading order with each visual line on one line, because a table row is only a row
when its label and numbers stay together: ``歳出合計 1,234,567 1,200,000 △34,567``. MuPDF's own
``get_text("text")`` does not give that — it emits text blocks, so a ruled table comes out one cell
per line. `page_text` therefore rebuilds lines from ``get_text("words")``: words whose vertical
centres lie within ``line_tolerance`` × word height of each other form one line, sorted left to
right and joined by single spaces; lines run top to bottom, except that a two-column region is
read left column first (`finstage.pages.columns`). (Limits: three or more columns, and vertical
縦書き text, are not supported.) Each page's text layer is checked (`finstage.pages.textlayer`):
an empty or garbage one is flagged in ``text_issue``; pages repeating another document's are
dropped and recorded (`finstage.pages.neardup`).

Images are rendered at ``dpi`` and, when ``max_side`` is set, at a smaller zoom so that the longer
side is at most ``max_side`` pixels (rasterised at that size directly, not resized afterwards),
and encoded straight from MuPDF's samples by `finstage.pages.png` (at zlib level 1, about a tenth
of the time PIL took at level 6).
That render is the page's global view; with ``tiles.enabled`` each page also gets a grid of
overlapping tiles rendered at a higher resolution (`finstage.pages.tiles`), stored beside it. The
report gives the views per page and the median body text height in each view
(`finstage.pages.legibility`).

A page or document that fails to render is skipped and recorded in ``<out>/render_report.json``;
it never stops the stage. Documents are rendered in ``workers`` worker processes
(`finstage.pages.workers`; PyMuPDF is not thread-safe); the output is identical whatever the number
of workers.

A PDF is untrusted input, and a few KB can cost hours: a doubly deflated image that inflates to
gigabytes, or forms drawing forms drawing forms. So every page has two caps, and a page over
either is skipped and recorded like any failure while the document goes on:

- ``max_image_pixels``: the pixels MuPDF would decode for the page's images (their declared
  ``Width`` x ``Height``, soft masks included), and the pixels of the rendered page itself, are each
  checked against it before anything is decoded;
- ``page_timeout_s``: a page whose rendering outlasts it has its worker process killed; a fresh
  worker goes on with the next page, until ``max_page_timeouts`` pages of the document were
  killed: then the rest of it is skipped (one record), so a 2,000-page file of endless pages costs
  minutes, not 2,000 timeouts.

The index is untrusted too: a document is read only from its content address in the store
(``objects/<sha[:2]>/<sha>.pdf``, `finstage.pdfstore.relative_path`), an index row naming any other
path, or a ``sha256`` that is not one, is refused, and so is a file whose bytes do not hash to it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # loaded by the functions that use it: importing this module stays light
    import pymupdf

from finstage.config import require
from finstage.pages.columns import Word, reading_order
from finstage.pages.legibility import summarise
from finstage.pages.textlayer import text_issue
from finstage.pages.tiles import TileConfig, render_tiles, view_heights
from finstage.pagestore import Page, page_id, write_pages
from finstage.pdfstore import read_index, relative_path

SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass
class RenderConfig:
    """``render:`` in params.yaml."""

    dpi: int
    max_side: int | None  # cap on the longer side in pixels; null for no cap
    line_tolerance: float  # same line if centres differ by <= this x word height
    png_compress_level: int  # zlib level of the page PNGs (`finstage.pages.png`)
    workers: int  # processes rendering documents in parallel
    shard_size: int  # pages per Parquet shard
    max_image_pixels: int  # cap on a page's decoded image pixels, and on its rendered pixels
    page_timeout_s: float  # a page still rendering after this many seconds is killed and skipped
    max_page_timeouts: int  # a document with this many killed pages is abandoned (the rest skipped)
    near_duplicate_jaccard: float  # a page this similar to another document's page is dropped
    near_duplicate_bits: int  # pages without usable text: at most this many of 256 hash bits differ
    tiles: TileConfig

    def check(self, where: str) -> None:
        require(
            10 <= self.dpi <= 600, f"{where}.dpi", f"must be between 10 and 600, got {self.dpi}"
        )
        require(
            self.max_side is None or 32 <= self.max_side <= 10_000,
            f"{where}.max_side",
            f"must be null or between 32 and 10000 pixels, got {self.max_side}",
        )
        require(
            0 < self.line_tolerance <= 2,
            f"{where}.line_tolerance",
            f"must be in (0, 2] (a fraction of the word height), got {self.line_tolerance}",
        )
        require(
            0 <= self.png_compress_level <= 9,
            f"{where}.png_compress_level",
            f"must be between 0 and 9, got {self.png_compress_level}",
        )
        require(
            1 <= self.workers <= 64,
            f"{where}.workers",
            f"must be between 1 and 64, got {self.workers}",
        )
        require(
            self.shard_size >= 1,
            f"{where}.shard_size",
            f"must be at least 1, got {self.shard_size}",
        )
        require(
            self.max_image_pixels >= 1,
            f"{where}.max_image_pixels",
            f"must be at least 1, got {self.max_image_pixels}",
        )
        require(
            0 < self.page_timeout_s <= 86_400,
            f"{where}.page_timeout_s",
            f"must be in (0, 86400] seconds, got {self.page_timeout_s}",
        )
        require(
            self.max_page_timeouts >= 1,
            f"{where}.max_page_timeouts",
            f"must be at least 1, got {self.max_page_timeouts}",
        )
        require(
            0.5 <= self.near_duplicate_jaccard <= 1,
            f"{where}.near_duplicate_jaccard",
            f"must be in [0.5, 1] (1 drops only pages with the same shingles), "
            f"got {self.near_duplicate_jaccard}",
        )
        require(
            0 <= self.near_duplicate_bits <= 64,
            f"{where}.near_duplicate_bits",
            f"must be between 0 and 64 (of 256), got {self.near_duplicate_bits}",
        )
        require(
            self.tiles.side**2 <= self.max_image_pixels,
            f"{where}.tiles.side",
            f"{self.tiles.side} px squared is over {where}.max_image_pixels "
            f"({self.max_image_pixels}); lower the side or raise the cap",
        )


def group_lines(words: list[tuple], tolerance: float = 0.5) -> list[str]:
    """Visual lines from PyMuPDF words ``(x0, y0, x1, y1, text, ...)``, top to bottom, a
    two-column region's left column before its right (`finstage.pages.columns`)."""
    items = sorted(
        (Word(w[0], w[2], (w[1] + w[3]) / 2, max(w[3] - w[1], 1e-3), w[4]) for w in words
         if w[4].strip()),
        key=lambda w: (w.y, w.height, w.x0, w.text),
    )  # fmt: skip
    lines: list[list[Word]] = []
    centre = height = 0.0
    for word in items:
        if lines and abs(word.y - centre) <= tolerance * min(word.height, height):
            line = lines[-1]
            line.append(word)
            centre = sum(w.y for w in line) / len(line)
            height = min(height, word.height)
        else:
            lines.append([word])
            centre, height = word.y, word.height
    ordered = reading_order([sorted(line, key=lambda w: w.x0) for line in lines])
    return [" ".join(w.text for w in line) for line in ordered]


def page_text(page: pymupdf.Page, tolerance: float = 0.5) -> str:
    """The page's text layer, one visual line per line, words joined by single spaces."""
    return "\n".join(group_lines(page.get_text("words", sort=False), tolerance))


def zoom_for(rect: pymupdf.Rect, cfg: RenderConfig) -> float:
    zoom = cfg.dpi / 72.0
    if cfg.max_side is not None:
        zoom = min(zoom, cfg.max_side / max(rect.width, rect.height, 1e-3))
    return zoom


def render_page(page: pymupdf.Page, cfg: RenderConfig) -> tuple[bytes, int, int]:
    """(PNG bytes, width, height) of the page as RGB; the PNG is encoded from MuPDF's samples
    without a copy (`finstage.pages.png`)."""
    import pymupdf

    from finstage.pages.png import encode_rgb

    zoom = zoom_for(page.rect, cfg)
    for _ in range(3):
        pix = page.get_pixmap(
            matrix=pymupdf.Matrix(zoom, zoom), colorspace=pymupdf.csRGB, alpha=False
        )
        if cfg.max_side is None or max(pix.width, pix.height) <= cfg.max_side:
            break
        zoom *= (cfg.max_side - 0.5) / max(pix.width, pix.height)  # MuPDF rounded the size up
    png = encode_rgb(pix.samples_mv, pix.width, pix.height, pix.stride, cfg.png_compress_level)
    return png, pix.width, pix.height


def _declared(doc: pymupdf.Document, xref: int, key: str) -> int:
    """An image dictionary's integer entry (``Width``, ``Height``), following one reference."""
    kind, value = doc.xref_get_key(xref, key)
    if kind == "xref":
        kind, value = "int", doc.xref_object(int(value.split()[0]), compressed=True)
    try:
        return max(int(value), 0) if kind == "int" else 0
    except ValueError:
        return 0


def page_limit(page: pymupdf.Page, cfg: RenderConfig) -> str | None:
    """Why rendering ``page`` would cost too much, or None; decided from the page's dictionaries
    alone, before MuPDF decodes a single image stream."""
    cap = cfg.max_image_pixels
    over = f"(render.max_image_pixels: {cap})"
    zoom = zoom_for(page.rect, cfg)
    rendered = math.ceil(page.rect.width * zoom) * math.ceil(page.rect.height * zoom)
    if rendered > cap:
        return f"image too large: {rendered} pixels in the rendered page {over}"
    doc, seen, pixels = page.parent, set(), 0
    for xref, smask, width, height, *_ in page.get_images(full=True):
        if xref not in seen:
            seen.add(xref)
            pixels += max(width, 0) * max(height, 0)
        if smask and smask not in seen:  # a soft mask is decoded at its own size
            seen.add(smask)
            pixels += _declared(doc, smask, "Width") * _declared(doc, smask, "Height")
    if pixels > cap:
        return f"image too large: {pixels} pixels in the page's images {over}"
    return None


def failure_record(sha256: str | None, index: int | None, reason: str) -> dict[str, Any]:
    """A line of the report: the document, the page (None: the whole document) and why."""
    return {"doc_sha256": sha256, "page_index": index, "reason": reason}


# What rendering a document reports, one event at a time, so that the process supervising a
# worker knows which page it is on: ("open", page_count) once, then ("page", index, page, None)
# or ("page", index, None, failure) per page; or a single ("fail", failure) for the whole file.
Event = tuple[Any, ...]


def iter_document(
    path: Path, sha256: str, cfg: RenderConfig, start: int = 0, limit: int | None = None
) -> Iterator[Event]:
    """Render pages ``start``, ``start + 1``, ... (up to ``limit`` pages in all: fetch caps long
    documents) of the PDF at ``path``, whose content must hash to ``sha256``; every failure
    becomes an event, nothing raises."""
    import pymupdf

    try:  # from bytes, so that messages (and the report) carry no machine-specific path
        data = Path(path).read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:
            reason = "refused: content does not match its sha256"
            yield ("fail", failure_record(sha256, None, reason))
            return
        doc = pymupdf.open(stream=data, filetype="pdf")
    except Exception as err:  # noqa: BLE001 - recorded, not fatal
        yield ("fail", failure_record(sha256, None, f"cannot open: {type(err).__name__}: {err}"))
        return
    with doc:
        try:  # a corrupt page tree raises here, on a file that opened
            count = doc.page_count if limit is None else min(doc.page_count, limit)
        except Exception as err:  # noqa: BLE001
            yield ("fail", failure_record(sha256, None, f"page tree: {type(err).__name__}: {err}"))
            return
        if count == 0:
            yield ("fail", failure_record(sha256, None, "cannot open: no pages"))
            return
        yield ("open", count)
        for index in range(start, count):
            try:
                page = doc.load_page(index)
                reason = page_limit(page, cfg)
                if reason is not None:
                    yield ("page", index, None, failure_record(sha256, index, reason))
                    continue
                png, width, height = render_page(page, cfg)
                text = page_text(page, cfg.line_tolerance)
                tiles = render_tiles(page, cfg.tiles, cfg.png_compress_level)
                measure = view_heights(page, cfg.tiles, width / page.rect.width)
            except Exception as err:  # noqa: BLE001
                reason = f"{type(err).__name__}: {err}"
                yield ("page", index, None, failure_record(sha256, index, reason))
                continue
            page_record = Page(
                page_id=page_id(sha256, index),
                doc_sha256=sha256,
                page_index=index,
                width=width,
                height=height,
                png=png,
                text=text,
                text_issue=text_issue(text),
            )
            if cfg.tiles.enabled:
                page_record["tiles"] = tiles
                page_record["tile_rows"] = cfg.tiles.rows
                page_record["tile_cols"] = cfg.tiles.cols
            page_record["legibility"] = measure  # for the report; not stored in the shards
            yield ("page", index, page_record, None)


def render_document(
    path: Path, sha256: str, cfg: RenderConfig, limit: int | None = None
) -> tuple[list[Page], list[dict[str, Any]]]:
    """All renderable pages of one PDF, and a failure record for each page (or file) that is not,
    in this process: no time limit (the stage goes through `finstage.pages.workers` instead)."""
    import pymupdf

    display = pymupdf.TOOLS.mupdf_display_errors()
    pymupdf.TOOLS.mupdf_display_errors(False)  # failures are recorded in the report instead
    pages: list[Page] = []
    failures: list[dict[str, Any]] = []
    try:
        for event in iter_document(Path(path), sha256, cfg, limit=limit):
            if event[0] == "fail":
                failures.append(event[1])
            elif event[0] == "page":
                _, _, page, failure = event
                if page is not None:
                    pages.append(page)
                else:
                    failures.append(failure)
        return pages, failures
    finally:
        pymupdf.TOOLS.mupdf_warnings(reset=True)
        pymupdf.TOOLS.mupdf_display_errors(display)


def object_path(store: Path, row: dict[str, Any]) -> tuple[Path | None, str | None]:
    """(where the row's document lies in ``store``, None), or (None, why it is refused).

    The path is derived from the content address, never taken from the index: a row naming a file
    elsewhere (``../``, an absolute path, another object) is refused rather than followed."""
    sha256, path = row.get("sha256"), row.get("path")
    if not (isinstance(sha256, str) and SHA256.fullmatch(sha256)):
        return None, f"refused: sha256 {sha256!r} is not 64 lowercase hex digits"
    expected = relative_path(sha256, valid=True)
    if path != expected:
        return None, f"refused: index path {path!r} is not the content address {expected}"
    full = Path(store) / expected
    if full.exists() and not full.is_file():  # a device or a pipe would never end
        return None, f"refused: {expected} is not a regular file"
    return full, None


def render_store(
    store: Path, out: Path, cfg: RenderConfig, progress: bool = True
) -> dict[str, Any]:
    """Render every usable document of the PDF store into page shards under ``out``: pages whose
    text layer is unusable are kept with their ``text_issue``; near-duplicates of another
    document's page are dropped and recorded."""
    from tqdm import tqdm

    from finstage.pages.neardup import NearDuplicates
    from finstage.pages.workers import render_documents

    store, out = Path(store), Path(out)
    rows = read_index(store)
    located = [object_path(store, row) for row in rows]
    tasks = [
        (str(path), row["sha256"], row.get("pages_kept"))
        for row, (path, _) in zip(rows, located, strict=True)
        if path
    ]
    if out.exists():
        for stale in out.glob("pages-*.parquet"):
            stale.unlink()
    out.mkdir(parents=True, exist_ok=True)

    failures: list[dict[str, Any]] = []
    duplicates: list[dict[str, Any]] = []
    issues: list[dict[str, Any]] = []
    seen = NearDuplicates(cfg.near_duplicate_jaccard, cfg.near_duplicate_bits)
    counts = {"documents": len(rows), "pages": 0}
    measures: list[dict[str, float]] = []

    def results() -> Iterator[tuple[list[Page], list[dict[str, Any]]]]:
        rendered = render_documents(tasks, cfg)
        try:
            # in index order, a refused row's failure in its place
            for row, (path, refused) in zip(rows, located, strict=True):
                if path is None:
                    yield [], [failure_record(row.get("sha256"), None, str(refused))]
                else:
                    yield next(rendered)
        finally:
            rendered.close()  # stops the worker processes

    def pages() -> Iterator[Page]:
        bar = tqdm(results(), total=len(rows), desc="render", unit="doc", disable=not progress)
        for doc_pages, doc_failures in bar:
            failures.extend(doc_failures)
            for page in doc_pages:
                issue = page["text_issue"]
                garbage = issue is not None and issue.startswith("garbage")
                text = page["text"] if page["text"].strip() and not garbage else None
                repeat = seen.check(page["page_id"], page["doc_sha256"], text, page["png"])
                if repeat is not None:
                    duplicates.append({"page_id": page["page_id"], **repeat})
                    continue
                if issue:
                    issues.append({"page_id": page["page_id"], "text_issue": issue})
                if page["legibility"] is not None:
                    measures.append(page["legibility"])
                counts["pages"] += 1
                yield page

    written = write_pages(out, pages(), shard_size=cfg.shard_size, tiled=cfg.tiles.enabled)
    assert written == counts["pages"]
    report = {
        "documents": counts["documents"],
        "pages": counts["pages"],
        "failed_pages": sum(1 for f in failures if f["page_index"] is not None),
        "failed_documents": sum(1 for f in failures if f["page_index"] is None),
        "near_duplicate_pages": len(duplicates),
        "unusable_text_pages": len(issues),
        "text_issues": dict(sorted(Counter(i["text_issue"].split(":")[0] for i in issues).items())),
        "views": summarise(measures, cfg.tiles),
        "failures": failures,
        "near_duplicates": duplicates,
        "unusable_text": issues,
    }
    (out / "render_report.json").write_text(
        json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return report
