"""The report stage's outputs: the markdown trajectory, its plot and a JSON summary for
`dvc metrics show`."""

from __future__ import annotations

import json
from pathlib import Path

from finstage.report.plot import plot
from finstage.report.recommend import recommend, recommendation_json
from finstage.report.table import markdown
from finstage.report.trajectory import Row, load_metrics, trajectory


def summary(rows: list[Row]) -> dict:
    """{benchmark: {score: {phase: value}}} plus the recommendation, flat for `dvc metrics show`."""
    out: dict[str, dict] = {}
    for row in rows:
        out.setdefault(row.benchmark, {})[row.score] = {p: c.value for p, c in row.cells.items()}
    out["recommendation"] = {rec.row.benchmark: recommendation_json(rec) for rec in recommend(rows)}
    return out


def write_report(
    metrics_dir: Path, phases: dict[str, str], out_md: Path, out_png: Path, out_json: Path
) -> list[Row]:
    """Every output of the report stage for `phases` (checkpoint -> label, from params)."""
    metrics = load_metrics(metrics_dir, phases)
    rows = trajectory(metrics, phases)
    out_md.write_text(markdown(rows, metrics, phases))
    plot(rows, out_png)
    out_json.write_text(json.dumps(summary(rows), indent=2, ensure_ascii=False) + "\n")
    return rows
