"""Render throughput: the render stage's code path against a bare PyMuPDF ``get_pixmap`` loop.

Paper scale renders tens of thousands of pages, so the stage should cost little more than
rasterising them. Both sides get the same pages of a generated corpus (`finstage.corpus.generate`
with ``--documents`` documents of 1 to ``--max-pages`` pages, fetched into a store) at the same
zoom, in the same process, alternately ``--repeats`` times:

- ``bare``: open each PDF, ``page.get_pixmap`` every page as RGB, keep nothing;
- ``stage``: `finstage.pages.render.render_store` with ``--workers`` worker processes (their start
  included), page limits, PNG encoding, the text layer, pipes and Parquet shards, progress off.

The ratio is the stage's pages/s over the bare loop's in the same repeat (bare seconds ÷ stage
seconds), median over repeats: pairing runs cancels most drift of load on a shared machine. A
second table splits one process's time per page into the stage's steps.

    python bench/render.py                          # 144 dpi, 96 documents, 1 and 2 workers
    python bench/render.py --repeats 5 --workers 1 --workers 2 --workers 4
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
import yaml

from finstage.config import parse
from finstage.pages.png import encode_rgb
from finstage.pages.render import RenderConfig, page_limit, page_text, render_store, zoom_for
from finstage.pagestore import Page, page_id, write_pages
from finstage.pdfstore import read_index

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Run:
    name: str  # "bare" or "stage"
    workers: int  # 1 for the bare loop (this process)
    pages: int
    seconds: list[float]  # one per repeat
    ratios: list[float]  # bare seconds / this run's seconds, per repeat

    @property
    def pages_per_s(self) -> float:
        return self.pages / statistics.median(self.seconds)

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)


def params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def make_store(root: Path, documents: int, max_pages: int) -> Path:
    """A fetched store of a generated corpus (no broken files: both sides render every file)."""
    from finstage.corpus.fetch import fetch  # imports pymupdf: see `bare_loop`
    from finstage.corpus.fetchconfig import FetchConfig
    from finstage.corpus.generate import CorpusConfig, generate_corpus

    raw = params()
    corpus = {**raw["corpus"], "documents": documents, "min_pages": 1, "max_pages": max_pages}
    corpus["scanned_pages"] = min(corpus["scanned_pages"], documents)
    cfg = parse(CorpusConfig, {**corpus, "corrupt": 0}, "corpus")
    generate_corpus(cfg, root / "corpus", progress=False)
    (root / "sources.yaml").write_text("version: 1\nsources:\n  - path: corpus/pdfs\n")
    fetch_cfg = parse(FetchConfig, raw["fetch"], "fetch")
    fetch(root / "sources.yaml", root / "store", fetch_cfg, base_dir=root, progress=False)
    return root / "store"


def stage_config(dpi: int) -> RenderConfig:
    """params.yaml's render section at ``dpi`` without a size cap."""
    return parse(RenderConfig, {**params()["render"], "dpi": dpi, "max_side": None}, "render")


def bare_loop(store: Path, dpi: int) -> int:
    """Rasterise every page of the store's valid PDFs and drop the pixels; returns the pages.

    PyMuPDF is imported here, not at the top: the stage's spawned workers re-run this script's
    imports, and the stage script itself does not import PyMuPDF (see
    `finstage.pages.workers.serve`), so a top-level import would slow the stage's side only."""
    import pymupdf

    matrix = pymupdf.Matrix(dpi / 72.0, dpi / 72.0)
    pages = 0
    for row in read_index(store):  # the documents the stage renders, their first pages_kept
        with pymupdf.open(stream=(store / row["path"]).read_bytes(), filetype="pdf") as doc:
            for page in doc.pages(0, row["pages_kept"]):
                page.get_pixmap(matrix=matrix, colorspace=pymupdf.csRGB, alpha=False)
                pages += 1
    return pages


def stage_pages(store: Path, out: Path, cfg: RenderConfig) -> int:
    """Run the render stage's code path; returns the pages it wrote."""
    return render_store(store, out, cfg, progress=False)["pages"]


