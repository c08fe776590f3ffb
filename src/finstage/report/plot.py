"""The trajectory plot: one small panel per primary score, so a reader sees at a glance which
phase each benchmark peaks at and how wide the noise is."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

from finstage.report.trajectory import Row


def plot(rows: list[Row], path: Path) -> None:
    """One small panel per primary score, intervals as error bars, P0 as a dashed line."""
    matplotlib.use("Agg")  # the stage runs headless
    import matplotlib.pyplot as plt

    primary = [r for r in rows if r.primary]
    phases = list(primary[0].cells)
    ncols = min(4, len(primary))
    nrows = math.ceil(len(primary) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.6 * nrows), squeeze=False)
    for ax, row in zip(axes.flat, primary, strict=False):
        values = [row.cells[p].value for p in phases]
        below = [max(0.0, row.cells[p].value - row.cells[p].lo) for p in phases]
        above = [max(0.0, row.cells[p].hi - row.cells[p].value) for p in phases]
        ax.errorbar(phases, values, yerr=[below, above], marker="o", capsize=3, lw=1)
        ax.axhline(row.cells[row.baseline].value, color="grey", ls="--", lw=0.8)
        ax.set_title(row.label, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.tick_params(axis="x", rotation=45)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(primary) :]:
        ax.axis("off")
    fig.suptitle("finstage trajectory (95% intervals; dashed: P0)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
