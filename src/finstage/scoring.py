"""Metrics and percentile-bootstrap confidence intervals, shared by every benchmark's scorer.

Why intervals: several benchmarks are tiny (cma_basics has 38 items, one item = 2.6 points), so a
phase-to-phase change is only news when it is outside the noise. The bootstrap resamples *items*
and recomputes the statistic, so it also covers corpus-level metrics that do not decompose into a
per-item mean (macro-F1, ROC-AUC); pass ``(gold, pred)`` or ``(label, score)`` tuples as items.

Undefined values are nan, never a made-up number: ROC-AUC with one class present, or any metric
of zero items, is ``float("nan")``. `bootstrap_ci` skips resamples whose statistic is nan (for
ROC-AUC, resamples that happened to draw one class only), so the interval is conditional on the
statistic being defined; when no resample is defined it returns ``(nan, nan)``. Callers that
write JSON must therefore allow NaN (Python's json does by default).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:  # loaded by the functions that use it: importing this module stays light
    pass

__all__ = ["accuracy", "bootstrap_ci", "harness_chabsa_f1", "mean", "roc_auc"]

T = TypeVar("T")

# Two-sided level of every interval: the 2.5% and 97.5% quantiles of the resampled statistic.
ALPHA = 0.05
# Rows of bootstrap indices drawn per chunk: bounds memory at ~chunk × n × 8 bytes.
_CHUNK_ELEMENTS = 4_000_000


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean as a float; nan for no values. Bools count as 0/1, so per-item
    correctness flags average to accuracy. `bootstrap_ci` has a vectorised path for it."""
    if len(values) == 0:
        return math.nan
    return math.fsum(float(v) for v in values) / len(values)


def accuracy(golds: Sequence[Hashable], preds: Sequence[Hashable]) -> float:
    """Share of positions where ``preds`` equals ``golds``; nan for no items."""
    _check_lengths(golds, preds)
    if len(golds) == 0:
        return math.nan
    return sum(g == p for g, p in zip(golds, preds, strict=True)) / len(golds)


def harness_chabsa_f1(golds: Sequence[Hashable], preds: Sequence[Hashable]) -> float:
    """chabsa F1 exactly as pfnet's japanese-lm-fin-harness reports it:
    ``sklearn.f1_score(golds, preds, average="macro") * 1.5``.

    In the harness a gold label outside ``doc_to_choice`` (chabsa's ``neutral``) becomes index
    -100, a class the model can never predict. Its F1 is 0 and it is a third class in the macro
    mean, so ×1.5 rescales the 3-class mean to the mean of the positive and negative F1s, with
    neutral items still counted as false positives for whichever class was predicted.

    Golds are lm-eval's ``(gold_index, pred_index)`` pairs' golds (neutral = -100) or string
    labels (``"neutral"`` is never predicted). Caveat kept from upstream: if no gold is neutral
    (e.g. a subset), the macro is over 2 classes and ×1.5 can exceed 1. nan for no items.
    """
    from sklearn.metrics import f1_score

    _check_lengths(golds, preds)
    if len(golds) == 0:
        return math.nan
    return float(f1_score(list(golds), list(preds), average="macro", zero_division=0)) * 1.5


