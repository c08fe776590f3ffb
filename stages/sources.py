"""Download every url benchmark source in `evaluate.sources` into a DVC output.

Each url source must be pinned by sha256 and is fetched only from `evaluate.downloads`'
allowed hosts, within its size cap and deadlines (`finstage.benchmarks.download`). `decontam`
and every `evaluate` read these copies and depend on this folder, so they see the same bytes
and rerun when a pin changes. Path and hub sources are not copied: with the embedded default
(all local stand-ins) the folder holds only an empty manifest.
"""

from pathlib import Path

import typer

from finstage.benchmarks.download import DownloadConfig, download_sources
from finstage.benchmarks.transport import SourceSpec
from finstage.config import parse, stage_params


def load_config(params: dict) -> tuple[dict[str, SourceSpec], DownloadConfig]:
    """The only place this stage reads params (tests call it with the params dvc.yaml declares).

    Each source is parsed on its own, so this stage runs only the download code and is not
    rerun by an edit to a benchmark's reader (the registry checks the names elsewhere)."""
    evaluate = params["evaluate"]
    specs = {
        name: parse(SourceSpec, raw, f"evaluate.sources.{name}")
        for name, raw in evaluate["sources"].items()
    }
    return specs, parse(DownloadConfig, evaluate["downloads"], "evaluate.downloads")


def main(
    out: Path = typer.Option(
        ..., help="Output folder: <name>/<file> per url source and manifest.json."
    ),
    stage: str = typer.Option(
        None, envvar="DVC_STAGE", help="DVC stage whose declared params to read."
    ),
) -> None:
    specs, cfg = load_config(stage_params(stage))
    manifest = download_sources(specs, cfg, out)
    for name, entry in manifest.items():
        typer.echo(f"{name}: {entry['bytes']} bytes from {entry['url']} (sha256 verified)")
    typer.echo(f"{len(manifest)} url source(s) downloaded into {out}")


if __name__ == "__main__":
    # as `typer.run(main)`, plus the module docstring as `--help`: what the stage does
    app = typer.Typer(add_completion=False)
    app.command(help=__doc__)(main)
    app()
