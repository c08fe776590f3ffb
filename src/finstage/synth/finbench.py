"""Generated stand-ins for the pfnet japanese-lm-fin-harness exams and EDINET-Bench, in raw schema.

The default run cannot download the real sets, so it scores every checkpoint on generated items
written in the exact raw layouts that `finstage.evaluate.sources` reads; pointing a source at the
real file is then a path change, with the same prompts and gold indexing. Every answer is computed
or looked up in code (numeric templates; term-definition tables whose false statements swap in
another term of the same table), each task draws from its own seeded stream, and an item whose
text occurs in the training records is dropped and counted.

- cma_basics, fp2, security_sales_1: pfnet ``data.json`` ``{"data-type", "data-name", "data":
  [{"id", "question", "context", "choices": [{"id", "text"}], "answer", "comment"}]}``; four
  lettered choices for cma, full-width １〜４ for fp2, ○/× two-way or four-way for
  security_sales_1.
- cpa_audit: ``CPA_AUDIT.xlsx`` with an index column, ``key, question, ア…カ, 1…6, a_no,
  abnormal_flg``; each item has four statements ア〜エ and six two-statement combinations, plus
  ``n_abnormal`` flagged rows every loader must drop.
- EDINET-Bench: rows with the hub dataset's fields (``meta, summary, bs, pl, cf, text`` as JSON
  strings with ``Prior4Year…CurrentYear`` values in yen, plus the task's label fields), kept to a
  few hundred characters per sheet so six checkpoints are scored in seconds.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import random
import re
import unicodedata
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openpyxl

from finstage.config import require
from finstage.evaluate.sources import INDUSTRIES


@dataclass
class ExamConfig:
    n_items: int = 20

    def check(self, where: str) -> None:
        require(self.n_items >= 1, f"{where}.n_items", f"must be >= 1, got {self.n_items}")


@dataclass
class CpaConfig:
    n_items: int = 20
    n_abnormal: int = 2  # extra rows with abnormal_flg = 1 (the real file has 10) loaders drop

    def check(self, where: str) -> None:
        require(self.n_items >= 1, f"{where}.n_items", f"must be >= 1, got {self.n_items}")
        require(self.n_abnormal >= 0, f"{where}.n_abnormal", f"must be >= 0, got {self.n_abnormal}")


@dataclass
class SecuritySalesConfig:
    n_items: int = 21
    two_way_fraction: float = 0.67  # ○/× items; the real set has 38 of 57

    def check(self, where: str) -> None:
        require(self.n_items >= 1, f"{where}.n_items", f"must be >= 1, got {self.n_items}")
        require(
            0.0 <= self.two_way_fraction <= 1.0,
            f"{where}.two_way_fraction",
            f"must be in [0, 1], got {self.two_way_fraction}",
        )


@dataclass
class EdinetBinaryConfig:
    n_items: int = 24
    positive_fraction: float = 0.5  # label-1 rows; ROC-AUC needs both classes

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
class EdinetIndustryConfig:
    n_items: int = 16

    def check(self, where: str) -> None:
        require(self.n_items >= 1, f"{where}.n_items", f"must be >= 1, got {self.n_items}")


@dataclass
class EdinetConfig:
    fraud_detection: EdinetBinaryConfig = field(default_factory=EdinetBinaryConfig)
    earnings_forecast: EdinetBinaryConfig = field(default_factory=EdinetBinaryConfig)
    industry_prediction: EdinetIndustryConfig = field(default_factory=EdinetIndustryConfig)


# EDINET-Bench publishes fraud and earnings as "test" and industry as "train" only.
EDINET_SPLITS = {
    "fraud_detection": "test",
    "earnings_forecast": "test",
    "industry_prediction": "train",
}


def compact(text: str) -> str:
    """NFKC without whitespace: training text is also searched in this form, so a leak survives
    full-width digits or re-wrapped lines."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def draw_unique(
    targets: Sequence[Any],
    make: Callable[[random.Random, Any], tuple[str, Any]],
    rng: random.Random,
    training_text: str,
    what: str,
) -> tuple[list[Any], int]:
    """One item per target, each with a new key absent from training; returns (items, dropped).

    The key is the text a model reads for the item; it is what the contamination check looks for.
    """
    items: list[Any] = []
    seen: set[str] = set()
    dropped = 0
    for target in targets:
        for _ in range(1000):
            key, item = make(rng, target)
            if key in seen:
                continue
            seen.add(key)
            if key in training_text or compact(key) in training_text:
                dropped += 1
                continue
            items.append(item)
            break
        else:
            raise RuntimeError(
                f"could only generate {len(items)} of {len(targets)} distinct {what} items "
                f"disjoint from training; lower benchmarks.{what}.n_items"
            )
    return items, dropped


