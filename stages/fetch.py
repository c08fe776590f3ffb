"""Bring every source listed in the manifest (local files, directories, file:// and allowed
http(s) URLs, URL lists, and the PDFs a seed page's crawl finds) into a content-addressed store.
Every file ends as an index row with its outcome and reason: stored, stored-repaired,
stored-capped (first fetch.max_pages pages kept), duplicate, quarantined (a record, never a
copy: the store is pushed to DVC remotes), skipped (links and special files, never read) or
failed; the counts go to --metrics. Reruns reuse fetch.cache_dir: conditional requests, and
unchanged local files are neither read nor copied again."""

import json
from pathlib import Path

import typer

from finstage.config import parse, stage_params
from finstage.corpus.fetchconfig import FetchConfig


def load_config(params: dict) -> FetchConfig:
    """The only place this stage reads params (tests call it with the params dvc.yaml declares)."""
    return parse(FetchConfig, params["fetch"], "fetch")


def main(
    manifest: Path = typer.Option(
        ..., help="source manifest YAML (format: finstage.corpus.manifest)"
    ),
    out: Path = typer.Option(..., help="store folder: objects/, quarantine/, index.jsonl"),
    metrics_out: Path = typer.Option(
        None, "--metrics", help="JSON file for the outcome counts (a DVC metric)"
    ),
    stage: str = typer.Option(
        None, envvar="DVC_STAGE", help="DVC stage whose declared params to read"
    ),
) -> None:
    from finstage.corpus.fetch import fetch, format_report, metrics  # pymupdf: on a run only

    cfg = load_config(stage_params(stage))
    report = fetch(manifest, out, cfg)
    if metrics_out is not None:
        metrics_out.parent.mkdir(parents=True, exist_ok=True)
        metrics_out.write_text(json.dumps(metrics(report), indent=2, ensure_ascii=False) + "\n")
    typer.echo(format_report(report, out))


if __name__ == "__main__":
    # as `typer.run(main)`, plus the module docstring as `--help`: what the stage does
    app = typer.Typer(add_completion=False)
    app.command(help=__doc__)(main)
    app()
