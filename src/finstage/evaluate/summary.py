"""Per-item values → one metrics block: point estimate, 95% bootstrap interval, counts, coverage.

Every score in `metrics/eval/<ckpt>.json` comes with `<score>_lo`/`<score>_hi` from resampling the
benchmark's items, so the report can say when a phase-to-phase difference is within noise. The
reference results are single-seed with no intervals; on 38-item tasks one item is 2.6 points.
Undefined values (ROC-AUC of a one-class sample) are written as null, never as NaN, which is not
JSON.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from finstage.benchmarks.lmeval import Statistic
from finstage.scoring import bootstrap_ci

Block = dict[str, float | int | None]


@dataclass
class Scored:
    """One benchmark's per-item values, and the statistic that turns each list into a score."""

    items: dict[str, list[Any]] = field(default_factory=dict)
    stats: dict[str, Statistic] = field(default_factory=dict)
    parsed: list[float] | None = None  # 1/0 per item of a generation protocol

    def add(self, score: str, items: list[Any], stat: Statistic) -> None:
        self.items[score] = items
        self.stats[score] = stat


def finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 6)


def summarise(scored: Scored, n_boot: int | None, seed: int) -> Block:
    """Each score with its `_lo`/`_hi` interval (none when `n_boot` is None: point estimates
    only, as a quick rescore wants), the item count and the parse coverage."""
    out: Block = {}
    for score, stat in scored.stats.items():
        items = scored.items[score]
        out[score] = finite(stat(items))
        if n_boot is not None:
            lo, hi = bootstrap_ci(items, stat, n_boot=n_boot, seed=seed)
            out[f"{score}_lo"], out[f"{score}_hi"] = finite(lo), finite(hi)
    out["n"] = max(len(v) for v in scored.items.values())
    parsed = scored.parsed
    out["coverage"] = finite(sum(parsed) / len(parsed)) if parsed else 1.0
    out["n_unparsed"] = int(len(parsed) - sum(parsed)) if parsed else 0
    return out


def average_block(
    parts: Sequence[tuple[list[Any], Statistic]], n_boot: int | None, seed: int, name: str = "avg"
) -> Block:
    """Unweighted mean of several tasks' scores (the harness average), with a joint interval
    (none when `n_boot` is None).

    Each bootstrap replicate resamples every task's items independently and averages the
    resulting scores, so small tasks contribute their own (large) noise.
    """
    point = float(np.mean([stat(items) for items, stat in parts]))
    count = {"n": sum(len(items) for items, _ in parts), "coverage": 1.0, "n_unparsed": 0}
    if n_boot is None:
        return {name: finite(point), **count}
    rng = np.random.default_rng(seed)
    replicates = []
    for _ in range(n_boot):
        scores = [
            stat([items[i] for i in rng.integers(0, len(items), len(items))])
            for items, stat in parts
        ]
        if not any(math.isnan(s) for s in scores):
            replicates.append(float(np.mean(scores)))
    lo, hi = np.percentile(replicates, [2.5, 97.5]) if replicates else (math.nan, math.nan)
    return {name: finite(point), f"{name}_lo": finite(lo), f"{name}_hi": finite(hi), **count}
