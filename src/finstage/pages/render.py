"""Render every valid PDF of the store into page shards: an RGB PNG and the page's text layer.

Training and evaluation see a page as pixels plus the text a grounded teacher may quote. The text
must be in reading order with each visual line on one line, because a table row is only a row
when its label and numbers stay together: ``歳出合計 1,234,567 1,200,000 △34,567``. MuPDF's own
``get_text("text")`` does not give that — it emits text blocks, so a ruled table comes out one cell
per line. `page_text` therefore rebuilds lines from ``get_text("words")``: words whose vertical
centres lie within ``line_tolerance`` × word height of each other form one line, sorted left to
right and joined by single spaces; lines run top to bottom. (Limits: side-by-side columns merge
into one line, and vertical 縦書き text is not supported.)

Images are rendered at ``dpi`` and, when ``max_side`` is set, at a smaller zoom so that the longer
side is at most ``max_side`` pixels (rasterised at that size directly, not resized afterwards).

A page or document that fails to render is skipped and recorded in ``<out>/render_report.json``;
it never stops the stage. With ``workers`` > 1 documents are rendered in parallel processes
(PyMuPDF is not thread-safe); the output is identical whatever the number of workers.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymupdf
from PIL import Image

from finstage.config import require
from finstage.pagestore import Page, page_id, write_pages
from finstage.pdfstore import read_index


@dataclass
class RenderConfig:
    """``render:`` in params.yaml."""

    dpi: int
    max_side: int | None  # cap on the longer side in pixels; null for no cap
    line_tolerance: float  # same line if centres differ by <= this x word height
    png_compress_level: int
    workers: int  # processes rendering documents in parallel
    shard_size: int  # pages per Parquet shard

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


def group_lines(words: list[tuple], tolerance: float = 0.5) -> list[str]:
    """Visual lines from PyMuPDF words ``(x0, y0, x1, y1, text, ...)``, top to bottom."""
    items = sorted(
        ((w[1] + w[3]) / 2, max(w[3] - w[1], 1e-3), w[0], w[4]) for w in words if w[4].strip()
    )
    lines: list[list[tuple]] = []
    centre = height = 0.0
    for item in items:
        yc, h = item[0], item[1]
        if lines and abs(yc - centre) <= tolerance * min(h, height):
            line = lines[-1]
            line.append(item)
            centre = sum(i[0] for i in line) / len(line)
            height = min(height, h)
        else:
            lines.append([item])
            centre, height = yc, h
    return [" ".join(i[3] for i in sorted(line, key=lambda i: i[2])) for line in lines]


def page_text(page: pymupdf.Page, tolerance: float = 0.5) -> str:
    """The page's text layer, one visual line per line, words joined by single spaces."""
    return "\n".join(group_lines(page.get_text("words", sort=False), tolerance))


def zoom_for(rect: pymupdf.Rect, cfg: RenderConfig) -> float:
    zoom = cfg.dpi / 72.0
    if cfg.max_side is not None:
        zoom = min(zoom, cfg.max_side / max(rect.width, rect.height, 1e-3))
    return zoom


def render_page(page: pymupdf.Page, cfg: RenderConfig) -> tuple[bytes, int, int]:
    """(PNG bytes, width, height) of the page as RGB."""
    zoom = zoom_for(page.rect, cfg)
    for _ in range(3):
        pix = page.get_pixmap(
            matrix=pymupdf.Matrix(zoom, zoom), colorspace=pymupdf.csRGB, alpha=False
        )
        if cfg.max_side is None or max(pix.width, pix.height) <= cfg.max_side:
            break
        zoom *= (cfg.max_side - 0.5) / max(pix.width, pix.height)  # MuPDF rounded the size up
    image = Image.frombytes("RGB", (pix.width, pix.height), pix.samples)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=cfg.png_compress_level)
    return buffer.getvalue(), pix.width, pix.height


