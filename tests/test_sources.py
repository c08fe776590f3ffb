"""Raw benchmark schemas -> normalised docs: prompts, choices and gold as the reference harnesses.

Each task reads a hand-made three-item file under tests/fixtures/raw in the benchmark's real public
layout; the hub route is exercised with a local dataset folder and the URL route with a loopback
HTTP server, so nothing here touches the network.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import re
import shutil
import threading
import zipfile
from pathlib import Path
from types import SimpleNamespace

import datasets
import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from finstage.benchmarks import edinet, transport
from finstage.benchmarks.download import DownloadConfig, download_sources
from finstage.benchmarks.registry import BENCHMARKS
from finstage.benchmarks.transport import SourceError, SourceSpec
from finstage.config import ParamsError, parse

RAW = Path(__file__).parent / "fixtures" / "raw"
LETTERS = "以下の問題の適切な答えを選択肢から選んでアルファベットで答えなさい。\n\n\n"
BY_NAME = {b.name: b for b in BENCHMARKS}


def load_docs(task: str, spec: SourceSpec, sheet_chars: int | None = None) -> list[dict]:
    """Docs as decontamination reads them (whole sheets), or as evaluation does (cut sheets)."""
    settings = None if sheet_chars is None else SimpleNamespace(edinet_sheet_chars=sheet_chars)
    return BY_NAME[task].load_docs(spec, settings)


def fixture_docs(task: str, rel: str, sheet_chars: int | None = None) -> list[dict]:
    return load_docs(task, SourceSpec(path=str(RAW / rel)), sheet_chars)


def test_gsm8k_file_and_folder():
    docs = fixture_docs("gsm8k", "gsm8k/test.jsonl")
    assert [d["id"] for d in docs] == ["0", "1", "2"]
    assert all(set(d) == {"id", "question", "answer"} for d in docs)
    assert docs[1]["answer"].endswith("#### 72")
    assert docs[0]["question"].startswith("りんごが1個120円")
    assert fixture_docs("gsm8k", "gsm8k") == docs  # folder -> <split>.jsonl


def test_chabsa_one_doc_per_opinion_with_neutral_kept(tmp_path):
    docs = fixture_docs("chabsa", "chabsa")
    assert docs == [
        {
            "id": "E00001-0-0",
            "sentence": "当連結会計年度におけるわが国経済は緩やかな回復基調となり、"
            "当社の売上高は増加しました。",
            "target": "わが国経済",
            "polarity": "neutral",
        },
        {
            "id": "E00001-0-1",
            "sentence": docs[0]["sentence"],
            "target": "売上高",
            "polarity": "positive",
        },
        {
            "id": "E00002-0-0",
            "sentence": "原材料価格の高騰により、営業利益は前期比12.5%減となりました。",
            "target": "営業利益",
            "polarity": "negative",
        },
    ]
    archive = tmp_path / "chABSA-dataset.zip"  # the release layout: chABSA-dataset/*.json
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted((RAW / "chabsa").glob("*.json")):
            z.write(f, f"chABSA-dataset/{f.name}")
    assert load_docs("chabsa", SourceSpec(path=str(archive))) == docs
    nested = tmp_path / "unzipped" / "chABSA-dataset"
    shutil.copytree(RAW / "chabsa", nested)
    assert load_docs("chabsa", SourceSpec(path=str(nested.parent))) == docs
    assert fixture_docs("chabsa", "chabsa/e00002_ann.json") == docs[2:]


def test_cma_basics_default_prompt_letters_and_gold():
    docs = fixture_docs("cma_basics", "cma_basics/data.json")
    assert docs[0] == {
        "id": "0",
        "prompt": LETTERS
        + "【問題】\n株価を1株当たり当期純利益で除した指標として、正しいものはどれか。\n"
        "\n【選択肢】\nA: PBR\nB: PER\nC: ROE\nD: 配当利回り\n\n【答え】\n",
        "choices": ["A", "B", "C", "D"],
        "gold": 1,
    }
    assert docs[1]["prompt"] == (
        LETTERS + "【問題】\n以下のデータに基づくA社のROEとして、正しいものはどれか。\n"
        "当期純利益: 120億円\n自己資本: 1,500億円\n"
        "\n【選択肢】\nA: 4.0%\nB: 6.0%\nC: 8.0%\nD: 12.5%\n\n【答え】\n"
    )
    assert docs[1]["gold"] == 2
    assert (
        "null" not in docs[2]["prompt"] and "\n\n【選択肢】\nA: 有効求人倍率" in docs[2]["prompt"]
    )
    assert docs[2]["gold"] == 0
    assert fixture_docs("cma_basics", "cma_basics") == docs  # folder -> data.json


def test_fp2_scores_the_fullwidth_numbers_without_a_choice_list():
    docs = fixture_docs("fp2", "fp2/data.json")  # its rows say "commnet", as the real file does
    question = "ライフプランニングで用いる係数に関する次の記述のうち、最も不適切なものはどれか。"
    context = json.loads((RAW / "fp2" / "data.json").read_text())["data"][0]["context"]
    assert docs[0]["prompt"] == (
        "以下の問題の適切な答えを選択肢から選んで１～４の数字で答えなさい。\n\n\n"
        f"【問題】\n{question}\n{context}\n\n【答え】\n"
    )
    assert all(d["choices"] == ["１", "２", "３", "４"] for d in docs)
    assert [d["gold"] for d in docs] == [2, 1, 3]
    assert all("【選択肢】" not in d["prompt"] for d in docs)


def test_security_sales_1_mixes_two_and_four_way_items():
    docs = fixture_docs("security_sales_1", "security_sales_1/data.json")
    assert [d["choices"] for d in docs] == [["A", "B"], ["A", "B"], ["A", "B", "C", "D"]]
    assert [d["gold"] for d in docs] == [0, 1, 1]
    assert docs[0]["prompt"] == (
        LETTERS + "【問題】\n次の文章について、正しければ○を、誤っていれば×を選びなさい。\n"
        "株価を1株当たり純資産で除した指標をPBRという。\n"
        "\n【選択肢】\nA: ○\nB: ×\n\n【答え】\n"
    )
    assert "D: イ、ロ及びハのすべてが正しい。\n\n【答え】\n" in docs[2]["prompt"]


CPA_OPTIONS = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]  # what openpyxl reads from the real file
CPA_HEADER = [None, "key", "question", "ア", "イ", "ウ", "エ", "オ", "カ", *CPA_OPTIONS]
CPA_HEADER += ["a_no", "abnormal_flg"]
CPA_ROWS = [
    ["R5_2", 1, "監査に関する次の記述のうち、正しいものの組合せを選びなさい。", "記述ア。",
     "記述イ。", "記述ウ。", "記述エ。", None, None, "アイ", "アウ", "アエ", "イウ", "イエ",
     "ウエ", 3, 0],
    ["R5_2", 2, "不適切な問題。", "a", "b", "c", "d", None, None, "アイ", "アウ", "アエ",
     "イウ", "イエ", "ウエ", 1, 1],
    ["R5_2", 3, None, None, None, None, None, None, None, None, None, None, None, None, None,
     None, 0],
    ["R5_2", 4, "誤っているものの組合せを選びなさい。", "第一。", "第二。", "第三。", "第四。",
     "第五。", None, "アイ", "ウエ", "アオ", "イオ", "ウオ", None, 5, 0],
]  # fmt: skip
CPA_EMPTY_ROWS = 6  # the real sheet runs on past its data with empty rows


def write_cpa(path: Path, options: list = CPA_OPTIONS, rows: list = CPA_ROWS) -> Path:
    """A workbook in the real layout: float option headers, items sharing a session in the
    first column, then empty rows (as openpyxl reads the real one)."""
    book = openpyxl.Workbook()
    header = [*CPA_HEADER[:9], *options, *CPA_HEADER[15:]]
    for row in [header, *rows]:
        book.active.append(row)
    for _ in range(CPA_EMPTY_ROWS):
        book.active.append([None] * len(header))
    book.save(path)
    if all(isinstance(o, float) for o in options):  # openpyxl would save 1.0 as 1
        _spell_header_floats(path)
    return path


def _spell_header_floats(path: Path) -> None:
    with zipfile.ZipFile(path) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    sheet = "xl/worksheets/sheet1.xml"
    parts[sheet] = re.sub(rb'(<c r="[A-Z]+1" t="n"><v>)([1-6])(</v>)', rb"\g<1>\g<2>.0\g<3>",
                          parts[sheet])  # fmt: skip
    with zipfile.ZipFile(path, "w") as z:
        for name, blob in parts.items():
            z.writestr(name, blob)


def test_cpa_workbook_reads_like_the_real_one(tmp_path):
    book = openpyxl.load_workbook(write_cpa(tmp_path / "CPA_AUDIT.xlsx"), read_only=True)
    header, *rows = list(book.worksheets[0].iter_rows(values_only=True))
    assert list(header[9:15]) == CPA_OPTIONS and all(type(h) is float for h in header[9:15])
    assert len(rows) == len(CPA_ROWS) + CPA_EMPTY_ROWS and set(rows[-1]) == {None}


def test_cpa_audit_xlsx_drops_abnormal_and_empty_rows(tmp_path):
    docs = load_docs("cpa_audit", SourceSpec(path=str(write_cpa(tmp_path / "CPA_AUDIT.xlsx"))))
    # row 3 abnormal_flg = 1, row 4 no question, rows 6-11 empty; ids: session and sheet row
    assert [d["id"] for d in docs] == ["R5_2:row2", "R5_2:row5"]
    assert docs[0] == {
        "id": "R5_2:row2",
        "prompt": "以下の問題の答えとして適切な記号の組み合わせを選択肢から選んでアルファベットで"
        "答えなさい。\n\n\n【問題】\n監査に関する次の記述のうち、正しいものの組合せを選びなさい。\n"
        "ア: 記述ア。\nイ: 記述イ。\nウ: 記述ウ。\nエ: 記述エ。\n"
        "\n【選択肢】\nA: アイ\nB: アウ\nC: アエ\nD: イウ\nE: イエ\nF: ウエ\n\n【答え】\n",
        "choices": ["A", "B", "C", "D", "E", "F"],
        "gold": 2,
    }
    # a five-statement item: オ shown, the missing sixth option reads 'nan' as upstream renders it
    assert "エ: 第四。\nオ: 第五。\n\n【選択肢】" in docs[1]["prompt"]
    assert "E: ウオ\nF: nan\n\n【答え】\n" in docs[1]["prompt"] and docs[1]["gold"] == 4
    assert load_docs("cpa_audit", SourceSpec(path=str(tmp_path))) == docs  # folder


@pytest.mark.parametrize(
    "options",
    [[1, 2, 3, 4, 5, 6], [str(i) for i in range(1, 7)], [f"{i}.0" for i in range(1, 7)]],
)
def test_cpa_option_headers_read_alike_in_every_spelling(tmp_path, options):
    floats = load_docs("cpa_audit", SourceSpec(path=str(write_cpa(tmp_path / "a.xlsx"))))
    other = load_docs("cpa_audit", SourceSpec(path=str(write_cpa(tmp_path / "b.xlsx", options))))
    assert other == floats and len(floats) == 2


def test_cpa_ids_are_unique_where_sessions_repeat(tmp_path):
    item = CPA_ROWS[0]
    rows = [[session, k, *item[2:]] for session in ("R4_1", "R5_2") for k in range(1, 4)]
    docs = load_docs("cpa_audit", SourceSpec(path=str(write_cpa(tmp_path / "c.xlsx", rows=rows))))
    ids = [d["id"] for d in docs]
    assert ids == [f"{s}:row{n}" for s, n in [("R4_1", 2), ("R4_1", 3), ("R4_1", 4),
                                             ("R5_2", 5), ("R5_2", 6), ("R5_2", 7)]]  # fmt: skip


def test_cpa_bad_header_names_the_file_and_column(tmp_path):
    path = write_cpa(tmp_path / "CPA_AUDIT.xlsx", ["1", "2", "3", "4", "5", "six"])
    with pytest.raises(SourceError, match=r"CPA_AUDIT\.xlsx: header row has no column \['6'\]"):
        load_docs("cpa_audit", SourceSpec(path=str(path)))


EDINET_FILES = {
    "edinet_fraud": "edinet/fraud_detection/test.jsonl",
    "edinet_earnings": "edinet/earnings_forecast/test.jsonl",
    "edinet_industry": "edinet/industry_prediction/train.jsonl",
}


def raw_rows(rel: str) -> list[dict]:
    return [json.loads(line) for line in (RAW / rel).read_text().splitlines()]


@pytest.mark.parametrize("task", list(EDINET_FILES))
def test_edinet_context_is_the_four_sheets_as_predict_py_joins_them(task):
    rows = raw_rows(EDINET_FILES[task])
    docs = fixture_docs(task, EDINET_FILES[task])
    key = "industry" if task == "edinet_industry" else "label"
    assert [set(d) for d in docs] == [{"id", key, "context"}] * 3
    assert [d[key] for d in docs] == [r[key] for r in rows]
    assert [d["id"] for d in docs] == [r["doc_id"] for r in rows]
    for doc, row in zip(docs, rows, strict=True):
        assert doc["context"] == "\n".join(f"{s}: {row[s]}" for s in ("summary", "bs", "pl", "cf"))
        assert "meta" not in doc["context"] and "text:" not in doc["context"]


def test_edinet_sheets_are_truncated_only_when_asked():
    rows = raw_rows(EDINET_FILES["edinet_fraud"])
    docs = fixture_docs("edinet_fraud", EDINET_FILES["edinet_fraud"], sheet_chars=30)
    lines = docs[1]["context"].split("\n")
    assert [line.split(": ", 1)[0] for line in lines] == list(edinet.SHEETS)
    for line, sheet in zip(lines, edinet.SHEETS, strict=True):
        assert line == f"{sheet}: {rows[1][sheet][:30]}" and len(rows[1][sheet]) > 30
    whole = fixture_docs("edinet_fraud", EDINET_FILES["edinet_fraud"], sheet_chars=None)
    assert whole[1]["context"] == "\n".join(f"{s}: {rows[1][s]}" for s in edinet.SHEETS)
    # the other benchmarks have no sheets: evaluation's settings leave their docs unchanged
    assert fixture_docs("fp2", "fp2/data.json", sheet_chars=30) == fixture_docs("fp2", "fp2")


def test_edinet_folder_layout_resolves_config_and_split():
    docs = load_docs("edinet_industry", SourceSpec(path=str(RAW / "edinet"), split="train"))
    assert docs == fixture_docs("edinet_industry", EDINET_FILES["edinet_industry"])
    with pytest.raises(SourceError, match="industry_prediction/test.jsonl"):
        load_docs("edinet_industry", SourceSpec(path=str(RAW / "edinet")))  # industry has no test


def test_edinet_parquet_snapshot_reads_like_jsonl(tmp_path):
    rel = EDINET_FILES["edinet_earnings"]
    target = tmp_path / "earnings_forecast" / "test.parquet"
    target.parent.mkdir()
    pq.write_table(pa.Table.from_pylist(raw_rows(rel)), target)
    assert load_docs("edinet_earnings", SourceSpec(path=str(target))) == fixture_docs(
        "edinet_earnings", rel
    )
    assert load_docs("edinet_earnings", SourceSpec(path=str(tmp_path))) == fixture_docs(
        "edinet_earnings", rel
    )


def test_hub_route_with_a_local_dataset_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "cache"))
    repo = tmp_path / "EDINET-Bench"
    for rel in EDINET_FILES.values():
        target = repo / rel.removeprefix("edinet/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(RAW / rel, target)
    configs = "".join(
        f"- config_name: {rel.split('/')[1]}\n  data_files:\n"
        f"  - split: {Path(rel).stem}\n    path: {rel.removeprefix('edinet/')}\n"
        for rel in EDINET_FILES.values()
    )
    (repo / "README.md").write_text(f"---\nconfigs:\n{configs}---\n")
    for task, rel in EDINET_FILES.items():
        split = Path(rel).stem
        hub = load_docs(task, SourceSpec(hub=str(repo), split=split))  # config from the task
        assert hub == fixture_docs(task, rel)
    chabsa = load_docs("chabsa", SourceSpec(hub=str(RAW / "chabsa"), split="train"))
    assert chabsa == fixture_docs("chabsa", "chabsa")  # a folder of documents: one row each
    exams = tmp_path / "cma"
    exams.mkdir()
    rows = json.loads((RAW / "cma_basics" / "data.json").read_text())["data"]
    (exams / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))
    hub = load_docs("cma_basics", SourceSpec(hub=str(exams)))
    assert hub == fixture_docs("cma_basics", "cma_basics/data.json")[:2]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def server():
    handler = functools.partial(QuietHandler, directory=str(RAW))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_url_route_reads_the_pinned_download(server, tmp_path, monkeypatch):
    """A url source reads the `sources` stage's copy, verified against its pin."""
    monkeypatch.setattr(transport, "DOWNLOADS", tmp_path)
    cfg = DownloadConfig(["127.0.0.1"], 1 << 20, 5.0, 20.0)
    data = (RAW / "fp2" / "data.json").read_bytes()
    pin = hashlib.sha256(data).hexdigest()
    spec = SourceSpec(url=f"{server}/fp2/data.json", sha256=pin)
    rel = EDINET_FILES["edinet_earnings"]
    edinet_pin = hashlib.sha256((RAW / rel).read_bytes()).hexdigest()
    edinet_spec = SourceSpec(url=f"{server}/{rel}", sha256=edinet_pin)
    download_sources({"fp2": spec, "edinet_earnings": edinet_spec}, cfg, tmp_path)
    assert load_docs("fp2", spec) == fixture_docs("fp2", "fp2/data.json")
    assert load_docs("edinet_earnings", edinet_spec) == fixture_docs("edinet_earnings", rel)
    with pytest.raises(SourceError, match=f"sha256 {pin} does not match the pinned {'0' * 64}"):
        load_docs("fp2", SourceSpec(url=f"{server}/fp2/data.json", sha256="0" * 64))


