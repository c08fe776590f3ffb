"""Training curves as a PNG, one panel per training stage, so they show without a browser.

`dvc plots show` draws the per-stage TSV curves with Vega-Lite, which its HTML loads from a CDN:
offline the chart is blank. The report draws the same curves into an image any viewer opens.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import matplotlib

# where `train@<stage>` logs its loss, under the curves folder (dvc.yaml's `plots:` entry)
LOSS_TSV = Path("plots", "metrics", "loss.tsv")


def read_loss(curves: Path, stage: str) -> tuple[list[int], list[float]]:
    """Steps and losses of one stage; an error naming the file and the stage that writes it."""
    path = curves / stage / LOSS_TSV
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no loss curve for '{stage}' (run `dvc repro train@{stage}`)"
        )
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    if not rows or not {"step", "loss"} <= set(rows[0]):
        raise ValueError(f"{path}: expected a 'step\\tloss' header and at least one row")
    return [int(r["step"]) for r in rows], [float(r["loss"]) for r in rows]


def plot_losses(curves: Path, stages: dict[str, str], path: Path) -> None:
    """One panel per stage (name -> phase label), in recipe order, training loss against step."""
    matplotlib.use("Agg")  # the stage runs headless
    import matplotlib.pyplot as plt

    ncols = min(3, len(stages))
    nrows = math.ceil(len(stages) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.6 * nrows), squeeze=False)
    for ax, (stage, label) in zip(axes.flat, stages.items(), strict=False):
        steps, losses = read_loss(curves, stage)
        ax.plot(steps, losses, lw=1)
        ax.set_title(f"{label} ({stage})", fontsize=8)
        ax.set_xlabel("optimizer step", fontsize=7)
        ax.set_ylabel("loss", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(stages) :]:
        ax.axis("off")
    fig.suptitle("finstage training loss per stage", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
