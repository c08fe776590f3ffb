"""Write the evaluation stand-ins every checkpoint is scored on: Japanese GSM8K, chABSA, the four
pfnet japanese-lm-fin-harness exams (cma_basics, cpa_audit, fp2, security_sales_1) and the three
EDINET-Bench tasks, each in its real public raw schema, so pointing evaluation at the real data is
only a path change. Items come from their own seed streams and any item that appears in the
training records is dropped and counted in manifest.json."""

from pathlib import Path

import typer
from tqdm import tqdm

from finstage.benchmarks.registry import BenchConfig, build_benchmarks
from finstage.config import parse, stage_params
from finstage.records import read_records


def load_config(params: dict) -> BenchConfig:
    """The only place this stage reads params (tests call it with the params dvc.yaml declares)."""
    return parse(BenchConfig, params["benchmarks"], "benchmarks")


def main(
    out: Path = typer.Option(
        ...,
        help="Output folder: gsm8k/, chabsa/, cma_basics/, cpa_audit/, fp2/, "
        "security_sales_1/, edinet/<config>/<split>.jsonl and manifest.json.",
    ),
    exclude_from: list[Path] = typer.Option(
        [], help="Training record folders (searched recursively); items found there are dropped."
    ),
    stage: str = typer.Option(
        None, envvar="DVC_STAGE", help="DVC stage whose declared params to read."
    ),
) -> None:
    cfg = load_config(stage_params(stage))
    shards = sorted({p.parent for root in exclude_from for p in Path(root).rglob("*.parquet")})
    records = [
        r for d in tqdm(shards, desc="training records", unit="dir") for r in read_records(d)
    ]
    manifest = build_benchmarks(cfg, out, records)
    for task, entry in manifest.items():
        typer.echo(
            f"{task}: {entry['items']} items in {entry['source']['path']}; "
            f"dropped as in training: {entry['dropped_as_in_training']}"
        )


if __name__ == "__main__":
    # as `typer.run(main)`, plus the module docstring as `--help`: what the stage does
    app = typer.Typer(add_completion=False)
    app.command(help=__doc__)(main)
    app()