def test_a_pinned_local_file_is_verified_too(tmp_path):
    copy = tmp_path / "data.json"
    copy.write_bytes((RAW / "cma_basics" / "data.json").read_bytes() + b"\n")
    with pytest.raises(SourceError, match="does not match the pinned"):
        load_docs("cma_basics", SourceSpec(path=str(copy), sha256="a" * 64))


def broken(tmp_path: Path, rel: str, edit) -> str:
    target = tmp_path / Path(rel).name
    target.write_text(edit((RAW / rel).read_text(encoding="utf-8")), encoding="utf-8")
    return str(target)


@pytest.mark.parametrize(
    ("task", "rel", "edit", "message"),
    [
        ("cma_basics", "cma_basics/data.json", lambda t: t.replace('"answer": 1,', ""),
         r"data\.json: data\[0\]: missing field 'answer'"),
        ("cma_basics", "cma_basics/data.json", lambda t: t.replace('"answer": 2,', '"answer": 7,'),
         r"data\[1\]: field 'answer' = 7 is none of the choice ids \[0, 1, 2, 3\]"),
        ("fp2", "fp2/data.json", lambda t: t.replace('"data":', '"rows":'),
         r"expected the pfnet harness data\.json layout"),
        ("gsm8k", "gsm8k/test.jsonl", lambda t: t.replace("#### 600", "600"),
         r"test\.jsonl:1: field 'answer' has no '#### <number>'"),
        ("chabsa", "chabsa/e00001_ann.json", lambda t: t.replace('"neutral"', '"mixed"'),
         r"sentences\[0\]\.opinions\[0\]: field 'polarity' is 'mixed'"),
        ("edinet_industry", "edinet/industry_prediction/train.jsonl",
         lambda t: t.replace('"小売"', '"小売業"'), r"train\.jsonl:2: field 'industry' = '小売業'"),
        ("edinet_fraud", "edinet/fraud_detection/test.jsonl",
         lambda t: t.replace('"label": 1', '"label": "1"'), r"field 'label' has the wrong type"),
        ("edinet_earnings", "edinet/earnings_forecast/test.jsonl",
         lambda t: t.replace('"pl":', '"PL":', 1), r"test\.jsonl:1: missing field 'pl'"),
        ("security_sales_1", "security_sales_1/data.json", lambda t: t[:-3],
         r"data\.json: not valid UTF-8 JSON"),
    ],
)  # fmt: skip
def test_bad_raw_data_names_the_file_and_field(tmp_path, task, rel, edit, message):
    with pytest.raises(SourceError, match=message):
        load_docs(task, SourceSpec(path=broken(tmp_path, rel, edit)))


