"""Evaluate one checkpoint on every benchmark and write metrics with identical keys for all.

Text benchmarks (the registry's, in report order) run through lm-eval with our LM adapter;
page-image checks through our own visual evaluator. Every block of `metrics/<ckpt>.json` has
each score with its 95% bootstrap interval (`_lo`/`_hi`), the item count `n`, the parse
`coverage` and `n_unparsed`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lm_eval
from lm_eval.tasks import TaskManager

from finstage.benchmarks.lmeval import TextTask
from finstage.benchmarks.registry import BENCHMARKS, HARNESS, HARNESS_AVERAGE, Sources
from finstage.config import require
from finstage.evaluate.lm import FinstageLM
from finstage.evaluate.summary import Block, Scored, average_block, summarise
from finstage.evaluate.visual import score_visual


@dataclass
class EvalConfig:
    batch_size: int
    max_length: int
    limit: int | None
    gsm8k_max_gen_toks: int
    edinet_max_gen_toks: int
    edinet_sheet_chars: int | None  # cut per EDINET sheet; null keeps sheets whole
    visual_max_new_tokens: int
    bootstrap: int  # resamples per interval
    seed: int
    sources: Sources

    def check(self, where: str) -> None:
        require(self.batch_size >= 1, f"{where}.batch_size", "must be >= 1")
        require(
            self.limit is None or self.limit >= 1,
            f"{where}.limit",
            "must be null (all items) or >= 1",
        )
        require(self.bootstrap >= 100, f"{where}.bootstrap", "must be >= 100 resamples")
        require(
            self.edinet_sheet_chars is None or self.edinet_sheet_chars >= 1,
            f"{where}.edinet_sheet_chars",
            "must be null (whole sheets) or >= 1",
        )


def load_text_tasks(cfg: EvalConfig) -> list[TextTask]:
    """Every benchmark's tasks, its docs read (and cut to `limit`) before any model loads."""
    tasks = []
    for benchmark in BENCHMARKS:
        docs = benchmark.load_docs(getattr(cfg.sources, benchmark.name), cfg)
        tasks += benchmark.text_tasks(docs[: cfg.limit] if cfg.limit is not None else docs, cfg)
    return tasks


def evaluate_checkpoint(
    checkpoint: Path, tasks: list[TextTask], visual: Path, pages: Path, cfg: EvalConfig
) -> tuple[dict[str, Block], list[dict]]:
    """Returns (metrics, predictions); metrics has the same keys for every checkpoint.

    `visual` holds one folder of held-out records per visual check; `pages` is the page store.
    """
    lm = FinstageLM.from_checkpoint(checkpoint, cfg.batch_size, cfg.max_length)
    scored, predictions = run_text_tasks(lm, tasks, cfg)
    visual_scored, visual_predictions = score_visual(
        lm, visual, pages, cfg.limit, cfg.visual_max_new_tokens
    )
    scored.update(visual_scored)
    metrics = {name: summarise(s, cfg.bootstrap, cfg.seed) for name, s in scored.items()}
    harness = [
        (scored[b.name].items[b.scores[0]], scored[b.name].stats[b.scores[0]]) for b in HARNESS
    ]
    (average,) = HARNESS_AVERAGE.scores
    metrics[HARNESS_AVERAGE.name] = average_block(harness, cfg.bootstrap, cfg.seed, average)
    return metrics, predictions + visual_predictions


def run_text_tasks(
    lm: FinstageLM, tasks: list[TextTask], cfg: EvalConfig
) -> tuple[dict[str, Scored], list[dict]]:
    out = lm_eval.simple_evaluate(
        model=lm,
        tasks=[t.config for t in tasks],
        task_manager=TaskManager(include_defaults=False),
        num_fewshot=0,
        bootstrap_iters=0,
        log_samples=True,
        random_seed=cfg.seed,
        numpy_random_seed=cfg.seed,
        torch_random_seed=cfg.seed,
        fewshot_random_seed=cfg.seed,
    )
    blocks: dict[str, Scored] = {}
    predictions = []
    for task in tasks:
        samples = sorted(out["samples"][task.name], key=lambda s: s["doc_id"])
        block = blocks.setdefault(task.block, Scored())
        for score, stat in task.scores.items():
            block.add(score, [_item(s[score]) for s in samples], stat)
        if task.parsed is not None:
            block.parsed = [s[task.parsed] for s in samples]
        predictions += [
            {
                "task": task.name,
                "id": s["doc"].get("id", s["doc_id"]),
                "gold": str(s["target"]),
                "prediction": _response(s),
            }
            for s in samples
        ]
    return blocks, predictions


def _item(value: Any) -> Any:
    """lm-eval logs tuples as lists; statistics take (gold, prediction) tuples."""
    return tuple(value) if isinstance(value, list) else value


def _response(sample: dict[str, Any]) -> Any:
    resps = sample["filtered_resps"]
    if resps and isinstance(resps[0], list | tuple):  # multiple choice: (loglik, greedy) per choice
        return [round(r[0], 4) for r in resps]
    return resps[0] if resps else ""


def write_metrics(
    metrics: dict, predictions: list[dict], metrics_path: Path, predictions_path: Path
) -> None:
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    predictions_path.parent.mkdir(parents=True, exist_ok=True)
    with predictions_path.open("w") as f:
        for p in predictions:
            f.write(json.dumps(p, ensure_ascii=False) + "\n")
