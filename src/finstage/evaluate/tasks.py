"""lm-eval task configs for every text benchmark, built in Python from already-loaded docs.

Configs are plain dicts handed to lm-eval's TaskManager with a `custom_dataset`, so no task ever
resolves to a hub dataset or a hub metric. Each task's `process_results` returns per-item
values; the statistic over those items (mean, macro-F1, ROC-AUC) is the aggregation, and the
same items are resampled for the confidence intervals (`evaluate.summary`).

The prompts follow the reference protocols: pfnet's japanese-lm-fin-harness default prompt
version, 0-shot, raw `acc` from argmax log-likelihood; EDINET-Bench's sheets; GSM8K with a
`\\boxed{}` answer. Each context goes through the checkpoint's chat template in the LM adapter,
the same way for every checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import datasets

from finstage.distill.verify import numbers_equal
from finstage.evaluate.answers import extract_flexible, extract_strict, parse_edinet_json
from finstage.evaluate.scores import accuracy, harness_chabsa_f1, mean, roc_auc
from finstage.evaluate.sources import (
    EDINET_CHOICES,
    EDINET_INSTRUCTIONS,
    EDINET_QUESTIONS,
    INDUSTRIES,
)

Statistic = Callable[[Sequence[Any]], float]
Doc = dict[str, Any]

GSM8K_PROMPT = (
    "次の問題を解いてください。"
    "最終的な答えは <Answer>\\boxed{数値}</Answer> の形で書いてください。\n"
    "問題: {{question}}"
)
CHABSA_DESCRIPTION = (
    "以下のセンテンスにおける、ターゲットのセンチメントをpositiveかnegativeで答えてください。\n\n\n"
)
CHABSA_CHOICES = ["positive", "negative"]
NEUTRAL = -100  # pfnet's gold for neutral targets: never predicted, so always wrong


def _pairs_stat(fn: Callable[[list, list], float]) -> Statistic:
    def stat(items: Sequence[tuple[Any, Any]]) -> float:
        if not items:
            return math.nan
        golds, preds = zip(*items, strict=True)
        return fn(list(golds), list(preds))

    return stat


def _accuracy(items: Sequence[tuple[Any, Any]]) -> float:
    return _pairs_stat(accuracy)(items)


def _harness_f1(items: Sequence[tuple[Any, Any]]) -> float:
    return _pairs_stat(harness_chabsa_f1)(items)


def _roc_auc(items: Sequence[tuple[Any, Any]]) -> float:
    return _pairs_stat(roc_auc)(items)


@dataclass(frozen=True)
class TextTask:
    """One lm-eval task: its config and the statistic of each per-item value it returns."""

    name: str  # lm-eval task name
    block: str  # metrics/<ckpt>.json block it contributes to
    config: dict[str, Any]
    scores: dict[str, Statistic]  # per-item key -> statistic; the first is the block's primary
    parsed: str | None = None  # per-item key (0/1) whose mean is the block's parse coverage


def _config(name: str, docs: list[Doc], **fields: Any) -> dict[str, Any]:
    def dataset(**_: Any) -> datasets.DatasetDict:
        return datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})

    return {
        "task": name,
        "custom_dataset": dataset,
        "test_split": "test",
        "metadata": {"version": 1.0},
        **fields,
    }


def _metric_list(scores: dict[str, Statistic], extra: Sequence[str] = ()) -> list[dict]:
    metrics = [{"metric": m, "aggregation": s, "higher_is_better": True} for m, s in scores.items()]
    return metrics + [{"metric": m, "aggregation": mean, "higher_is_better": True} for m in extra]


def _argmax(results: Sequence[tuple[float, bool]]) -> int:
    lls = [ll for ll, _ in results]
    return max(range(len(lls)), key=lls.__getitem__)


# ------------------------------------------------------------------------------------ GSM8K


def gold_number(answer: str) -> str:
    """GSM8K's reference answer is whatever follows the last '####'."""
    return answer.split("####")[-1].strip().replace(",", "")


def gsm8k_results(doc: Doc, results: list[str]) -> dict[str, float]:
    gold = gold_number(doc["answer"])
    strict = extract_strict(results[0])
    flexible = strict if strict is not None else extract_flexible(results[0])
    return {
        "em_strict": float(strict is not None and numbers_equal(strict, gold)),
        "em_flexible": float(flexible is not None and numbers_equal(flexible, gold)),
        "parsed": float(strict is not None),
    }


def gsm8k_task(docs: list[Doc], max_gen_toks: int) -> TextTask:
    scores = {"em_strict": mean, "em_flexible": mean}
    config = _config(
        "gsm8k_ja",
        docs,
        output_type="generate_until",
        doc_to_text=GSM8K_PROMPT,
        doc_to_target="{{answer}}",
        generation_kwargs={"until": ["</Answer>"], "max_gen_toks": max_gen_toks},
        process_results=gsm8k_results,
        metric_list=_metric_list(scores, ["parsed"]),
    )
    return TextTask("gsm8k_ja", "gsm8k", config, scores, parsed="parsed")


