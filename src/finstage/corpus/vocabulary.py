"""Words and figures of the generated documents; every organisation is fictional.

Row labels, sentence subjects and the ranges amounts and rates are drawn from, kept apart from the
layouts so that a new layout (or a larger corpus) reuses them.
"""

from __future__ import annotations

import random

PLACES = [
    "青葉",
    "若葉",
    "東雲",
    "朝霧",
    "星野",
    "白波",
    "緑川",
    "桜台",
    "紅葉",
    "汐見",
    "高嶺",
    "月見",
]
BUREAUS = ["財務局", "金融監督局", "経済財政局", "主計局", "税務局", "財政企画局"]
REVENUE = [
    "所得税",
    "法人税",
    "消費税",
    "相続税",
    "揮発油税",
    "酒税",
    "たばこ税",
    "関税",
    "自動車重量税",
    "印紙収入",
    "官業益金及官業収入",
    "政府資産整理収入",
    "雑収入",
    "公債金",
    "前年度剰余金受入",
    "手数料収入",
    "貸付金償還金",
    "財産売払収入",
    "寄附金収入",
    "納付金",
    "国庫補助金受入",
    "使用料収入",
    "利子収入",
    "配当金収入",
    "繰入金",
    "諸収入",
    "地方譲与税",
    "電源開発促進税",
    "石油石炭税",
    "航空機燃料税",
    "登録免許税",
    "地価税",
    "特別法人事業税",
    "森林環境税",
]
EXPENDITURE = [
    "社会保障関係費",
    "文教及び科学振興費",
    "国債費",
    "地方交付税交付金",
    "防衛関係費",
    "公共事業関係費",
    "経済協力費",
    "中小企業対策費",
    "エネルギー対策費",
    "食料安定供給関係費",
    "恩給関係費",
    "予備費",
    "人件費",
    "庁舎等施設費",
    "情報システム経費",
    "調査研究費",
    "広報啓発費",
    "国際協力費",
    "地域振興費",
    "職員研修費",
    "統計調査費",
    "金融監督費",
    "税務行政費",
    "国有財産管理費",
    "災害復旧費",
    "環境対策費",
    "子ども・子育て支援費",
    "デジタル化推進費",
    "科学技術振興費",
    "住宅対策費",
    "観光振興費",
    "農林水産業振興費",
    "雇用対策費",
    "保健衛生費",
    "消防防災費",
]
_QUALIFIERS = ["一般分", "特別分", "復興分", "経常分", "臨時分"]
SUBJECTS = [
    "一般会計歳出総額",
    "歳入総額",
    "税収",
    "公債発行額",
    "社会保障関係費",
    "地方交付税交付金",
    "公共事業関係費",
    "防衛関係費",
    "国債費",
    "貸出残高",
    "預金残高",
    "手数料収入",
    "中小企業向け融資額",
    "補助金交付額",
    "基金残高",
    "国庫納付金",
    "特別会計繰入額",
    "保険料収入",
    "設備投資額",
    "企業向け貸出額",
]
COUNT_SUBJECTS = ["立入検査", "補助金交付決定", "苦情相談", "登録申請", "行政処分", "融資承認"]
TOPICS = ["予算の概要", "決算の概要", "金融機関の貸出動向", "補助金の交付状況", "税収の動向"]
HEADINGS = ["概要", "主な内容", "前年度との比較", "今後の見通し", "内訳", "背景", "主な増減要因"]
PLAIN = [
    "詳細については、別添資料をご参照ください。",
    "引き続き、効率的かつ適正な予算執行に努めてまいります。",
    "なお、計数はそれぞれ四捨五入しているため、合計と一致しない場合があります。",
    "本件に関する今後の予定は、決まり次第お知らせします。",
]


def row_labels(pool: list[str], n: int, rng: random.Random) -> list[str]:
    """n distinct row labels: the pool shuffled, then qualified variants, then numbered ones."""
    labels = rng.sample(pool, len(pool))
    labels += [f"{p}（{q}）" for q in _QUALIFIERS for p in pool]
    labels += [f"その他経費（その{i}）" for i in range(1, max(0, n - len(labels)) + 1)]
    return labels[:n]


def magnitude(rng: random.Random, low: float = 3.0, high: float = 6.5) -> int:
    return int(round(10 ** rng.uniform(low, high)))


def percent(rng: random.Random) -> float:
    return round(rng.uniform(0.1, 12.0), 1)
