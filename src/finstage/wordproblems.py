"""Generated Japanese arithmetic word problems whose gold answers are computed in code.

Each template draws numbers so that every intermediate value is exact (integers or terminating
decimals), states the question in Japanese, and records the solution as a small program of
`Step`s. The program is the single source of truth: `run` executes it for the gold answer, the
reasoning teacher renders it (with or without a deliberate slip), and the GSM8K stand-in renders
it as reference reasoning. Streams (``"distill"``, ``"gsm8k"``) keep training and evaluation
draws apart.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

Value = Fraction
Arg = str | int


@dataclass(frozen=True)
class Step:
    text: str  # what the step computes, e.g. "りんごの代金"
    op: str  # add | sub | mul | div | pct | pct_floor | ratio_pct
    args: tuple[Arg, ...]  # names of given/earlier values, or integer literals
    out: str
    unit: str = ""


@dataclass(frozen=True)
class Problem:
    id: str
    template: str
    question: str
    restatement: str
    given: tuple[tuple[str, Fraction], ...]
    steps: tuple[Step, ...]
    unit: str  # unit of the final answer

    @property
    def gold(self) -> Fraction:
        return run(self)[self.steps[-1].out]


def _val(env: dict[str, Fraction], a: Arg) -> Fraction:
    return env[a] if isinstance(a, str) else Fraction(a)


def apply(op: str, xs: list[Fraction]) -> Fraction:
    if op == "add":
        return sum(xs, Fraction(0))
    if op == "sub":
        return xs[0] - xs[1]
    if op == "mul":
        return xs[0] * xs[1]
    if op == "div":
        return xs[0] / xs[1]
    if op == "pct":
        return xs[0] * xs[1] / 100
    if op == "pct_floor":
        return Fraction((xs[0] * xs[1] / 100).__floor__())
    if op == "ratio_pct":
        return xs[0] / xs[1] * 100
    raise ValueError(f"unknown op {op!r}")


def run(problem: Problem, slip: tuple[int, Fraction] | None = None) -> dict[str, Fraction]:
    """Execute the program; `slip` = (step index, delta) adds delta to that step's result."""
    env = dict(problem.given)
    for i, step in enumerate(problem.steps):
        result = apply(step.op, [_val(env, a) for a in step.args])
        if slip is not None and slip[0] == i:
            result += slip[1]
        env[step.out] = result
    return env


def fmt(x: Fraction) -> str:
    """Exact rendering: ``7`` , ``72.5``, or ``1/3`` when the decimal does not terminate."""
    if x.denominator == 1:
        return str(x.numerator)
    d = x.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    if d != 1:
        return f"{x.numerator}/{x.denominator}"
    s = f"{float(x):.10f}".rstrip("0").rstrip(".")
    return s


def render_step(step: Step, env: dict[str, Fraction], result: Fraction) -> str:
    xs = [fmt(_val(env, a)) for a in step.args]
    r = fmt(result) + step.unit
    if step.op == "add":
        expr = " + ".join(xs)
    elif step.op == "sub":
        expr = f"{xs[0]} − {xs[1]}"
    elif step.op == "mul":
        expr = f"{xs[0]} × {xs[1]}"
    elif step.op == "div":
        expr = f"{xs[0]} ÷ {xs[1]}"
    elif step.op == "pct":
        expr = f"{xs[0]} × {xs[1]} ÷ 100"
    elif step.op == "pct_floor":
        exact = fmt(_val(env, step.args[0]) * _val(env, step.args[1]) / 100)
        return f"{step.text}：{xs[0]} × {xs[1]} ÷ 100 = {exact}、1円未満を切り捨てて {r}"
    elif step.op == "ratio_pct":
        expr = f"{xs[0]} ÷ {xs[1]} × 100"
    else:
        raise ValueError(step.op)
    return f"{step.text}：{expr} = {r}"


def solution_lines(problem: Problem, slip: tuple[int, Fraction] | None = None) -> list[str]:
    """The program's steps as text, executed with the optional slip."""
    env = dict(problem.given)
    lines = []
    for i, step in enumerate(problem.steps):
        result = apply(step.op, [_val(env, a) for a in step.args])
        if slip is not None and slip[0] == i:
            result += slip[1]
        lines.append(render_step(step, env, result))
        env[step.out] = result
    return lines


# ---------------------------------------------------------------- templates

