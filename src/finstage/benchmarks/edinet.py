"""EDINET-Bench (SakanaAI): fraud detection, earnings forecast and industry prediction from the
financial sheets of Japanese annual reports.

Raw schema: the hub dataset's rows (JSONL or parquet, or a folder with
``<config>/<split>.jsonl``): ``meta, summary, bs, pl, cf, text`` as JSON strings with
``Prior4Year…CurrentYear`` values in yen, plus the task's label fields. EDINET-Bench publishes
fraud and earnings as "test" and industry as "train" only. Normalised docs: ``{"id", "label",
"context"}`` (fraud, earnings) or ``{"id", "industry", "context"}``; ``context`` is the
``summary, bs, pl, cf`` sheets as EDINET-Bench's predict.py joins them, ``"<sheet>: <value>"``
per line.

The binary tasks are scored twice: ROC-AUC of P(はい) from the two answers' log-likelihoods, and
ROC-AUC of the ``prob`` a generated JSON answer states (its parse rate is the coverage).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from finstage.benchmarks.benchmark import Benchmark, TaskSettings
from finstage.benchmarks.edinet_answers import answer_probability
from finstage.benchmarks.edinet_figures import INDUSTRIES, stand_in_rows
from finstage.benchmarks.lmeval import (
    GENERATE_UNTIL,
    MULTIPLE_CHOICE,
    Doc,
    Scorer,
    Statistic,
    TextTask,
    choice_item,
    pair_accuracy,
    pair_roc_auc,
    prediction,
    text_task,
)
from finstage.benchmarks.rawfile import field, table_files, table_rows, unique_ids
from finstage.benchmarks.standin import ItemCount, StandIns, jsonl
from finstage.benchmarks.transport import RawLayout, SourceError, SourceSpec, load_rows
from finstage.config import require

SHEETS = ("summary", "bs", "pl", "cf")
BINARY_CHOICES = ("いいえ", "はい")  # index 1 = the positive class
LOGLIKELIHOOD_SCORES: dict[str, Statistic] = {"roc_auc": pair_roc_auc}
GENERATION_SCORES: dict[str, Statistic] = {"gen_roc_auc": pair_roc_auc}
INDUSTRY_SCORES: dict[str, Statistic] = {"acc": pair_accuracy}
_SHEETS_INTRO = (
    "あなたは財務アナリストです。上の財務データ（summary: 主要な経営指標等の推移、"
    "bs: 貸借対照表、pl: 損益計算書、cf: キャッシュ・フロー計算書）は、日本企業の"
)
_JSON_FORMAT = "回答は次の形式の```json```ブロックだけで出力してください。\n"


@dataclass
class EdinetBinaryConfig:
    n_items: int
    positive_fraction: float  # label-1 rows; ROC-AUC needs both classes

    @property
    def positives(self) -> int:
        return round(self.n_items * self.positive_fraction)

    def check(self, where: str) -> None:
        require(self.n_items >= 2, f"{where}.n_items", f"must be >= 2, got {self.n_items}")
        require(
            1 <= self.positives <= self.n_items - 1,
            f"{where}.positive_fraction",
            f"must leave at least one row of each label, got {self.positive_fraction}",
        )


@dataclass
class EdinetConfig:
    fraud_detection: EdinetBinaryConfig
    earnings_forecast: EdinetBinaryConfig
    industry_prediction: ItemCount


@dataclass(frozen=True, kw_only=True)
class EdinetTask(Benchmark):
    """One EDINET-Bench config; subclasses say what its label is and how it is scored."""

    config: str  # the hub dataset's config
    split: str  # the split EDINET-Bench publishes it as
    question: str  # asked after the sheets for the log-likelihood protocol

    @property
    def layout(self) -> RawLayout:
        def folder_files(spec: SourceSpec) -> list[str]:
            return table_files(f"{spec.config or self.config}/{spec.split}")

        return RawLayout(read=table_rows, folder_files=folder_files, hub_config=self.config)

    @abstractmethod
    def stand_in_targets(self, sizes: Any) -> list[Any]:
        """One label per stand-in row, before shuffling."""

    @abstractmethod
    def read_gold(self, row: dict[str, Any], where: str) -> dict[str, Any]:
        """The doc's gold field, read and checked from a raw row."""

    def write_stand_in(self, sizes: Any, out: StandIns) -> None:
        rows, dropped = stand_in_rows(self.config, self.stand_in_targets(sizes), out)
        rel = f"edinet/{self.config}/{self.split}.jsonl"
        labels = Counter(r.get("label", r.get("industry")) for r in rows)
        entry = out.entry(
            self.name,
            "SakanaAI/EDINET-Bench rows (JSONL)",
            {"path": rel, "config": self.config, "split": self.split},
            items=len(rows),
            labels=dict(sorted((str(k), v) for k, v in labels.items())),
            dropped_as_in_training=dropped,
        )
        out.file(entry, rel, jsonl(rows))

    def load_docs(self, spec: SourceSpec, settings: TaskSettings | None = None) -> list[Doc]:
        """Docs with each sheet cut to `settings.edinet_sheet_chars` characters (no marker) when
        set: a tiny model's context window is the reason, and the cut is reported with the
        scores. None keeps the sheets whole, as EDINET-Bench does."""
        cut = settings.edinet_sheet_chars if settings is not None else None
        docs = []
        for i, (where, row) in enumerate(load_rows(self.name, spec, self.layout)):
            sheets = [(s, field(row, where, s, str)) for s in SHEETS]
            context = "\n".join(f"{s}: {v if cut is None else v[:cut]}" for s, v in sheets)
            doc_id = str(row.get("doc_id") or i)
            docs.append({"id": doc_id, **self.read_gold(row, where), "context": context})
        return unique_ids(docs)

    def item_text(self, doc: Doc) -> str:
        return doc["context"]


