"""Give a config-built P0 an instruction model's habits before the recipe starts.

With `model.llm.pretrained` null, trains the tokenizer on the corpus, builds the LLM from
`model.llm.config` and fully fine-tunes it on generated Japanese instruction/response pairs in
the formats the benchmarks ask for (XML math traces, short answers, choice letters, JSON), so
that P0 follows a prompt. `base` loads the result as its LLM. With a pretrained LLM it records
that it was skipped and writes nothing else.
"""

from pathlib import Path

import typer

from finstage.config import parse, stage_params
from finstage.model.assemble import ModelConfig
from finstage.model.base import corpus_texts
from finstage.records import read_records
from finstage.warmup.config import WarmupConfig


def load_config(params: dict) -> tuple[ModelConfig, WarmupConfig, list[str]]:
    """The only place this stage reads params (tests call it with the params dvc.yaml declares)."""
    return (
        parse(ModelConfig, params["model"], "model"),
        parse(WarmupConfig, params["warmup"], "warmup"),
        list(params["distill"]["templates"]),
    )


def main(
    records: list[Path] = typer.Option(
        ..., help="Training record folders whose text the tokenizer is trained on."
    ),
    short_qa: Path = typer.Option(..., help="Text QA records whose short answers are practised."),
    page_qa: Path = typer.Option(
        ..., help="Page QA records, practised over the passage that answers them."
    ),
    out: Path = typer.Option(
        ..., help="Folder for the practised LLM and tokenizer (models/warmup)."
    ),
    data: Path = typer.Option(..., help="Folder for the warm-up pairs, as records (data/warmup)."),
    curves: Path = typer.Option(..., help="Folder for the loss curve (metrics/train/warmup)."),
    stage: str = typer.Option(
        None, envvar="DVC_STAGE", help="DVC stage whose declared params to read."
    ),
) -> None:
    from finstage.warmup.stage import run_warmup  # torch loads on a run, not for --help

    model_cfg, cfg, templates = load_config(stage_params(stage))
    card = run_warmup(
        model_cfg,
        cfg,
        templates,
        corpus_texts(records),
        read_records(short_qa),
        read_records(page_qa),
        out,
        data,
        curves,
    )
    typer.echo(
        card.get("skipped")
        or f"warm-up loss {card['loss']['first']:.3f} -> {card['loss']['last']:.3f}"
    )


if __name__ == "__main__":
    # as `typer.run(main)`, plus the module docstring as `--help`: what the stage does
    app = typer.Typer(add_completion=False)
    app.command(help=__doc__)(main)
    app()
