"""Evaluate one checkpoint on every benchmark and write metrics with identical keys for all."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lm_eval
from lm_eval.tasks import TaskManager

from finstage.config import require
from finstage.evaluate.lm import FinstageLM
from finstage.evaluate.tasks import chabsa_task, gsm8k_task
from finstage.evaluate.visual import generate_answers, score_ocr, score_vqa
from finstage.pages.store import PageStore
from finstage.records import Record, read_records


@dataclass
class EvalConfig:
    batch_size: int = 8
    max_length: int = 512
    limit: int | None = None
    gsm8k_max_gen_toks: int = 64
    visual_max_new_tokens: int = 64
    seed: int = 1234

    def check(self, where: str) -> None:
        require(self.batch_size >= 1, f"{where}.batch_size", "must be >= 1")
        require(
            self.limit is None or self.limit >= 1,
            f"{where}.limit",
            "must be null (all items) or >= 1",
        )


@dataclass
class EvalInputs:
    gsm8k: Path
    chabsa: Path
    ocr: Path
    vqa: Path
    pages: Path


def evaluate_checkpoint(
    checkpoint: Path, inputs: EvalInputs, cfg: EvalConfig
) -> tuple[dict, list[dict]]:
    """Returns (metrics, predictions); metrics has the same keys for every checkpoint."""
    lm = FinstageLM.from_checkpoint(checkpoint, cfg.batch_size, cfg.max_length)
    text_metrics, predictions = _text_benchmarks(lm, inputs, cfg)
    store = PageStore(inputs.pages)
    ocr = _limited(read_records(inputs.ocr), cfg.limit)
    ocr_answers = generate_answers(lm, ocr, store, cfg.visual_max_new_tokens)
    vqa = [_first_turn(r) for r in _limited(read_records(inputs.vqa), cfg.limit)]
    vqa_answers = generate_answers(lm, vqa, store, cfg.visual_max_new_tokens)
    for task, records, answers in (("ocr", ocr, ocr_answers), ("vqa", vqa, vqa_answers)):
        predictions += [
            {"task": task, "id": r["id"], "gold": r["messages"][-1]["content"], "prediction": a}
            for r, a in zip(records, answers, strict=True)
        ]
    metrics = {
        **text_metrics,
        "ocr": score_ocr(ocr, ocr_answers),
        "vqa": score_vqa(vqa, vqa_answers),
    }
    return metrics, predictions


def _text_benchmarks(
    lm: FinstageLM, inputs: EvalInputs, cfg: EvalConfig
) -> tuple[dict, list[dict]]:
    out = lm_eval.simple_evaluate(
        model=lm,
        tasks=[gsm8k_task(inputs.gsm8k, cfg.gsm8k_max_gen_toks), chabsa_task(inputs.chabsa)],
        task_manager=TaskManager(include_defaults=False),
        num_fewshot=0,
        limit=cfg.limit,
        bootstrap_iters=0,
        log_samples=True,
        random_seed=cfg.seed,
        numpy_random_seed=cfg.seed,
        torch_random_seed=cfg.seed,
        fewshot_random_seed=cfg.seed,
    )
    res = out["results"]
    n = {task: out["n-samples"][task]["effective"] for task in ("gsm8k_ja", "chabsa")}
    gsm = res["gsm8k_ja"]
    metrics = {
        "gsm8k": {
            "exact_match_strict": gsm["exact_match_strict,none"],
            "exact_match_flexible": gsm["exact_match_flexible,none"],
            "n": n["gsm8k_ja"],
            "n_unparsed": round(gsm["unparsed,none"] * n["gsm8k_ja"]),
        },
        "chabsa": {
            "acc": res["chabsa"]["acc,none"],
            "macro_f1": res["chabsa"]["f1,none"],
            "n": n["chabsa"],
            "n_unparsed": 0,
        },
    }
    predictions = [
        {"task": task, "id": s["doc_id"], "gold": str(s["target"]), "prediction": _response(s)}
        for task, samples in out["samples"].items()
        for s in samples
    ]
    return metrics, predictions


def _response(sample: dict[str, Any]) -> Any:
    resps = sample["filtered_resps"]
    if resps and isinstance(resps[0], list | tuple):  # multiple choice: (loglik, greedy) per choice
        return [round(r[0], 4) for r in resps]
    return resps[0] if resps else ""


def _limited(records, limit: int | None) -> list[Record]:
    out = []
    for r in records:
        if limit is not None and len(out) >= limit:
            break
        out.append(r)
    return out


def _first_turn(record: Record) -> Record:
    """VQA is scored on the extractive first turn: its answer is the short gold value."""
    first_answer = next(i for i, m in enumerate(record["messages"]) if m["role"] == "assistant")
    return {**record, "messages": record["messages"][: first_answer + 1]}


def write_metrics(
    metrics: dict, predictions: list[dict], metrics_path: Path, predictions_path: Path
) -> None:
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    predictions_path.parent.mkdir(parents=True, exist_ok=True)
    with predictions_path.open("w") as f:
        for p in predictions:
            f.write(json.dumps(p, ensure_ascii=False) + "\n")
