"""Assemble P0, the untouched baseline every phase is measured against.

Builds (or loads) the vision tower and the LLM, adds a freshly initialised 2-layer GELU projector
and, at the embedded scale, trains a byte-level BPE tokenizer on the corpus. The saved chat
template prints `model.chat_date` wherever it would print today's date, so prompts never drift.
"""

from pathlib import Path

import typer

from finstage.config import parse, stage_params
from finstage.model.assemble import ModelConfig


def load_config(params: dict) -> ModelConfig:
    """The only place this stage reads params (tests call it with the params dvc.yaml declares)."""
    return parse(ModelConfig, params["model"], "model")


def main(
    records: list[Path] = typer.Option(
        ..., help="Training record folders whose text the tokenizer is trained on."
    ),
    warmup: Path = typer.Option(
        ..., help="The warmup stage's folder: the practised LLM and tokenizer (models/warmup)."
    ),
    out: Path = typer.Option(..., help="Checkpoint folder to write (models/p0)."),
    stage: str = typer.Option(
        None, envvar="DVC_STAGE", help="DVC stage whose declared params to read."
    ),
) -> None:
    from finstage.model.base import build_base  # torch loads on a run, not for --help

    cfg = load_config(stage_params(stage))
    card = build_base(cfg, records, warmup, out)
    typer.echo(f"P0: {card['parameters']} tokenizer={card['tokenizer']}")


if __name__ == "__main__":
    # as `typer.run(main)`, plus the module docstring as `--help`: what the stage does
    app = typer.Typer(add_completion=False)
    app.command(help=__doc__)(main)
    app()
