"""Trajectory rows: every benchmark score across the phases P0 → P3, anchored to P0.

The recipe's finding is that benchmarks peak at different phases, so the deliverable is the
whole trajectory with the best phase per row marked, not a final score. Scores come with 95%
bootstrap intervals; a change whose interval still contains the P0 value is not significant,
because on the small evaluation sets of the embedded scale most movements are noise.

Rows are derived from the metrics files, so a new benchmark or score shows up without code
changes; the benchmark registry only gives names, the primary score and an order.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from finstage.benchmarks.registry import PROTOCOL, report_blocks

BLOCKS = {block.name: block for block in report_blocks()}
SCORE_LABELS = {
    "em_strict": "exact match (strict)",
    "em_flexible": "exact match (flexible)",
    "harness_f1": "harness F1 (macro-F1×1.5)",
    "acc": "accuracy",
    "avg": "average",
    "roc_auc": "ROC-AUC (log-likelihood)",
    "gen_roc_auc": "ROC-AUC (generation)",
    "cer": "character error rate",
    "em": "exact match",
    "anls": "ANLS",
    "rouge1": "ROUGE-1",
    "rouge2": "ROUGE-2",
    "rougeL": "ROUGE-L",
    "rationale_sim": "rationale similarity",
}
BOOKKEEPING = ("n", "n_unparsed", "coverage", "n_truncated", "n_unscorable")


class MetricsError(ValueError):
    """Checkpoint metrics that cannot be compared (missing or mismatched keys)."""


@dataclass(frozen=True)
class Cell:
    checkpoint: str
    value: float
    lo: float
    hi: float

    def contains(self, reference: float) -> bool:
        """The interval rule: a reference inside this 95% interval is not a significant change."""
        return self.lo <= reference <= self.hi


def benchmark_label(benchmark: str) -> str:
    block = BLOCKS.get(benchmark)
    return block.label if block is not None else benchmark


@dataclass
class Row:
    benchmark: str
    score: str
    n: str
    lower_is_better: bool
    primary: bool
    cells: dict[str, Cell]  # phase label -> cell, in report order; the first is the baseline
    best: list[str]  # tied best phases in phase order; empty when the row is flat

    @property
    def label(self) -> str:
        arrow = " ↓" if self.lower_is_better else ""
        score = SCORE_LABELS.get(self.score, self.score)
        return f"{benchmark_label(self.benchmark)} · {score}{arrow}"

    @property
    def baseline(self) -> str:
        """The phase every change is measured against: the untouched base model."""
        return next(iter(self.cells))

    def significant(self, phase: str) -> bool:
        return not self.cells[phase].contains(self.cells[self.baseline].value)


# ---------------------------------------------------------------- loading


def load_metrics(metrics_dir: Path, phases: dict[str, str]) -> dict[str, dict]:
    """Checkpoint -> its metrics, in the order of `phases` (checkpoint -> label, from params)."""
    missing = [c for c in phases if not (metrics_dir / f"{c}.json").exists()]
    if missing:
        raise FileNotFoundError(
            f"no metrics for {missing} in {metrics_dir}: run `dvc repro` for their evaluate stages"
        )
    metrics = {c: json.loads((metrics_dir / f"{c}.json").read_text()) for c in phases}
    check_same_keys(metrics, metrics_dir)
    return metrics


def protocol(metrics: dict[str, dict], metrics_dir: Path) -> dict[str, float] | None:
    """The prompt protocol every checkpoint was scored under (None if the files predate it).

    Phases are only comparable under one protocol, so checkpoints that disagree are an error.
    """
    seen = {c: m.get(PROTOCOL) for c, m in metrics.items()}
    first = next(iter(seen.values()), None)
    for ckpt, value in seen.items():
        if value != first:
            raise MetricsError(
                f"{metrics_dir / f'{ckpt}.json'} was scored under protocol {value}, "
                f"{next(iter(seen))}.json under {first}: rerun `dvc repro` so every evaluate "
                "stage uses the same evaluate params"
            )
    return first


def check_same_keys(metrics: dict[str, dict], metrics_dir: Path) -> None:
    """Every checkpoint must report the same keys, or the trajectory compares unlike things."""
    protocol(metrics, metrics_dir)
    for benchmark in _union(metrics.values()):
        if benchmark == PROTOCOL:
            continue
        holder = next(c for c in metrics if benchmark in metrics[c])
        for ckpt in metrics:
            if benchmark not in metrics[ckpt]:
                _missing(metrics_dir, ckpt, benchmark, holder)
        for key in _union(m[benchmark] for m in metrics.values()):
            holder = next(c for c in metrics if key in metrics[c][benchmark])
            for ckpt in metrics:
                if key not in metrics[ckpt][benchmark]:
                    _missing(metrics_dir, ckpt, f"{benchmark}.{key}", holder)
        # keys now agree across checkpoints, so checking the base checks them all
        base = next(iter(metrics))
        scores = _scores(benchmark, metrics[base][benchmark])
        for key in ["n", "coverage", *(f"{s}{end}" for s in scores for end in ("_lo", "_hi"))]:
            if key not in metrics[base][benchmark]:
                _missing(metrics_dir, base, f"{benchmark}.{key}", None)


def _union(dicts: Iterable[dict]) -> list[str]:
    seen: dict[str, None] = {}
    for d in dicts:
        seen.update(dict.fromkeys(d))
    return list(seen)


def _missing(metrics_dir: Path, ckpt: str, key: str, holder: str | None) -> NoReturn:
    where = f" (present in {holder}.json)" if holder else ""
    raise MetricsError(
        f"{metrics_dir / f'{ckpt}.json'} has no key {key!r}{where}: the checkpoints were evaluated "
        "with different protocols; rerun `dvc repro` so every evaluate stage writes the same keys"
    )


def _scores(benchmark: str, entry: dict) -> list[str]:
    """Scores of one benchmark entry: known ones in their order, then any others."""
    present = [
        k
        for k in entry
        if k not in BOOKKEEPING and not (k[-3:] in ("_lo", "_hi") and k[:-3] in entry)
    ]
    block = BLOCKS.get(benchmark)
    known = [s for s in (block.scores if block is not None else ()) if s in present]
    return known + [s for s in present if s not in known]


# ---------------------------------------------------------------- rows


def trajectory(metrics: dict[str, dict], phases: dict[str, str]) -> list[Row]:
    """One row per benchmark score; `metrics` as `load_metrics` returns it for `phases`."""
    p0 = metrics[next(iter(phases))]
    known = [b for b in BLOCKS if b in p0]
    rows = []
    for benchmark in known + [b for b in p0 if b not in known and b != PROTOCOL]:
        for i, score in enumerate(_scores(benchmark, p0[benchmark])):
            rows.append(_row(metrics, phases, benchmark, score, primary=i == 0))
    return rows


def _row(
    metrics: dict[str, dict], phases: dict[str, str], benchmark: str, score: str, primary: bool
) -> Row:
    cells = {
        label: Cell(
            c,
            metrics[c][benchmark][score],
            metrics[c][benchmark][f"{score}_lo"],
            metrics[c][benchmark][f"{score}_hi"],
        )
        for c, label in phases.items()
    }
    ns = sorted({metrics[c][benchmark]["n"] for c in phases})
    lower = benchmark in BLOCKS and score in BLOCKS[benchmark].lower_is_better
    return Row(
        benchmark=benchmark,
        score=score,
        n=str(ns[0]) if len(ns) == 1 else f"{ns[0]}–{ns[-1]}",
        lower_is_better=lower,
        primary=primary,
        cells=cells,
        best=_best({p: c.value for p, c in cells.items()}, lower),
    )


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _best(values: dict[str, float], lower_is_better: bool) -> list[str]:
    """All phases tied at the best value; none for a flat row, where a best would be invented."""
    first = next(iter(values.values()))
    if all(_same(v, first) for v in values.values()):
        return []
    target = (min if lower_is_better else max)(values.values())
    return [p for p, v in values.items() if _same(v, target)]


def coverage(metrics: dict[str, dict], phases: dict[str, str], benchmark: str) -> dict[str, float]:
    """Phase label -> share of the benchmark's answers that could be parsed."""
    return {label: metrics[c][benchmark]["coverage"] for c, label in phases.items()}


def window_counts(
    metrics: dict[str, dict], phases: dict[str, str], benchmark: str, key: str
) -> dict[str, int]:
    """Phase label -> `key` (n_truncated or n_unscorable) of the benchmark; 0 where a metrics
    file has no such count (visual checks, or files written before it was recorded)."""
    return {label: int(metrics[c][benchmark].get(key, 0)) for c, label in phases.items()}
