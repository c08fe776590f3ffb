"""The report stage's outputs: the markdown trajectory, its plot, a JSON summary for
`dvc metrics show` and the training curves as an image."""

from __future__ import annotations

import json
from pathlib import Path

from finstage.report.curves import plot_losses
from finstage.report.plot import plot
from finstage.report.recommend import recommend, recommendation_json
from finstage.report.table import markdown
from finstage.report.trajectory import Row, coverage, load_metrics, protocol, trajectory


def summary(rows: list[Row]) -> dict:
    """{benchmark: {score: {phase: value}}} plus the recommendation, flat for `dvc metrics show`."""
    out: dict[str, dict] = {}
    for row in rows:
        out.setdefault(row.benchmark, {})[row.score] = {p: c.value for p, c in row.cells.items()}
    out["recommendation"] = {rec.row.benchmark: recommendation_json(rec) for rec in recommend(rows)}
    return out


def summary_with_protocol(rows: list[Row], protocol_block: dict[str, float] | None) -> dict:
    """`summary`, plus the protocol every checkpoint was scored under when it is recorded."""
    out = summary(rows)
    if protocol_block is not None:
        out["protocol"] = dict(protocol_block)
    return out


def write_report(
    metrics_dir: Path,
    phases: dict[str, str],
    out_md: Path,
    out_png: Path,
    out_json: Path,
    curves: Path,
    out_loss_png: Path,
) -> list[Row]:
    """Every output of the report stage for `phases` (checkpoint -> label, from params).

    Every phase after the first (P0, which is built, not trained) is a training stage whose loss
    curve lies under `curves`; they are drawn into `out_loss_png`."""
    metrics = load_metrics(metrics_dir, phases)
    rows = trajectory(metrics, phases)
    scored_under = protocol(metrics, metrics_dir)
    out_md.write_text(markdown(rows, metrics, phases, scored_under))
    plot(rows, coverages(metrics, phases, rows), out_png)
    payload = summary_with_protocol(rows, scored_under)
    out_json.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    plot_losses(curves, dict(list(phases.items())[1:]), out_loss_png)
    return rows


def coverages(
    metrics: dict[str, dict], phases: dict[str, str], rows: list[Row]
) -> dict[str, dict[str, float]]:
    """Parse coverage per phase for every benchmark (1 in every phase for scored choices)."""
    return {b: coverage(metrics, phases, b) for b in dict.fromkeys(r.benchmark for r in rows)}
