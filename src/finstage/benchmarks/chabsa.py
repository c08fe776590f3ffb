"""chABSA: target-level sentiment in Japanese annual reports, pfnet's fin-harness `chabsa` task.

Raw schema: chABSA-dataset annotation files, one per document (a folder of ``*.json``, one file,
or the release zip): ``{"header": {...}, "sentences": [{"sentence_id", "sentence", "opinions":
[{"target", "category", "polarity", "from", "to"}]}]}``. Normalised docs: ``{"id", "sentence",
"target", "polarity"}``, one per opinion; ``neutral`` is kept as in the pfnet loader, whose
harness scores it as always wrong. The stand-in writes ``chabsa/e<code>_ann.json``; its size
counts opinions.
"""

from __future__ import annotations

import io
import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finstage.benchmarks import limits
from finstage.benchmarks.benchmark import Benchmark, TaskSettings
from finstage.benchmarks.lmeval import (
    MULTIPLE_CHOICE,
    Doc,
    Scorer,
    Statistic,
    TextTask,
    choice_item,
    pair_accuracy,
    pair_statistic,
    text_task,
)
from finstage.benchmarks.rawfile import field, unique_ids
from finstage.benchmarks.standin import StandIns, edinet_codes
from finstage.benchmarks.transport import RawLayout, Row, SourceError, SourceSpec, load_rows
from finstage.config import require
from finstage.scoring import harness_chabsa_f1

POLARITIES = ("positive", "negative", "neutral")
DESCRIPTION = (
    "以下のセンテンスにおける、ターゲットのセンチメントをpositiveかnegativeで答えてください。\n\n\n"
)
CHOICES = ["positive", "negative"]
NEUTRAL_GOLD = -100  # pfnet's gold for neutral targets: never predicted, so always wrong
SCORES: dict[str, Statistic] = {
    "harness_f1": pair_statistic(harness_chabsa_f1),
    "acc": pair_accuracy,
}
SCORER = Scorer(choice_item(*SCORES), SCORES)


@dataclass
class ChabsaConfig:
    n_items: int  # opinions (the pfnet loader yields one item per opinion)
    two_target_fraction: float  # sentences with one positive and one negative target
    neutral_fraction: float  # neutral opinions: kept by the loader, never a choice

    def check(self, where: str) -> None:
        require(self.n_items >= 2, f"{where}.n_items", f"must be >= 2, got {self.n_items}")
        for name in ("two_target_fraction", "neutral_fraction"):
            value = getattr(self, name)
            require(0.0 <= value <= 1.0, f"{where}.{name}", f"must be in [0, 1], got {value}")


# ---------------------------------------------------------------- stand-in sentences


POS_TARGETS = (
    "売上高",
    "営業利益",
    "経常利益",
    "親会社株主に帰属する当期純利益",
    "受注高",
    "営業収益",
    "セグメント利益",
)
LOSS_TARGETS = ("営業損益", "セグメント損益", "経常損益")
SEGMENTS = (
    "電子部品",
    "自動車関連",
    "化学品",
    "不動産",
    "情報通信",
    "食品",
    "産業機械",
    "物流",
    "医薬品",
    "住宅",
)
POS_REASONS = (
    "海外需要の回復",
    "新製品の販売好調",
    "価格改定の効果",
    "コスト削減の進展",
    "受注の増加",
    "インバウンド需要の拡大",
    "生産効率の改善",
    "高付加価値製品へのシフト",
)
NEG_REASONS = (
    "原材料価格の高騰",
    "国内需要の低迷",
    "円高による為替差損",
    "減価償却費の増加",
    "販売競争の激化",
    "主要顧客の在庫調整",
    "物流費の上昇",
    "大型案件の減少",
)

POSITIVE = (
    "当連結会計年度の{t}は、{r}により、前期比{p}%増の{a}百万円となりました。",
    "{s}事業の{t}は、{r}から、{a}百万円（前期比{p}%増）と増加いたしました。",
    "{r}の結果、{t}は前期を上回り、過去最高を更新しました。",
    "{t}は{r}により大幅に改善し、{a}百万円となりました。",
    "{s}事業は{r}により増収増益となり、{t}は{a}百万円となりました。",
)
NEGATIVE = (
    "当連結会計年度の{t}は、{r}により、前期比{p}%減の{a}百万円となりました。",
    "{s}事業の{t}は、{r}の影響を受け、{a}百万円（前期比{p}%減）と減少いたしました。",
    "{r}により、{t}は前期に比べ悪化しました。",
    "{s}事業は{r}により減収減益となり、{t}は{a}百万円となりました。",
)
NEGATIVE_LOSS = "{s}事業では{r}が響き、{t}は{a}百万円の赤字となりました。"
NEUTRAL = (
    "{s}事業の{t}は、前期とほぼ同水準の{a}百万円となりました。",
    "当連結会計年度の{t}は{a}百万円と、前期並みとなりました。",
    "{t}は、前期から横ばいの{a}百万円で推移しました。",
)
MIXED = (
    ("{t1}は{r1}により増加したものの、{t2}は{r2}により減少しました。", ("positive", "negative")),
    ("{t1}は{r1}により減少しましたが、{t2}は{r2}により増加しました。", ("negative", "positive")),
)


