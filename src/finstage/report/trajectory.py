"""Trajectory table and plot: rows are benchmarks, columns the phases P0 → P3.

The recipe's finding is that benchmarks peak at different phases, so the deliverable is the
whole trajectory with the best phase per row marked, not a final score.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# (label, checkpoint) in reporting order; p1_s1 is shown because it isolates projector alignment.
PHASES = [
    ("P0", "p0"),
    ("P1-S1", "p1_s1"),
    ("P1", "p1_s2"),
    ("P2", "p2_s1"),
    ("P3-1", "p3_s1"),
    ("P3", "p3_s2"),
]
# (row label, metric path, higher is better)
ROWS = [
    ("GSM8K exact match (strict)", ("gsm8k", "exact_match_strict"), True),
    ("GSM8K exact match (flexible)", ("gsm8k", "exact_match_flexible"), True),
    ("chabsa accuracy", ("chabsa", "acc"), True),
    ("chabsa macro-F1", ("chabsa", "macro_f1"), True),
    ("OCR character error rate", ("ocr", "cer"), False),
    ("VQA exact match", ("vqa", "exact_match"), True),
]


def load_metrics(metrics_dir: Path) -> dict[str, dict]:
    missing = [c for _, c in PHASES if not (metrics_dir / f"{c}.json").exists()]
    if missing:
        raise FileNotFoundError(
            f"no metrics for {missing} in {metrics_dir}: run `dvc repro` for their evaluate stages"
        )
    return {c: json.loads((metrics_dir / f"{c}.json").read_text()) for _, c in PHASES}


def trajectory(metrics: dict[str, dict]) -> list[dict]:
    rows = []
    for label, (task, key), higher in ROWS:
        values = {phase: metrics[ckpt][task][key] for phase, ckpt in PHASES}
        pick = max if higher else min
        # a flat row has no best phase; marking the first one would invent a finding
        best = pick(values, key=values.get) if len(set(values.values())) > 1 else None
        rows.append(
            {
                "benchmark": label,
                "values": values,
                "best": best,
                "higher_is_better": higher,
                "n": metrics["p0"][task]["n"],
            }
        )
    return rows


def markdown(rows: list[dict]) -> str:
    phases = [p for p, _ in PHASES]
    lines = [
        "# Trajectory",
        "",
        "Each benchmark across phases, anchored to P0. **Bold** marks the best phase per row "
        "(lowest for error rates). n = items scored per checkpoint.",
        "",
        "| benchmark | n | " + " | ".join(phases) + " | best |",
        "|---|---:|" + "---:|" * len(phases) + "---|",
    ]
    for row in rows:
        cells = [
            f"**{row['values'][p]:.3f}**" if p == row["best"] else f"{row['values'][p]:.3f}"
            for p in phases
        ]
        best = row["best"] or "— (flat)"
        lines.append(f"| {row['benchmark']} | {row['n']} | " + " | ".join(cells) + f" | {best} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    phases = [p for p, _ in PHASES]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for row in rows:
        ax.plot(phases, [row["values"][p] for p in phases], marker="o", label=row["benchmark"])
    ax.set_xlabel("phase")
    ax.set_ylabel("score")
    ax.set_title("finstage trajectory")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(metrics_dir: Path, out_md: Path, out_png: Path, out_json: Path) -> list[dict]:
    rows = trajectory(load_metrics(metrics_dir))
    out_md.write_text(markdown(rows))
    plot(rows, out_png)
    out_json.write_text(json.dumps({r["benchmark"]: r["values"] for r in rows}, indent=2) + "\n")
    return rows
