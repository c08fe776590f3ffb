"""Benchmark items read from each benchmark's public raw schema, as the docs evaluation scores.

The evaluation protocol (prompt text, scored continuations, gold index) must be the reference
harness's whatever the data came from: the stand-ins the ``benchmarks`` stage writes, the real
files copied locally, a Hugging Face dataset, or the upstream raw file fetched by URL and pinned
by sha256. All routes end in the same normalised docs, so swapping a stand-in for the real data
changes the numbers, never the code path. Raw schemas:

- gsm8k: GSM8K JSONL ``{"question", "answer": "…\\n#### 42"}`` (a file, or a folder with
  ``<split>.jsonl``).
- chabsa: chABSA-dataset annotation JSON, one file per document (a folder of ``*.json``, one
  file, or the release zip).
- cma_basics, fp2, security_sales_1: the pfnet japanese-lm-fin-harness bundled ``data.json``.
- cpa_audit: pfnet's ``CPA_AUDIT.xlsx`` (rows with ``abnormal_flg == 1`` dropped, as upstream).
- edinet_*: SakanaAI/EDINET-Bench rows (JSONL or parquet, or a folder with
  ``<config>/<split>.jsonl``).

Normalised docs (exact keys):

- gsm8k: ``{"id", "question", "answer"}``.
- chabsa: ``{"id", "sentence", "target", "polarity"}``, one per opinion; ``neutral`` is kept as
  in the pfnet loader (its harness scores it as always wrong).
- cma_basics, cpa_audit, fp2, security_sales_1: ``{"id", "prompt", "choices", "gold"}``:
  ``prompt`` is what the model sees under the harness's default 0-shot prompt (its task
  description followed by ``doc_to_text_00``, ending in ``【答え】\\n``); ``choices`` are the
  continuations it scores with an empty target delimiter; ``gold`` indexes ``choices``.
- edinet_fraud, edinet_earnings: ``{"id", "label", "context"}``; edinet_industry:
  ``{"id", "industry", "context"}``. ``context`` is the ``summary, bs, pl, cf`` sheets as
  EDINET-Bench's predict.py joins them, ``"<sheet>: <value>"`` per line.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tempfile
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finstage.config import require

TASKS = (
    "gsm8k",
    "chabsa",
    "cma_basics",
    "cpa_audit",
    "fp2",
    "security_sales_1",
    "edinet_fraud",
    "edinet_earnings",
    "edinet_industry",
)
EDINET_CONFIGS = {
    "edinet_fraud": "fraud_detection",
    "edinet_earnings": "earnings_forecast",
    "edinet_industry": "industry_prediction",
}
EDINET_SHEETS = ("summary", "bs", "pl", "cf")
INDUSTRIES = (
    "食品",
    "電気・ガス・エネルギー資源",
    "建設・資材",
    "素材・化学",
    "医薬品",
    "自動車・輸送機",
    "鉄鋼・非鉄",
    "機械",
    "電機・精密",
    "情報通信・サービスその他",
    "運輸・物流",
    "商社・卸売",
    "小売",
    "銀行",
    "金融(除く銀行)",
    "不動産",
)
CHABSA_POLARITIES = ("positive", "negative", "neutral")

_JSON_FORMAT = "回答は次の形式の```json```ブロックだけで出力してください。\n"
EDINET_INSTRUCTIONS: dict[str, str] = {
    "edinet_fraud": (
        "あなたは財務アナリストです。上の財務データ（summary: 主要な経営指標等の推移、"
        "bs: 貸借対照表、pl: 損益計算書、cf: キャッシュ・フロー計算書）は、日本企業の"
        "有価証券報告書から抽出したものです。欠損値は「-」や「－」で表されることがあります。"
        "数値は監査済みで計算上の整合性はとれているため、数値の推移や項目間の関係に表れる"
        "不自然さに注目して、この報告書に粉飾などの不正会計の兆候があるかを判断してください。\n"
        + _JSON_FORMAT
        + '```json\n{"reasoning": "判断の根拠", "prob": 不正会計である確率（0から1の数値）, '
        '"prediction": 不正会計なら1、そうでなければ0}\n```'
    ),
    "edinet_earnings": (
        "あなたは財務アナリストです。上の財務データ（summary: 主要な経営指標等の推移、"
        "bs: 貸借対照表、pl: 損益計算書、cf: キャッシュ・フロー計算書）は、日本企業の"
        "当事業年度の有価証券報告書から抽出したものです。欠損値は「-」や「－」で表される"
        "ことがあります。翌事業年度の「親会社株主に帰属する当期純利益」が当事業年度より"
        "増加するかを予測してください。\n"
        + _JSON_FORMAT
        + '```json\n{"reasoning": "予測の根拠", "prob": 増加する確率（0から1の数値）, '
        '"prediction": 増加するなら1、そうでなければ0}\n```'
    ),
    "edinet_industry": (
        "あなたは財務アナリストです。上の財務データ（summary: 主要な経営指標等の推移、"
        "bs: 貸借対照表、pl: 損益計算書、cf: キャッシュ・フロー計算書）は、日本企業の"
        "有価証券報告書から抽出したものです。欠損値は「-」や「－」で表されることがあります。"
        "この企業の業種を次の16区分から1つ選んでください: "
        + "、".join(INDUSTRIES)
        + "。\n"
        + _JSON_FORMAT
        + '```json\n{"reasoning": "判断の根拠", '
        '"prediction": "業種名（上の16区分のいずれか）"}\n```'
    ),
}
EDINET_CHOICES: dict[str, tuple[str, str]] = {
    "edinet_fraud": ("いいえ", "はい"),
    "edinet_earnings": ("いいえ", "はい"),
}
EDINET_QUESTIONS: dict[str, str] = {
    "edinet_fraud": "質問: この有価証券報告書に不正会計の兆候はありますか。\n回答:",
    "edinet_earnings": (
        "質問: 翌事業年度の親会社株主に帰属する当期純利益は当事業年度より増加しますか。\n回答:"
    ),
    "edinet_industry": "質問: この企業の業種は何ですか。\n回答:",
}

# pfnet japanese-lm-fin-harness default prompt: each task's `description`.
_LETTERS = "以下の問題の適切な答えを選択肢から選んでアルファベットで答えなさい。\n\n\n"
_DESCRIPTIONS = {
    "cma_basics": _LETTERS,
    "cpa_audit": (
        "以下の問題の答えとして適切な記号の組み合わせを選択肢から選んでアルファベットで"
        "答えなさい。\n\n\n"
    ),
    "fp2": "以下の問題の適切な答えを選択肢から選んで１～４の数字で答えなさい。\n\n\n",
    "security_sales_1": _LETTERS,
}
_RAW_FILES = {
    "cma_basics": "data.json",
    "fp2": "data.json",
    "security_sales_1": "data.json",
    "cpa_audit": "CPA_AUDIT.xlsx",
}
_CPA_STATEMENTS = ("ア", "イ", "ウ", "エ", "オ", "カ")
_GSM8K_FINAL = re.compile(r"####\s*-?[0-9.,]+")
_SHA256 = re.compile(r"[0-9a-f]{64}")

Row = tuple[str, dict[str, Any]]  # (where it came from, for errors; the raw row)


class SourceError(ValueError):
    """A benchmark source that cannot be read; the message names the file or field and the fix."""


@dataclass
class SourceSpec:
    """Where one benchmark's raw data lives: exactly one of a local path, a hub id or a URL."""

    path: str | None = None
    hub: str | None = None
    config: str | None = None
    split: str = "test"
    revision: str | None = None
    url: str | None = None
    sha256: str | None = None

    def check(self, where: str) -> None:
        given = [k for k in ("path", "hub", "url") if getattr(self, k)]
        require(
            len(given) == 1,
            where,
            f"must set exactly one of path, hub or url, got {given or 'none'}",
        )
        require(bool(self.split), f"{where}.split", "must be a non-empty split name")
        require(
            self.revision is None or bool(self.hub),
            f"{where}.revision",
            "pins a hub dataset; set it only together with hub",
        )
        require(
            self.url is None or self.url.startswith(("http://", "https://")),
            f"{where}.url",
            f"must be an http(s) URL, got {self.url!r}",
        )
        require(
            self.sha256 is None or (not self.hub and bool(_SHA256.fullmatch(self.sha256))),
            f"{where}.sha256",
            "must be 64 lowercase hex digits and pins a url or a file path, not a hub dataset",
        )