def roc_auc(labels: Sequence[int | bool], scores: Sequence[float]) -> float:
    """Area under the ROC curve: the probability that a random positive (label 1) scores above a
    random negative (label 0), ties counting one half (Mann-Whitney U with average ranks; equals
    ``sklearn.roc_auc_score``).

    nan when only one class is present (AUC is undefined; sklearn raises instead, which would
    abort a bootstrap) or when there are no items. Raises ValueError for labels other than
    0/1/True/False and for non-finite scores: drop unparsed answers first (EDINET-Bench drops
    them), rather than letting a placeholder score move the AUC.
    """
    _check_lengths(labels, scores)
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=float)
    if y.size == 0:
        return math.nan
    if not np.isin(y, (0, 1)).all():
        raise ValueError("roc_auc labels must be 0/1 (or bool)")
    if not np.isfinite(s).all():
        raise ValueError("roc_auc scores must be finite; drop unparsed items first")
    positive = y.astype(bool)
    n_pos = int(positive.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = _average_ranks(s)
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of the ranks they span."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    last = np.cumsum(counts)  # rank of the last member of each tie group
    first = last - counts + 1
    return ((first + last) / 2.0)[inverse]


def _check_lengths(a: Sequence[Any], b: Sequence[Any]) -> None:
    if len(a) != len(b):
        raise ValueError(f"length mismatch: {len(a)} vs {len(b)}")


def _resample_indices(rng: np.random.Generator, n_items: int, n_boot: int) -> Iterator[np.ndarray]:
    """Bootstrap index rows in chunks. Both bootstrap paths draw through this, so the fast and
    the general path see the same resamples for the same seed."""
    rows_per_chunk = max(1, _CHUNK_ELEMENTS // max(n_items, 1))
    done = 0
    while done < n_boot:
        rows = min(rows_per_chunk, n_boot - done)
        yield rng.integers(0, n_items, size=(rows, n_items))
        done += rows


def _as_float_vector(items: Sequence[Any]) -> np.ndarray | None:
    """``items`` as a 1-D float array when they are plain numbers (or bools), else None."""
    try:
        array = np.asarray(items, dtype=float)
    except (TypeError, ValueError):
        return None
    return array if array.ndim == 1 else None


def bootstrap_ci(
    items: Sequence[T],
    statistic: Callable[[Sequence[T]], float],
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap 95% interval of ``statistic`` over resampled ``items``.

    Items are resampled with replacement ``n_boot`` times (numpy ``default_rng(seed)``, so the
    result is deterministic for a seed) and the interval is the 2.5% and 97.5% quantiles
    (linear interpolation) of the resampled statistics. For corpus-level metrics pass
    tuples and unpack in ``statistic``, e.g.
    ``bootstrap_ci(list(zip(labels, probs)), lambda xs: roc_auc(*zip(*xs)))``.

    When ``statistic`` is `mean` and the items are numbers, a vectorised numpy path computes all
    resample means at once (1000 × 10k items in well under a second) from the same resamples the
    general path would draw.

    Resamples whose statistic is nan (undefined, e.g. ROC-AUC of one class) are skipped, so the
    interval is conditional on the statistic being defined; if none is defined, or there are no
    items, the result is ``(nan, nan)``.
    """
    if n_boot < 1:
        raise ValueError("n_boot must be at least 1")
    n = len(items)
    if n == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    values = _as_float_vector(items) if statistic is mean else None
    if values is not None:
        stats = _bootstrap_means(values, rng, n_boot)
    else:
        stats = _bootstrap_general(items, statistic, rng, n_boot)
    stats = stats[np.isfinite(stats)]
    if stats.size == 0:
        return (math.nan, math.nan)
    low, high = np.quantile(stats, [ALPHA / 2, 1 - ALPHA / 2])
    return (float(low), float(high))


def _bootstrap_means(values: np.ndarray, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """Resample means, vectorised over chunks of resamples."""
    chunks = [values[rows].mean(axis=1) for rows in _resample_indices(rng, values.size, n_boot)]
    return np.concatenate(chunks)


def _bootstrap_general(
    items: Sequence[T],
    statistic: Callable[[Sequence[T]], float],
    rng: np.random.Generator,
    n_boot: int,
) -> np.ndarray:
    """Resample statistics by calling ``statistic`` on each resample (any item type)."""
    pool = list(items)
    out = np.empty(n_boot, dtype=float)
    k = 0
    for rows in _resample_indices(rng, len(pool), n_boot):
        for row in rows:
            out[k] = float(statistic([pool[j] for j in row]))
            k += 1
    return out