def _any(make: Callable[[random.Random], tuple[str, Any]]) -> Callable:
    """A maker that needs no target, for draw_unique."""
    return lambda rng, _target: make(rng)


# ---------------------------------------------------------------- term tables


@dataclass(frozen=True)
class TermTable:
    """Terms and what each one is; a false statement pairs a definition with another term."""

    topic: str
    statement: str  # "{desc}" "{term}"
    ask: str  # question asking for the term of "{desc}"
    terms: tuple[tuple[str, str], ...]  # (term, description)

    def say(self, desc_of: str, term: str) -> str:
        return self.statement.format(desc=dict(self.terms)[desc_of], term=term)


TABLES = (
    TermTable(
        "ライフプランニングで用いる係数",
        "{desc}には、{term}を用いる。",
        "{desc}際に用いる係数として、正しいものはどれか。",
        (
            ("終価係数", "現在の元本を複利運用した場合の一定期間後の元利合計額を求める"),
            ("現価係数", "一定期間後に目標額を得るために現在必要な元本を求める"),
            ("年金終価係数", "毎年一定額を積み立てた場合の一定期間後の元利合計額を求める"),
            ("減債基金係数", "一定期間後に目標額を準備するために必要な毎年の積立額を求める"),
            ("資本回収係数", "現在の元本を複利運用しながら取り崩す場合の毎年の受取額を求める"),
            ("年金現価係数", "一定期間にわたり毎年一定額を受け取るために必要な元本を求める"),
        ),
    ),
    TermTable(
        "所得税の所得区分",
        "{desc}は、所得税法上、{term}に区分される。",
        "{desc}の所得税法上の所得区分として、正しいものはどれか。",
        (
            ("配当所得", "上場株式の配当金"),
            ("給与所得", "会社員が勤務先から受け取る給与"),
            ("退職所得", "勤務先から退職に際して一時に受け取る退職金"),
            ("不動産所得", "賃貸アパートの家賃収入"),
            ("一時所得", "懸賞の賞金"),
            ("雑所得", "老齢基礎年金などの公的年金"),
            ("譲渡所得", "土地や建物の売却による所得"),
            ("事業所得", "個人が営む小売業から生じる所得"),
        ),
    ),
    TermTable(
        "財務指標・投資指標",
        "{desc}を{term}という。",
        "{desc}を表す用語として、正しいものはどれか。",
        (
            ("PER（株価収益率）", "株価を1株当たり当期純利益で除した指標"),
            ("PBR（株価純資産倍率）", "株価を1株当たり純資産で除した指標"),
            ("ROE（自己資本利益率）", "当期純利益を自己資本で除した指標"),
            ("ROA（総資産利益率）", "利益を総資産で除した指標"),
            ("配当性向", "1株当たり配当金を1株当たり当期純利益で除した指標"),
            ("配当利回り", "1株当たり配当金を株価で除した指標"),
            ("流動比率", "流動資産を流動負債で除した指標"),
            ("自己資本比率", "自己資本を総資産で除した指標"),
        ),
    ),
    TermTable(
        "債券の利回り",
        "{desc}を{term}という。",
        "{desc}を表す用語として、正しいものはどれか。",
        (
            ("直接利回り", "債券の年間利息を購入価格で除した利回り"),
            ("最終利回り", "既発債を購入して償還まで保有した場合の利回り"),
            ("所有期間利回り", "債券を償還前に売却した場合の、購入から売却までの利回り"),
            ("応募者利回り", "新発債を発行時に購入して償還まで保有した場合の利回り"),
        ),
    ),
)


def _statement(rng: random.Random, table: TermTable, term: str, true: bool) -> str:
    others = [t for t, _ in table.terms if t != term]
    return table.say(term, term if true else rng.choice(others))


# ---------------------------------------------------------------- numeric templates


@dataclass(frozen=True)
class Calc:
    question: str
    context: str
    answer: float
    mistakes: tuple[float, ...]  # values from typical wrong formulas
    fmt: Callable[[float], str]
    comment: str


def _pct(digits: int) -> Callable[[float], str]:
    return lambda x: f"{x:.{digits}f}%"


def _trunc3(x: float) -> str:
    return f"{math.floor(x * 1000 + 1e-9) / 1000:.3f}%"


def _calc_roe(rng: random.Random) -> Calc:
    ni = rng.randint(20, 400)
    eq = rng.randint(ni * 5, ni * 25)
    ta = round(eq / rng.uniform(0.3, 0.6))
    return Calc(
        "以下のデータに基づくA社のROE（自己資本利益率）として、正しいものはどれか。",
        f"当期純利益: {ni:,}億円\n自己資本: {eq:,}億円\n総資産: {ta:,}億円",
        ni / eq * 100,
        (ni / ta * 100, eq / ta * 100, ni / (ta - eq) * 100),
        _pct(1),
        "ROE = 当期純利益 ÷ 自己資本 × 100",
    )