def test_missing_sources_say_what_to_point_at(tmp_path):
    with pytest.raises(SourceError, match=r"not found; point sources\.fp2\.path"):
        load_docs("fp2", SourceSpec(path=str(tmp_path / "nope.json")))
    with pytest.raises(SourceError, match="a folder without data.json"):
        load_docs("fp2", SourceSpec(path=str(tmp_path)))
    with pytest.raises(SourceError, match="a folder without CPA_AUDIT.xlsx"):
        load_docs("cpa_audit", SourceSpec(path=str(tmp_path)))
    with pytest.raises(SourceError, match="no chABSA"):
        load_docs("chabsa", SourceSpec(path=str(tmp_path)))
    (tmp_path / "CPA_AUDIT.xlsx").write_text("not a workbook")
    with pytest.raises(SourceError, match="not a readable .xlsx"):
        load_docs("cpa_audit", SourceSpec(path=str(tmp_path)))


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({}, "evaluate.sources.fp2'"),
        ({"path": "a", "url": "https://x/data.json"}, "evaluate.sources.fp2'"),
        ({"path": "a", "revision": "main"}, "evaluate.sources.fp2.revision"),
        ({"url": "ftp://x/data.json"}, "evaluate.sources.fp2.url"),
        ({"url": "https://x/data.json", "sha256": "ABC"}, "evaluate.sources.fp2.sha256"),
        ({"url": "https://x/data.json"}, "evaluate.sources.fp2.sha256"),
        ({"hub": "SakanaAI/EDINET-Bench", "sha256": "0" * 64}, "evaluate.sources.fp2.sha256"),
        ({"hub": "org/ds", "split": ""}, "evaluate.sources.fp2.split"),
        ({"path": "a", "mirror": "b"}, "evaluate.sources.fp2.mirror"),
    ],
)
def test_source_spec_rejects_bad_params_naming_the_key(raw, key):
    with pytest.raises(ParamsError, match=re.escape(key)):
        parse(SourceSpec, raw, "evaluate.sources.fp2")


