"""Generated evaluation stand-ins in the exact raw schemas of the real benchmarks.

The default run cannot download GSM8K, chABSA, the pfnet japanese-lm-fin-harness exams or
EDINET-Bench, so it evaluates on generated sets that `finstage.evaluate.sources` reads exactly as
it reads the real files; swapping in the real data is a path change. Each set is drawn from its
own RNG stream and checked against the training records: an item whose text (a GSM8K question, a
chabsa sentence, an exam question with its statements, an EDINET P/L sheet) is found in any
training message is dropped and counted in the manifest.

- GSM8K (MGSM-ja style): JSONL ``{"question": str, "answer": "…reasoning…\\n#### 42"}``;
  ``gsm8k/test.jsonl`` plus a small ``gsm8k/train.jsonl`` few-shot pool.
- chabsa: chABSA-dataset annotation files, ``chabsa/e<code>_ann.json``, one per document:
  ``{"header": {...}, "sentences": [{"sentence_id", "sentence", "opinions": [{"target",
  "category", "polarity", "from", "to"}]}]}``; ``n_items`` counts opinions.
- cma_basics, cpa_audit, fp2, security_sales_1, EDINET-Bench: see `finstage.synth.finbench`.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finstage.config import require
from finstage.distill.problems import TEMPLATES, fmt, generate_problems, solution_lines
from finstage.evaluate.sources import EDINET_CONFIGS
from finstage.records import Record
from finstage.synth import finbench
from finstage.synth.finbench import (
    CpaConfig,
    EdinetConfig,
    ExamConfig,
    SecuritySalesConfig,
    compact,
)


@dataclass
class Gsm8kConfig:
    n_test: int = 40
    n_train: int = 8  # few-shot pool (lm-eval's gsm8k samples few-shot examples from "train")
    # problem templates held out from distillation, so the stand-in is not in-distribution
    templates: list[str] = field(default_factory=lambda: ["ratio_split", "profit_margin"])

    def check(self, where: str) -> None:
        require(self.n_test >= 1, f"{where}.n_test", f"must be >= 1, got {self.n_test}")
        require(self.n_train >= 0, f"{where}.n_train", f"must be >= 0, got {self.n_train}")
        unknown = sorted(set(self.templates) - set(TEMPLATES))
        require(
            bool(self.templates) and not unknown,
            f"{where}.templates",
            f"must be a non-empty list of {sorted(TEMPLATES)}; unknown: {unknown}",
        )


@dataclass
class ChabsaConfig:
    n_items: int = 40  # opinions (the pfnet loader yields one item per opinion)
    two_target_fraction: float = 0.25  # sentences with one positive and one negative target
    neutral_fraction: float = 0.1  # neutral opinions: kept by the loader, never a choice

    def check(self, where: str) -> None:
        require(self.n_items >= 2, f"{where}.n_items", f"must be >= 2, got {self.n_items}")
        for name in ("two_target_fraction", "neutral_fraction"):
            value = getattr(self, name)
            require(0.0 <= value <= 1.0, f"{where}.{name}", f"must be in [0, 1], got {value}")


@dataclass
class BenchConfig:
    seed: int = 1000
    gsm8k: Gsm8kConfig = field(default_factory=Gsm8kConfig)
    chabsa: ChabsaConfig = field(default_factory=ChabsaConfig)
    cma_basics: ExamConfig = field(default_factory=ExamConfig)
    cpa_audit: CpaConfig = field(default_factory=CpaConfig)
    fp2: ExamConfig = field(default_factory=lambda: ExamConfig(n_items=24))
    security_sales_1: SecuritySalesConfig = field(default_factory=SecuritySalesConfig)
    edinet: EdinetConfig = field(default_factory=EdinetConfig)


# ---------------------------------------------------------------- GSM8K (ja)


def gsm8k_items(
    n: int,
    seed: int,
    exclude_questions: set[str],
    templates: list[str],
    stream: str = "gsm8k",
) -> tuple[list[dict], int]:
    """``n`` GSM8K-format items from their own stream; returns (items, how many were excluded)."""
    excluded_norm = {compact(q) for q in exclude_questions}
    problems, dropped, extra = [], 0, 0
    while len(problems) < n:
        batch = generate_problems(n + extra, seed, stream, templates)
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


# ---------------------------------------------------------------- chabsa


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


def chabsa_sentences(cfg: ChabsaConfig, seed: int, training_text: str) -> tuple[list[dict], int]:
    """Annotated sentences holding `n_items` opinions; sentences found in training are dropped."""
    rng = random.Random(f"finstage-bench:chabsa:{seed}")
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
        if sentence in training_text or compact(sentence) in training_text:
            dropped += 1
            continue
        counts.update(polarity for _, polarity in targets)
        sentences.append({"sentence": sentence, "opinions": _opinions(sentence, targets)})
    return sentences, dropped


CHABSA_SENTENCES_PER_DOC = 6
CHABSA_COMPANIES = (  # (document_name stem, category33, category17)
    ("東和食品", "食料品", "食品"),
    ("北斗化学", "化学", "素材・化学"),
    ("朝日電機", "電気機器", "電機・精密"),
    ("中央機械", "機械", "機械"),
    ("新星システム", "情報・通信業", "情報通信・サービスその他"),
    ("大和ストア", "小売業", "小売"),
)


def chabsa_documents(sentences: list[dict], seed: int) -> list[dict]:
    """Sentences grouped into annual-report documents with chABSA headers."""
    rng = random.Random(f"finstage-bench:chabsa-docs:{seed}")
    size = CHABSA_SENTENCES_PER_DOC
    chunks = [sentences[k : k + size] for k in range(0, len(sentences), size)]
    docs = []
    for code, chunk in zip(finbench.edinet_codes(rng, len(chunks)), chunks, strict=True):
        name, category33, category17 = rng.choice(CHABSA_COMPANIES)
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


# ---------------------------------------------------------------- writing


def training_texts(records: Iterable[Record]) -> tuple[set[str], str]:
    """(user prompts, all message text joined) of training records, for contamination checks."""
    prompts: set[str] = set()
    chunks: list[str] = []
    for r in records:
        for m in r["messages"]:
            chunks.append(m["content"])
            if m["role"] == "user":
                prompts.add(m["content"])
    joined = "\n\x00\n".join(chunks)
    return prompts, joined + "\n\x00\n" + compact(joined)


def _jsonl(rows: Iterable[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


class _Writer:
    """Writes raw files under the bench folder and keeps the manifest's per-task entries."""

    def __init__(self, out_dir: Path):
        self.out_dir, self.manifest = Path(out_dir), {}

    def task(self, name: str, fmt: str, source: dict[str, str], **facts: Any) -> dict[str, Any]:
        entry = {"format": fmt, "source": source, "files": {}, **facts}
        self.manifest[name] = entry
        return entry

    def file(self, entry: dict[str, Any], rel: str, payload: str | bytes) -> None:
        entry["files"][rel] = finbench.write(self.out_dir / rel, payload)