def _calc_per(rng: random.Random) -> Calc:
    eps, bps = rng.randint(20, 400), rng.randint(300, 4000)
    price = rng.randint(5, 40) * eps
    return Calc(
        "以下のデータに基づくB社株式のPER（株価収益率）として、正しいものはどれか。",
        f"株価: {price:,}円\n1株当たり当期純利益: {eps:,}円\n1株当たり純資産: {bps:,}円",
        price / eps,
        (price / bps, eps / price * 100, bps / eps),
        lambda x: f"{x:.1f}倍",
        "PER = 株価 ÷ 1株当たり当期純利益",
    )


def _calc_dividend_yield(rng: random.Random) -> Calc:
    price, dps = rng.randint(50, 900) * 10, rng.randint(5, 150)
    eps = dps * rng.randint(2, 6)
    return Calc(
        "以下のデータに基づくC社株式の配当利回りとして、正しいものはどれか。",
        f"株価: {price:,}円\n1株当たり年間配当金: {dps}円\n1株当たり当期純利益: {eps}円",
        dps / price * 100,
        (dps / eps * 100, eps / price * 100, dps / price * 1000),
        _pct(2),
        "配当利回り = 1株当たり年間配当金 ÷ 株価 × 100",
    )


def _calc_bond_yield(rng: random.Random) -> Calc:
    coupon = rng.choice([0.2, 0.5, 0.8, 1.0, 1.2, 1.5, 2.0, 2.5])
    price = rng.choice([p / 100 for p in range(9500, 10501, 25) if p != 10000])
    years = rng.randint(2, 10)
    return Calc(
        "次の条件の利付債券を購入し償還まで保有した場合の最終利回り（単利）として、正しいものは"
        "どれか。なお、小数点以下第4位を切り捨てるものとする。",
        f"表面利率: 年{coupon}%\n購入価格: {price:.2f}円（額面100円当たり）\n残存期間: {years}年",
        (coupon + (100 - price) / years) / price * 100,
        (
            (coupon + (price - 100) / years) / price * 100,
            coupon + (100 - price) / years,
            coupon / price * 100,
        ),
        _trunc3,
        "最終利回り = {表面利率 + (100 − 購入価格) ÷ 残存年数} ÷ 購入価格 × 100",
    )


def _calc_compound(rng: random.Random) -> Calc:
    principal, rate = rng.randint(10, 100) * 10, rng.choice([1, 2, 3, 4, 5])
    years = rng.randint(3, 10)
    r = rate / 100
    return Calc(
        "次の条件で資金を運用した場合の満期時の元利合計額として、正しいものはどれか。なお、税金"
        "や手数料は考慮せず、万円未満を四捨五入するものとする。",
        f"元本: {principal:,}万円\n運用利率: 年{rate}%（1年複利）\n運用期間: {years}年",
        principal * (1 + r) ** years,
        (
            principal * (1 + r * years),
            principal * (1 + r) ** (years - 1),
            principal * (1 + r) ** (years + 1),
        ),
        lambda x: f"{round(x):,}万円",
        "元利合計額 = 元本 × (1 + 利率) ^ 年数",
    )


def _weighted(probs: tuple[int, ...], returns: tuple[int, ...]) -> float:
    return sum(p * r for p, r in zip(probs, returns, strict=True)) / 100


def _calc_expected_return(rng: random.Random) -> Calc:
    probs = rng.choice([(20, 50, 30), (30, 40, 30), (25, 50, 25), (10, 60, 30), (40, 40, 20)])
    returns = (rng.randint(8, 25), rng.randint(1, 7), -rng.randint(2, 15))
    scenarios = ("好況", "普通", "不況")
    return Calc(
        "ある資産の1年後の収益率が次のように予想されるとき、期待収益率として正しいものはどれか。",
        "\n".join(
            f"{s}（確率{p}%）: {r}%" for s, p, r in zip(scenarios, probs, returns, strict=True)
        ),
        _weighted(probs, returns),
        (sum(returns) / 3, (returns[0] + returns[2]) / 2, _weighted(probs, returns[::-1])),
        _pct(1),
        "期待収益率 = Σ（各シナリオの確率 × 収益率）",
    )


CALCS = (
    _calc_roe,
    _calc_per,
    _calc_dividend_yield,
    _calc_bond_yield,
    _calc_compound,
    _calc_expected_return,
)