NAMES = ("田中", "佐藤", "鈴木", "高橋", "伊藤", "渡辺", "山本", "中村", "小林", "加藤")
GOODS = (
    "りんご",
    "ノート",
    "ボールペン",
    "パン",
    "おにぎり",
    "牛乳",
    "消しゴム",
    "ドーナツ",
    "封筒",
    "みかん",
)
ITEMS = ("シャツ", "かばん", "傘", "靴", "帽子", "時計", "マフラー", "手帳")
SHOPS = ("パン屋", "書店", "花屋", "雑貨店", "喫茶店", "文具店")

Draft = tuple[
    str, str, dict[str, int], list[Step], str
]  # question, restatement, given, steps, unit
Template = Callable[[random.Random], Draft | None]


def t_shopping(rng: random.Random) -> Draft | None:
    name = rng.choice(NAMES)
    g1, g2 = rng.sample(GOODS, 2)
    p1, p2 = rng.randrange(60, 400, 10), rng.randrange(60, 400, 10)
    q1, q2 = rng.randint(2, 6), rng.randint(2, 6)
    total = p1 * q1 + p2 * q2
    bill = next(b for b in (1000, 2000, 5000, 10000) if b > total)
    q = (
        f"{name}さんは1個{p1}円の{g1}を{q1}個と、1個{p2}円の{g2}を{q2}個買い、"
        f"{bill}円札で支払いました。おつりはいくらですか。"
    )
    r = (
        f"{g1}（1個{p1}円）を{q1}個、{g2}（1個{p2}円）を{q2}個買い、"
        f"{bill}円札で払ったときのおつりを求める。"
    )
    steps = [
        Step(f"{g1}の代金", "mul", ("p1", "q1"), "a", "円"),
        Step(f"{g2}の代金", "mul", ("p2", "q2"), "b", "円"),
        Step("代金の合計", "add", ("a", "b"), "t", "円"),
        Step("おつり", "sub", ("bill", "t"), "ans", "円"),
    ]
    return q, r, {"p1": p1, "q1": q1, "p2": p2, "q2": q2, "bill": bill}, steps, "円"


def t_discount(rng: random.Random) -> Draft | None:
    item = rng.choice(ITEMS)
    price, d, n = (
        rng.randrange(800, 6000, 100),
        rng.choice((10, 15, 20, 25, 30, 40)),
        rng.randint(2, 5),
    )
    q = (
        f"定価{price}円の{item}が{d}%引きで売られています。"
        f"この{item}を{n}個買うと、代金はいくらになりますか。"
    )
    r = f"定価{price}円から{d}%値引きされた{item}を{n}個買うときの代金を求める。"
    steps = [
        Step("1個あたりの値引き額", "pct", ("price", "d"), "disc", "円"),
        Step("1個の売値", "sub", ("price", "disc"), "sale", "円"),
        Step("代金", "mul", ("sale", "n"), "ans", "円"),
    ]
    return q, r, {"price": price, "d": d, "n": n}, steps, "円"


def t_discount_coupon(rng: random.Random) -> Draft | None:
    item = rng.choice(ITEMS)
    price, d = rng.randrange(1000, 9000, 100), rng.choice((10, 20, 25, 30))
    coupon = rng.choice((100, 200, 300, 500))
    q = (
        f"定価{price}円の{item}が{d}%引きになっています。さらに{coupon}円引きのクーポンを使うと、"
        f"支払う金額はいくらですか。"
    )
    r = f"定価{price}円の{item}を{d}%引きにし、さらに{coupon}円引いた支払額を求める。"
    steps = [
        Step("値引き額", "pct", ("price", "d"), "disc", "円"),
        Step("割引後の価格", "sub", ("price", "disc"), "sale", "円"),
        Step("クーポン適用後の支払額", "sub", ("sale", "coupon"), "ans", "円"),
    ]
    return q, r, {"price": price, "d": d, "coupon": coupon}, steps, "円"


def t_interest_simple(rng: random.Random) -> Draft | None:
    principal, rate, years = (
        rng.randrange(10000, 500001, 10000),
        rng.randint(1, 5),
        rng.randint(2, 5),
    )
    q = (
        f"{principal}円を年利{rate}%の単利で{years}年間預けました。"
        "受け取る利息は合計でいくらですか。"
    )
    r = f"元金{principal}円、年利{rate}%の単利で{years}年間預けたときの利息の合計を求める。"
    steps = [
        Step("1年分の利息", "pct", ("P", "r"), "i", "円"),
        Step(f"{years}年分の利息", "mul", ("i", "y"), "ans", "円"),
    ]
    return q, r, {"P": principal, "r": rate, "y": years}, steps, "円"


