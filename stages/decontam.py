"""Fail the run when an evaluation item overlaps a training mixture.

Every mixture and the warm-up's pairs are indexed by character n-grams (Japanese has no word
spaces) and every item of every evaluation set is checked against each index: the registered
text benchmarks, and the held-out page records by their gold answers. An item sharing more than
`decontam.max_share` of its n-grams with a mixture fails the stage, naming mixture, set and
item; evaluation stages depend on this report, so no score is computed on contaminated data.
"""

import json
from pathlib import Path

import typer

from finstage.benchmarks.registry import Sources
from finstage.config import parse, stage_params
from finstage.mix.decontam import DecontamConfig, decontaminate


def load_config(params: dict) -> tuple[DecontamConfig, Sources]:
    """The only place this stage reads params (tests call it with the params dvc.yaml declares)."""
    return (
        parse(DecontamConfig, params["decontam"], "decontam"),
        parse(Sources, params["evaluate"]["sources"], "evaluate.sources"),
    )


def main(
    mix: Path = typer.Option(..., help="Folder of training mixtures (one subfolder each)."),
    warmup: Path = typer.Option(..., help="The warm-up's pairs (empty when it was skipped)."),
    visual: Path = typer.Option(..., help="Held-out visual records (one subfolder per task)."),
    report: Path = typer.Option(..., help="JSON report to write (also on failure)."),
    stage: str = typer.Option(
        None, envvar="DVC_STAGE", help="DVC stage whose declared params to read."
    ),
) -> None:
    cfg, sources = load_config(stage_params(stage))
    result = decontaminate(cfg, mix, warmup, visual, sources)
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n")
    typer.echo(result.summary())
    if not result.ok:
        raise typer.Exit(1)


if __name__ == "__main__":
    # as `typer.run(main)`, plus the module docstring as `--help`: what the stage does
    app = typer.Typer(add_completion=False)
    app.command(help=__doc__)(main)
    app()
