"""pfnet japanese-lm-fin-harness `cpa_audit`: auditing questions from the CPA exam, answered by
picking the right combination of statements.

Raw schema: pfnet's ``CPA_AUDIT.xlsx`` with an index column, ``key, question, ア…カ, 1…6, a_no,
abnormal_flg``; rows with ``abnormal_flg == 1`` are dropped, as upstream does. Normalised docs
are the pfnet exams' ``{"id", "prompt", "choices", "gold"}``, the six combinations lettered
A〜F. The stand-in has four statements ア〜エ and six two-statement combinations per item, plus
``n_abnormal`` flagged rows every loader must drop.
"""

from __future__ import annotations

import io
import random
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl

from finstage.benchmarks.benchmark import Benchmark, TaskSettings
from finstage.benchmarks.lmeval import Doc, TextTask
from finstage.benchmarks.pfnet_exams import SCORES, choice_task, pfnet_prompt
from finstage.benchmarks.rawfile import field
from finstage.benchmarks.standin import StandIns, draw_unique, untargeted
from finstage.benchmarks.transport import RawLayout, Row, SourceError, SourceSpec, load_rows
from finstage.config import require

DESCRIPTION = (
    "以下の問題の答えとして適切な記号の組み合わせを選択肢から選んでアルファベットで"
    "答えなさい。\n\n\n"
)
STATEMENT_COLUMNS = ("ア", "イ", "ウ", "エ", "オ", "カ")


@dataclass
class CpaConfig:
    n_items: int
    n_abnormal: int  # extra rows with abnormal_flg = 1 (the real file has 10) loaders drop

    def check(self, where: str) -> None:
        require(self.n_items >= 1, f"{where}.n_items", f"must be >= 1, got {self.n_items}")
        require(self.n_abnormal >= 0, f"{where}.n_abnormal", f"must be >= 0, got {self.n_abnormal}")


# ---------------------------------------------------------------- stand-in


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
CPA_HEADER = [None, "key", "question", *STATEMENT_COLUMNS, 1, 2, 3, 4, 5, 6, "a_no", "abnormal_flg"]


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


def stand_in_rows(cfg: CpaConfig, out: StandIns) -> tuple[list[dict], int]:
    """Valid rows plus `n_abnormal` flagged ones at seeded positions; index 0..n-1."""
    rng = random.Random(f"finstage-bench:cpa_audit:{out.seed}")
    total = cfg.n_items + cfg.n_abnormal
    rows, dropped = draw_unique([None] * total, untargeted(_cpa_item), rng, out, "cpa_audit")
    flagged = set(rng.sample(range(total), cfg.n_abnormal))
    return [
        {"index": i, **r, "abnormal_flg": int(i in flagged)} for i, r in enumerate(rows)
    ], dropped


def workbook(rows: list[dict]) -> bytes:
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


# ---------------------------------------------------------------- raw schema


def _xlsx_rows(path: Path) -> list[Row]:
    """Rows keyed by header text; the first column is the index, as pandas' index_col=0 reads."""
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as err:  # openpyxl raises several unrelated types for a non-xlsx file
        raise SourceError(f"{path}: not a readable .xlsx workbook ({err})") from err
    sheet = book.worksheets[0]
    values = list(sheet.iter_rows(values_only=True))
    book.close()
    if not values:
        raise SourceError(f"{path}: the first worksheet is empty; expected a header row")
    header = ["" if h is None else str(h) for h in values[0]]
    rows: list[Row] = []
    for n, cells in enumerate(values[1:], 2):
        row = {h: v for h, v in zip(header[1:], cells[1:], strict=False) if h}
        row["__index__"] = cells[0] if cells else None
        rows.append((f"{path} row {n}", row))
    return rows


_LAYOUT = RawLayout(read=_xlsx_rows, folder_files=lambda spec: ["CPA_AUDIT.xlsx"])
_CELL = (str, int, float, type(None))


def _cell(value: Any) -> str:
    """A cell as pandas' astype(str) renders it: an empty cell reads as NaN, i.e. 'nan'."""
    return "nan" if value is None else str(value)


def _docs(rows: list[Row]) -> list[Doc]:
    docs = []
    for n, (where, raw) in enumerate(rows):
        row = {str(k): v for k, v in raw.items()}
        question = _cell(field(row, where, "question", _CELL))
        if question in ("", "nan"):
            continue
        if field(row, where, "abnormal_flg", (int, float, str, type(None))) == 1:
            continue
        statements = [(s, _cell(row.get(s))) for s in STATEMENT_COLUMNS]
        context = "\n".join(f"{s}: {t}" for s, t in statements if t not in ("", "nan"))
        texts = [_cell(field(row, where, str(i), _CELL)) for i in range(1, 7)]
        a_no = field(row, where, "a_no", (int, float))
        if a_no not in range(1, 7):
            raise SourceError(f"{where}: field 'a_no' = {a_no!r}; expected 1..6")
        listed = [f"{chr(i + 65)}: {t}" for i, t in enumerate(texts)]
        index = row.get("__index__", row.get("id"))
        docs.append(
            {
                "id": str(index if index is not None else n),
                "prompt": pfnet_prompt(DESCRIPTION, question, context, listed),
                "choices": [chr(i + 65) for i in range(6)],
                "gold": int(a_no) - 1,
            }
        )
    return docs


@dataclass(frozen=True, kw_only=True)
class CpaAudit(Benchmark):
    def write_stand_in(self, sizes: CpaConfig, out: StandIns) -> None:
        rows, dropped = stand_in_rows(sizes, out)
        abnormal = sum(r["abnormal_flg"] for r in rows)
        entry = out.entry(
            self.name,
            "pfnet japanese-lm-fin-harness CPA_AUDIT.xlsx",
            {"path": "cpa_audit/CPA_AUDIT.xlsx"},
            items=len(rows) - abnormal,
            abnormal_rows=abnormal,
            dropped_as_in_training=dropped,
        )
        out.file(entry, "cpa_audit/CPA_AUDIT.xlsx", workbook(rows))

    def load_docs(self, spec: SourceSpec, settings: TaskSettings | None = None) -> list[Doc]:
        return _docs(load_rows(self.name, spec, _LAYOUT))

    def text_tasks(self, docs: list[Doc], settings: TaskSettings) -> list[TextTask]:
        return [choice_task(self.name, docs)]

    def item_text(self, doc: Doc) -> str:
        return doc["prompt"]


CPA_AUDIT = CpaAudit(
    name="cpa_audit",
    label="CPA audit",
    scores=tuple(SCORES),
    stand_in_params="cpa_audit",
    harness=True,
)