def _amount(rng: random.Random) -> str:
    return f"{rng.randint(120, 98000):,}"


def _one_target(rng: random.Random, polarity: str) -> tuple[str, list[tuple[str, str]]]:
    s, p, a = rng.choice(SEGMENTS), f"{rng.randint(1, 40)}.{rng.randint(0, 9)}", _amount(rng)
    if polarity == "neutral":
        t = rng.choice(POS_TARGETS)
        return rng.choice(NEUTRAL).format(t=t, s=s, a=a), [(t, polarity)]
    if polarity == "positive":
        t, r = rng.choice(POS_TARGETS), rng.choice(POS_REASONS)
        return rng.choice(POSITIVE).format(t=t, r=r, s=s, p=p, a=a), [(t, polarity)]
    r = rng.choice(NEG_REASONS)
    if rng.random() < 0.2:
        t = rng.choice(LOSS_TARGETS)
        return NEGATIVE_LOSS.format(t=t, r=r, s=s, a=a), [(t, polarity)]
    t = rng.choice(POS_TARGETS)
    return rng.choice(NEGATIVE).format(t=t, r=r, s=s, p=p, a=a), [(t, polarity)]


def _two_targets(rng: random.Random) -> tuple[str, list[tuple[str, str]]]:
    template, polarities = rng.choice(MIXED)
    t1, t2 = rng.sample(POS_TARGETS, 2)
    reasons = {"positive": rng.choice(POS_REASONS), "negative": rng.choice(NEG_REASONS)}
    sentence = template.format(t1=t1, t2=t2, r1=reasons[polarities[0]], r2=reasons[polarities[1]])
    return sentence, [(t1, polarities[0]), (t2, polarities[1])]


def _polarity(rng: random.Random, cfg: ChabsaConfig, counts: Counter) -> str:
    """Neutral at its rate, otherwise whichever of positive/negative keeps the two balanced."""
    if rng.random() < cfg.neutral_fraction:
        return "neutral"
    return "positive" if counts["positive"] <= counts["negative"] else "negative"


