"""The trajectory plot: one small panel per score that moves, so a reader sees at a glance what
each phase teaches and erodes and how wide the noise is.

A tiny model leaves many scores flat (chance in every phase); a panel of a flat line says
nothing, so flat scores are named under the figure instead. Parse coverage gets its own panels
where it changes: for a model that is learning an answer format it is the signal that moves
first, long before accuracy does.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

import matplotlib

from finstage.report.trajectory import Row, benchmark_label


@dataclass(frozen=True)
class Panel:
    title: str
    values: dict[str, float]  # phase label -> value, in report order
    below: dict[str, float]  # distance to the interval's low end (0 where there is none)
    above: dict[str, float]


def panels(
    rows: list[Row], coverages: dict[str, dict[str, float]]
) -> tuple[list[Panel], list[str]]:
    """Panels for the scores that differ between phases, then for coverages that do; and the
    labels of the flat scores."""
    out, flat = [], []
    for row in rows:
        if not row.best:
            flat.append(row.label)
            continue
        values = {p: c.value for p, c in row.cells.items()}
        below = {p: max(0.0, c.value - c.lo) for p, c in row.cells.items()}
        above = {p: max(0.0, c.hi - c.value) for p, c in row.cells.items()}
        out.append(Panel(row.label, values, below, above))
    for benchmark, values in coverages.items():
        if len(set(values.values())) > 1:
            zero = dict.fromkeys(values, 0.0)
            title = f"{benchmark_label(benchmark)} · coverage (answers parsed)"
            out.append(Panel(title, values, zero, zero))
    return out, flat


def plot(rows: list[Row], coverages: dict[str, dict[str, float]], path: Path) -> None:
    """Intervals as error bars, P0 as a dashed line, flat scores listed below the panels."""
    matplotlib.use("Agg")  # the stage runs headless
    import matplotlib.pyplot as plt

    shown, flat = panels(rows, coverages)
    ncols = max(1, min(4, len(shown)))
    nrows = max(1, math.ceil(len(shown) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.6 * nrows + 0.6), squeeze=False)
    for ax, panel in zip(axes.flat, shown, strict=False):
        phases = list(panel.values)
        below = [panel.below[p] for p in phases]
        above = [panel.above[p] for p in phases]
        values = [panel.values[p] for p in phases]
        ax.errorbar(phases, values, yerr=[below, above], marker="o", capsize=3, lw=1)
        ax.axhline(values[0], color="grey", ls="--", lw=0.8)
        ax.set_title(panel.title, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.tick_params(axis="x", rotation=45)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(shown) :]:
        ax.axis("off")
    fig.suptitle("finstage trajectory (95% intervals; dashed: P0)", fontsize=9)
    note = "Flat in every phase: " + ("; ".join(flat) if flat else "none")
    fig.text(0.01, 0.005, textwrap.fill(note, 180), fontsize=6.5, va="bottom")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
