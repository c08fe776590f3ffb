"""What the pfnet exam stand-ins (cma_basics, fp2, security_sales_1) ask about.

Every answer is computed or looked up in code: term tables (a false statement pairs a
definition with another term of the same table) and numeric templates (the wrong options are
the values of typical wrong formulas), so a stand-in's gold is right by construction.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

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


def table_statement(rng: random.Random, table: TermTable, term: str, true: bool) -> str:
    others = [t for t, _ in table.terms if t != term]
    return table.say(term, term if true else rng.choice(others))


# ---------------------------------------------------------------- FP2 〈資料〉 blocks
# A third of the real FP2 prompts carry a data block and run past a 512-token window; these
# make the stand-in's long items. Each figure is computed, so the block reads consistently.


def _coefficients(rng: random.Random) -> str:
    rate = rng.choice([1, 2, 3, 4, 5])
    r = rate / 100
    rows = [
        f"〈係数早見表（年利{rate}．０％）〉",
        "期間　終価係数　現価係数　年金終価係数　減債基金係数　資本回収係数　年金現価係数",
    ]
    for years in (5, 10, 15, 20, 25, 30):
        fv, pv = (1 + r) ** years, (1 + r) ** -years
        annuity_fv, annuity_pv = (fv - 1) / r, (1 - pv) / r
        values = (fv, pv, annuity_fv, 1 / annuity_fv, 1 / annuity_pv, annuity_pv)
        rows.append(f"{years}年　" + "　".join(f"{v:.3f}" for v in values))
    rows.append("※記載されている数値は正しいものとする。")
    return "\n".join(rows)


def _income(rng: random.Random) -> str:
    salary, dividend = rng.randint(40, 120) * 10, rng.randint(5, 60)
    rent, prize, pension = rng.randint(60, 240), rng.randint(60, 300), rng.randint(70, 200)
    return "\n".join(
        [
            f"〈Ａさんの令和{rng.randint(3, 6)}年分の収入等に関する資料〉",
            f"・給与収入：{salary:,}万円（勤務先から受け取ったもの。源泉徴収済み）",
            f"・上場株式の配当金：{dividend}万円（申告分離課税を選択していない）",
            f"・賃貸アパートの家賃収入：{rent}万円（必要経費{rent // 3}万円）",
            f"・懸賞の賞金：{prize}万円（懸賞に当選して一時に受け取ったもの）",
            f"・公的年金：{pension}万円（老齢基礎年金として受け取ったもの）",
            "※Ａさんは青色申告者ではなく、上記以外に所得はないものとする。",
            "※記載のない事項については考慮しないものとする。",
        ]
    )


def _company(rng: random.Random) -> str:
    eps, bps = rng.randint(40, 300), rng.randint(600, 4000)
    price, dps = eps * rng.randint(8, 30), rng.randint(10, eps // 2 + 10)
    assets = rng.randint(200, 900) * 100
    equity, current = assets * rng.randint(30, 60) // 100, assets * rng.randint(30, 50) // 100
    liabilities = current * rng.randint(50, 90) // 100
    sales = assets * rng.randint(60, 150) // 100
    operating = sales * rng.randint(3, 12) // 100
    year = rng.randint(2021, 2024)
    return "\n".join(
        [
            f"〈Ｘ社の財務データ（{year}年３月期、連結）〉",
            f"・株価：{price:,}円　発行済株式数：{rng.randint(10, 90) * 1000:,}万株",
            f"・１株当たり当期純利益：{eps}円　１株当たり純資産：{bps:,}円",
            f"・１株当たり年間配当金：{dps}円（中間配当を含む）",
            f"・売上高：{sales:,}百万円　営業利益：{operating:,}百万円",
            f"・総資産：{assets:,}百万円　自己資本：{equity:,}百万円",
            f"・流動資産：{current:,}百万円　流動負債：{liabilities:,}百万円",
            f"・前期（{year - 1}年３月期）の総資産：{assets * rng.randint(85, 99) // 100:,}百万円",
            f"・従業員数：{rng.randint(300, 9000):,}名　決算期：毎年３月末日",
            "※株価は期末日の終値とする。",
            "※記載のない事項については考慮しないものとする。",
        ]
    )


def _bond(rng: random.Random) -> str:
    coupon, years = rng.choice([0.3, 0.5, 1.0, 1.5, 2.0]), rng.randint(3, 10)
    bought, sold = rng.randint(9800, 10200) / 100, rng.randint(9800, 10300) / 100
    return "\n".join(
        [
            "〈固定利付債券の発行条件等〉",
            f"・表面利率：年{coupon}％　利払い：年１回　償還期限：{years}年",
            "・発行価格：額面100円につき100.00円",
            f"・購入価格：額面100円につき{bought:.2f}円（既発債を購入）",
            f"・売却価格：額面100円につき{sold:.2f}円（購入から{rng.randint(1, years - 1)}年後）",
            f"・発行体：Ｙ株式会社（格付：{rng.choice(['ＡＡ', 'Ａ', 'ＢＢＢ'])}）　額面：100万円",
            f"・購入時の市場金利（同年限の国債利回り）：年{rng.randint(1, 15) / 10:.1f}％",
            "・購入日及び売却日は利払日の直後とし、経過利子は考慮しない。",
            "※税金や手数料等は考慮せず、利回りは単利で計算するものとする。",
            "※記載のない事項については考慮しないものとする。",
        ]
    )


FP2_MATERIAL = {  # the term table's topic -> its data block
    "ライフプランニングで用いる係数": _coefficients,
    "所得税の所得区分": _income,
    "財務指標・投資指標": _company,
    "債券の利回り": _bond,
}


def fp2_material(rng: random.Random, table: TermTable) -> str:
    """A 〈資料〉 block on `table`'s topic, shown before an FP2 item's statements."""
    return FP2_MATERIAL[table.topic](rng)


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


def choice_row(question: str, context: str, texts: list[str], answer: int, comment: str) -> dict:
    """One ``data.json`` row without its id: choice ids are 0..n-1 and ``answer`` is one."""
    return {
        "question": question,
        "context": context,
        "choices": [{"id": i, "text": t} for i, t in enumerate(texts)],
        "answer": answer,
        "comment": comment,
    }


def numeric_item(rng: random.Random) -> tuple[str, dict]:
    """(the text a model reads, its row) of a calculation question with four numeric options."""
    for _ in range(100):
        calc = rng.choice(CALCS)(rng)
        picked = _numeric_choices(calc)
        if picked is not None:
            texts, answer = picked
            row = choice_row(calc.question, calc.context, texts, answer, calc.comment)
            return calc.question + "\n" + calc.context, row
    raise RuntimeError("numeric templates kept drawing values that format to clashing options")
