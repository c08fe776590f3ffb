"""Collect every checkpoint's metrics into the trajectory table and plot."""

from pathlib import Path

import typer

from finstage.report.trajectory import write_report


def main(
    metrics: Path = typer.Option(..., help="Folder holding <checkpoint>.json metrics."),
    table: Path = typer.Option(..., help="Markdown trajectory table to write."),
    plot: Path = typer.Option(..., help="PNG plot to write."),
    summary: Path = typer.Option(
        ..., help="JSON trajectory (benchmark -> phase -> value) to write."
    ),
) -> None:
    write_report(metrics, table, plot, summary)
    typer.echo(table.read_text())


if __name__ == "__main__":
    typer.run(main)
