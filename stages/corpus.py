"""Generate the embedded corpus: Japanese government-style budget, settlement and notice PDFs whose
every number is known (truth.jsonl), with charts, two-column pages and a few image-only scans,
plus a few deliberately broken files and corpus_report.json. It stands in for a ministry crawl
so the whole pipeline runs offline and OCR/QA can be scored against exact truth."""

from pathlib import Path

import typer

from finstage.config import parse, stage_params
from finstage.corpus.generate import CorpusConfig, generate_corpus


def load_config(params: dict) -> CorpusConfig:
    """The only place this stage reads params (tests call it with the params dvc.yaml declares)."""
    return parse(CorpusConfig, params["corpus"], "corpus")


def main(
    out: Path = typer.Option(
        ..., help="corpus folder: pdfs/, truth.jsonl, corrupt.jsonl, corpus_report.json"
    ),
    stage: str = typer.Option(
        None, envvar="DVC_STAGE", help="DVC stage whose declared params to read"
    ),
) -> None:
    cfg = load_config(stage_params(stage))
    summary = generate_corpus(cfg, out)
    typer.echo(
        f"corpus: {summary['documents']} documents, {summary['pages']} pages, "
        f"{summary['bytes_per_page']:.0f} bytes/page, pages by kind {summary['page_kinds']}, "
        f"{summary['corrupt']} corrupt file(s) -> {out}"
    )


if __name__ == "__main__":
    # as `typer.run(main)`, plus the module docstring as `--help`: what the stage does
    app = typer.Typer(add_completion=False)
    app.command(help=__doc__)(main)
    app()
