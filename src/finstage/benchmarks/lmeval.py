"""lm-eval task configs built in Python from already-loaded docs, and their per-item statistics.

Configs are plain dicts handed to lm-eval's TaskManager with a `custom_dataset`, so no task ever
resolves to a hub dataset or a hub metric. Each task's `process_results` returns per-item
values; the statistic over those items (mean, macro-F1, ROC-AUC) is the aggregation, and the
same items are resampled for the confidence intervals. Each context goes through the
checkpoint's chat template in the LM adapter, the same way for every checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import datasets

from finstage.scoring import accuracy, mean, roc_auc

Doc = dict[str, Any]  # one normalised benchmark item, as lm-eval's dataset row
Statistic = Callable[[Sequence[Any]], float]


@dataclass(frozen=True)
class TextTask:
    """One lm-eval task: its config and the statistic of each per-item value it returns."""

    name: str  # lm-eval task name
    block: str  # metrics/<ckpt>.json block it contributes to
    config: dict[str, Any]
    scores: dict[str, Statistic]  # per-item key -> statistic; the first is the block's primary
    parsed: str | None = None  # per-item key (0/1) whose mean is the block's parse coverage


def pair_statistic(fn: Callable[[list, list], float]) -> Statistic:
    """A statistic over (gold, prediction) items from one over parallel gold and prediction
    lists: corpus-level metrics must see each resample's items as pairs."""

    def stat(items: Sequence[tuple[Any, Any]]) -> float:
        if not items:
            return math.nan
        golds, preds = zip(*items, strict=True)
        return fn(list(golds), list(preds))

    return stat


pair_accuracy = pair_statistic(accuracy)
pair_roc_auc = pair_statistic(roc_auc)


def task_config(name: str, docs: list[Doc], **fields: Any) -> dict[str, Any]:
    """An lm-eval task config over `docs`, scored 0-shot on a "test" split."""

    def dataset(**_: Any) -> datasets.DatasetDict:
        return datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})

    return {
        "task": name,
        "custom_dataset": dataset,
        "test_split": "test",
        "metadata": {"version": 1.0},
        **fields,
    }


def metric_list(scores: dict[str, Statistic], extra: Sequence[str] = ()) -> list[dict]:
    """lm-eval's metric list: the scores with their statistics, plus `extra` per-item means."""
    metrics = [{"metric": m, "aggregation": s, "higher_is_better": True} for m, s in scores.items()]
    return metrics + [{"metric": m, "aggregation": mean, "higher_is_better": True} for m in extra]


def argmax(results: Sequence[tuple[float, bool]]) -> int:
    """The choice with the highest log-likelihood (the first of equals)."""
    lls = [ll for ll, _ in results]
    return max(range(len(lls)), key=lls.__getitem__)