# ------------------------------------------------------------------------------ fin harness


def chabsa_gold(doc: Doc) -> int:
    polarity = doc["polarity"]
    return CHABSA_CHOICES.index(polarity) if polarity in CHABSA_CHOICES else NEUTRAL


def chabsa_results(doc: Doc, results: list[tuple[float, bool]]) -> dict[str, Any]:
    pair = (chabsa_gold(doc), _argmax(results))
    return {"harness_f1": pair, "acc": pair}


def chabsa_task(docs: list[Doc]) -> TextTask:
    scores = {"harness_f1": _harness_f1, "acc": _accuracy}
    config = _config(
        "chabsa",
        docs,
        output_type="multiple_choice",
        description=CHABSA_DESCRIPTION,
        doc_to_text="センテンス: {{sentence}}\nターゲット: {{target}}\n回答:",
        doc_to_choice=CHABSA_CHOICES,
        doc_to_target=lambda doc: max(chabsa_gold(doc), 0),  # logging only; scoring uses gold
        target_delimiter=" ",
        process_results=chabsa_results,
        metric_list=_metric_list(scores),
    )
    return TextTask("chabsa", "chabsa", config, scores)


def exam_results(doc: Doc, results: list[tuple[float, bool]]) -> dict[str, Any]:
    return {"acc": (doc["gold"], _argmax(results))}


def exam_task(name: str, docs: list[Doc]) -> TextTask:
    """cma_basics, cpa_audit, fp2, security_sales_1: the prompt already holds the description."""
    scores = {"acc": _accuracy}
    config = _config(
        name,
        docs,
        output_type="multiple_choice",
        doc_to_text=lambda doc: doc["prompt"],
        doc_to_choice=lambda doc: doc["choices"],
        doc_to_target=lambda doc: doc["gold"],
        target_delimiter="",
        process_results=exam_results,
        metric_list=_metric_list(scores),
    )
    return TextTask(name, name, config, scores)


# ---------------------------------------------------------------------------------- EDINET


def positive_probability(results: Sequence[tuple[float, bool]]) -> float:
    """P(positive answer) from the two answers' log-likelihoods, normalised over the pair."""
    negative, positive = (ll for ll, _ in results)
    return 1.0 / (1.0 + math.exp(negative - positive))


def edinet_binary_results(doc: Doc, results: list[tuple[float, bool]]) -> dict[str, Any]:
    return {"roc_auc": (doc["label"], positive_probability(results))}


def edinet_binary_task(block: str, docs: list[Doc]) -> TextTask:
    scores = {"roc_auc": _roc_auc}
    config = _config(
        block,
        docs,
        output_type="multiple_choice",
        doc_to_text=lambda doc: f"{doc['context']}\n\n{EDINET_QUESTIONS[block]}",
        doc_to_choice=list(EDINET_CHOICES[block]),
        doc_to_target=lambda doc: doc["label"],
        target_delimiter=" ",
        process_results=edinet_binary_results,
        metric_list=_metric_list(scores),
    )
    return TextTask(block, block, config, scores)


def edinet_generation_results(doc: Doc, results: list[str]) -> dict[str, Any]:
    """An unparseable answer is scored as an uninformative 0.5, and counted, never dropped."""
    answer = parse_edinet_json(results[0])
    prob = answer.prob if answer.prob is not None else 0.5
    return {"gen_roc_auc": (doc["label"], prob), "parsed": float(answer.prob is not None)}


def edinet_generation_task(block: str, docs: list[Doc], max_gen_toks: int) -> TextTask:
    scores = {"gen_roc_auc": _roc_auc}
    config = _config(
        f"{block}_gen",
        docs,
        output_type="generate_until",
        doc_to_text=lambda doc: f"{doc['context']}\n\n{EDINET_INSTRUCTIONS[block]}",
        doc_to_target=lambda doc: doc["label"],
        generation_kwargs={"until": ["\n\n\n"], "max_gen_toks": max_gen_toks},
        process_results=edinet_generation_results,
        metric_list=_metric_list(scores, ["parsed"]),
    )
    return TextTask(f"{block}_gen", block, config, scores, parsed="parsed")


def industry_results(doc: Doc, results: list[tuple[float, bool]]) -> dict[str, Any]:
    return {"acc": (INDUSTRIES.index(doc["industry"]), _argmax(results))}


def edinet_industry_task(docs: list[Doc]) -> TextTask:
    scores = {"acc": _accuracy}
    config = _config(
        "edinet_industry",
        docs,
        output_type="multiple_choice",
        doc_to_text=lambda doc: f"{doc['context']}\n\n{EDINET_QUESTIONS['edinet_industry']}",
        doc_to_choice=list(INDUSTRIES),
        doc_to_target=lambda doc: INDUSTRIES.index(doc["industry"]),
        target_delimiter=" ",
        process_results=industry_results,
        metric_list=_metric_list(scores),
    )
    return TextTask("edinet_industry", "edinet_industry", config, scores)
