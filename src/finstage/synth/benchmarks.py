"""Generated evaluation stand-ins in the exact raw schemas of the real benchmarks.

The default run cannot download GSM8K/MGSM or chABSA, so it evaluates on generated sets that a
task YAML reads exactly as it would read the real files; swapping in the real data is a path
change. Stand-ins are drawn from their own RNG streams and checked against the training
records: a GSM8K question equal to a training prompt, or a chabsa sentence found inside any
training message, is dropped and counted.

- GSM8K (MGSM-ja style): JSONL ``{"question": str, "answer": "…reasoning…\\n#### 42"}``;
  ``gsm8k/test.jsonl`` plus a small ``gsm8k/train.jsonl`` few-shot pool.
- chabsa (pfnet japanese-lm-fin-harness loader fields): JSONL
  ``{"id": int, "sentence": str, "target": str, "polarity": "positive"|"negative"}``.
"""

from __future__ import annotations

import hashlib
import json
import random
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finstage.config import require
from finstage.distill.problems import TEMPLATES, fmt, generate_problems, solution_lines
from finstage.records import Record


@dataclass
class Gsm8kConfig:
    n_test: int = 40
    n_train: int = 8  # few-shot pool (lm-eval's gsm8k samples few-shot examples from "train")

    def check(self, where: str) -> None:
        require(self.n_test >= 1, f"{where}.n_test", f"must be >= 1, got {self.n_test}")
        require(self.n_train >= 0, f"{where}.n_train", f"must be >= 0, got {self.n_train}")


@dataclass
class ChabsaConfig:
    n_items: int = 40
    two_target_fraction: float = 0.25  # sentences with one positive and one negative target

    def check(self, where: str) -> None:
        require(self.n_items >= 2, f"{where}.n_items", f"must be >= 2, got {self.n_items}")
        require(
            0.0 <= self.two_target_fraction <= 1.0,
            f"{where}.two_target_fraction",
            f"must be in [0, 1], got {self.two_target_fraction}",
        )


@dataclass
class BenchConfig:
    seed: int = 1000
    gsm8k: Gsm8kConfig = field(default_factory=Gsm8kConfig)
    chabsa: ChabsaConfig = field(default_factory=ChabsaConfig)


def _norm(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


# ---------------------------------------------------------------- GSM8K (ja)


def gsm8k_items(
    n: int, seed: int, exclude_questions: set[str], stream: str = "gsm8k"
) -> tuple[list[dict], int]:
    """``n`` GSM8K-format items from their own stream; returns (items, how many were excluded)."""
    excluded_norm = {_norm(q) for q in exclude_questions}
    problems, dropped, extra = [], 0, 0
    while len(problems) < n:
        batch = generate_problems(n + extra, seed, stream)
        problems = [p for p in batch if _norm(p.question) not in excluded_norm]
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
MIXED = (
    ("{t1}は{r1}により増加したものの、{t2}は{r2}により減少しました。", ("positive", "negative")),
    ("{t1}は{r1}により減少しましたが、{t2}は{r2}により増加しました。", ("negative", "positive")),
)


def _amount(rng: random.Random) -> str:
    return f"{rng.randint(120, 98000):,}"


def _one_target(rng: random.Random, polarity: str) -> tuple[str, list[tuple[str, str]]]:
    s, p, a = rng.choice(SEGMENTS), f"{rng.randint(1, 40)}.{rng.randint(0, 9)}", _amount(rng)
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


def chabsa_items(
    cfg: ChabsaConfig, seed: int, training_text: str, stream: str = "chabsa"
) -> tuple[list[dict], int]:
    """Items balanced between positive and negative; sentences found in training are dropped."""
    rng = random.Random(f"finstage-bench:{stream}:{seed}")
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    dropped = attempts = 0
    while len(items) < cfg.n_items:
        attempts += 1
        if attempts > 100 * cfg.n_items:
            raise RuntimeError(f"could only generate {len(items)} of {cfg.n_items} chabsa items")
        remaining = cfg.n_items - len(items)
        if remaining >= 2 and rng.random() < cfg.two_target_fraction:
            sentence, opinions = _two_targets(rng)
        else:
            n_pos = sum(it["polarity"] == "positive" for it in items)
            polarity = "positive" if n_pos * 2 < len(items) + 1 else "negative"
            sentence, opinions = _one_target(rng, polarity)
        if sentence in seen:
            continue
        if sentence in training_text or _norm(sentence) in training_text:
            dropped += 1
            continue
        seen.add(sentence)
        for target, polarity in opinions:
            items.append(
                {"id": len(items), "sentence": sentence, "target": target, "polarity": polarity}
            )
    return items, dropped


# ---------------------------------------------------------------- writing


def _write_jsonl(path: Path, rows: Iterable[dict]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    path.write_text(text, encoding="utf-8")
    return hashlib.sha256(text.encode()).hexdigest()


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
    return prompts, joined + "\n\x00\n" + _norm(joined)


def build_benchmarks(
    cfg: BenchConfig, out_dir: Path, train_records: Iterable[Record] = ()
) -> dict[str, Any]:
    """Write gsm8k/{test,train}.jsonl, chabsa/test.jsonl and manifest.json under out_dir."""
    out_dir = Path(out_dir)
    prompts, text = training_texts(train_records)
    gsm, gsm_dropped = gsm8k_items(cfg.gsm8k.n_test + cfg.gsm8k.n_train, cfg.seed, prompts)
    test, train = gsm[: cfg.gsm8k.n_test], gsm[cfg.gsm8k.n_test :]
    chabsa, chabsa_dropped = chabsa_items(cfg.chabsa, cfg.seed, text)
    manifest = {
        "gsm8k": {
            "schema": {
                "question": "str",
                "answer": "str: reasoning lines, then '\\n#### <number>'",
            },
            "files": {
                "test": {
                    "path": "gsm8k/test.jsonl",
                    "items": len(test),
                    "sha256": _write_jsonl(out_dir / "gsm8k" / "test.jsonl", test),
                },
                "train": {
                    "path": "gsm8k/train.jsonl",
                    "items": len(train),
                    "sha256": _write_jsonl(out_dir / "gsm8k" / "train.jsonl", train),
                },
            },
            "dropped_as_in_training": gsm_dropped,
        },
        "chabsa": {
            "schema": {
                "id": "int",
                "sentence": "str",
                "target": "str",
                "polarity": "positive|negative",
            },
            "files": {
                "test": {
                    "path": "chabsa/test.jsonl",
                    "items": len(chabsa),
                    "sha256": _write_jsonl(out_dir / "chabsa" / "test.jsonl", chabsa),
                },
            },
            "positive": sum(i["polarity"] == "positive" for i in chabsa),
            "negative": sum(i["polarity"] == "negative" for i in chabsa),
            "dropped_as_in_training": chabsa_dropped,
        },
        "templates": sorted(TEMPLATES),
    }
    (out_dir / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n"
    )
    return manifest