def test_source_spec_accepts_each_route():
    for raw in (
        {"path": "data/bench/fp2"},
        {"hub": "SakanaAI/EDINET-Bench", "config": "fraud_detection", "revision": "abc123"},
        {"url": "https://example.org/data.json", "sha256": "0" * 64},
    ):
        assert parse(SourceSpec, raw, "evaluate.sources.x") == SourceSpec(**raw)


def test_edinet_protocol_constants():
    assert len(edinet.INDUSTRIES) == len(set(edinet.INDUSTRIES)) == 16
    for task in (edinet.FRAUD, edinet.EARNINGS):
        text = task.instruction
        assert "```json" in text and '"reasoning"' in text and '"prediction"' in text
        assert '"prob"' in text and task.question.endswith("回答:")
    assert edinet.INDUSTRY.question.endswith("回答:")
    no, yes = edinet.BINARY_CHOICES
    assert (no, yes) == ("いいえ", "はい")  # index 1 = the positive class


def _twice_jsonl(tmp_path: Path, rel: str, edit=lambda row: row) -> str:
    rows = [edit(r) for r in raw_rows(rel)]
    target = tmp_path / Path(rel).name
    target.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows * 2))
    return str(target)


def _same_ids_data_json(tmp_path: Path, rel: str) -> str:
    data = json.loads((RAW / rel).read_text(encoding="utf-8"))
    data["data"] = [{**row, "id": 7} for row in data["data"]]  # a data.json repeating an id
    target = tmp_path / "data.json"
    target.write_text(json.dumps(data, ensure_ascii=False))
    return str(target)