def build_benchmarks(
    cfg: BenchConfig, out_dir: Path, train_records: Iterable[Record] = ()
) -> dict[str, Any]:
    """Write every stand-in and manifest.json under out_dir; returns the manifest.

    Each manifest entry is keyed by the `finstage.evaluate.sources` task name and carries
    ``source`` (the SourceSpec path/split relative to out_dir), ``items``, the files' sha256 and
    ``dropped_as_in_training``.
    """
    prompts, text = training_texts(train_records)
    w = _Writer(out_dir)
    _write_gsm8k(w, cfg, prompts)
    _write_chabsa(w, cfg, text)
    for task in ("cma_basics", "fp2", "security_sales_1"):
        if task == "security_sales_1":
            rows, dropped = finbench.security_sales_rows(cfg.security_sales_1, cfg.seed, text)
        else:
            rows, dropped = finbench.exam_rows(task, getattr(cfg, task).n_items, cfg.seed, text)
        entry = w.task(
            task,
            "pfnet japanese-lm-fin-harness data.json",
            {"path": f"{task}/data.json"},
            items=len(rows),
            dropped_as_in_training=dropped,
        )
        w.file(entry, f"{task}/data.json", finbench.exam_json(task, rows))
    _write_cpa(w, cfg, text)
    _write_edinet(w, cfg, text)
    (Path(out_dir) / "manifest.json").write_text(
        json.dumps(w.manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return w.manifest


def _write_gsm8k(w: _Writer, cfg: BenchConfig, prompts: set[str]) -> None:
    gsm, dropped = gsm8k_items(
        cfg.gsm8k.n_test + cfg.gsm8k.n_train, cfg.seed, prompts, cfg.gsm8k.templates
    )
    test, train = gsm[: cfg.gsm8k.n_test], gsm[cfg.gsm8k.n_test :]
    entry = w.task(
        "gsm8k",
        "GSM8K JSONL {question, answer: reasoning then '#### <number>'}",
        {"path": "gsm8k/test.jsonl"},
        items=len(test),
        few_shot_items=len(train),
        templates=sorted(cfg.gsm8k.templates),
        dropped_as_in_training=dropped,
    )
    w.file(entry, "gsm8k/test.jsonl", _jsonl(test))
    w.file(entry, "gsm8k/train.jsonl", _jsonl(train))


def _write_chabsa(w: _Writer, cfg: BenchConfig, text: str) -> None:
    sentences, dropped = chabsa_sentences(cfg.chabsa, cfg.seed, text)
    docs = chabsa_documents(sentences, cfg.seed)
    polarities = Counter(o["polarity"] for s in sentences for o in s["opinions"])
    entry = w.task(
        "chabsa",
        "chABSA-dataset annotation JSON, one file per document",
        {"path": "chabsa"},
        items=polarities.total(),
        sentences=len(sentences),
        documents=len(docs),
        **{p: polarities[p] for p in ("positive", "negative", "neutral")},
        dropped_as_in_training=dropped,
    )
    for doc in docs:
        rel = f"chabsa/{doc['header']['document_id'].lower()}_ann.json"
        w.file(entry, rel, json.dumps(doc, ensure_ascii=False, indent=2) + "\n")


def _write_cpa(w: _Writer, cfg: BenchConfig, text: str) -> None:
    rows, dropped = finbench.cpa_rows(cfg.cpa_audit, cfg.seed, text)
    abnormal = sum(r["abnormal_flg"] for r in rows)
    entry = w.task(
        "cpa_audit",
        "pfnet japanese-lm-fin-harness CPA_AUDIT.xlsx",
        {"path": "cpa_audit/CPA_AUDIT.xlsx"},
        items=len(rows) - abnormal,
        abnormal_rows=abnormal,
        dropped_as_in_training=dropped,
    )
    w.file(entry, "cpa_audit/CPA_AUDIT.xlsx", finbench.cpa_xlsx(rows))


def _write_edinet(w: _Writer, cfg: BenchConfig, text: str) -> None:
    for task, config in EDINET_CONFIGS.items():
        rows, dropped = finbench.edinet_rows(config, getattr(cfg.edinet, config), cfg.seed, text)
        split = finbench.EDINET_SPLITS[config]
        rel = f"edinet/{config}/{split}.jsonl"
        labels = Counter(r.get("label", r.get("industry")) for r in rows)
        entry = w.task(
            task,
            "SakanaAI/EDINET-Bench rows (JSONL)",
            {"path": rel, "config": config, "split": split},
            items=len(rows),
            labels=dict(sorted((str(k), v) for k, v in labels.items())),
            dropped_as_in_training=dropped,
        )
        w.file(entry, rel, _jsonl(rows))
