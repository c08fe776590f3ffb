"""Evaluate one checkpoint on every benchmark and write metrics with identical keys for all.

Text benchmarks run through lm-eval with our LM adapter; page-image checks through our own
visual evaluator. Every block of `metrics/<ckpt>.json` has each score with its 95% bootstrap
interval (`_lo`/`_hi`), the item count `n`, the parse `coverage` and `n_unparsed`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lm_eval
from lm_eval.tasks import TaskManager

from finstage.config import require
from finstage.evaluate.lm import FinstageLM
from finstage.evaluate.sources import SourceSpec, load_docs
from finstage.evaluate.summary import Block, Scored, average_block, summarise
from finstage.evaluate.tasks import (
    TextTask,
    chabsa_task,
    edinet_binary_task,
    edinet_generation_task,
    edinet_industry_task,
    exam_task,
    gsm8k_task,
)
from finstage.evaluate.visual import finqa_scored, generate_answers, ocr_scored, vqa_scored
from finstage.pages.store import PageStore
from finstage.records import Record, read_records

EXAMS = ("cma_basics", "cpa_audit", "fp2", "security_sales_1")
HARNESS = ("chabsa", *EXAMS)  # pfnet's five tasks; chabsa scores by harness_f1, the rest acc
VISUAL = ("ocr", "vqa", "finqa_visual")


def _bench(path: str) -> SourceSpec:
    return SourceSpec(path=path)


def _edinet(split: str = "test") -> SourceSpec:
    return SourceSpec(path="data/bench/edinet", split=split)


@dataclass
class Sources:
    """Where each benchmark's raw data is read from (a local path, hub id or URL each)."""

    gsm8k: SourceSpec = field(default_factory=lambda: _bench("data/bench/gsm8k/test.jsonl"))
    chabsa: SourceSpec = field(default_factory=lambda: _bench("data/bench/chabsa"))
    cma_basics: SourceSpec = field(default_factory=lambda: _bench("data/bench/cma_basics"))
    cpa_audit: SourceSpec = field(default_factory=lambda: _bench("data/bench/cpa_audit"))
    fp2: SourceSpec = field(default_factory=lambda: _bench("data/bench/fp2"))
    security_sales_1: SourceSpec = field(
        default_factory=lambda: _bench("data/bench/security_sales_1")
    )
    edinet_fraud: SourceSpec = field(default_factory=_edinet)
    edinet_earnings: SourceSpec = field(default_factory=_edinet)
    edinet_industry: SourceSpec = field(default_factory=lambda: _edinet("train"))


@dataclass
class EvalConfig:
    batch_size: int = 8
    max_length: int = 512
    limit: int | None = None
    gsm8k_max_gen_toks: int = 64
    edinet_max_gen_toks: int = 64
    edinet_sheet_chars: int | None = None  # cut per EDINET sheet; null keeps sheets whole
    visual_max_new_tokens: int = 64
    bootstrap: int = 1000  # resamples per interval
    seed: int = 1234
    sources: Sources = field(default_factory=Sources)

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


def load_text_tasks(cfg: EvalConfig, root: Path = Path(".")) -> list[TextTask]:
    """Every text task, its docs read (and cut to `limit`) before any model loads."""

    def docs(task: str) -> list[dict[str, Any]]:
        spec = getattr(cfg.sources, task)
        if spec.path is not None and not Path(spec.path).is_absolute():
            spec = SourceSpec(**{**spec.__dict__, "path": str(root / spec.path)})
        sheets = cfg.edinet_sheet_chars if task.startswith("edinet") else None
        found = load_docs(task, spec, max_chars_per_sheet=sheets)
        return found[: cfg.limit] if cfg.limit is not None else found

    tasks = [gsm8k_task(docs("gsm8k"), cfg.gsm8k_max_gen_toks), chabsa_task(docs("chabsa"))]
    tasks += [exam_task(name, docs(name)) for name in EXAMS]
    for block in ("edinet_fraud", "edinet_earnings"):
        edinet = docs(block)
        tasks += [
            edinet_binary_task(block, edinet),
            edinet_generation_task(block, edinet, cfg.edinet_max_gen_toks),
        ]
    tasks.append(edinet_industry_task(docs("edinet_industry")))
    return tasks


@dataclass
class VisualInputs:
    ocr: Path
    vqa: Path
    finqa_visual: Path
    pages: Path


def evaluate_checkpoint(
    checkpoint: Path, tasks: list[TextTask], visual: VisualInputs, cfg: EvalConfig
) -> tuple[dict[str, Block], list[dict]]:
    """Returns (metrics, predictions); metrics has the same keys for every checkpoint."""
    lm = FinstageLM.from_checkpoint(checkpoint, cfg.batch_size, cfg.max_length)
    scored, predictions = run_text_tasks(lm, tasks, cfg)
    visual_scored, visual_predictions = run_visual(lm, visual, cfg)
    scored.update(visual_scored)
    metrics = {name: summarise(s, cfg.bootstrap, cfg.seed) for name, s in scored.items()}
    harness = [
        (scored[t].items[_primary(scored[t])], scored[t].stats[_primary(scored[t])])
        for t in HARNESS
    ]
    metrics["finharness"] = average_block(harness, cfg.bootstrap, cfg.seed)
    return metrics, predictions + visual_predictions


def _primary(scored: Scored) -> str:
    return next(iter(scored.stats))


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


def run_visual(
    lm: FinstageLM, visual: VisualInputs, cfg: EvalConfig
) -> tuple[dict[str, Scored], list[dict]]:
    store = PageStore(visual.pages)
    scorers = {"ocr": ocr_scored, "vqa": vqa_scored, "finqa_visual": finqa_scored}
    blocks, predictions = {}, []
    for name in VISUAL:
        records = _limited(read_records(getattr(visual, name)), cfg.limit)
        if name == "vqa":
            records = [_first_turn(r) for r in records]
        answers = generate_answers(lm, records, store, cfg.visual_max_new_tokens)
        blocks[name] = scorers[name](records, answers)
        predictions += [
            {"task": name, "id": r["id"], "gold": r["messages"][-1]["content"], "prediction": a}
            for r, a in zip(records, answers, strict=True)
        ]
    return blocks, predictions


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