def load_docs(
    task: str, spec: SourceSpec, *, max_chars_per_sheet: int | None = None
) -> list[dict[str, Any]]:
    """Normalised docs of `task` read from `spec` (see the module docstring for their keys).

    `max_chars_per_sheet` applies to EDINET tasks only: each sheet's JSON text is cut to its first
    that many characters before it goes into `context`, with no marker added. None (default)
    keeps the sheets whole, as EDINET-Bench does; a tiny model's context window is the reason to
    set it, and the cut must then be reported with the scores.
    """
    if task not in TASKS:
        raise SourceError(f"unknown benchmark task {task!r}; choose one of {list(TASKS)}")
    spec.check(f"sources.{task}")
    if max_chars_per_sheet is not None and (task not in EDINET_CONFIGS or max_chars_per_sheet < 1):
        raise SourceError(
            f"max_chars_per_sheet={max_chars_per_sheet!r} applies to EDINET tasks only and must "
            f"be >= 1 (task {task!r})"
        )
    rows = _rows(task, spec)
    if task in EDINET_CONFIGS:
        return _edinet_docs(task, rows, max_chars_per_sheet)
    return _NORMALISERS[task](task, rows)


# ---------------------------------------------------------------- raw rows


def _rows(task: str, spec: SourceSpec) -> list[Row]:
    if spec.hub:
        return _hub_rows(task, spec)
    if spec.url:
        return _url_rows(task, spec)
    path = Path(spec.path)  # type: ignore[arg-type]
    if spec.sha256:
        if not path.is_file():
            raise SourceError(f"{path}: sha256 pins a single file, but this is not a file")
        _verify(path.read_bytes(), spec.sha256, str(path))
    return _path_rows(task, path, spec)