def _numeric_choices(calc: Calc) -> tuple[list[str], int] | None:
    """Four distinct formatted values in ascending order, as exams list them; None if too few."""
    correct = calc.fmt(calc.answer)
    pool = [calc.fmt(v) for v in calc.mistakes] + [
        calc.fmt(calc.answer * k) for k in (0.8, 1.25, 0.9, 1.1, 0.5, 2.0)
    ]
    wrong = list(dict.fromkeys(v for v in pool if v != correct))[:3]
    if len(wrong) < 3:
        return None
    options = sorted([correct, *wrong], key=lambda s: float(re.sub(r"[^0-9.\-]", "", s)))
    return options, options.index(correct)


def _row(question: str, context: str, texts: list[str], answer: int, comment: str) -> dict:
    return {
        "question": question,
        "context": context,
        "choices": [{"id": i, "text": t} for i, t in enumerate(texts)],
        "answer": answer,
        "comment": comment,
    }


def _numeric_item(rng: random.Random) -> tuple[str, dict]:
    for _ in range(100):
        calc = rng.choice(CALCS)(rng)
        picked = _numeric_choices(calc)
        if picked is not None:
            texts, answer = picked
            row = _row(calc.question, calc.context, texts, answer, calc.comment)
            return calc.question + "\n" + calc.context, row
    raise RuntimeError("numeric templates kept drawing values that format to clashing options")


# ---------------------------------------------------------------- pfnet exams


def _cma_item(rng: random.Random) -> tuple[str, dict]:
    if rng.random() < 0.6:
        return _numeric_item(rng)
    table = rng.choice(TABLES)
    terms = rng.sample([t for t, _ in table.terms], 4)
    answer = rng.randrange(4)
    desc = dict(table.terms)[terms[answer]]
    question = table.ask.format(desc=desc)
    return question, _row(question, "", terms, answer, f"{desc}は{terms[answer]}。")


def _zenkaku(text: str) -> str:
    return text.translate(str.maketrans("0123456789", "０１２３４５６７８９"))


def _fp2_item(rng: random.Random) -> tuple[str, dict]:
    table = rng.choice(TABLES)
    terms = rng.sample([t for t, _ in table.terms], 4)
    want_true = rng.random() < 0.5  # "最も適切" = the one true statement, else the one false one
    odd = rng.randrange(4)
    lines = [
        _zenkaku(_statement(rng, table, t, true=(k == odd) == want_true))
        for k, t in enumerate(terms)
    ]
    kind = "適切" if want_true else "不適切"
    question = f"{table.topic}に関する次の記述のうち、最も{kind}なものはどれか。"
    context = "\n".join(f"{'１２３４'[k]}．{s}" for k, s in enumerate(lines))
    return question + "\n" + context, _row(question, context, list("１２３４"), odd, "")


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
    statement = _statement(rng, table, term, true)
    comment = "" if true else table.say(term, term)
    return TWO_WAY_QUESTION + "\n" + statement, _row(
        TWO_WAY_QUESTION, statement, ["○", "×"], 0 if true else 1, comment
    )


def _iroha_item(rng: random.Random) -> tuple[str, dict]:
    if rng.random() < 0.5:
        return _numeric_item(rng)
    table = rng.choice(TABLES)
    terms = rng.sample([t for t, _ in table.terms], 3)
    answer = rng.randrange(len(IROHA_CHOICES))
    pattern = IROHA_CHOICES[answer][0]
    lines = [_statement(rng, table, t, ok) for t, ok in zip(terms, pattern, strict=True)]
    context = "\n".join(f"{m}． {s}" for m, s in zip("イロハ", lines, strict=True))
    texts = [text for _, text in IROHA_CHOICES]
    return IROHA_QUESTION + "\n" + context, _row(IROHA_QUESTION, context, texts, answer, "")


def exam_rows(task: str, n_items: int, seed: int, training_text: str) -> tuple[list[dict], int]:
    """Rows of a pfnet data.json task (cma_basics or fp2), ids 0..n-1."""
    rng = random.Random(f"finstage-bench:{task}:{seed}")
    make = _cma_item if task == "cma_basics" else _fp2_item
    rows, dropped = draw_unique([None] * n_items, _any(make), rng, training_text, task)
    return [{"id": i, **r} for i, r in enumerate(rows)], dropped


def security_sales_rows(
    cfg: SecuritySalesConfig, seed: int, training_text: str
) -> tuple[list[dict], int]:
    """○/× and four-way rows interleaved in a seeded order, ids 0..n-1."""
    rng = random.Random(f"finstage-bench:security_sales_1:{seed}")
    n_two = round(cfg.n_items * cfg.two_way_fraction)
    kinds = [_two_way_item] * n_two + [_iroha_item] * (cfg.n_items - n_two)
    rng.shuffle(kinds)
    rows, dropped = draw_unique(
        kinds, lambda r, make: make(r), rng, training_text, "security_sales_1"
    )
    return [{"id": i, **r} for i, r in enumerate(rows)], dropped


