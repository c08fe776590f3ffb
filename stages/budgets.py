"""Check every generation budget against the answers the training stages teach.

Counts, with P0's tokenizer, the tokens of every assistant turn in the mixtures and writes, per
budget (`evaluate.gsm8k_max_gen_toks`, `edinet_max_gen_toks`, `visual_max_new_tokens`), what it
must reach: the `evaluate.budget_percentile` of the answers it is meant to reproduce, and at
least the shortest answer its scorer parses. Fails, one line per budget, when one cannot reach
them; every evaluation depends on this report, so none runs with a budget that cuts answers off.
"""

import json
from pathlib import Path

import typer

from finstage.config import parse, stage_params
from finstage.evaluate.budgets import BudgetConfig, answer_lengths, budget_report, problems
from finstage.records import read_records


def load_config(params: dict) -> BudgetConfig:
    """The only place this stage reads params (tests call it with the params dvc.yaml declares)."""
    evaluate = params["evaluate"]
    return parse(BudgetConfig, {k: evaluate[k] for k in BudgetConfig.__annotations__}, "evaluate")


def main(
    tokenizer: Path = typer.Option(..., help="Checkpoint whose tokenizer counts (models/p0)."),
    mix: Path = typer.Option(..., help="Folder of the training mixtures (data/mix)."),
    out: Path = typer.Option(..., help="JSON report to write: per budget, needed vs given."),
    stage: str = typer.Option(
        None, envvar="DVC_STAGE", help="DVC stage whose declared params to read."
    ),
) -> None:
    from transformers import AutoTokenizer  # loads on a run, not for --help

    cfg = load_config(stage_params(stage))
    tok = AutoTokenizer.from_pretrained(tokenizer)

    def count(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"])

    mixtures = sorted(p for p in mix.iterdir() if p.is_dir())
    records = (record for folder in mixtures for record in read_records(folder))
    report = budget_report(cfg, answer_lengths(count, records), count)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    for name, entry in report["budgets"].items():
        typer.echo(f"{name}: {entry['budget']} tokens, needs {entry['needed']}")
    lines = problems(report)
    if lines:
        typer.echo("\n".join(f"budget too short: {line}" for line in lines), err=True)
        raise typer.Exit(2)


if __name__ == "__main__":
    # as `typer.run(main)`, plus the module docstring as `--help`: what the stage does
    app = typer.Typer(add_completion=False)
    app.command(help=__doc__)(main)
    app()