def timed(action: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    pages = action()
    return time.perf_counter() - start, pages


def compare(store: Path, dpi: int, workers: list[int], repeats: int, out: Path) -> list[Run]:
    """The bare loop and the stage at each worker count, alternately, ``repeats`` times."""
    cfg = stage_config(dpi)
    bare_loop(store, dpi)  # warm the file cache (and this process's MuPDF) before timing
    bare: list[float] = []
    stage: dict[int, list[float]] = {n: [] for n in workers}
    pages = 0
    for _ in range(repeats):
        seconds, pages = timed(lambda: bare_loop(store, dpi))
        bare.append(seconds)
        for n in workers:
            seconds, done = timed(partial(stage_pages, store, out, replace(cfg, workers=n)))
            if done != pages:
                raise SystemExit(f"the stage rendered {done} pages, the bare loop {pages}")
            stage[n].append(seconds)
    runs = [Run("bare", 1, pages, bare, [1.0] * repeats)]
    for n in workers:
        ratios = [b / s for b, s in zip(bare, stage[n], strict=True)]
        runs.append(Run("stage", n, pages, stage[n], ratios))
    return runs


def breakdown(store: Path, dpi: int, out: Path) -> dict[str, float]:
    """Milliseconds per page of each step of the stage's code path, in this process."""
    import pymupdf

    cfg = stage_config(dpi)
    steps = dict.fromkeys(("page limits", "get_pixmap", "PNG encode", "text layer"), 0.0)
    records, pages = [], 0
    for row in read_index(store):
        with pymupdf.open(stream=(store / row["path"]).read_bytes(), filetype="pdf") as doc:
            for page in doc.pages(0, row["pages_kept"]):
                zoom = zoom_for(page.rect, cfg)
                t0 = time.perf_counter()
                page_limit(page, cfg)
                t1 = time.perf_counter()
                pix = page.get_pixmap(
                    matrix=pymupdf.Matrix(zoom, zoom), colorspace=pymupdf.csRGB, alpha=False
                )
                t2 = time.perf_counter()
                png = encode_rgb(
                    pix.samples_mv, pix.width, pix.height, pix.stride, cfg.png_compress_level
                )
                t3 = time.perf_counter()
                text = page_text(page, cfg.line_tolerance)
                t4 = time.perf_counter()
                for name, seconds in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                    steps[name] += seconds
                sha256, index = row["sha256"], page.number
                records.append(
                    Page(
                        page_id=page_id(sha256, index),
                        doc_sha256=sha256,
                        page_index=index,
                        width=pix.width,
                        height=pix.height,
                        png=png,
                        text=text,
                    )
                )
                pages += 1
    seconds, _ = timed(lambda: write_pages(out, records, shard_size=500))
    steps["Parquet shards"] = seconds
    return {name: 1000 * total / pages for name, total in steps.items()}


def table(runs: list[Run]) -> list[str]:
    lines = [
        "| run | workers | pages | s (median) | pages/s | ×bare |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        seconds = statistics.median(run.seconds)
        lines.append(
            f"| {run.name} | {run.workers} | {run.pages} | {seconds:.2f} | "
            f"{run.pages_per_s:.1f} | {run.ratio:.2f} |"
        )
    return lines


def breakdown_table(steps: dict[str, float]) -> list[str]:
    lines = ["| step (one process) | ms/page |", "|---|---:|"]
    lines += [f"| {name} | {ms:.2f} |" for name, ms in steps.items()]
    return lines


def main(
    documents: Annotated[int, typer.Option(help="Generated documents")] = 96,
    max_pages: Annotated[int, typer.Option(help="Pages per document: 1 to this")] = 12,
    dpi: Annotated[int, typer.Option(help="Render resolution (no max_side cap)")] = 144,
    workers: Annotated[list[int], typer.Option(help="Stage worker counts to run")] = [1, 2],  # noqa: B006
    repeats: Annotated[int, typer.Option(help="Alternating runs per side")] = 3,
) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp:
        store = make_store(Path(tmp), documents, max_pages)
        runs = compare(store, dpi, workers, repeats, Path(tmp) / "pages")
        steps = breakdown(store, dpi, Path(tmp) / "breakdown")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    typer.echo(f"{documents} documents, {runs[0].pages} pages at {dpi} dpi; load average {load}")
    typer.echo("\n".join(table(runs)))
    typer.echo("")
    typer.echo("\n".join(breakdown_table(steps)))


if __name__ == "__main__":
    typer.run(main)
