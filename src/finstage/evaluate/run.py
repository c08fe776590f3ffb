"""Evaluate one checkpoint on every benchmark and write metrics with identical keys for all.

Text benchmarks (the registry's, in report order) run through lm-eval with our LM adapter;
page-image checks through our own visual evaluator. Every block of `metrics/eval/<ckpt>.json`
has each score with its 95% bootstrap interval (`_lo`/`_hi`), the item count `n`, the parse
`coverage`, `n_unparsed`, and how many items had their prompt cut to fit the window
(`n_truncated`) or could not fit at all (`n_unscorable`); the `protocol` block records how the
prompts were built. Every score can be recomputed from the predictions file with
`finstage.evaluate.rescore`, and is checked to be before anything is written.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finstage.benchmarks.download import DownloadConfig
from finstage.benchmarks.lmeval import TextTask, prediction
from finstage.benchmarks.registry import BENCHMARKS, PROTOCOL, Sources
from finstage.config import require
from finstage.evaluate.budgets import BudgetConfig
from finstage.evaluate.quiet import lm_eval_quiet
from finstage.evaluate.rescore import Row, metrics_blocks, rescore_scored
from finstage.evaluate.summary import Block, Scored

if TYPE_CHECKING:  # lm-eval and torch load when a model is scored, not when params are read
    from finstage.evaluate.lm import FinstageLM

DEVICE = re.compile(r"auto|cpu|mps|cuda(:[0-9]+)?")


@dataclass
class EvalConfig:
    batch_size: int
    max_length: int
    limit: int | None
    chat_template: bool  # false: raw prompts, no template (pfnet's leaderboard protocol)
    device: str  # auto | cpu | cuda | cuda:<n> | mps
    gsm8k_max_gen_toks: int
    edinet_max_gen_toks: int
    edinet_sheet_chars: int | None  # cut per EDINET sheet; null keeps sheets whole
    visual_max_new_tokens: int
    budget_percentile: float  # checked by the `budgets` stage (evaluate/budgets.py)
    bootstrap: int  # resamples per interval
    seed: int
    sources: Sources
    downloads: DownloadConfig  # read by the `sources` stage, which downloads url sources

    def check(self, where: str) -> None:
        require(self.batch_size >= 1, f"{where}.batch_size", "must be >= 1")
        require(self.max_length >= 2, f"{where}.max_length", "must be >= 2 tokens")
        require(
            self.limit is None or self.limit >= 1,
            f"{where}.limit",
            "must be null (all items) or >= 1",
        )
        require(
            DEVICE.fullmatch(self.device) is not None,
            f"{where}.device",
            f"must be auto, cpu, cuda, cuda:<n> or mps, got {self.device!r}",
        )
        for name in ("gsm8k_max_gen_toks", "edinet_max_gen_toks", "visual_max_new_tokens"):
            budget = getattr(self, name)
            require(
                1 <= budget < self.max_length,
                f"{where}.{name}",
                f"must be >= 1 and below max_length ({self.max_length}) so a prompt still fits, "
                f"got {budget}",
            )
        require(self.bootstrap >= 100, f"{where}.bootstrap", "must be >= 100 resamples")
        BudgetConfig(
            self.gsm8k_max_gen_toks,
            self.edinet_max_gen_toks,
            self.visual_max_new_tokens,
            self.budget_percentile,
        ).check(where)
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


def protocol(cfg: EvalConfig) -> Block:
    """How prompts were built, as numbers (`dvc metrics` reads numbers): 1.0 = each prompt went
    through the checkpoint's chat template, 0.0 = raw prompts (pfnet's leaderboard protocol)."""
    return {"chat_template": 1.0 if cfg.chat_template else 0.0, "max_length": cfg.max_length}


def evaluate_checkpoint(
    checkpoint: Path, tasks: list[TextTask], visual: Path, pages: Path, cfg: EvalConfig
) -> tuple[dict[str, Block], list[dict]]:
    """Returns (metrics, predictions); metrics has the same keys for every checkpoint.

    `visual` holds one folder of held-out records per visual check; `pages` is the page store.
    Raises RuntimeError if the predictions would not rescore to the metrics.
    """
    from finstage.evaluate.lm import FinstageLM
    from finstage.evaluate.visual import score_visual
    from finstage.pagestore import PageStore

    lm = FinstageLM.from_checkpoint(
        checkpoint, cfg.batch_size, cfg.max_length, cfg.chat_template, cfg.device
    )
    scored, predictions = run_text_tasks(lm, tasks, cfg)
    visual_scored, visual_predictions = score_visual(
        lm, visual, PageStore(pages), cfg.limit, cfg.visual_max_new_tokens
    )
    scored.update(visual_scored)
    rows = predictions + visual_rows(lm, visual_predictions)
    check_rescorable(scored, rows)
    metrics = metrics_blocks(scored, rows, cfg.bootstrap, cfg.seed)
    metrics[PROTOCOL] = protocol(cfg)
    return metrics, rows


def run_text_tasks(
    lm: FinstageLM, tasks: list[TextTask], cfg: EvalConfig
) -> tuple[dict[str, Scored], list[Row]]:
    import lm_eval
    from lm_eval.tasks import TaskManager

    with lm_eval_quiet():
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
    rows: list[Row] = []
    for task in tasks:
        samples = sorted(out["samples"][task.name], key=lambda s: s["doc_id"])
        block = blocks.setdefault(task.block, Scored())
        for score, stat in task.scores.items():
            block.add(score, [_item(s[score]) for s in samples], stat)
        if task.parsed is not None:
            block.parsed = [s[task.parsed] for s in samples]
        output_type = task.config["output_type"]
        for s in samples:
            key = (task.name, s["doc_id"])
            rows.append(
                {
                    "task": task.name,
                    "block": task.block,
                    "id": s["doc"].get("id", s["doc_id"]),
                    "gold": task.gold(s["doc"]),
                    "prediction": prediction(output_type, s["filtered_resps"]),
                    "truncated": lm.truncated.get(key, 0),
                    "unscorable": key in lm.unscorable,
                }
            )
    return blocks, rows


def visual_rows(lm: FinstageLM, rows: list[dict]) -> list[Row]:
    """Visual predictions with their block and window facts; the adapter keys a visual item by
    (check, record index), and each check's rows are in record order."""
    out: list[Row] = []
    seen: dict[str, int] = {}
    for row in rows:
        index = seen.get(row["task"], 0)
        seen[row["task"]] = index + 1
        key = (row["task"], index)
        out.append(
            {
                **row,
                "block": row["task"],
                "truncated": lm.truncated.get(key, 0),
                "unscorable": key in lm.unscorable,
            }
        )
    return out


def check_rescorable(scored: dict[str, Scored], rows: list[Row]) -> None:
    """The predictions, as the JSONL file will hold them, must rescore to exactly the per-item
    values the metrics come from; a difference is a bug in what is logged, so it stops here."""
    rescored = rescore_scored(json.loads(json.dumps(rows)))
    for name, block in scored.items():
        again = rescored.get(name)
        for score, items in block.items.items():
            if again is None or [_item(v) for v in again.items.get(score, [])] != items:
                raise RuntimeError(
                    f"predictions for {name}.{score} do not rescore to the metrics' items"
                )
        if again.parsed != block.parsed:
            raise RuntimeError(f"predictions for {name} do not rescore to its parse coverage")


def _item(value: Any) -> Any:
    """lm-eval logs tuples as lists; statistics take (gold, prediction) tuples."""
    return tuple(value) if isinstance(value, list) else value


def write_metrics(
    metrics: dict, predictions: list[dict], metrics_path: Path, predictions_path: Path
) -> None:
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    predictions_path.parent.mkdir(parents=True, exist_ok=True)
    with predictions_path.open("w") as f:
        for p in predictions:
            f.write(json.dumps(p, ensure_ascii=False) + "\n")
