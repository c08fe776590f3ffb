"""Recompute every score of `metrics/eval/<ckpt>.json` from `metrics/predictions/<ckpt>.jsonl`.

A metrics file is only checkable if its items are: each predictions row holds what its task's
per-item scorer takes, so anyone can re-derive the scores (or score the same outputs another
way) without rerunning a model. A row is

    {"task", "block", "id", "gold", "prediction", "truncated", "unscorable"}

`gold` is in scoring form (a choice index, chABSA's -100 for neutral, GSM8K's final number, an
EDINET label; the reference text for the visual checks) and `prediction` is the raw output: the
generated text, or each choice's log-likelihood at full precision. Text rows are scored by the
task's `Scorer.item` from the benchmark registry, the same function lm-eval's `process_results`
calls during the run; visual rows by `finstage.evaluate.visual.SCORERS`. `truncated` is how
many prompt tokens were cut to fit the window, `unscorable` whether the item could not fit.

`evaluate_checkpoint` checks before it writes that its rows rescore to exactly the per-item
values its metrics come from, so the two files cannot disagree.

    from finstage.evaluate.rescore import load_predictions, rescore
    blocks = rescore(load_predictions("metrics/predictions/p0.jsonl"))  # point estimates
    full = rescore(rows, bootstrap=1000, seed=1234)  # == the metrics file, protocol aside
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from finstage.benchmarks.registry import HARNESS, HARNESS_AVERAGE, task_scorers
from finstage.evaluate.summary import Block, Scored, average_block, summarise
from finstage.evaluate.visual import SCORERS

Row = dict[str, Any]


def load_predictions(path: Path | str) -> list[Row]:
    """The rows of a predictions JSONL file, in order."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def rescore_scored(rows: Iterable[Row]) -> dict[str, Scored]:
    """Per block, the per-item values and statistics the rows score to (blocks in row order)."""
    scorers = task_scorers()
    by_task: dict[str, list[Row]] = {}
    for row in rows:
        by_task.setdefault(row["task"], []).append(row)
    blocks: dict[str, Scored] = {}
    for task, task_rows in by_task.items():
        if task in SCORERS:
            blocks[task] = _visual(task, task_rows)
            continue
        if task not in scorers:
            raise ValueError(f"predictions name task {task!r}, which no benchmark defines")
        block_name, scorer = scorers[task]
        block = blocks.setdefault(block_name, Scored())
        items = [scorer.item(r["gold"], r["prediction"]) for r in task_rows]
        for score, stat in scorer.scores.items():
            block.add(score, [item[score] for item in items], stat)
        if scorer.parsed is not None:
            block.parsed = [item[scorer.parsed] for item in items]
    return blocks


def _visual(check: str, rows: list[Row]) -> Scored:
    """A visual check's values from its rows: a record reduced to what the scorer reads."""
    records = [
        {"answer": r["gold"], "messages": [{"role": "assistant", "content": r["gold"]}]}
        for r in rows
    ]
    return SCORERS[check](records, [r["prediction"] for r in rows])


def window_counts(rows: Iterable[Row]) -> dict[str, dict[str, int]]:
    """Per block, `n_truncated` and `n_unscorable`: distinct items (ids) any of whose requests
    had its prompt cut, or could not fit the window at all."""
    truncated: dict[str, set[str]] = {}
    unscorable: dict[str, set[str]] = {}
    for row in rows:
        block = row["block"]
        truncated.setdefault(block, set())
        unscorable.setdefault(block, set())
        if row.get("truncated", 0) > 0:
            truncated[block].add(str(row["id"]))
        if row.get("unscorable", False):
            unscorable[block].add(str(row["id"]))
    return {
        b: {"n_truncated": len(truncated[b]), "n_unscorable": len(unscorable[b])} for b in truncated
    }


def metrics_blocks(
    scored: dict[str, Scored], rows: list[Row], n_boot: int | None, seed: int
) -> dict[str, Block]:
    """Every metrics block: each block's scores (intervals unless `n_boot` is None), counts and
    window counts, and the harness average after them."""
    counts = window_counts(rows)
    zero = {"n_truncated": 0, "n_unscorable": 0}
    metrics = {
        name: {**summarise(s, n_boot, seed), **counts.get(name, zero)} for name, s in scored.items()
    }
    if all(b.name in scored for b in HARNESS):
        primary = [
            (scored[b.name].items[b.scores[0]], scored[b.name].stats[b.scores[0]]) for b in HARNESS
        ]
        (average,) = HARNESS_AVERAGE.scores
        harness_counts = {key: sum(counts.get(b.name, zero)[key] for b in HARNESS) for key in zero}
        metrics[HARNESS_AVERAGE.name] = {
            **average_block(primary, n_boot, seed, average),
            **harness_counts,
        }
    return metrics


def rescore(rows: list[Row], bootstrap: int | None = None, seed: int = 0) -> dict[str, Block]:
    """Block -> scores recomputed from predictions rows, plus `n`, `coverage`, `n_unparsed`,
    `n_truncated` and `n_unscorable`; with `bootstrap` (and the run's `seed`) also each score's
    `_lo`/`_hi`, equal to the metrics file's (`evaluate.bootstrap`, `evaluate.seed`)."""
    return metrics_blocks(rescore_scored(rows), rows, bootstrap, seed)
