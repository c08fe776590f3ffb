"""lm-eval task configs built in Python from already-loaded docs, and their per-item scorers.

Configs are plain dicts handed to lm-eval's TaskManager with a `custom_dataset`, so no task ever
resolves to a hub dataset or a hub metric. Each task scores an item with ONE function of
(gold, prediction): the gold in its scoring form (`TextTask.gold` of the doc) and the model's
raw output (the generated text, or each choice's log-likelihood). lm-eval's `process_results`
calls it, and so does `finstage.evaluate.rescore` on the logged predictions, so the metrics file
and the predictions file cannot drift apart. The statistic over those per-item values (mean,
macro-F1, ROC-AUC) is the aggregation, and the same items are resampled for the confidence
intervals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # loaded by the functions that use it: importing this module stays light
    import datasets

from finstage.scoring import accuracy, mean, roc_auc

Doc = dict[str, Any]  # one normalised benchmark item, as lm-eval's dataset row
Statistic = Callable[[Sequence[Any]], float]
# (gold in scoring form, prediction) -> per-item values, one per score (plus `parsed`)
ItemScore = Callable[[Any, Any], dict[str, Any]]
MULTIPLE_CHOICE = "multiple_choice"
GENERATE_UNTIL = "generate_until"


@dataclass(frozen=True)
class Scorer:
    """How one task scores an item and turns the items into scores.

    `item(gold, prediction)`: a prediction is the generated text (generate_until) or the list of
    each choice's log-likelihood (multiple_choice), exactly what the predictions file logs.
    """

    item: ItemScore
    scores: dict[str, Statistic]  # per-item key -> statistic; the first is the block's primary
    parsed: str | None = None  # per-item key (0/1) whose mean is the block's parse coverage


@dataclass(frozen=True)
class TextTask:
    """One lm-eval task: its config, the block it scores into, its gold and its scorer."""

    name: str  # lm-eval task name
    block: str  # metrics/<ckpt>.json block it contributes to
    config: dict[str, Any]
    gold: Callable[[Doc], Any]  # the doc's gold in the form `scorer.item` takes
    scorer: Scorer

    @property
    def scores(self) -> dict[str, Statistic]:
        return self.scorer.scores

    @property
    def parsed(self) -> str | None:
        return self.scorer.parsed


def prediction(output_type: str, results: Sequence[Any]) -> Any:
    """What the model said, as scorers take it and the predictions file logs it: the text of a
    generation, or the log-likelihood of each choice (lm-eval passes (loglik, is_greedy))."""
    if output_type == MULTIPLE_CHOICE:
        return [float(r[0]) for r in results]
    return results[0] if results else ""


def text_task(
    name: str,
    block: str,
    docs: list[Doc],
    gold: Callable[[Doc], Any],
    scorer: Scorer,
    **fields: Any,
) -> TextTask:
    """A task whose lm-eval `process_results` is `scorer.item(gold(doc), prediction)`; `fields`
    are the rest of the lm-eval config (output_type, doc_to_text, ...)."""
    output_type = fields["output_type"]

    def process_results(doc: Doc, results: Sequence[Any]) -> dict[str, Any]:
        return scorer.item(gold(doc), prediction(output_type, results))

    extra = [scorer.parsed] if scorer.parsed is not None else []
    config = task_config(
        name,
        docs,
        process_results=process_results,
        metric_list=metric_list(scorer.scores, extra),
        **fields,
    )
    return TextTask(name, block, config, gold, scorer)


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
    import datasets

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


def argmax(lls: Sequence[float]) -> int:
    """The choice with the highest log-likelihood (the first of equals)."""
    return max(range(len(lls)), key=lls.__getitem__)


def choice_item(*keys: str) -> ItemScore:
    """A multiple-choice item scored as the pair (gold index, chosen index) under each key."""

    def item(gold: Any, lls: Sequence[float]) -> dict[str, Any]:
        pair = (gold, argmax(lls))
        return dict.fromkeys(keys, pair)

    return item