def exam_json(task: str, rows: list[dict]) -> str:
    payload = {"data-type": "multiple-choice-question", "data-name": task, "data": rows}
    return json.dumps(payload, ensure_ascii=False, indent=2) + "\n"


# ---------------------------------------------------------------- cpa_audit


# fmt: off
AUDIT_STATEMENTS = (  # (true, false) pairs on auditing standards
    ("監査人は、職業的専門家としての懐疑心を保持して監査を計画し実施しなければならない。",
     "監査人は、経営者が誠実であると判断した場合には、職業的懐疑心を保持する必要はない。"),
    ("監査リスクは、重要な虚偽表示リスクと発見リスクによって構成される。",
     "監査リスクは、重要な虚偽表示リスクのみによって決まり、発見リスクとは関係しない。"),
    ("重要な虚偽表示リスクが高いと評価した場合、監査人は発見リスクを低く抑える必要がある。",
     "重要な虚偽表示リスクが高いと評価した場合、監査人は実証手続を縮小することができる。"),
    ("監査人は、実施した監査手続及び入手した監査証拠を監査調書として適時に記録する。",
     "監査調書は、監査報告書の提出後にまとめて作成すれば足りる。"),
    ("限定付適正意見は、除外事項の影響が重要であるが広範ではない場合に表明される。",
     "限定付適正意見は、除外事項の影響が重要かつ財務諸表全体に広範な場合に表明される。"),
    ("意見不表明は、重要な監査手続を実施できず、その影響が広範な場合に選択される。",
     "意見不表明は、財務諸表に重要な虚偽表示が発見された場合に必ず選択される。"),
    ("監査人は、継続企業の前提に重要な疑義を生じさせる事象又は状況の有無を検討する。",
     "継続企業の前提の評価は経営者の責任であり、監査人が検討する必要はない。"),
    ("確認は、監査人が第三者から文書による回答を直接入手する監査手続である。",
     "確認は、監査人が被監査会社の担当者から口頭で説明を受ける監査手続である。"),
    ("監査人は、経営者から経営者確認書を入手しなければならない。",
     "経営者確認書を入手すれば、他の監査手続の実施を省略することができる。"),
    ("内部統制の運用評価手続は、内部統制が有効に運用されているかを確かめる手続である。",
     "内部統制の運用評価手続は、勘定残高の金額の妥当性を直接確かめる手続である。"),
    ("監査上の重要性は、監査計画の策定時と監査意見の形成時の両方で考慮される。",
     "監査上の重要性は、監査計画の策定時にのみ考慮され、意見形成時には考慮されない。"),
    ("監査人は、不正による重要な虚偽表示のリスクを識別し評価しなければならない。",
     "不正の発見は経営者の責任であるため、監査人は不正リスクを評価する必要はない。"),
)
# fmt: on

CPA_COMBINATIONS = ("アイ", "アウ", "アエ", "イウ", "イエ", "ウエ")
CPA_HEADER = [None, "key", "question", "ア", "イ", "ウ", "エ", "オ", "カ", 1, 2, 3, 4, 5, 6]
CPA_HEADER += ["a_no", "abnormal_flg"]


def _cpa_item(rng: random.Random) -> tuple[str, dict]:
    pairs = rng.sample(AUDIT_STATEMENTS, 4)
    a_no = rng.randrange(6) + 1
    picked = CPA_COMBINATIONS[a_no - 1]
    want_true = rng.random() < 0.5  # the picked two are the true ones, else the false ones
    marks = "アイウエ"
    lines = [
        pair[0 if (m in picked) == want_true else 1] for m, pair in zip(marks, pairs, strict=True)
    ]
    kind = "正しい" if want_true else "誤っている"
    question = (
        f"監査に関する次の記述のうち、{kind}ものの組合せとして最も適切な番号を一つ選びなさい。"
    )
    row = {
        "key": f"{rng.randint(2014, 2023)}_{rng.randint(1, 2)}",
        "question": question,
        **dict(zip(marks, lines, strict=True)),
        **{str(i + 1): c for i, c in enumerate(CPA_COMBINATIONS)},
        "a_no": a_no,
    }
    return question + "\n" + "\n".join(lines), row


def cpa_rows(cfg: CpaConfig, seed: int, training_text: str) -> tuple[list[dict], int]:
    """Valid rows plus `n_abnormal` flagged ones at seeded positions; index 0..n-1."""
    rng = random.Random(f"finstage-bench:cpa_audit:{seed}")
    total = cfg.n_items + cfg.n_abnormal
    rows, dropped = draw_unique([None] * total, _any(_cpa_item), rng, training_text, "cpa_audit")
    flagged = set(rng.sample(range(total), cfg.n_abnormal))
    return [
        {"index": i, **r, "abnormal_flg": int(i in flagged)} for i, r in enumerate(rows)
    ], dropped


