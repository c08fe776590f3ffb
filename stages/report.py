"""Collect every checkpoint's metrics into the trajectory report.

Reads metrics/eval/<checkpoint>.json for every checkpoint in `report.phases` (all must have the
same keys) and writes the trajectory table with deltas vs P0, significance flags from the 95%
intervals, the per-task harness breakdown and a checkpoint recommendation per task, plus a JSON
summary for `dvc metrics show`, a PNG with one panel per benchmark and a PNG of every training
stage's loss curve (metrics/train/<stage>/), which shows offline where `dvc plots show`'s
browser charts do not.
"""

from pathlib import Path

import typer

from finstage.config import parse, stage_params
from finstage.recipe import ReportConfig
from finstage.report.outputs import write_report


def load_config(params: dict) -> ReportConfig:
    """The only place this stage reads params (tests call it with the params dvc.yaml declares)."""
    return parse(ReportConfig, params["report"], "report")


def main(
    metrics: Path = typer.Option(
        ..., help="Folder holding <checkpoint>.json for every checkpoint in report.phases."
    ),
    table: Path = typer.Option(
        ...,
        help="Markdown report to write: trajectory table, harness breakdown, recommendation.",
    ),
    plot: Path = typer.Option(
        ..., help="PNG to write: one panel per benchmark's primary score, 95% intervals."
    ),
    curves: Path = typer.Option(
        ..., help="Folder holding <stage>/plots/metrics/loss.tsv for every trained phase."
    ),
    loss_plot: Path = typer.Option(
        ..., help="PNG to write: one panel per training stage, loss against optimizer step."
    ),
    summary: Path = typer.Option(
        ...,
        help="JSON to write: benchmark -> score -> phase -> value, plus 'recommendation'.",
    ),
    stage: str = typer.Option(
        None, envvar="DVC_STAGE", help="DVC stage whose declared params to read."
    ),
) -> None:
    """Write the trajectory report for P0 → P3 from every checkpoint's metrics.

    Cells show each score with its change vs P0; † marks a change whose 95% bootstrap interval
    still contains the P0 value. Fails naming the file and key when the checkpoints' metrics do
    not have the same keys (rerun `dvc repro`).
    """
    cfg = load_config(stage_params(stage))
    write_report(metrics, cfg.phases, table, plot, summary, curves, loss_plot)
    typer.echo(table.read_text())


if __name__ == "__main__":
    # as `typer.run(main)`, plus the module docstring as `--help`: what the stage does
    app = typer.Typer(add_completion=False)
    app.command(help=__doc__)(main)
    app()
