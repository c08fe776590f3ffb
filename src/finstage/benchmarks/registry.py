"""Every benchmark in report order: what evaluation scores, decontamination checks, the report
lists and the ``benchmarks`` stage writes stand-ins for. A benchmark is added here, once.

Report order puts pfnet's japanese-lm-fin-harness tasks together (chabsa, then the four exams
alphabetically, then their average), EDINET-Bench after them, and the visual checks on
held-out pages last.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass, make_dataclass
from pathlib import Path
from typing import Any

from finstage.benchmarks import chabsa, cpa_audit, edinet, gsm8k, pfnet_exams
from finstage.benchmarks.benchmark import Benchmark, Block
from finstage.benchmarks.lmeval import Scorer
from finstage.benchmarks.standin import ItemCount, StandIns
from finstage.benchmarks.transport import SourceSpec
from finstage.records import Record

BENCHMARKS: tuple[Benchmark, ...] = (
    gsm8k.GSM8K,
    chabsa.CHABSA,
    pfnet_exams.CMA_BASICS,
    cpa_audit.CPA_AUDIT,
    pfnet_exams.FP2,
    pfnet_exams.SECURITY_SALES_1,
    edinet.FRAUD,
    edinet.EARNINGS,
    edinet.INDUSTRY,
)
HARNESS = tuple(b for b in BENCHMARKS if b.harness)
# The unweighted mean of the harness tasks' primary scores, as pfnet's leaderboard reports it.
HARNESS_AVERAGE = Block(name="finharness", label="Financial harness", scores=("avg",))
# The metrics block recording how prompts were built (chat template, window): not a benchmark.
PROTOCOL = "protocol"
# Page-image checks on held-out documents, scored by `finstage.evaluate.visual`.
VISUAL_CHECKS = (
    Block(name="ocr", label="OCR", scores=("cer",), lower_is_better=("cer",)),
    Block(name="vqa", label="VQA", scores=("em", "anls")),
    Block(
        name="finqa_visual",
        label="Visual FinQA",
        scores=("acc", "rouge1", "rouge2", "rougeL", "rationale_sim"),
    ),
)


def task_scorers() -> dict[str, tuple[str, Scorer]]:
    """lm-eval task name -> (the metrics block it scores into, its scorer), for every
    benchmark: what rescoring logged predictions needs, with no docs loaded."""
    return {task: (b.name, scorer) for b in BENCHMARKS for task, scorer in b.scorers().items()}


def report_blocks() -> list[Block]:
    """Every metrics block in report order: the benchmarks, the harness average right after
    the last harness task, then the visual checks."""
    last_harness = max(i for i, b in enumerate(BENCHMARKS) if b.harness)
    return [
        *BENCHMARKS[: last_harness + 1],
        HARNESS_AVERAGE,
        *BENCHMARKS[last_harness + 1 :],
        *VISUAL_CHECKS,
    ]


Sources = make_dataclass(
    "Sources",
    [(b.name, SourceSpec) for b in BENCHMARKS],
    namespace={
        "__module__": __name__,
        "__doc__": "`evaluate.sources`: where each benchmark's raw data is read from (a local "
        "path, hub id or URL each), one key per registered benchmark.",
    },
)


@dataclass
class BenchConfig:
    """`benchmarks`: the stand-ins' seed and sizes, one section per benchmark family."""

    seed: int
    gsm8k: gsm8k.Gsm8kConfig
    chabsa: chabsa.ChabsaConfig
    cma_basics: ItemCount
    cpa_audit: cpa_audit.CpaConfig
    fp2: ItemCount
    security_sales_1: pfnet_exams.SecuritySalesConfig
    edinet: edinet.EdinetConfig


def build_benchmarks(
    cfg: BenchConfig, out_dir: Path, train_records: Iterable[Record]
) -> dict[str, Any]:
    """Write every stand-in and manifest.json under out_dir; returns the manifest.

    Items found in `train_records` are dropped and counted. Stand-ins are written family by
    family (the families in order of their first benchmark), so a family's files sit together
    in the manifest. Each entry is keyed by the benchmark's name and carries ``source`` (its
    SourceSpec relative to out_dir), ``items``, the files' sha256 and ``dropped_as_in_training``.
    """
    out = StandIns.excluding(out_dir, cfg.seed, train_records)
    families = list(dict.fromkeys(type(b).__module__ for b in BENCHMARKS))
    for benchmark in sorted(BENCHMARKS, key=lambda b: families.index(type(b).__module__)):
        sizes = functools.reduce(getattr, benchmark.stand_in_params.split("."), cfg)
        benchmark.write_stand_in(sizes, out)
    (Path(out_dir) / "manifest.json").write_text(
        json.dumps(out.manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return out.manifest
