"""Render every stored PDF (its first pages_kept pages) to page images plus a reading-order text
layer (one visual line per line, so table rows stay whole; two-column pages column by column),
written as Parquet page shards; with render.tiles on, each page also gets a grid of
higher-resolution tiles. Pages with an empty or garbage text layer are flagged, near-duplicates
of another document's page dropped; the counts go to --metrics. Every later stage refers to
pages by id instead of touching PDFs again."""

import json
from pathlib import Path

import typer

from finstage.config import parse, stage_params
from finstage.pages.render import RenderConfig, render_store


def load_config(params: dict) -> RenderConfig:
    """The only place this stage reads params (tests call it with the params dvc.yaml declares)."""
    return parse(RenderConfig, params["render"], "render")


def main(
    store: Path = typer.Option(..., help="store folder written by the fetch stage"),
    out: Path = typer.Option(..., help="page shards folder: pages-*.parquet, render_report.json"),
    metrics_out: Path = typer.Option(
        None, "--metrics", help="JSON file for the page counts (a DVC metric)"
    ),
    stage: str = typer.Option(
        None, envvar="DVC_STAGE", help="DVC stage whose declared params to read"
    ),
) -> None:
    cfg = load_config(stage_params(stage))
    report = render_store(store, out, cfg)
    if metrics_out is not None:
        metrics_out.parent.mkdir(parents=True, exist_ok=True)
        counts = {k: v for k, v in report.items() if not isinstance(v, list)}
        metrics_out.write_text(json.dumps(counts, indent=2, ensure_ascii=False) + "\n")
    typer.echo(
        f"render: {report['pages']} pages from {report['documents']} documents, "
        f"{report['failed_pages']} page(s) and {report['failed_documents']} document(s) failed, "
        f"{report['near_duplicate_pages']} near-duplicate page(s) dropped, "
        f"{report['unusable_text_pages']} with an unusable text layer -> {out}"
    )


if __name__ == "__main__":
    # as `typer.run(main)`, plus the module docstring as `--help`: what the stage does
    app = typer.Typer(add_completion=False)
    app.command(help=__doc__)(main)
    app()