def cpa_xlsx(rows: list[dict]) -> bytes:
    """The workbook with pinned timestamps, so the same rows always give the same bytes."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(CPA_HEADER)
    for r in rows:
        sheet.append([r["index"]] + [r.get("" if h is None else str(h)) for h in CPA_HEADER[1:]])
    buffer = io.BytesIO()
    book.save(buffer)
    return _pin_zip(buffer.getvalue())


PROPS_TIME = rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*"


def _pin_zip(data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            blob = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                blob = re.sub(PROPS_TIME, rb"\g<1>2000-01-01T00:00:00Z", blob)
            pinned = zipfile.ZipInfo(info.filename, date_time=(2000, 1, 1, 0, 0, 0))
            dst.writestr(pinned, blob, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


# ---------------------------------------------------------------- EDINET-Bench


YEARS = ("Prior4Year", "Prior3Year", "Prior2Year", "Prior1Year", "CurrentYear")


@dataclass(frozen=True)
class Profile:
    """What an industry's figures look like, so industry_prediction has a signal to find."""

    business: str
    name: str  # company-name suffix
    revenue: str  # the top line's account name
    margin: tuple[float, float]  # net income / revenue
    items: tuple[tuple[str, str, float], ...]  # (sheet, account, share of revenue)


# fmt: off
PROFILES = {  # industry: (business, name suffix, revenue account, margin, items)
    "食品": Profile("加工食品の製造・販売", "食品", "売上高", (0.02, 0.05),
        (("bs", "原材料及び貯蔵品", 0.06),)),
    "電気・ガス・エネルギー資源": Profile("電力の発電・小売", "電力", "売上高", (0.01, 0.04),
        (("pl", "燃料費", 0.35),)),
    "建設・資材": Profile("建築・土木工事の請負", "建設", "売上高", (0.02, 0.05),
        (("bs", "未成工事支出金", 0.06),)),
    "素材・化学": Profile("化学品の製造・販売", "化学", "売上高", (0.03, 0.08),
        (("bs", "原材料及び貯蔵品", 0.08),)),
    "医薬品": Profile("医療用医薬品の研究開発・製造・販売", "製薬", "売上高", (0.07, 0.16),
        (("pl", "研究開発費", 0.15),)),
    "自動車・輸送機": Profile("自動車部品の製造・販売", "工業", "売上高", (0.02, 0.06),
        (("bs", "製品保証引当金", 0.02),)),
    "鉄鋼・非鉄": Profile("鉄鋼製品の製造・販売", "製鋼", "売上高", (0.01, 0.05),
        (("bs", "原材料及び貯蔵品", 0.15),)),
    "機械": Profile("産業機械の製造・販売", "機械", "売上高", (0.03, 0.08),
        (("bs", "仕掛品", 0.12),)),
    "電機・精密": Profile("電子機器の製造・販売", "電機", "売上高", (0.03, 0.09),
        (("pl", "研究開発費", 0.06),)),
    "情報通信・サービスその他": Profile("情報システムの開発・運用", "システム", "売上高",
        (0.04, 0.12), (("bs", "ソフトウエア", 0.08),)),
    "運輸・物流": Profile("貨物自動車運送・倉庫", "運輸", "営業収益", (0.02, 0.06),
        (("bs", "車両運搬具", 0.25),)),
    "商社・卸売": Profile("産業資材の卸売", "商事", "売上高", (0.005, 0.02),
        (("bs", "商品", 0.1),)),
    "小売": Profile("食料品・日用品の小売", "ストア", "売上高", (0.01, 0.04),
        (("bs", "商品", 0.08),)),
    "銀行": Profile("銀行業", "銀行", "経常収益", (0.1, 0.2),
        (("bs", "貸出金", 20.0), ("bs", "預金", 28.0))),
    "金融(除く銀行)": Profile("リース・割賦販売", "リース", "営業収益", (0.06, 0.18),
        (("bs", "営業貸付金", 3.0),)),
    "不動産": Profile("不動産の開発・賃貸", "不動産", "営業収益", (0.05, 0.13),
        (("bs", "販売用不動産", 0.9),)),
}
# fmt: on

NAME_STEMS = ("東和", "北斗", "朝日", "中央", "新星", "大和", "光和", "日進", "丸栄", "三洋")
FRAUD_EXPLANATIONS = (
    "架空売上の計上が判明したため、過年度の有価証券報告書を訂正した。",
    "棚卸資産の過大計上が判明したため、過年度の有価証券報告書を訂正した。",
    "工事進行基準の不適切な適用による売上の前倒し計上が判明し、訂正報告書を提出した。",
    "連結子会社における循環取引が判明したため、過年度の決算を訂正した。",
)