def _opinions(sentence: str, targets: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """chABSA opinion objects; targets are located left to right, as they read."""
    out, at = [], 0
    for target, polarity in targets:
        start = sentence.index(target, at)
        at = start + len(target)
        entity = "business" if "事業" in sentence else "company"
        attribute = "sales" if target in ("売上高", "受注高", "営業収益") else "profit"
        out.append(
            {
                "target": target,
                "category": f"{entity}#{attribute}",
                "polarity": polarity,
                "from": start,
                "to": at,
            }
        )
    return out


def stand_in_sentences(cfg: ChabsaConfig, out: StandIns) -> tuple[list[dict], int]:
    """Annotated sentences holding `n_items` opinions; sentences found in training are dropped."""
    rng = random.Random(f"finstage-bench:chabsa:{out.seed}")
    sentences: list[dict[str, Any]] = []
    counts: Counter = Counter()
    seen: set[str] = set()
    dropped = attempts = 0
    while counts.total() < cfg.n_items:
        attempts += 1
        if attempts > 100 * cfg.n_items:
            raise RuntimeError(
                f"could only generate {counts.total()} of {cfg.n_items} chabsa opinions; "
                "lower benchmarks.chabsa.n_items"
            )
        if cfg.n_items - counts.total() >= 2 and rng.random() < cfg.two_target_fraction:
            sentence, targets = _two_targets(rng)
        else:
            sentence, targets = _one_target(rng, _polarity(rng, cfg, counts))
        if sentence in seen:
            continue
        seen.add(sentence)
        if out.in_training(sentence):
            dropped += 1
            continue
        counts.update(polarity for _, polarity in targets)
        sentences.append({"sentence": sentence, "opinions": _opinions(sentence, targets)})
    return sentences, dropped


SENTENCES_PER_DOC = 6
COMPANIES = (  # (document_name stem, category33, category17)
    ("東和食品", "食料品", "食品"),
    ("北斗化学", "化学", "素材・化学"),
    ("朝日電機", "電気機器", "電機・精密"),
    ("中央機械", "機械", "機械"),
    ("新星システム", "情報・通信業", "情報通信・サービスその他"),
    ("大和ストア", "小売業", "小売"),
)


def stand_in_documents(sentences: list[dict], seed: int) -> list[dict]:
    """Sentences grouped into annual-report documents with chABSA headers."""
    rng = random.Random(f"finstage-bench:chabsa-docs:{seed}")
    size = SENTENCES_PER_DOC
    chunks = [sentences[k : k + size] for k in range(0, len(sentences), size)]
    docs = []
    for code, chunk in zip(edinet_codes(rng, len(chunks)), chunks, strict=True):
        name, category33, category17 = rng.choice(COMPANIES)
        header = {
            "document_id": code,
            "document_name": f"{name}株式会社",
            "doc_text": "有価証券報告書",
            "edi_id": code,
            "security_code": f"{rng.randint(1300, 9999)}0",
            "category33": category33,
            "category17": category17,
            "scale": str(rng.randint(1, 7)),
        }
        body = [{"sentence_id": i, **s} for i, s in enumerate(chunk)]
        docs.append({"header": header, "sentences": body})
    return docs


# ---------------------------------------------------------------- raw schema


def _files(path: Path) -> list[Row]:
    """chABSA documents from a folder, one JSON file or the release zip, in file-name order."""
    if path.suffix == ".zip":  # read member by member in memory, never extracted to disk
        limits.check_file(path)
        with limits.checked_zip(path) as archive:
            names = sorted(n for n in archive.namelist() if n.endswith(".json"))
            blobs = [(f"{path}!{n}", limits.read_member(archive, n, path)) for n in names]
    else:
        files = [path] if path.is_file() else sorted(path.glob("*.json"))
        if path.is_dir() and not files:
            files = sorted(path.glob("chABSA-dataset/*.json"))
        if len(files) > limits.MAX_MEMBERS:
            raise SourceError(f"{path}: over the limit of {limits.MAX_MEMBERS} documents")
        blobs = []
        for f in files:
            limits.check_file(f)
            blobs.append((str(f), f.read_bytes()))
    if not blobs:
        raise SourceError(f"{path}: no chABSA *.json documents found")
    rows = []
    for where, blob in blobs:
        try:
            rows.append((where, json.load(io.BytesIO(blob))))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise SourceError(f"{where}: not valid UTF-8 JSON ({err})") from err
    return rows


_LAYOUT = RawLayout(read=_files, folder_files=None)


def _docs(rows: list[Row]) -> list[Doc]:
    docs = []
    for where, row in rows:
        header = row.get("header") if isinstance(row, dict) else None
        header = header if isinstance(header, dict) else {}
        doc_id = header.get("document_id") or Path(where.split("!")[-1]).stem
        for s_index, sentence in enumerate(field(row, where, "sentences", list)):
            at = f"{where}: sentences[{s_index}]"
            text = field(sentence, at, "sentence", str)
            sentence_id = sentence.get("sentence_id", s_index)
            for o_index, opinion in enumerate(field(sentence, at, "opinions", list)):
                doc = _opinion(
                    f"{doc_id}-{sentence_id}-{o_index}", opinion, text, f"{at}.opinions[{o_index}]"
                )
                docs.append(doc)
    return unique_ids(docs)


def _opinion(doc_id: str, opinion: dict[str, Any], sentence: str, where: str) -> Doc:
    polarity = field(opinion, where, "polarity", str)
    if polarity not in POLARITIES:
        raise SourceError(
            f"{where}: field 'polarity' is {polarity!r}; chABSA uses {list(POLARITIES)}"
        )
    target = field(opinion, where, "target", str)
    return {"id": doc_id, "sentence": sentence, "target": target, "polarity": polarity}


# ---------------------------------------------------------------- scoring


def gold(doc: Doc) -> int:
    """The choice index of the polarity; neutral is pfnet's -100, a class never predicted."""
    polarity = doc["polarity"]
    return CHOICES.index(polarity) if polarity in CHOICES else NEUTRAL_GOLD


@dataclass(frozen=True, kw_only=True)
class Chabsa(Benchmark):
    def write_stand_in(self, sizes: ChabsaConfig, out: StandIns) -> None:
        sentences, dropped = stand_in_sentences(sizes, out)
        docs = stand_in_documents(sentences, out.seed)
        polarities = Counter(o["polarity"] for s in sentences for o in s["opinions"])
        entry = out.entry(
            self.name,
            "chABSA-dataset annotation JSON, one file per document",
            {"path": "chabsa"},
            items=polarities.total(),
            sentences=len(sentences),
            documents=len(docs),
            **{p: polarities[p] for p in POLARITIES},
            dropped_as_in_training=dropped,
        )
        for doc in docs:
            rel = f"chabsa/{doc['header']['document_id'].lower()}_ann.json"
            out.file(entry, rel, json.dumps(doc, ensure_ascii=False, indent=2) + "\n")

    def load_docs(self, spec: SourceSpec, settings: TaskSettings | None = None) -> list[Doc]:
        return _docs(load_rows(self.name, spec, _LAYOUT))

    def text_tasks(self, docs: list[Doc], settings: TaskSettings) -> list[TextTask]:
        # lm-eval's own target (doc_to_target) must index a choice, so neutral items give it 0;
        # it is never scored or logged: gold() is what the scorer and the predictions see.
        task = text_task(
            "chabsa",
            self.name,
            docs,
            gold,
            SCORER,
            output_type=MULTIPLE_CHOICE,
            description=DESCRIPTION,
            doc_to_text="センテンス: {{sentence}}\nターゲット: {{target}}\n回答:",
            doc_to_choice=CHOICES,
            doc_to_target=lambda doc: max(gold(doc), 0),
            target_delimiter=" ",
        )
        return [task]

    def scorers(self) -> dict[str, Scorer]:
        return {"chabsa": SCORER}

    def item_text(self, doc: Doc) -> str:
        return doc["sentence"]


CHABSA = Chabsa(
    name="chabsa", label="chABSA", scores=tuple(SCORES), stand_in_params="chabsa", harness=True
)
