"""Score one checkpoint on every benchmark with the same protocol as all the others.

Text benchmarks (GSM8K, the five Japanese financial harness tasks, EDINET-Bench) are read from
`evaluate.sources` in their raw public schemas and run through lm-eval; held-out page images
through our visual evaluator. Metrics carry 95% bootstrap intervals, parse coverage, how many
prompts were cut to fit the window, and the prompt protocol; every score can be recomputed from
the predictions file (`finstage.evaluate.rescore`).
"""

from pathlib import Path

import typer

from finstage.config import parse, stage_params
from finstage.evaluate.run import (
    PROTOCOL,
    EvalConfig,
    evaluate_checkpoint,
    load_text_tasks,
    write_metrics,
)


def load_config(params: dict) -> EvalConfig:
    """The only place this stage reads params (tests call it with the params dvc.yaml declares)."""
    return parse(EvalConfig, params["evaluate"], "evaluate")


def main(
    checkpoint: Path = typer.Option(..., help="Checkpoint folder (models/<name>)."),
    visual: Path = typer.Option(
        ..., help="Held-out visual records (one subfolder per visual check)."
    ),
    pages: Path = typer.Option(..., help="Page store."),
    metrics: Path = typer.Option(..., help="Metrics JSON to write."),
    predictions: Path = typer.Option(..., help="Predictions JSONL to write."),
    stage: str = typer.Option(
        None, envvar="DVC_STAGE", help="DVC stage whose declared params to read."
    ),
) -> None:
    cfg = load_config(stage_params(stage))
    tasks = load_text_tasks(cfg)  # every source is read before the model loads
    scores, preds = evaluate_checkpoint(checkpoint, tasks, visual, pages, cfg)
    write_metrics(scores, preds, metrics, predictions)
    blocks = sorted((name, block) for name, block in scores.items() if name != PROTOCOL)
    primary = {name: next(iter(block.items())) for name, block in blocks}
    typer.echo(f"{checkpoint.name}: " + ", ".join(f"{b}.{k}={v}" for b, (k, v) in primary.items()))


if __name__ == "__main__":
    typer.run(main)
