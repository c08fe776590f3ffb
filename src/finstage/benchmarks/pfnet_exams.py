"""The pfnet japanese-lm-fin-harness exams read from its bundled ``data.json``: cma_basics,
fp2 and security_sales_1.

Raw schema: ``{"data-type", "data-name", "data": [{"id", "question", "context", "choices":
[{"id", "text"}], "answer", "comment"}]}`` (a hub dataset gives ``choices`` as ``{"id": [],
"text": []}``). Normalised docs: ``{"id", "prompt", "choices", "gold"}``: ``prompt`` is what the
model sees under the harness's default 0-shot prompt (its task description followed by
``doc_to_text_00``, ending in ``【答え】\\n``); ``choices`` are the continuations it scores with an
empty target delimiter, raw ``acc`` from argmax log-likelihood; ``gold`` indexes ``choices``.
The stand-ins have four lettered choices for cma, full-width １〜４ for fp2 and ○/× two-way or
four-way items for security_sales_1. `pfnet_prompt` and `choice_task` also serve cpa_audit, the
harness's fourth exam, which ships as a workbook instead.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finstage.benchmarks.benchmark import Benchmark, TaskSettings
from finstage.benchmarks.exam_items import (
    TABLES,
    choice_row,
    fp2_material,
    numeric_item,
    table_statement,
)
from finstage.benchmarks.lmeval import (
    MULTIPLE_CHOICE,
    Doc,
    Scorer,
    Statistic,
    TextTask,
    choice_item,
    pair_accuracy,
    text_task,
)
from finstage.benchmarks.rawfile import field, read_json, unique_ids
from finstage.benchmarks.standin import ItemCount, StandIns, draw_unique, untargeted
from finstage.benchmarks.transport import RawLayout, Row, SourceError, SourceSpec, load_rows
from finstage.config import require

SCORES: dict[str, Statistic] = {"acc": pair_accuracy}
# pfnet's default prompt starts with each task's `description`
LETTERS_DESCRIPTION = "以下の問題の適切な答えを選択肢から選んでアルファベットで答えなさい。\n\n\n"
FP2_DESCRIPTION = "以下の問題の適切な答えを選択肢から選んで１～４の数字で答えなさい。\n\n\n"

RowDrawer = Callable[[str, Any, StandIns], tuple[list[dict], int]]


@dataclass
class SecuritySalesConfig:
    n_items: int
    two_way_fraction: float  # ○/× items; the real set has 38 of 57

    def check(self, where: str) -> None:
        require(self.n_items >= 1, f"{where}.n_items", f"must be >= 1, got {self.n_items}")
        require(
            0.0 <= self.two_way_fraction <= 1.0,
            f"{where}.two_way_fraction",
            f"must be in [0, 1], got {self.two_way_fraction}",
        )


# ---------------------------------------------------------------- stand-in items


def _cma_item(rng: random.Random) -> tuple[str, dict]:
    if rng.random() < 0.6:
        return numeric_item(rng)
    table = rng.choice(TABLES)
    terms = rng.sample([t for t, _ in table.terms], 4)
    answer = rng.randrange(4)
    desc = dict(table.terms)[terms[answer]]
    question = table.ask.format(desc=desc)
    return question, choice_row(question, "", terms, answer, f"{desc}は{terms[answer]}。")


def _zenkaku(text: str) -> str:
    return text.translate(str.maketrans("0123456789", "０１２３４５６７８９"))


def _fp2_item(rng: random.Random, material: bool) -> tuple[str, dict]:
    """Four numbered statements, one of them the odd one out; with `material`, a 〈資料〉 block
    on the topic comes first, as in the real FP2 items whose prompts run long."""
    table = rng.choice(TABLES)
    terms = rng.sample([t for t, _ in table.terms], 4)
    want_true = rng.random() < 0.5  # "最も適切" = the one true statement, else the one false one
    odd = rng.randrange(4)
    lines = [
        _zenkaku(table_statement(rng, table, t, true=(k == odd) == want_true))
        for k, t in enumerate(terms)
    ]
    kind = "適切" if want_true else "不適切"
    question = f"{table.topic}に関する次の記述のうち、最も{kind}なものはどれか。"
    context = "\n".join(f"{'１２３４'[k]}．{s}" for k, s in enumerate(lines))
    if material:
        context = fp2_material(rng, table) + "\n" + context
    return question + "\n" + context, choice_row(question, context, list("１２３４"), odd, "")


TWO_WAY_QUESTION = "次の文章について、正しければ○を、誤っていれば×を選びなさい。"
IROHA_QUESTION = "次のイ～ハの記述のうち、正しいものの組合せとして適切な選択肢を選びなさい。"
IROHA_CHOICES = (
    ((True, True, False), "イ及びロが正しく、ハは誤りである。"),
    ((True, False, True), "イ及びハが正しく、ロは誤りである。"),
    ((False, True, True), "ロ及びハが正しく、イは誤りである。"),
    ((True, True, True), "イ、ロ及びハのすべてが正しい。"),
)


def _two_way_item(rng: random.Random) -> tuple[str, dict]:
    table = rng.choice(TABLES)
    term = rng.choice(table.terms)[0]
    true = rng.random() < 0.5
    statement = table_statement(rng, table, term, true)
    comment = "" if true else table.say(term, term)
    return TWO_WAY_QUESTION + "\n" + statement, choice_row(
        TWO_WAY_QUESTION, statement, ["○", "×"], 0 if true else 1, comment
    )


def _iroha_item(rng: random.Random) -> tuple[str, dict]:
    if rng.random() < 0.5:
        return numeric_item(rng)
    table = rng.choice(TABLES)
    terms = rng.sample([t for t, _ in table.terms], 3)
    answer = rng.randrange(len(IROHA_CHOICES))
    pattern = IROHA_CHOICES[answer][0]
    lines = [table_statement(rng, table, t, ok) for t, ok in zip(terms, pattern, strict=True)]
    context = "\n".join(f"{m}． {s}" for m, s in zip("イロハ", lines, strict=True))
    texts = [text for _, text in IROHA_CHOICES]
    return IROHA_QUESTION + "\n" + context, choice_row(IROHA_QUESTION, context, texts, answer, "")


def _one_kind(make: Callable[[random.Random], tuple[str, dict]]) -> RowDrawer:
    """Rows of an exam whose items all come from `make`, ids 0..n-1."""

    def draw(name: str, sizes: ItemCount, out: StandIns) -> tuple[list[dict], int]:
        rng = random.Random(f"finstage-bench:{name}:{out.seed}")
        rows, dropped = draw_unique([None] * sizes.n_items, untargeted(make), rng, out, name)
        return [{"id": i, **r} for i, r in enumerate(rows)], dropped

    return draw


FP2_MATERIAL_FRACTION = 1 / 3  # of the real FP2 prompts, about a third carry a data block


def _fp2_rows(name: str, sizes: ItemCount, out: StandIns) -> tuple[list[dict], int]:
    """Plain and 〈資料〉 items (a third, the long ones) in a seeded order, ids 0..n-1."""
    rng = random.Random(f"finstage-bench:{name}:{out.seed}")
    n_material = round(sizes.n_items * FP2_MATERIAL_FRACTION)
    kinds = [True] * n_material + [False] * (sizes.n_items - n_material)
    rng.shuffle(kinds)
    rows, dropped = draw_unique(kinds, _fp2_item, rng, out, name)
    return [{"id": i, **r} for i, r in enumerate(rows)], dropped


def _security_sales_rows(
    name: str, sizes: SecuritySalesConfig, out: StandIns
) -> tuple[list[dict], int]:
    """○/× and four-way rows interleaved in a seeded order, ids 0..n-1."""
    rng = random.Random(f"finstage-bench:{name}:{out.seed}")
    n_two = round(sizes.n_items * sizes.two_way_fraction)
    kinds = [_two_way_item] * n_two + [_iroha_item] * (sizes.n_items - n_two)
    rng.shuffle(kinds)
    rows, dropped = draw_unique(kinds, lambda r, make: make(r), rng, out, name)
    return [{"id": i, **r} for i, r in enumerate(rows)], dropped


# ---------------------------------------------------------------- raw schema


def pfnet_prompt(description: str, question: str, context: str | None, listed: list[str]) -> str:
    """Description + doc_to_text_00 of the pfnet harness, byte for byte."""
    text = "【問題】\n" + question + "\n"
    if context:
        text += context + "\n"
    if listed:
        text += "\n【選択肢】\n" + "".join(line + "\n" for line in listed)
    return description + text + "\n【答え】\n"


def _data_json(path: Path) -> list[Row]:
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise SourceError(
            f"{path}: expected the pfnet harness data.json layout "
            '{"data-type": …, "data-name": …, "data": [ {id, question, context, choices, '
            "answer}, … ]}"
        )
    return [(f"{path}: data[{i}]", row) for i, row in enumerate(data["data"])]


_LAYOUT = RawLayout(read=_data_json, folder_files=lambda spec: ["data.json"])


def _choices(row: dict[str, Any], where: str) -> tuple[list[int], list[str]]:
    """(ids, texts): data.json lists {id, text} objects; a hub dataset gives {id: [], text: []}."""
    raw = field(row, where, "choices", (list, dict))
    if isinstance(raw, dict):
        ids, texts = raw.get("id", []), raw.get("text", [])
        if len(ids) != len(texts):
            raise SourceError(f"{where}: field 'choices' has {len(ids)} ids but {len(texts)} texts")
        raw = [{"id": i, "text": t} for i, t in zip(ids, texts, strict=True)]
    ids = [field(c, f"{where}.choices[{k}]", "id", int) for k, c in enumerate(raw)]
    texts = [field(c, f"{where}.choices[{k}]", "text", str) for k, c in enumerate(raw)]
    if not ids:
        raise SourceError(f"{where}: field 'choices' is empty")
    return ids, texts


# ---------------------------------------------------------------- scoring


SCORER = Scorer(choice_item("acc"), SCORES)


def choice_task(name: str, docs: list[Doc]) -> TextTask:
    """A pfnet multiple-choice task: the prompt already holds the description."""
    return text_task(
        name,
        name,
        docs,
        lambda doc: doc["gold"],
        SCORER,
        output_type=MULTIPLE_CHOICE,
        doc_to_text=lambda doc: doc["prompt"],
        doc_to_choice=lambda doc: doc["choices"],
        doc_to_target=lambda doc: doc["gold"],
        target_delimiter="",
    )


@dataclass(frozen=True, kw_only=True)
class PfnetExam(Benchmark):
    description: str  # the harness's task description: the prompt's first lines
    lettered: bool  # choices listed and scored as letters by id (A = id 0); else the texts
    draw_rows: RowDrawer

    def write_stand_in(self, sizes: Any, out: StandIns) -> None:
        rows, dropped = self.draw_rows(self.name, sizes, out)
        entry = out.entry(
            self.name,
            "pfnet japanese-lm-fin-harness data.json",
            {"path": f"{self.name}/data.json"},
            items=len(rows),
            dropped_as_in_training=dropped,
        )
        payload = {"data-type": "multiple-choice-question", "data-name": self.name, "data": rows}
        out.file(
            entry,
            f"{self.name}/data.json",
            json.dumps(payload, ensure_ascii=False, indent=2) + "\n",
        )

    def load_docs(self, spec: SourceSpec, settings: TaskSettings | None = None) -> list[Doc]:
        rows = load_rows(self.name, spec, _LAYOUT)
        return unique_ids([self._doc(where, row) for where, row in rows])

    def _doc(self, where: str, row: dict[str, Any]) -> Doc:
        question = field(row, where, "question", str)
        context = row.get("context")
        if context is not None and not isinstance(context, str):
            raise SourceError(f"{where}: field 'context' must be a string or null")
        ids, texts = _choices(row, where)
        answer = field(row, where, "answer", int)
        if answer not in ids:
            raise SourceError(f"{where}: field 'answer' = {answer} is none of the choice ids {ids}")
        if self.lettered:
            listed = [f"{chr(i + 65)}: {t}" for i, t in zip(ids, texts, strict=True)]
            choices = [chr(i + 65) for i in ids]
            gold = choices.index(chr(answer + 65))
        else:
            listed, choices = [], texts
            gold = texts.index(texts[ids.index(answer)])
        prompt = pfnet_prompt(self.description, question, context, listed)
        doc_id = str(field(row, where, "id", (int, str)))
        return {"id": doc_id, "prompt": prompt, "choices": choices, "gold": gold}

    def text_tasks(self, docs: list[Doc], settings: TaskSettings) -> list[TextTask]:
        return [choice_task(self.name, docs)]

    def scorers(self) -> dict[str, Scorer]:
        return {self.name: SCORER}

    def item_text(self, doc: Doc) -> str:
        return doc["prompt"]


CMA_BASICS = PfnetExam(
    name="cma_basics",
    label="CMA basics",
    scores=tuple(SCORES),
    stand_in_params="cma_basics",
    harness=True,
    description=LETTERS_DESCRIPTION,
    lettered=True,
    draw_rows=_one_kind(_cma_item),
)
FP2 = PfnetExam(
    name="fp2",
    label="FP2",
    scores=tuple(SCORES),
    stand_in_params="fp2",
    harness=True,
    description=FP2_DESCRIPTION,
    lettered=False,  # the choice texts themselves (１〜４) are scored
    draw_rows=_fp2_rows,
)
SECURITY_SALES_1 = PfnetExam(
    name="security_sales_1",
    label="Securities sales 1",
    scores=tuple(SCORES),
    stand_in_params="security_sales_1",
    harness=True,
    description=LETTERS_DESCRIPTION,
    lettered=True,
    draw_rows=_security_sales_rows,
)
