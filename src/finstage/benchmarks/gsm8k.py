"""GSM8K in Japanese (MGSM-ja style): word problems scored on a ``\\boxed{}`` final answer.

Raw schema: JSONL ``{"question": str, "answer": "…reasoning…\\n#### 42"}`` (a file, or a folder
with ``<split>.jsonl``). Normalised docs: ``{"id", "question", "answer"}``. The stand-in is
``gsm8k/test.jsonl`` plus a small ``gsm8k/train.jsonl`` few-shot pool, drawn from word-problem
templates that distillation does not train on, so it is not in-distribution.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from finstage.answers import extract_flexible, extract_strict, numbers_equal
from finstage.benchmarks.benchmark import Benchmark, TaskSettings
from finstage.benchmarks.lmeval import (
    GENERATE_UNTIL,
    Doc,
    Scorer,
    Statistic,
    TextTask,
    prediction,
    text_task,
)
from finstage.benchmarks.rawfile import field, table_files, table_rows, unique_ids
from finstage.benchmarks.standin import StandIns, jsonl
from finstage.benchmarks.transport import RawLayout, Row, SourceError, SourceSpec, load_rows
from finstage.config import require
from finstage.scoring import mean
from finstage.textnorm import compact
from finstage.wordproblems import TEMPLATES, fmt, generate_problems, solution_lines

PROMPT = (
    "次の問題を解いてください。"
    "最終的な答えは <Answer>\\boxed{数値}</Answer> の形で書いてください。\n"
    "問題: {{question}}"
)
SCORES: dict[str, Statistic] = {"em_strict": mean, "em_flexible": mean}
_FINAL = re.compile(r"####\s*-?[0-9.,]+")
_LAYOUT = RawLayout(read=table_rows, folder_files=lambda spec: table_files(spec.split))


@dataclass
class Gsm8kConfig:
    n_test: int
    n_train: int  # few-shot pool (lm-eval's gsm8k samples few-shot examples from "train")
    # problem templates held out from distillation, so the stand-in is not in-distribution
    templates: list[str]

    def check(self, where: str) -> None:
        require(self.n_test >= 1, f"{where}.n_test", f"must be >= 1, got {self.n_test}")
        require(self.n_train >= 0, f"{where}.n_train", f"must be >= 0, got {self.n_train}")
        unknown = sorted(set(self.templates) - set(TEMPLATES))
        require(
            bool(self.templates) and not unknown,
            f"{where}.templates",
            f"must be a non-empty list of {sorted(TEMPLATES)}; unknown: {unknown}",
        )


def stand_in_items(
    n: int, seed: int, exclude_questions: set[str], templates: list[str]
) -> tuple[list[dict], int]:
    """``n`` GSM8K-format items from their own stream; returns (items, how many were excluded)."""
    excluded_norm = {compact(q) for q in exclude_questions}
    problems, dropped, extra = [], 0, 0
    while len(problems) < n:
        batch = generate_problems(n + extra, seed, "gsm8k", templates)
        problems = [p for p in batch if compact(p.question) not in excluded_norm]
        dropped = len(batch) - len(problems)
        extra += max(dropped, 1)
        if extra > 10 * n + 100:
            raise RuntimeError(f"could not generate {n} GSM8K items disjoint from training")
    items = [
        {"question": p.question, "answer": "\n".join(solution_lines(p)) + f"\n#### {fmt(p.gold)}"}
        for p in problems[:n]
    ]
    return items, dropped


def gold_number(answer: str) -> str:
    """GSM8K's reference answer is whatever follows the last '####'."""
    return answer.split("####")[-1].strip().replace(",", "")


def score_answer(gold: str, text: str) -> dict[str, float]:
    """Strict (boxed) and flexible (last number) exact match of `text` against the gold number;
    `parsed` is "a box was found"."""
    strict = extract_strict(text)
    flexible = strict if strict is not None else extract_flexible(text)
    return {
        "em_strict": float(strict is not None and numbers_equal(strict, gold)),
        "em_flexible": float(flexible is not None and numbers_equal(flexible, gold)),
        "parsed": float(strict is not None),
    }


SCORER = Scorer(score_answer, SCORES, parsed="parsed")


def gold(doc: Doc) -> str:
    return gold_number(doc["answer"])


def score_item(doc: Doc, results: list[str]) -> dict[str, float]:
    """lm-eval's process_results: `score_answer` of the doc's gold and the generation."""
    return score_answer(gold(doc), prediction(GENERATE_UNTIL, results))


def _docs(rows: list[Row]) -> list[Doc]:
    docs = []
    for i, (where, row) in enumerate(rows):
        answer = field(row, where, "answer", str)
        if not _FINAL.search(answer):
            raise SourceError(
                f"{where}: field 'answer' has no '#### <number>' final line, the GSM8K format"
            )
        docs.append(
            {"id": str(i), "question": field(row, where, "question", str), "answer": answer}
        )
    return unique_ids(docs)


@dataclass(frozen=True, kw_only=True)
class Gsm8k(Benchmark):
    def write_stand_in(self, sizes: Gsm8kConfig, out: StandIns) -> None:
        items, dropped = stand_in_items(
            sizes.n_test + sizes.n_train, out.seed, out.training_prompts, sizes.templates
        )
        test, train = items[: sizes.n_test], items[sizes.n_test :]
        entry = out.entry(
            self.name,
            "GSM8K JSONL {question, answer: reasoning then '#### <number>'}",
            {"path": "gsm8k/test.jsonl"},
            items=len(test),
            few_shot_items=len(train),
            templates=sorted(sizes.templates),
            dropped_as_in_training=dropped,
        )
        out.file(entry, "gsm8k/test.jsonl", jsonl(test))
        out.file(entry, "gsm8k/train.jsonl", jsonl(train))

    def load_docs(self, spec: SourceSpec, settings: TaskSettings | None = None) -> list[Doc]:
        return _docs(load_rows(self.name, spec, _LAYOUT))

    def text_tasks(self, docs: list[Doc], settings: TaskSettings) -> list[TextTask]:
        task = text_task(
            "gsm8k_ja",
            self.name,
            docs,
            gold,
            SCORER,
            output_type=GENERATE_UNTIL,
            doc_to_text=PROMPT,
            doc_to_target="{{answer}}",
            generation_kwargs={"until": ["</Answer>"], "max_gen_toks": settings.gsm8k_max_gen_toks},
        )
        return [task]

    def scorers(self) -> dict[str, Scorer]:
        return {"gsm8k_ja": SCORER}

    def item_text(self, doc: Doc) -> str:
        return doc["question"]


GSM8K = Gsm8k(name="gsm8k", label="GSM8K", scores=tuple(SCORES), stand_in_params="gsm8k")
