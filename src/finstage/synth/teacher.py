"""Teachers turn one page into training records; `synthesize` runs one over the page store.

`Teacher` is the seam: the rule-based teacher here reads only the page's text layer (so every
answer is grounded by construction), and a model served behind an OpenAI-compatible endpoint
can replace it at paper scale by implementing the same `generate(page)`. Whatever the teacher,
`synthesize` re-checks each record against its page (`grounding.check`), counts what it drops,
and writes training and held-out documents to separate directories.

A page's text is untrusted: a web PDF may spell `<image>` or a template's `<|end|><|assistant|>`.
Turn markers stay text (the encoder never makes message text special tokens). The image marker
is reserved for the record's page, so a teacher reads the text with it masked
(`records.mask_markers`), and `grounding.check` rejects every record that quotes the masked
text: it is dropped and counted with the other rejections, and the stage never stops on it.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from tqdm import tqdm

from finstage.config import require
from finstage.pagestore import Page
from finstage.records import Record, mask_markers, write_records
from finstage.synth import grounding
from finstage.synth.caption import build_caption
from finstage.synth.finqa import FinqaConfig, build_finqa
from finstage.synth.ocr import OcrConfig, build_ocr
from finstage.synth.pagetext import parse_page_text
from finstage.synth.split import split_documents
from finstage.synth.tasks import TASKS
from finstage.synth.vqa import VqaConfig, build_vqa


@runtime_checkable
class Teacher(Protocol):
    """Anything that turns a page into records (sources among `TASKS`, meta.page_id set); the
    text it quotes or writes goes through `records.mask_markers`."""

    name: str

    def generate(self, page: Page) -> list[Record]: ...


@dataclass
class SynthConfig:
    seed: int
    eval_fraction: float
    teacher: Literal["rule"]  # "openai" (an OpenAI-compatible endpoint) slots in here later
    tasks: list[str]
    ocr: OcrConfig
    vqa: VqaConfig
    finqa: FinqaConfig

    def check(self, where: str) -> None:
        require(
            0.0 <= self.eval_fraction < 1.0,
            f"{where}.eval_fraction",
            f"must be in [0, 1), got {self.eval_fraction}",
        )
        unknown = [t for t in self.tasks if t not in TASKS]
        require(
            not unknown, f"{where}.tasks", f"has unknown task(s) {unknown}; known: {list(TASKS)}"
        )
        require(len(set(self.tasks)) == len(self.tasks), f"{where}.tasks", "lists a task twice")


class RuleTeacher:
    """Grounded rule-based teacher: OCR, captions, 2-turn VQA and finance QA from the text layer."""

    name = "rule"

    def __init__(self, cfg: SynthConfig):
        self.cfg = cfg

    def _rng(self, task: str, page: Page) -> random.Random:
        return random.Random(f"{self.cfg.seed}:{task}:{page['page_id']}")

    def generate(self, page: Page) -> list[Record]:
        pt = parse_page_text(mask_markers(page["text"]))
        tasks = tuple(self.cfg.tasks)
        out: list[Record] = []
        if "ocr" in tasks:
            out += build_ocr(page, pt, self.cfg.ocr, self._rng("ocr", page))
        if "caption" in tasks:
            out += build_caption(page, pt, self._rng("caption", page))
        if "vqa" in tasks:
            out += build_vqa(page, pt, self.cfg.vqa, self._rng("vqa", page))
        if "finqa_visual" in tasks or "finqa_text" in tasks:
            built = build_finqa(
                page,
                pt,
                self.cfg.finqa,
                self._rng("finqa_visual", page),
                self._rng("finqa_text", page),
                tasks,
            )
            for task in ("finqa_visual", "finqa_text"):
                out += built.get(task, [])
        return out


def make_teacher(cfg: SynthConfig) -> Teacher:
    if cfg.teacher == "rule":
        return RuleTeacher(cfg)
    raise NotImplementedError(f"teacher {cfg.teacher!r} is not implemented yet")


@dataclass
class SynthResult:
    counts: dict[str, dict[str, int]]  # split → task → records
    rejected: dict[str, int]  # task → records that failed grounding (quoting `<image>` included)
    eval_docs: list[str]
    train_docs: list[str]
    pages: dict[str, int]  # split → pages
    # split → pages skipped because their text layer is unusable (`finstage.pages.textlayer`)
    unusable_text_pages: dict[str, int]
    examples_of_rejection: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "counts": self.counts,
            "rejected": self.rejected,
            "pages": self.pages,
            "unusable_text_pages": self.unusable_text_pages,
            "docs": {"train": len(self.train_docs), "eval": len(self.eval_docs)},
            "eval_docs": self.eval_docs,
            "rejection_examples": self.examples_of_rejection,
        }


def synthesize(
    pages: Iterable[Page], teacher: Teacher, cfg: SynthConfig, out_dir: Path
) -> SynthResult:
    """Run `teacher` over `pages`; write out_dir/{train,eval}/<task>/ and out_dir/stats.json."""
    pages = sorted(pages, key=lambda p: (p["doc_sha256"], p["page_index"]))
    docs = sorted({p["doc_sha256"] for p in pages})
    eval_docs = split_documents(docs, cfg.seed, cfg.eval_fraction)
    buckets: dict[str, dict[str, list[Record]]] = {
        "train": defaultdict(list),
        "eval": defaultdict(list),
    }
    rejected: Counter[str] = Counter()
    page_counts: Counter[str] = Counter()
    unusable: Counter[str] = Counter()
    examples: list[str] = []
    for page in tqdm(pages, desc=f"teacher:{teacher.name}", unit="page"):
        split = "eval" if page["doc_sha256"] in eval_docs else "train"
        page_counts[split] += 1
        if page.get("text_issue"):  # render found its text layer empty or garbage: no target
            unusable[split] += 1
            continue
        for record in teacher.generate(page):
            reason = grounding.check(record, page)
            if reason is not None:
                rejected[record["source"]] += 1
                if len(examples) < 20:
                    examples.append(f"{record['id']}: {reason}")
                continue
            record["meta"]["split"] = split
            buckets[split][record["source"]].append(record)
    leaked = {r["meta"]["doc_sha256"] for rs in buckets["train"].values() for r in rs} & eval_docs
    if leaked:  # cannot happen by construction; a guard against future edits
        raise RuntimeError(f"held-out documents leaked into training: {sorted(leaked)}")
    out_dir = Path(out_dir)
    counts: dict[str, dict[str, int]] = {}
    for split, by_task in buckets.items():
        counts[split] = {}
        for task in cfg.tasks:
            for stale in (out_dir / split / task).glob("part-*.parquet"):
                stale.unlink()  # a rerun with fewer records must not keep old shards
            counts[split][task] = write_records(out_dir / split / task, by_task.get(task, []))
    result = SynthResult(
        counts=counts,
        rejected={t: rejected.get(t, 0) for t in cfg.tasks},
        eval_docs=sorted(eval_docs),
        train_docs=sorted(set(docs) - eval_docs),
        pages={"train": page_counts["train"], "eval": page_counts["eval"]},
        unusable_text_pages={"train": unusable["train"], "eval": unusable["eval"]},
        examples_of_rejection=examples,
    )
    (out_dir / "stats.json").write_text(
        json.dumps(result.as_dict(), ensure_ascii=False, indent=2) + "\n"
    )
    return result
