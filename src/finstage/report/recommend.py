"""Which checkpoint for which task: the best phase on each benchmark's primary score, and
whether it is significantly better than P0 and than the runner-up, by the same interval rule
the trajectory table flags changes with."""

from __future__ import annotations

from dataclasses import dataclass

from finstage.report.trajectory import Row


@dataclass
class Recommendation:
    row: Row
    phase: str | None  # None when the row is flat
    tied_with: list[str]
    runner_up: str | None
    beats_runner_up: bool
    beats_p0: bool


def recommend(rows: list[Row]) -> list[Recommendation]:
    return [_recommend(r) for r in rows if r.primary]


def _recommend(row: Row) -> Recommendation:
    if not row.best:
        return Recommendation(row, None, [], None, False, False)
    phase, tied = row.best[0], row.best[1:]
    best = row.cells[phase]
    others = {p: c.value for p, c in row.cells.items() if p not in row.best}
    pick = min if row.lower_is_better else max
    runner_up = pick(others, key=others.get)  # first in phase order among equals
    return Recommendation(
        row=row,
        phase=phase,
        tied_with=tied,
        runner_up=runner_up,
        beats_runner_up=not tied and not best.contains(others[runner_up]),
        beats_p0=phase != row.baseline and row.significant(phase),
    )


def recommendation_text(rec: Recommendation) -> str:
    row = rec.row
    head = f"- **{row.label}**: "
    base = row.cells[row.baseline].value
    if rec.phase is None:
        value = base
        return head + f"flat at {value:.3f} in every phase; no checkpoint is better than another."
    cell = row.cells[rec.phase]
    interval = f"[{cell.lo:.3f}, {cell.hi:.3f}]"
    text = head + f"{rec.phase} (`models/{cell.checkpoint}`), {cell.value:.3f} {interval}."
    if rec.tied_with:
        text += f" Tied with {', '.join(rec.tied_with)}; the earliest phase is listed."
    if rec.phase == row.baseline:
        text += f" {row.baseline} is the untouched baseline: no training stage improved on it."
    elif rec.beats_p0:
        text += f" Significantly better than {row.baseline} ({base:.3f})."
    else:
        text += (
            f" Not significantly better than {row.baseline} ({base:.3f}), "
            "which lies inside its interval."
        )
    if not rec.tied_with and rec.runner_up not in (None, row.baseline):
        other = row.cells[rec.runner_up].value
        if rec.beats_runner_up:
            text += f" Significantly better than the runner-up {rec.runner_up} ({other:.3f})."
        else:
            text += (
                f" Not significantly better than the runner-up {rec.runner_up} ({other:.3f}), "
                "which lies inside its interval."
            )
    return text


def recommendation_json(rec: Recommendation) -> dict:
    if rec.phase is None:
        return {"score": rec.row.score, "best": "flat", "checkpoint": ""}
    if rec.tied_with:
        vs_runner_up = "tie"
    else:
        vs_runner_up = "significant" if rec.beats_runner_up else "not significant"
    if rec.phase == rec.row.baseline:
        vs_p0 = "is P0"
    else:
        vs_p0 = "significant" if rec.beats_p0 else "not significant"
    return {
        "score": rec.row.score,
        "best": rec.phase,
        "checkpoint": rec.row.cells[rec.phase].checkpoint,
        "value": rec.row.cells[rec.phase].value,
        "tied_with": ",".join(rec.tied_with),
        "runner_up": rec.runner_up or "",
        "vs_runner_up": vs_runner_up,
        "vs_p0": vs_p0,
    }