def render_document(
    path: Path, sha256: str, cfg: RenderConfig
) -> tuple[list[Page], list[dict[str, Any]]]:
    """All renderable pages of one PDF, and a failure record for each page (or file) that is not."""
    display = pymupdf.TOOLS.mupdf_display_errors()
    pymupdf.TOOLS.mupdf_display_errors(False)  # failures are recorded in the report instead
    try:
        return _render_document(Path(path), sha256, cfg)
    finally:
        pymupdf.TOOLS.mupdf_warnings(reset=True)
        pymupdf.TOOLS.mupdf_display_errors(display)


def _failure(sha256: str, index: int | None, reason: str) -> dict[str, Any]:
    return {"doc_sha256": sha256, "page_index": index, "reason": reason}


def _render_document(
    path: Path, sha256: str, cfg: RenderConfig
) -> tuple[list[Page], list[dict[str, Any]]]:
    pages: list[Page] = []
    failures: list[dict[str, Any]] = []
    try:  # from bytes, so that messages (and the report) carry no machine-specific path
        doc = pymupdf.open(stream=path.read_bytes(), filetype="pdf")
    except Exception as err:  # noqa: BLE001 - recorded, not fatal
        return [], [_failure(sha256, None, f"cannot open: {type(err).__name__}: {err}")]
    with doc:
        if doc.page_count == 0:
            return [], [_failure(sha256, None, "cannot open: no pages")]
        for index in range(doc.page_count):
            try:
                page = doc.load_page(index)
                png, width, height = render_page(page, cfg)
                text = page_text(page, cfg.line_tolerance)
            except Exception as err:  # noqa: BLE001
                failures.append(_failure(sha256, index, f"{type(err).__name__}: {err}"))
                continue
            pages.append(
                Page(
                    page_id=page_id(sha256, index),
                    doc_sha256=sha256,
                    page_index=index,
                    width=width,
                    height=height,
                    png=png,
                    text=text,
                )
            )
    return pages, failures


def _render_task(task: tuple[str, str, RenderConfig]) -> tuple[list[Page], list[dict[str, Any]]]:
    path, sha256, cfg = task
    return render_document(Path(path), sha256, cfg)


def render_store(
    store: Path, out: Path, cfg: RenderConfig, progress: bool = True
) -> dict[str, Any]:
    """Render every ``ok`` document of the PDF store into page shards under ``out``."""
    from tqdm import tqdm

    store, out = Path(store), Path(out)
    rows = read_index(store, status="ok")
    tasks = [(str(store / row["path"]), row["sha256"], cfg) for row in rows]
    if out.exists():
        for stale in out.glob("pages-*.parquet"):
            stale.unlink()
    out.mkdir(parents=True, exist_ok=True)

    failures: list[dict[str, Any]] = []
    counts = {"documents": len(tasks), "pages": 0}

    def results() -> Iterator[tuple[list[Page], list[dict[str, Any]]]]:
        if cfg.workers > 1 and len(tasks) > 1:
            import multiprocessing

            context = multiprocessing.get_context("spawn")
            with context.Pool(min(cfg.workers, len(tasks))) as pool:
                yield from pool.imap(_render_task, tasks, chunksize=1)
        else:
            yield from map(_render_task, tasks)

    def pages() -> Iterator[Page]:
        bar = tqdm(results(), total=len(tasks), desc="render", unit="doc", disable=not progress)
        for doc_pages, doc_failures in bar:
            failures.extend(doc_failures)
            counts["pages"] += len(doc_pages)
            yield from doc_pages

    written = write_pages(out, pages(), shard_size=cfg.shard_size)
    assert written == counts["pages"]
    report = {
        "documents": counts["documents"],
        "pages": counts["pages"],
        "failed_pages": sum(1 for f in failures if f["page_index"] is not None),
        "failed_documents": sum(1 for f in failures if f["page_index"] is None),
        "failures": failures,
    }
    (out / "render_report.json").write_text(
        json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return report
