"""Score one checkpoint on every benchmark with the same protocol as all the others."""

from pathlib import Path

import typer

from finstage.config import parse, stage_params
from finstage.evaluate.run import EvalConfig, EvalInputs, evaluate_checkpoint, write_metrics


def load_config(params: dict) -> EvalConfig:
    """The only place this stage reads params (tests call it with the params dvc.yaml declares)."""
    return parse(EvalConfig, params["evaluate"], "evaluate")


def main(
    checkpoint: Path = typer.Option(..., help="Checkpoint folder (models/<name>)."),
    bench: Path = typer.Option(..., help="Benchmark folder (gsm8k/test.jsonl, chabsa/test.jsonl)."),
    visual: Path = typer.Option(..., help="Held-out visual records (folder with ocr/ and vqa/)."),
    pages: Path = typer.Option(..., help="Page store."),
    metrics: Path = typer.Option(..., help="Metrics JSON to write."),
    predictions: Path = typer.Option(..., help="Predictions JSONL to write."),
    stage: str = typer.Option(
        None, envvar="DVC_STAGE", help="DVC stage whose declared params to read."
    ),
) -> None:
    cfg = load_config(stage_params(stage))
    inputs = EvalInputs(
        bench / "gsm8k" / "test.jsonl",
        bench / "chabsa" / "test.jsonl",
        visual / "ocr",
        visual / "vqa",
        pages,
    )
    scores, preds = evaluate_checkpoint(checkpoint, inputs, cfg)
    write_metrics(scores, preds, metrics, predictions)
    typer.echo(f"{checkpoint.name}: " + ", ".join(f"{t}={v}" for t, v in scores.items()))


if __name__ == "__main__":
    typer.run(main)