def p_positive(lls: Sequence[float]) -> float:
    """P(positive answer) from the two answers' log-likelihoods (no, yes), normalised over the
    pair: a logistic of their difference, computed without overflow however far apart they are.
    Two -inf (an unscorable item) say nothing: 0.5."""
    negative, positive = lls
    if math.isinf(negative) and math.isinf(positive) and negative == positive:
        return 0.5
    diff = negative - positive
    if diff > 0:
        odds = math.exp(-diff)
        return odds / (1.0 + odds)
    return 1.0 / (1.0 + math.exp(diff))


def positive_probability(results: Sequence[tuple[float, bool]]) -> float:
    """`p_positive` of lm-eval's (loglik, is_greedy) results."""
    return p_positive(prediction(MULTIPLE_CHOICE, results))


def binary_item(label: int, lls: Sequence[float]) -> dict[str, Any]:
    return {"roc_auc": (label, p_positive(lls))}


def generated_item(label: int, text: str) -> dict[str, Any]:
    """An unparseable answer is scored as an uninformative 0.5, and counted, never dropped."""
    prob = answer_probability(text)
    return {
        "gen_roc_auc": (label, prob if prob is not None else 0.5),
        "parsed": float(prob is not None),
    }


def score_generation(doc: Doc, results: list[str]) -> dict[str, Any]:
    """lm-eval's process_results for the generation protocol."""
    return generated_item(doc["label"], prediction(GENERATE_UNTIL, results))


BINARY_SCORER = Scorer(binary_item, LOGLIKELIHOOD_SCORES)
GENERATION_SCORER = Scorer(generated_item, GENERATION_SCORES, parsed="parsed")
INDUSTRY_SCORER = Scorer(choice_item(*INDUSTRY_SCORES), INDUSTRY_SCORES)


def _label(doc: Doc) -> int:
    return doc["label"]


def _industry(doc: Doc) -> int:
    return INDUSTRIES.index(doc["industry"])


@dataclass(frozen=True, kw_only=True)
class EdinetBinary(EdinetTask):
    instruction: str  # the generation protocol's request for a JSON answer

    def stand_in_targets(self, sizes: EdinetBinaryConfig) -> list[Any]:
        return [1] * sizes.positives + [0] * (sizes.n_items - sizes.positives)

    def read_gold(self, row: dict[str, Any], where: str) -> dict[str, Any]:
        label = field(row, where, "label", int)
        if label not in (0, 1):
            raise SourceError(f"{where}: field 'label' = {label!r}; expected 0 or 1")
        return {"label": label}

    def text_tasks(self, docs: list[Doc], settings: TaskSettings) -> list[TextTask]:
        scorers = self.scorers()
        loglikelihood = text_task(
            self.name,
            self.name,
            docs,
            _label,
            scorers[self.name],
            output_type=MULTIPLE_CHOICE,
            doc_to_text=lambda doc: f"{doc['context']}\n\n{self.question}",
            doc_to_choice=list(BINARY_CHOICES),
            doc_to_target=_label,
            target_delimiter=" ",
        )
        generation = text_task(
            f"{self.name}_gen",
            self.name,
            docs,
            _label,
            scorers[f"{self.name}_gen"],
            output_type=GENERATE_UNTIL,
            doc_to_text=lambda doc: f"{doc['context']}\n\n{self.instruction}",
            doc_to_target=_label,
            generation_kwargs={"until": ["\n\n\n"], "max_gen_toks": settings.edinet_max_gen_toks},
        )
        return [loglikelihood, generation]

    def scorers(self) -> dict[str, Scorer]:
        return {self.name: BINARY_SCORER, f"{self.name}_gen": GENERATION_SCORER}