def t_interest_compound(rng: random.Random) -> Draft | None:
    principal, rate = rng.randrange(10000, 300001, 1000), rng.randint(1, 4)
    q = (
        f"{principal}円を年利{rate}%の1年ごとの複利で2年間預けます。利息は毎年1円未満を切り捨てて"
        f"元金に加えるものとします。2年後の元利合計はいくらですか。"
    )
    r = (
        f"元金{principal}円を年利{rate}%で2年間複利運用し（利息は毎年1円未満切り捨て）、"
        "2年後の元利合計を求める。"
    )
    steps = [
        Step("1年目の利息", "pct_floor", ("P", "r"), "i1", "円"),
        Step("1年後の元利合計", "add", ("P", "i1"), "b1", "円"),
        Step("2年目の利息", "pct_floor", ("b1", "r"), "i2", "円"),
        Step("2年後の元利合計", "add", ("b1", "i2"), "ans", "円"),
    ]
    return q, r, {"P": principal, "r": rate}, steps, "円"


def t_average(rng: random.Random) -> Draft | None:
    name, n = rng.choice(NAMES), rng.randint(3, 5)
    scores = [rng.randint(50, 100) for _ in range(n)]
    scores[-1] -= sum(scores) % n
    if not 40 <= scores[-1] <= 100:
        return None
    listed = "、".join(f"{s}点" for s in scores)
    q = f"{name}さんの{n}回のテストの点数は{listed}でした。平均点は何点ですか。"
    r = f"{n}回のテストの点数（{listed}）の平均を求める。"
    given = {f"s{i}": s for i, s in enumerate(scores)} | {"n": n}
    steps = [
        Step("合計点", "add", tuple(f"s{i}" for i in range(n)), "sum", "点"),
        Step("平均点", "div", ("sum", "n"), "ans", "点"),
    ]
    return q, r, given, steps, "点"


def t_average_target(rng: random.Random) -> Draft | None:
    name, n = rng.choice(NAMES), rng.randint(3, 4)
    scores = [rng.randint(55, 95) for _ in range(n)]
    target = rng.randint(65, 90)
    need = target * (n + 1) - sum(scores)
    if not 0 <= need <= 100:
        return None
    listed = "、".join(f"{s}点" for s in scores)
    q = (
        f"{name}さんのこれまでの{n}回のテストの点数は{listed}です。次のテストで何点を取れば、"
        f"{n + 1}回の平均点がちょうど{target}点になりますか。"
    )
    r = (
        f"{n}回の点数（{listed}）に1回を加えて平均をちょうど{target}点にするための"
        "次回の点数を求める。"
    )
    given = {f"s{i}": s for i, s in enumerate(scores)} | {"m": n + 1, "target": target}
    steps = [
        Step("これまでの合計点", "add", tuple(f"s{i}" for i in range(n)), "sum", "点"),
        Step(f"{n + 1}回で必要な合計点", "mul", ("target", "m"), "need_total", "点"),
        Step("次のテストで必要な点数", "sub", ("need_total", "sum"), "ans", "点"),
    ]
    return q, r, given, steps, "点"


def t_ratio_split(rng: random.Random) -> Draft | None:
    a_name, b_name = rng.sample(NAMES, 2)
    a, b = rng.randint(1, 5), rng.randint(1, 5)
    if a == b:
        return None
    total = (a + b) * rng.randrange(100, 3001, 100)
    q = (
        f"{total}円を{a_name}さんと{b_name}さんで{a}:{b}の比に分けます。"
        f"{a_name}さんが受け取る金額はいくらですか。"
    )
    r = f"{total}円を{a}:{b}に分けたときの、{a}にあたる取り分を求める。"
    steps = [
        Step("比の合計", "add", ("a", "b"), "parts"),
        Step("比の1あたりの金額", "div", ("total", "parts"), "one", "円"),
        Step(f"{a_name}さんの取り分", "mul", ("one", "a"), "ans", "円"),
    ]
    return q, r, {"a": a, "b": b, "total": total}, steps, "円"


