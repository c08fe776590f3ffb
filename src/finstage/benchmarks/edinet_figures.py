"""The companies behind the EDINET-Bench stand-ins: five years of figures per report, shaped
so each task has a signal to find.

Each row is its own company. Figures follow an industry profile (its revenue account, margins
and telltale items), so industry_prediction is learnable; net income follows a persistent
trend, so earnings_forecast is; fraud rows more often carry red flags (receivables outgrowing
sales, negative operating cash flow despite a profit), so fraud_detection is. Sheets are kept
to a few hundred characters, so six checkpoints are scored in seconds.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from finstage.benchmarks.standin import StandIns, draw_unique, edinet_codes

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
# EDINET-Bench's 16 industry labels, in its order: every label has a profile.
INDUSTRIES = tuple(PROFILES)

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


ROW_MAKERS: dict[str, Callable[[random.Random, str, Any], dict]] = {
    "fraud_detection": _fraud_row,
    "earnings_forecast": _earnings_row,
    "industry_prediction": _industry_row,
}


def stand_in_rows(config: str, targets: list[Any], out: StandIns) -> tuple[list[dict], int]:
    """Rows of one EDINET-Bench config, one per target label, in a seeded order.

    Each row is its own company (distinct EDINET codes), as the benchmark splits by company.
    """
    rng = random.Random(f"finstage-bench:edinet:{config}:{out.seed}")
    rng.shuffle(targets)
    codes = edinet_codes(rng, len(targets))
    make = ROW_MAKERS[config]

    def draw(r: random.Random, job: tuple[str, Any]) -> tuple[str, dict]:
        row = make(r, *job)
        return row["pl"], row

    return draw_unique(list(zip(codes, targets, strict=True)), draw, rng, out, f"edinet.{config}")