def _same_document_twice(tmp_path: Path, rel: str) -> str:
    folder = tmp_path / "chabsa"
    folder.mkdir()
    for name in ("e00001_ann.json", "e00001_copy_ann.json"):  # same header document_id
        shutil.copy(RAW / rel, folder / name)
    return str(folder)


@pytest.mark.parametrize(
    ("task", "rel", "make", "n"),
    [
        ("gsm8k", "gsm8k/test.jsonl", _twice_jsonl, 6),
        ("chabsa", "chabsa/e00001_ann.json", _same_document_twice, 4),
        ("cma_basics", "cma_basics/data.json", _same_ids_data_json, 3),
        ("fp2", "fp2/data.json", _same_ids_data_json, 3),
        ("security_sales_1", "security_sales_1/data.json", _same_ids_data_json, 3),
        ("edinet_fraud", EDINET_FILES["edinet_fraud"], _twice_jsonl, 6),
        ("edinet_earnings", EDINET_FILES["edinet_earnings"], _twice_jsonl, 6),
        ("edinet_industry", EDINET_FILES["edinet_industry"], _twice_jsonl, 6),
    ],
)
def test_every_reader_gives_unique_ids_where_the_raw_ids_repeat(tmp_path, task, rel, make, n):
    docs = load_docs(task, SourceSpec(path=make(tmp_path, rel)))
    ids = [d["id"] for d in docs]
    assert len(ids) == n and len(set(ids)) == n, ids
    first = [d["id"] for d in load_docs(task, SourceSpec(path=str(RAW / rel)))]
    if task not in ("cma_basics", "fp2", "security_sales_1"):  # their fixture ids differ
        assert ids[: len(first)] == first  # the first occurrence keeps its id: stable


def test_edinet_rows_without_doc_id_are_numbered_uniquely(tmp_path):
    rel = EDINET_FILES["edinet_industry"]
    path = _twice_jsonl(tmp_path, rel, lambda row: {k: v for k, v in row.items() if k != "doc_id"})
    ids = [d["id"] for d in load_docs("edinet_industry", SourceSpec(path=path))]
    assert ids == [str(i) for i in range(6)]