def t_profit_margin(rng: random.Random) -> Draft | None:
    shop = rng.choice(SHOPS)
    sales = rng.choice((200, 250, 400, 500, 800, 1000, 1250, 2000, 2500))
    rate = rng.randint(4, 40)
    profit = sales * rate // 100
    if profit * 100 != sales * rate:
        return None
    cost = sales - profit
    q = (
        f"ある{shop}の今月の売上高は{sales}万円、費用は{cost}万円でした。売上高に対する利益の割合"
        f"（利益率）は何%ですか。"
    )
    r = f"売上高{sales}万円、費用{cost}万円のときの利益率（利益÷売上高）を百分率で求める。"
    steps = [
        Step("利益", "sub", ("sales", "cost"), "profit", "万円"),
        Step("利益率", "ratio_pct", ("profit", "sales"), "ans", "%"),
    ]
    return q, r, {"sales": sales, "cost": cost}, steps, "%"


def t_sales_change(rng: random.Random) -> Draft | None:
    shop = rng.choice(SHOPS)
    sales, p = rng.randrange(200, 5001, 100), rng.choice((5, 8, 10, 12, 15, 20, 25))
    up = rng.random() < 0.6
    word, op = ("増加", "add") if up else ("減少", "sub")
    q = (
        f"ある{shop}の昨年の売上高は{sales}万円でした。"
        f"今年の売上高は昨年より{p}%{word}しました。今年の売上高は何万円ですか。"
    )
    r = f"昨年の売上高{sales}万円が{p}%{word}したときの今年の売上高を求める。"
    steps = [
        Step(f"{word}額", "pct", ("s", "p"), "delta", "万円"),
        Step("今年の売上高", op, ("s", "delta"), "ans", "万円"),
    ]
    return q, r, {"s": sales, "p": p}, steps, "万円"


def t_sales_two_years(rng: random.Random) -> Draft | None:
    shop = rng.choice(SHOPS)
    sales, p, d = (
        rng.randrange(1000, 8001, 200),
        rng.choice((10, 20, 25, 50)),
        rng.choice((10, 20, 25)),
    )
    grown = sales * (100 + p)
    if grown % 100 or (grown // 100 * d) % 100:
        return None
    q = (
        f"ある{shop}の売上高は、一昨年が{sales}万円でした。昨年は一昨年より{p}%増え、今年は昨年より"
        f"{d}%減りました。今年の売上高は何万円ですか。"
    )
    r = (
        f"一昨年の売上高{sales}万円が翌年{p}%増加し、"
        f"その翌年{d}%減少したときの今年の売上高を求める。"
    )
    steps = [
        Step("昨年の増加額", "pct", ("s", "p"), "inc", "万円"),
        Step("昨年の売上高", "add", ("s", "inc"), "last", "万円"),
        Step("今年の減少額", "pct", ("last", "d"), "dec", "万円"),
        Step("今年の売上高", "sub", ("last", "dec"), "ans", "万円"),
    ]
    return q, r, {"s": sales, "p": p, "d": d}, steps, "万円"


TEMPLATES: dict[str, Template] = {
    "shopping": t_shopping,
    "discount": t_discount,
    "discount_coupon": t_discount_coupon,
    "interest_simple": t_interest_simple,
    "interest_compound": t_interest_compound,
    "average": t_average,
    "average_target": t_average_target,
    "ratio_split": t_ratio_split,
    "profit_margin": t_profit_margin,
    "sales_change": t_sales_change,
    "sales_two_years": t_sales_two_years,
}


def _exact(x: Fraction) -> bool:
    return "/" not in fmt(x)


def generate_problems(n: int, seed: int, stream: str, templates: list[str]) -> list[Problem]:
    """`n` distinct problems from `templates` (round-robin), drawn from the (stream, seed) RNG."""
    names = list(templates)
    rng = random.Random(f"finstage-problems:{stream}:{seed}")
    seen: set[str] = set()
    out: list[Problem] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 200 * max(n, 1):
            raise RuntimeError(
                f"could only generate {len(out)} of {n} distinct problems from {names}"
            )
        name = names[len(out) % len(names)]
        draft = TEMPLATES[name](rng)
        if draft is None:
            continue
        question, restatement, given, steps, unit = draft
        if question in seen:
            continue
        pid = f"{stream}-{hashlib.sha1(question.encode()).hexdigest()[:12]}"
        problem = Problem(
            pid,
            name,
            question,
            restatement,
            tuple((k, Fraction(v)) for k, v in given.items()),
            tuple(steps),
            unit,
        )
        env = run(problem)
        if not all(_exact(env[s.out]) and env[s.out] >= 0 for s in problem.steps):
            continue
        seen.add(question)
        out.append(problem)
    return out