@dataclass(frozen=True, kw_only=True)
class EdinetIndustry(EdinetTask):
    def stand_in_targets(self, sizes: ItemCount) -> list[Any]:
        return [INDUSTRIES[i % len(INDUSTRIES)] for i in range(sizes.n_items)]

    def read_gold(self, row: dict[str, Any], where: str) -> dict[str, Any]:
        industry = field(row, where, "industry", str)
        if industry not in INDUSTRIES:
            raise SourceError(
                f"{where}: field 'industry' = {industry!r} is not one of the 16 EDINET-Bench "
                f"labels {list(INDUSTRIES)}"
            )
        return {"industry": industry}

    def text_tasks(self, docs: list[Doc], settings: TaskSettings) -> list[TextTask]:
        task = text_task(
            self.name,
            self.name,
            docs,
            _industry,
            INDUSTRY_SCORER,
            output_type=MULTIPLE_CHOICE,
            doc_to_text=lambda doc: f"{doc['context']}\n\n{self.question}",
            doc_to_choice=list(INDUSTRIES),
            doc_to_target=_industry,
            target_delimiter=" ",
        )
        return [task]

    def scorers(self) -> dict[str, Scorer]:
        return {self.name: INDUSTRY_SCORER}


FRAUD = EdinetBinary(
    name="edinet_fraud",
    label="EDINET fraud",
    scores=(*LOGLIKELIHOOD_SCORES, *GENERATION_SCORES),
    stand_in_params="edinet.fraud_detection",
    config="fraud_detection",
    split="test",
    question="質問: この有価証券報告書に不正会計の兆候はありますか。\n回答:",
    instruction=(
        _SHEETS_INTRO
        + "有価証券報告書から抽出したものです。欠損値は「-」や「－」で表されることがあります。"
        "数値は監査済みで計算上の整合性はとれているため、数値の推移や項目間の関係に表れる"
        "不自然さに注目して、この報告書に粉飾などの不正会計の兆候があるかを判断してください。\n"
        + _JSON_FORMAT
        + '```json\n{"reasoning": "判断の根拠", "prob": 不正会計である確率（0から1の数値）, '
        '"prediction": 不正会計なら1、そうでなければ0}\n```'
    ),
)
EARNINGS = EdinetBinary(
    name="edinet_earnings",
    label="EDINET earnings",
    scores=(*LOGLIKELIHOOD_SCORES, *GENERATION_SCORES),
    stand_in_params="edinet.earnings_forecast",
    config="earnings_forecast",
    split="test",
    question=(
        "質問: 翌事業年度の親会社株主に帰属する当期純利益は当事業年度より増加しますか。\n回答:"
    ),
    instruction=(
        _SHEETS_INTRO
        + "当事業年度の有価証券報告書から抽出したものです。欠損値は「-」や「－」で表される"
        "ことがあります。翌事業年度の「親会社株主に帰属する当期純利益」が当事業年度より"
        "増加するかを予測してください。\n"
        + _JSON_FORMAT
        + '```json\n{"reasoning": "予測の根拠", "prob": 増加する確率（0から1の数値）, '
        '"prediction": 増加するなら1、そうでなければ0}\n```'
    ),
)
INDUSTRY = EdinetIndustry(
    name="edinet_industry",
    label="EDINET industry",
    scores=tuple(INDUSTRY_SCORES),
    stand_in_params="edinet.industry_prediction",
    config="industry_prediction",
    split="train",
    question="質問: この企業の業種は何ですか。\n回答:",
)
