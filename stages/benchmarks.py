"""Write the evaluation stand-ins the offline run scores every checkpoint on: a Japanese GSM8K
set and a chabsa set, in the exact raw schemas of the real benchmarks so that pointing the task
files at the real data is only a path change. Items come from their own seed streams and any
item that appears in the training records is dropped and counted."""

from pathlib import Path

import typer
from tqdm import tqdm

from finstage.config import parse, stage_params
from finstage.records import read_records
from finstage.synth.benchmarks import BenchConfig, build_benchmarks


def load_config(params: dict) -> BenchConfig:
    """The only place this stage reads params (tests call it with the params dvc.yaml declares)."""
    return parse(BenchConfig, params["benchmarks"], "benchmarks")


def main(
    out: Path = typer.Option(..., help="Output folder: gsm8k/, chabsa/, manifest.json."),
    exclude_from: list[Path] = typer.Option(
        [], help="Training record folders (searched recursively)."
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
    for name in ("gsm8k", "chabsa"):
        files = ", ".join(f"{k} {v['items']}" for k, v in manifest[name]["files"].items())
        typer.echo(
            f"{name}: {files}; dropped as in training: {manifest[name]['dropped_as_in_training']}"
        )


if __name__ == "__main__":
    typer.run(main)