def _hub_rows(task: str, spec: SourceSpec) -> list[Row]:
    import datasets

    config = spec.config or EDINET_CONFIGS.get(task)
    kwargs: dict[str, Any] = {"split": spec.split}
    if spec.revision:
        kwargs["revision"] = spec.revision
    data = datasets.load_dataset(spec.hub, config, **kwargs)
    where = f"{spec.hub} ({config or 'default'}/{spec.split})"
    return [(f"{where} row {i}", dict(row)) for i, row in enumerate(data)]


def _url_rows(task: str, spec: SourceSpec) -> list[Row]:
    url = spec.url or ""
    with urllib.request.urlopen(url, timeout=120) as response:  # noqa: S310 (http(s) checked)
        payload = response.read()
    if spec.sha256:
        _verify(payload, spec.sha256, url)
    name = Path(urllib.parse.urlparse(url).path).name or "download"
    with tempfile.TemporaryDirectory(prefix="finstage-source-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(payload)
        return _path_rows(task, path, spec)


def _verify(payload: bytes, expected: str, where: str) -> None:
    actual = hashlib.sha256(payload).hexdigest()
    if actual != expected:
        raise SourceError(
            f"{where}: sha256 {actual} does not match the pinned {expected}; the file changed "
            "upstream or the pin is wrong: check the file, then update sha256"
        )


def _path_rows(task: str, path: Path, spec: SourceSpec) -> list[Row]:
    if not path.exists():
        raise SourceError(f"{path}: not found; point sources.{task}.path at the raw data")
    if task == "chabsa":
        return _chabsa_files(path)
    if path.is_dir():
        path = _in_folder(task, path, spec)
    if task == "cpa_audit":
        return _xlsx_rows(path)
    if task in _RAW_FILES:
        return _pfnet_json(path)
    return _table_rows(path)


def _in_folder(task: str, folder: Path, spec: SourceSpec) -> Path:
    """The raw file inside a folder, laid out as upstream (or as the benchmarks stage writes)."""
    if task in _RAW_FILES:
        names = [_RAW_FILES[task]]
    else:
        stem = spec.split
        if task in EDINET_CONFIGS:
            stem = f"{spec.config or EDINET_CONFIGS[task]}/{spec.split}"
        names = [f"{stem}.jsonl", f"{stem}.json", f"{stem}.parquet"]
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise SourceError(
        f"{folder}: a folder without {' or '.join(names)}; point path at the raw file itself"
    )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SourceError(f"{path}: not valid UTF-8 JSON ({err})") from err


def _table_rows(path: Path) -> list[Row]:
    """JSON Lines (GSM8K, EDINET-Bench's to_json exports) or parquet (hub snapshots)."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return [(f"{path} row {i}", r) for i, r in enumerate(pq.read_table(path).to_pylist())]
    rows: list[Row] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise SourceError(f"{path}:{n}: not a JSON line ({err}); expected JSONL") from err
        if not isinstance(row, dict):
            raise SourceError(f"{path}:{n}: expected a JSON object per line")
        rows.append((f"{path}:{n}", row))
    return rows


def _pfnet_json(path: Path) -> list[Row]:
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise SourceError(
            f"{path}: expected the pfnet harness data.json layout "
            '{"data-type": …, "data-name": …, "data": [ {id, question, context, choices, '
            "answer}, … ]}"
        )
    return [(f"{path}: data[{i}]", row) for i, row in enumerate(data["data"])]


def _xlsx_rows(path: Path) -> list[Row]:
    """Rows keyed by header text; the first column is the index, as pandas' index_col=0 reads."""
    import openpyxl

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


def _chabsa_files(path: Path) -> list[Row]:
    """chABSA documents from a folder, one JSON file or the release zip, in file-name order."""
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            names = sorted(n for n in archive.namelist() if n.endswith(".json"))
            blobs = [(f"{path}!{n}", archive.read(n)) for n in names]
    else:
        files = [path] if path.is_file() else sorted(path.glob("*.json"))
        if path.is_dir() and not files:
            files = sorted(path.glob("chABSA-dataset/*.json"))
        blobs = [(str(f), f.read_bytes()) for f in files]
    if not blobs:
        raise SourceError(f"{path}: no chABSA *.json documents found")
    rows = []
    for where, blob in blobs:
        try:
            rows.append((where, json.load(io.BytesIO(blob))))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise SourceError(f"{where}: not valid UTF-8 JSON ({err})") from err
    return rows


# ---------------------------------------------------------------- normalisers


def _field(row: dict[str, Any], where: str, key: str, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(row, dict) or key not in row:
        raise SourceError(f"{where}: missing field '{key}'; the raw schema requires it")
    value = row[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise SourceError(f"{where}: field '{key}' has the wrong type: {value!r}")
    return value


def _gsm8k_docs(task: str, rows: list[Row]) -> list[dict[str, Any]]:
    docs = []
    for i, (where, row) in enumerate(rows):
        answer = _field(row, where, "answer", str)
        if not _GSM8K_FINAL.search(answer):
            raise SourceError(
                f"{where}: field 'answer' has no '#### <number>' final line, the GSM8K format"
            )
        docs.append(
            {"id": str(i), "question": _field(row, where, "question", str), "answer": answer}
        )
    return docs


def _chabsa_docs(task: str, rows: list[Row]) -> list[dict[str, Any]]:
    docs = []
    for where, row in rows:
        header = row.get("header") if isinstance(row, dict) else None
        header = header if isinstance(header, dict) else {}
        doc_id = header.get("document_id") or Path(where.split("!")[-1]).stem
        for s_index, sentence in enumerate(_field(row, where, "sentences", list)):
            at = f"{where}: sentences[{s_index}]"
            text = _field(sentence, at, "sentence", str)
            sentence_id = sentence.get("sentence_id", s_index)
            for o_index, opinion in enumerate(_field(sentence, at, "opinions", list)):
                doc = _opinion(
                    f"{doc_id}-{sentence_id}-{o_index}", opinion, text, f"{at}.opinions[{o_index}]"
                )
                docs.append(doc)
    return docs


def _opinion(doc_id: str, opinion: dict[str, Any], sentence: str, where: str) -> dict[str, Any]:
    polarity = _field(opinion, where, "polarity", str)
    if polarity not in CHABSA_POLARITIES:
        raise SourceError(
            f"{where}: field 'polarity' is {polarity!r}; chABSA uses {list(CHABSA_POLARITIES)}"
        )
    target = _field(opinion, where, "target", str)
    return {"id": doc_id, "sentence": sentence, "target": target, "polarity": polarity}


def _choices(row: dict[str, Any], where: str) -> tuple[list[int], list[str]]:
    """(ids, texts): data.json lists {id, text} objects; a hub dataset gives {id: [], text: []}."""
    raw = _field(row, where, "choices", (list, dict))
    if isinstance(raw, dict):
        ids, texts = raw.get("id", []), raw.get("text", [])
        if len(ids) != len(texts):
            raise SourceError(f"{where}: field 'choices' has {len(ids)} ids but {len(texts)} texts")
        raw = [{"id": i, "text": t} for i, t in zip(ids, texts, strict=True)]
    ids = [_field(c, f"{where}.choices[{k}]", "id", int) for k, c in enumerate(raw)]
    texts = [_field(c, f"{where}.choices[{k}]", "text", str) for k, c in enumerate(raw)]
    if not ids:
        raise SourceError(f"{where}: field 'choices' is empty")
    return ids, texts


def _pfnet_prompt(task: str, question: str, context: str | None, listed: list[str]) -> str:
    """Description + doc_to_text_00 of the pfnet harness, byte for byte."""
    text = "【問題】\n" + question + "\n"
    if context:
        text += context + "\n"
    if listed:
        text += "\n【選択肢】\n" + "".join(line + "\n" for line in listed)
    return _DESCRIPTIONS[task] + text + "\n【答え】\n"


def _exam_docs(task: str, rows: list[Row]) -> list[dict[str, Any]]:
    docs = []
    for where, row in rows:
        question = _field(row, where, "question", str)
        context = row.get("context")
        if context is not None and not isinstance(context, str):
            raise SourceError(f"{where}: field 'context' must be a string or null")
        ids, texts = _choices(row, where)
        answer = _field(row, where, "answer", int)
        if answer not in ids:
            raise SourceError(f"{where}: field 'answer' = {answer} is none of the choice ids {ids}")
        if task == "fp2":  # the choice texts themselves (１〜４) are scored
            listed, choices = [], texts
            gold = texts.index(texts[ids.index(answer)])
        else:  # letters by choice id, A = id 0
            listed = [f"{chr(i + 65)}: {t}" for i, t in zip(ids, texts, strict=True)]
            choices = [chr(i + 65) for i in ids]
            gold = choices.index(chr(answer + 65))
        prompt = _pfnet_prompt(task, question, context, listed)
        doc_id = str(_field(row, where, "id", (int, str)))
        docs.append({"id": doc_id, "prompt": prompt, "choices": choices, "gold": gold})
    return docs


def _cell(value: Any) -> str:
    """A cell as pandas' astype(str) renders it: an empty cell reads as NaN, i.e. 'nan'."""
    return "nan" if value is None else str(value)


def _cpa_docs(task: str, rows: list[Row]) -> list[dict[str, Any]]:
    docs = []
    for n, (where, raw) in enumerate(rows):
        row = {str(k): v for k, v in raw.items()}
        question = _cell(_field(row, where, "question", (str, int, float, type(None))))
        if question in ("", "nan"):
            continue
        if _field(row, where, "abnormal_flg", (int, float, str, type(None))) == 1:
            continue
        statements = [(s, _cell(row.get(s))) for s in _CPA_STATEMENTS]
        context = "\n".join(f"{s}: {t}" for s, t in statements if t not in ("", "nan"))
        texts = [
            _cell(_field(row, where, str(i), (str, int, float, type(None)))) for i in range(1, 7)
        ]
        a_no = _field(row, where, "a_no", (int, float))
        if a_no not in range(1, 7):
            raise SourceError(f"{where}: field 'a_no' = {a_no!r}; expected 1..6")
        listed = [f"{chr(i + 65)}: {t}" for i, t in enumerate(texts)]
        index = row.get("__index__", row.get("id"))
        docs.append(
            {
                "id": str(index if index is not None else n),
                "prompt": _pfnet_prompt(task, question, context, listed),
                "choices": [chr(i + 65) for i in range(6)],
                "gold": int(a_no) - 1,
            }
        )
    return docs


def _edinet_docs(task: str, rows: list[Row], max_chars: int | None) -> list[dict[str, Any]]:
    docs = []
    for i, (where, row) in enumerate(rows):
        sheets = [(s, _field(row, where, s, str)) for s in EDINET_SHEETS]
        context = "\n".join(f"{s}: {v if max_chars is None else v[:max_chars]}" for s, v in sheets)
        doc: dict[str, Any] = {"id": str(row.get("doc_id") or i)}
        if task == "edinet_industry":
            industry = _field(row, where, "industry", str)
            if industry not in INDUSTRIES:
                raise SourceError(
                    f"{where}: field 'industry' = {industry!r} is not one of the 16 EDINET-Bench "
                    f"labels {list(INDUSTRIES)}"
                )
            doc["industry"] = industry
        else:
            label = _field(row, where, "label", int)
            if label not in (0, 1):
                raise SourceError(f"{where}: field 'label' = {label!r}; expected 0 or 1")
            doc["label"] = label
        doc["context"] = context
        docs.append(doc)
    return docs


_NORMALISERS: dict[str, Callable[[str, list[Row]], list[dict[str, Any]]]] = {
    "gsm8k": _gsm8k_docs,
    "chabsa": _chabsa_docs,
    "cma_basics": _exam_docs,
    "fp2": _exam_docs,
    "security_sales_1": _exam_docs,
    "cpa_audit": _cpa_docs,
}