def _yen(oku: float) -> str:
    """億円 -> yen rounded to millions, as EDINET XBRL values read."""
    return str(round(oku * 100) * 1_000_000)


def _series(values: list[float], years: tuple[str, ...] = YEARS) -> dict[str, str]:
    return dict(zip(years, (_yen(v) for v in values[-len(years) :]), strict=True))


@dataclass
class Company:
    """Six fiscal years, Prior4Year..CurrentYear plus the next one that no sheet shows."""

    industry: str
    revenue: list[float]  # 億円
    margin: list[float]  # net income / revenue
    receivables_jump: float = 0.0  # extra receivables growth in the current year (red flag)
    negative_ocf: bool = False  # operating CF negative although profit is positive (red flag)

    @property
    def net_income(self) -> list[float]:
        return [r * m for r, m in zip(self.revenue, self.margin, strict=True)]


def _company(rng: random.Random, industry: str) -> Company:
    lo, hi = PROFILES[industry].margin
    revenue, margin = [10 ** rng.uniform(1.7, 4.5)], [rng.uniform(lo, hi)]
    drift, trend = rng.gauss(0.03, 0.04), rng.gauss(0, 0.006)
    for _ in range(5):
        revenue.append(revenue[-1] * (1 + drift + rng.gauss(0, 0.05)))
        trend = 0.6 * trend + rng.gauss(0, 0.008)  # persistent profit trend: a signal to forecast
        margin.append(margin[-1] + trend)
    return Company(industry, revenue, margin)


def _ratio(rng: random.Random, lo: float, hi: float) -> list[float]:
    """A company's own ratio, drifting a few percent a year (balance sheets move slowly)."""
    base = rng.uniform(lo, hi)
    return [base * rng.uniform(0.97, 1.03) for _ in YEARS]


def _times(xs: list[float], ys: list[float]) -> list[float]:
    return [x * y for x, y in zip(xs, ys, strict=True)]


def _sheets(rng: random.Random, c: Company) -> dict[str, dict]:
    p, two, bank = PROFILES[c.industry], YEARS[-2:], c.industry == "銀行"
    rev, ni = c.revenue[:5], c.net_income[:5]
    ordinary = [
        n / t if n > 0 else n * 0.9 for n, t in zip(ni, _ratio(rng, 0.6, 0.72), strict=True)
    ]
    assets = _times(rev, _ratio(rng, 25, 40) if bank else _ratio(rng, 0.8, 1.6))
    equity = _times(assets, _ratio(rng, 0.04, 0.06) if bank else _ratio(rng, 0.3, 0.6))
    receivables = _times(rev, _ratio(rng, 0.12, 0.25))
    receivables[-1] *= 1 + c.receivables_jump
    ocf = [n * k + r * 0.01 for n, k, r in zip(ni, _ratio(rng, 1.1, 1.8), rev, strict=True)]
    if c.negative_ocf:
        ocf[-1] = -abs(ni[-1]) * rng.uniform(0.2, 0.8)
    icf = [-x for x in _times(rev, _ratio(rng, 0.02, 0.08))]
    fcf = [-(o + i) * k for o, i, k in zip(ocf, icf, _ratio(rng, 0.3, 0.9), strict=True)]
    bs = {"現金及び預金": _series(_times(assets, _ratio(rng, 0.05, 0.15)), two)}
    pl = {p.revenue: _series(rev, two)}
    if not bank:
        bs["受取手形及び売掛金"] = _series(receivables, two)
        pl["営業利益"] = _series(_times(ordinary, _ratio(rng, 0.9, 1.05)), two)
    for sheet, account, share in p.items:
        (bs if sheet == "bs" else pl)[account] = _series([r * share for r in rev], two)
    bs |= {"総資産": _series(assets, two), "純資産": _series(equity, two)}
    pl |= {"経常利益": _series(ordinary, two), "親会社株主に帰属する当期純利益": _series(ni, two)}
    summary = {p.revenue: _series(rev), "経常利益": _series(ordinary)}
    summary["親会社株主に帰属する当期純利益"] = _series(ni)
    cf = {"営業キャッシュフロー": ocf, "投資キャッシュフロー": icf, "財務キャッシュフロー": fcf}
    return {
        "summary": summary,
        "bs": bs,
        "pl": pl,
        "cf": {k: _series(v, two) for k, v in cf.items()},
    }


def edinet_codes(rng: random.Random, n: int) -> list[str]:
    """`n` distinct EDINET codes E10000..E39999 from a seeded start (7919 is prime to 30000)."""
    if n > 30000:
        raise ValueError(f"at most 30000 distinct EDINET codes, asked for {n}")
    first = rng.randrange(30000)
    return [f"E{10000 + (first + 7919 * i) % 30000:05d}" for i in range(n)]


