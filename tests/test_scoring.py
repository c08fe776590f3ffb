"""Metrics against hand-computed values, and the percentile bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from finstage import scoring
from finstage.scoring import accuracy, bootstrap_ci, harness_chabsa_f1, mean, roc_auc


def test_accuracy_and_mean() -> None:
    # matches at positions 0 and 2 of 4 → 2/4
    assert accuracy([1, 0, 1, 1], [1, 1, 1, 0]) == 0.5
    assert mean([1.0, 2.0, 4.0]) == pytest.approx(7 / 3)
    assert mean([True, False, True, True]) == 0.75
    assert math.isnan(mean([]))
    assert math.isnan(accuracy([], []))
    with pytest.raises(ValueError):
        accuracy([1], [1, 0])


def test_harness_chabsa_f1_hand_computed() -> None:
    golds = ["positive", "negative", "neutral", "positive", "neutral"]
    preds = ["positive", "positive", "negative", "positive", "positive"]
    # neutral gold → label -100, never predicted.
    # positive: TP=2 (i0,i3), FP=2 (i1 gold neg, i4 gold neutral), FN=0 → P=1/2, R=1, F1=2/3
    # negative: TP=0, FP=1 (i2 gold neutral), FN=1 (i1) → F1=0
    # neutral(-100): TP=0, FN=2 → F1=0
    # macro over 3 classes = (2/3 + 0 + 0) / 3 = 2/9; × 1.5 = 1/3 = mean of pos/neg F1
    assert harness_chabsa_f1(golds, preds) == pytest.approx(1 / 3)
    # the same items as lm-eval passes them: (gold index with neutral = -100, pred index)
    index = {"positive": 0, "negative": 1, "neutral": -100}
    gold_ids, pred_ids = [index[g] for g in golds], [index[p] for p in preds]
    assert harness_chabsa_f1(gold_ids, pred_ids) == pytest.approx(1 / 3)
    # ×1.5 turns the 3-class mean into the mean of the positive and negative F1s
    two_class = f1_score(golds, preds, average="macro", labels=["positive", "negative"])
    assert harness_chabsa_f1(golds, preds) == pytest.approx(two_class)


def test_harness_chabsa_f1_keeps_upstream_scaling_without_neutral() -> None:
    # no neutral gold: macro is over 2 classes (=1.0 here) and ×1.5 gives 1.5, as upstream does
    assert harness_chabsa_f1(["positive", "negative"], ["positive", "negative"]) == 1.5


def test_roc_auc_hand_computed_with_ties() -> None:
    labels = [1, 0, 1, 0, 1]
    probs = [0.9, 0.1, 0.4, 0.4, 0.35]
    # positives {0.9, 0.4, 0.35} vs negatives {0.1, 0.4}; pairs won (tie = 1/2):
    # 0.9: 1 + 1; 0.4: 1 + 0.5; 0.35: 1 + 0 → 4.5 of 3×2 = 6 pairs → 0.75
    assert roc_auc(labels, probs) == pytest.approx(0.75)
    assert roc_auc(labels, probs) == pytest.approx(roc_auc_score(labels, probs))
    assert roc_auc([True, False], [0.2, 0.8]) == 0.0


def test_roc_auc_matches_sklearn_on_random_ties() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, size=500)
    probs = rng.integers(0, 10, size=500) / 10  # many ties
    assert roc_auc(labels.tolist(), probs.tolist()) == pytest.approx(roc_auc_score(labels, probs))


def test_roc_auc_undefined_and_invalid() -> None:
    assert math.isnan(roc_auc([1, 1, 1], [0.1, 0.5, 0.9]))  # one class only
    assert math.isnan(roc_auc([], []))
    with pytest.raises(ValueError):
        roc_auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError):
        roc_auc([0, 1], [0.1, float("nan")])


def _bernoulli(n: int, p: float, seed: int) -> list[float]:
    return (np.random.default_rng(seed).random(n) < p).astype(float).tolist()


def test_bootstrap_contains_point_estimate_and_is_deterministic() -> None:
    values = _bernoulli(400, 0.6, seed=1)
    low, high = bootstrap_ci(values, mean, seed=7)
    assert low < mean(values) < high
    assert bootstrap_ci(values, mean, seed=7) == (low, high)
    assert bootstrap_ci(values, mean, seed=8) != (low, high)


def test_bootstrap_narrows_with_more_items() -> None:
    small = bootstrap_ci(_bernoulli(100, 0.5, seed=2), mean)
    large = bootstrap_ci(_bernoulli(10_000, 0.5, seed=2), mean)
    assert (large[1] - large[0]) < (small[1] - small[0]) / 5  # width ∝ 1/√n: ~10x narrower


def test_bootstrap_fast_path_matches_general_path() -> None:
    values = _bernoulli(300, 0.3, seed=4)
    fast = bootstrap_ci(values, mean, n_boot=500, seed=11)
    general = bootstrap_ci(values, lambda xs: mean(xs), n_boot=500, seed=11)
    assert fast == pytest.approx(general, abs=1e-12)


def test_bootstrap_mean_takes_the_vectorised_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def general_path_forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("plain mean of floats must not take the per-resample path")

    monkeypatch.setattr(scoring, "_bootstrap_general", general_path_forbidden)
    values = _bernoulli(10_000, 0.7, seed=5)
    low, high = bootstrap_ci(values, mean, n_boot=1000)
    assert low < mean(values) < high


def test_bootstrap_roc_auc_items() -> None:
    rng = np.random.default_rng(6)
    labels = rng.integers(0, 2, size=300).tolist()
    probs = [min(1.0, max(0.0, 0.3 * y + rng.normal(0.35, 0.2))) for y in labels]
    items = list(zip(labels, probs, strict=True))

    def auc(xs: list[tuple[int, float]]) -> float:
        return roc_auc([y for y, _ in xs], [p for _, p in xs])

    point = auc(items)
    low, high = bootstrap_ci(items, auc, n_boot=300)
    assert 0.5 < low < point < high <= 1.0


def test_bootstrap_skips_undefined_resamples() -> None:
    # 1 positive in 6: about a third of resamples draw no positive (AUC undefined → skipped)
    items = [(1, 0.9), (0, 0.1), (0, 0.2), (0, 0.3), (0, 0.4), (0, 0.95)]

    def auc(xs: list[tuple[int, float]]) -> float:
        return roc_auc([y for y, _ in xs], [p for _, p in xs])

    low, high = bootstrap_ci(items, auc, n_boot=200)
    assert math.isfinite(low) and math.isfinite(high)
    assert 0.0 <= low <= auc(items) <= high <= 1.0
    # one class only: every resample is undefined
    assert all(math.isnan(v) for v in bootstrap_ci([(1, 0.2), (1, 0.7)], auc, n_boot=50))
    assert all(math.isnan(v) for v in bootstrap_ci([], mean))


def test_bootstrap_harness_f1_items() -> None:
    rng = np.random.default_rng(8)
    golds = rng.choice([0, 1, -100], size=200, p=[0.45, 0.45, 0.1])
    preds = np.where(rng.random(200) < 0.7, np.maximum(golds, 0), rng.integers(0, 2, size=200))
    items = list(zip(golds.tolist(), preds.tolist(), strict=True))

    def f1(xs: list[tuple[int, int]]) -> float:
        return harness_chabsa_f1([g for g, _ in xs], [p for _, p in xs])

    low, high = bootstrap_ci(items, f1, n_boot=200)
    assert low < f1(items) < high
    with pytest.raises(ValueError):
        bootstrap_ci(items, f1, n_boot=0)
