"""lm-eval task configs for the local benchmark files, built in Python so paths are absolute.

Configs are plain dicts handed to lm-eval's TaskManager, so no task ever resolves to a hub
dataset or a hub metric: data comes from `dataset_path: json` with absolute files, and every
score comes from our own `process_results` with registered aggregations.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

from sklearn.metrics import f1_score

from finstage.distill.verify import extract_boxed, numbers_equal

GSM8K_PROMPT = (
    "次の問題を解いてください。"
    "最終的な答えは <Answer>\\boxed{数値}</Answer> の形で書いてください。\n"
    "問題: {{question}}"
)
CHABSA_DESCRIPTION = (
    "以下のセンテンスにおける、ターゲットのセンチメントをpositiveかnegativeで答えてください。\n\n\n"
)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def gold_number(answer: str) -> str:
    """GSM8K's reference answer is whatever follows the last '####'."""
    return answer.split("####")[-1].strip().replace(",", "")


def last_number(text: str) -> str | None:
    """lm-eval's flexible-extract: the last number in the response (after NFKC)."""
    found = _NUMBER.findall(unicodedata.normalize("NFKC", text))
    return found[-1].replace(",", "") if found else None


def gsm8k_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    response = results[0]
    gold = gold_number(doc["answer"])
    strict = extract_boxed(response)
    flexible = strict if strict is not None else last_number(response)
    return {
        "exact_match_strict": float(strict is not None and numbers_equal(strict, gold)),
        "exact_match_flexible": float(flexible is not None and numbers_equal(flexible, gold)),
        "unparsed": float(strict is None),
    }


def _mean(items: list[float]) -> float:
    return sum(items) / len(items) if items else 0.0


def macro_f1(items: list[tuple[int, int]]) -> float:
    golds, preds = zip(*items, strict=True) if items else ((), ())
    return float(f1_score(golds, preds, average="macro")) if items else 0.0


def gsm8k_task(path: Path, max_gen_toks: int) -> dict[str, Any]:
    return {
        "task": "gsm8k_ja",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(Path(path).resolve())}},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": GSM8K_PROMPT,
        "doc_to_target": "{{answer}}",
        "generation_kwargs": {
            "until": ["</Answer>"],
            "max_gen_toks": max_gen_toks,
            "do_sample": False,
        },
        "process_results": gsm8k_results,
        "metric_list": [
            {"metric": m, "aggregation": _mean, "higher_is_better": hib}
            for m, hib in (
                ("exact_match_strict", True),
                ("exact_match_flexible", True),
                ("unparsed", False),
            )
        ],
        "metadata": {"version": 1.0},
    }


def chabsa_task(path: Path) -> dict[str, Any]:
    return {
        "task": "chabsa",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(Path(path).resolve())}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "description": CHABSA_DESCRIPTION,
        "doc_to_text": "センテンス: {{sentence}}\nターゲット: {{target}}\n回答:",
        "doc_to_choice": ["positive", "negative"],
        "doc_to_target": "{{polarity}}",
        "target_delimiter": " ",
        "metric_list": [
            {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
            {"metric": "f1", "aggregation": macro_f1, "higher_is_better": True},
        ],
        "metadata": {"version": 1.0},
    }