def _doc_id(rng: random.Random) -> str:
    return "S100" + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(4))


def _report(rng: random.Random, c: Company, code: str) -> tuple[str, dict[str, str]]:
    """(doc_id, the row's meta/summary/bs/pl/cf/text fields as JSON strings) of one report."""
    p, year = PROFILES[c.industry], rng.randint(2015, 2023)
    meta = {
        "会社名": f"{rng.choice(NAME_STEMS)}{p.name}株式会社",
        "EDINETコード": code,
        "ファンドコード": "－",
        "証券コード": f"{rng.randint(1300, 9999)}0",
        "提出書類": "有価証券報告書",
        "会計基準": "Japan GAAP",
        "当事業年度開始日": f"{year - 1}-04-01",
        "当事業年度終了日": f"{year}-03-31",
        "連結決算の有無": "true",
        "修正の有無": "false",
        "記載事項訂正のフラグ": "false",
        "XBRL訂正のフラグ": "false",
    }
    text = {"事業の内容": {"FilingDate": f"当社グループは、{p.business}を主な事業としております。"}}
    fields = {"meta": meta, **_sheets(rng, c), "text": text}
    return _doc_id(rng), {k: json.dumps(v, ensure_ascii=False) for k, v in fields.items()}


def _fraud_row(rng: random.Random, code: str, label: int) -> dict:
    c = _company(rng, rng.choice(INDUSTRIES))
    if rng.random() < (0.75 if label else 0.15):  # red flags: receivables outgrow sales, OCF < 0
        c.receivables_jump, c.negative_ocf = rng.uniform(0.3, 0.8), c.net_income[4] > 0
    doc_id, fields = _report(rng, c, code)
    return {
        **fields,
        "label": label,
        "explanation": rng.choice(FRAUD_EXPLANATIONS) if label else "",
        "edinet_code": code,
        "ammended_doc_id": _doc_id(rng) if label else "",
        "doc_id": doc_id,
        "file_path": f"edinet_corpus/annual/{code}/{doc_id}.tsv",
    }


def _earnings_row(rng: random.Random, code: str, label: int) -> dict:
    """Label 1 = next year's net income, drawn from the same trend but not shown, is higher."""
    c = _company(rng, rng.choice(INDUSTRIES))
    while int(c.net_income[5] > c.net_income[4]) != label:
        c = _company(rng, rng.choice(INDUSTRIES))
    doc_id, fields = _report(rng, c, code)
    return {
        **fields,
        "label": label,
        "naive_prediction": int(c.net_income[4] > c.net_income[3]),
        "edinet_code": code,
        "doc_id": doc_id,
        "previous_year_file_path": f"edinet_corpus/annual/{code}/{doc_id}.tsv",
        "current_year_file_path": f"edinet_corpus/annual/{code}/{_doc_id(rng)}.tsv",
    }


def _industry_row(rng: random.Random, code: str, industry: str) -> dict:
    doc_id, fields = _report(rng, _company(rng, industry), code)
    return {
        **fields,
        "industry": industry,
        "edinet_code": code,
        "doc_id": doc_id,
        "file_path": f"edinet_corpus/annual/{code}/{doc_id}.tsv",
    }


EDINET_MAKERS: dict[str, Callable[[random.Random, str, Any], dict]] = {
    "fraud_detection": _fraud_row,
    "earnings_forecast": _earnings_row,
    "industry_prediction": _industry_row,
}


def edinet_rows(
    name: str, cfg: EdinetBinaryConfig | EdinetIndustryConfig, seed: int, training_text: str
) -> tuple[list[dict], int]:
    """Rows of one EDINET-Bench config: exact label counts (industries round-robin), seeded order.

    Each row is its own company (distinct EDINET codes), as the benchmark splits by company.
    """
    rng = random.Random(f"finstage-bench:edinet:{name}:{seed}")
    if isinstance(cfg, EdinetBinaryConfig):
        targets: list[Any] = [1] * cfg.positives + [0] * (cfg.n_items - cfg.positives)
    else:
        targets = [INDUSTRIES[i % len(INDUSTRIES)] for i in range(cfg.n_items)]
    rng.shuffle(targets)
    codes = edinet_codes(rng, len(targets))
    make = EDINET_MAKERS[name]

    def draw(r: random.Random, job: tuple[str, Any]) -> tuple[str, dict]:
        row = make(r, *job)
        return row["pl"], row

    return draw_unique(
        list(zip(codes, targets, strict=True)), draw, rng, training_text, f"edinet.{name}"
    )


def sha256_text(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def write(path: Path, payload: str | bytes) -> str:
    """Write one raw file; returns its sha256 for the manifest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(payload, str):
        path.write_text(payload, encoding="utf-8")
    else:
        path.write_bytes(payload)
    return sha256_text(payload)
