"""Turn rendered pages into grounded training and held-out evaluation records (OCR, captions,
2-turn VQA, visual and text finance QA). A teacher reads each page, every record is re-checked
against the page text, and whole documents are held out by a seeded hash so that no page of an
evaluation document is ever trained on: `data/synth/train/<task>/` feeds the mixtures,
`data/synth/eval/<task>/` feeds the visual evaluation."""

from pathlib import Path

import typer

from finstage.config import parse, stage_params
from finstage.pagestore import PageStore
from finstage.synth.teacher import SynthConfig, make_teacher, synthesize


def load_config(params: dict) -> SynthConfig:
    """The only place this stage reads params (tests call it with the params dvc.yaml declares)."""
    return parse(SynthConfig, params["synth"], "synth")


def main(
    pages: Path = typer.Option(..., help="Page store folder (Parquet shards from `render`)."),
    out: Path = typer.Option(
        ..., help="Output folder: writes train/<task>/, eval/<task>/, stats.json."
    ),
    stage: str = typer.Option(
        None, envvar="DVC_STAGE", help="DVC stage whose declared params to read."
    ),
) -> None:
    cfg = load_config(stage_params(stage))
    result = synthesize(PageStore(pages), make_teacher(cfg), cfg, out)
    train, held = len(result.train_docs), len(result.eval_docs)
    typer.echo(f"docs: {train} train, {held} held out; pages {result.pages}")
    for task in cfg.tasks:
        n_train, n_eval = result.counts["train"][task], result.counts["eval"][task]
        typer.echo(
            f"{task:>13}: train {n_train:5d}  eval {n_eval:5d}  rejected {result.rejected[task]}"
        )


if __name__ == "__main__":
    # as `typer.run(main)`, plus the module docstring as `--help`: what the stage does
    app = typer.Typer(add_completion=False)
    app.command(help=__doc__)(main)
    app()
