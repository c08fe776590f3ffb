"""Every benchmark reader has size limits: a small hostile file fails fast, naming the file and
the limit, instead of taking gigabytes of memory.

The limits (`finstage.benchmarks.limits`) are far above the real files (chABSA's zip is a few
MB, CPA's sheet 1,000 rows x 17 columns, EDINET rows long but well under the line limit) and
far below what a crafted file can declare. Memory is measured with tracemalloc, which sees the
Python objects a reader would build.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest

from finstage.benchmarks import limits
from finstage.benchmarks.registry import BENCHMARKS
from finstage.benchmarks.transport import SourceError, SourceSpec

from .conftest import ROOT
from .test_sources import write_cpa

RAW = ROOT / "tests" / "fixtures" / "raw"
BY_NAME = {b.name: b for b in BENCHMARKS}


def peak_bytes(run: Callable[[], object]) -> int:
    """Peak traced memory while `run` raises its SourceError."""
    tracemalloc.start()
    try:
        with pytest.raises(SourceError) as caught:
            run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    peak_bytes.error = str(caught.value)  # type: ignore[attr-defined]
    return peak


def test_a_workbook_declaring_16384_columns_fails_fast(tmp_path):
    path = write_cpa(tmp_path / "CPA_AUDIT.xlsx")
    book = openpyxl.load_workbook(path)
    for row in range(book.active.max_row + 1, 1001):  # formatted rows to 1,000, as the real one
        book.active.cell(row=row, column=1).number_format = "@"
    book.active.cell(row=1, column=16384, value="x")  # the sheet now spans A1:XFD1000
    book.save(path)
    assert path.stat().st_size < 64 << 10
    peak = peak_bytes(lambda: BY_NAME["cpa_audit"].load_docs(SourceSpec(path=str(path))))
    assert "CPA_AUDIT.xlsx" in peak_bytes.error and "16384 columns" in peak_bytes.error
    assert f"limit of {limits.MAX_COLUMNS}" in peak_bytes.error
    assert peak < 32 << 20, peak


def test_a_workbook_too_tall_fails_naming_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_ROWS", 5)
    path = write_cpa(tmp_path / "CPA_AUDIT.xlsx")  # 1 header + 4 items + 6 empty rows
    with pytest.raises(SourceError, match=r"CPA_AUDIT\.xlsx: .*over the limit of 5 rows"):
        BY_NAME["cpa_audit"].load_docs(SourceSpec(path=str(path)))


def test_a_workbook_whose_sheet_inflates_past_the_limit_is_not_parsed(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_SHEET_BYTES", 2000)
    path = write_cpa(tmp_path / "CPA_AUDIT.xlsx")
    with pytest.raises(SourceError, match=r"CPA_AUDIT\.xlsx!xl/.*limit of 2000 bytes"):
        BY_NAME["cpa_audit"].load_docs(SourceSpec(path=str(path)))


def zip_bomb(path: Path, size: int) -> Path:
    """A small zip whose one chABSA member inflates to `size` bytes of JSON whitespace."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("chABSA-dataset/e00001_ann.json", "w", force_zip64=True) as member:
            block = b" " * (1 << 20)
            for _ in range(size >> 20):
                member.write(block)
    return path


def test_a_zip_with_a_huge_member_fails_fast(tmp_path):
    path = zip_bomb(tmp_path / "chABSA-dataset.zip", 256 << 20)
    assert path.stat().st_size < 2 << 20
    peak = peak_bytes(lambda: BY_NAME["chabsa"].load_docs(SourceSpec(path=str(path))))
    assert "chABSA-dataset.zip!chABSA-dataset/e00001_ann.json" in peak_bytes.error
    assert f"limit of {limits.MAX_MEMBER_BYTES} bytes" in peak_bytes.error
    assert peak < 32 << 20, peak


def test_a_zip_with_too_many_members_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_MEMBERS", 2)
    path = tmp_path / "chABSA-dataset.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for f in sorted((RAW / "chabsa").glob("*.json")) * 2:
            archive.write(f, f"chABSA-dataset/{len(archive.namelist())}_{f.name}")
    with pytest.raises(SourceError, match=r"chABSA-dataset\.zip: .*over the limit of 2 members"):
        BY_NAME["chabsa"].load_docs(SourceSpec(path=str(path)))


def test_zip_members_are_never_extracted_to_disk(tmp_path, monkeypatch):
    """The release zip is read in memory, member by member; a member named to escape its folder
    writes nothing anywhere."""
    path = tmp_path / "in" / "chABSA-dataset.zip"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as archive:
        for f in sorted((RAW / "chabsa").glob("*.json")):
            archive.write(f, f"../../escaped/{f.name}")

    def refuse(*args, **kwargs):
        raise AssertionError("a zip member was extracted")

    monkeypatch.setattr(zipfile.ZipFile, "extract", refuse)
    monkeypatch.setattr(zipfile.ZipFile, "extractall", refuse)
    monkeypatch.chdir(path.parent)
    docs = BY_NAME["chabsa"].load_docs(SourceSpec(path=str(path)))
    assert len(docs) == 3
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["chABSA-dataset.zip", "in"]


def test_a_chabsa_document_too_large_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_FILE_BYTES", 100)
    with pytest.raises(SourceError, match=r"e00001_ann\.json: .*limit of 100 bytes"):
        BY_NAME["chabsa"].load_docs(SourceSpec(path=str(RAW / "chabsa")))


def test_a_jsonl_line_too_long_fails_naming_file_line_and_limit(tmp_path):
    rows = [json.loads(line) for line in (RAW / "gsm8k" / "test.jsonl").read_text().splitlines()]
    rows[1]["question"] = "あ" * (limits.MAX_LINE_BYTES // 3 + 10)
    path = tmp_path / "test.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    peak = peak_bytes(lambda: BY_NAME["gsm8k"].load_docs(SourceSpec(path=str(path))))
    assert f"test.jsonl:2: a line over the limit of {limits.MAX_LINE_BYTES} bytes" in (
        peak_bytes.error
    )
    assert peak < limits.MAX_LINE_BYTES * 3, peak  # read line by line, never the file whole


def test_a_jsonl_with_too_many_rows_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_ROWS", 2)
    path = RAW / "edinet" / "fraud_detection" / "test.jsonl"
    with pytest.raises(SourceError, match=r"test\.jsonl: over the limit of 2 rows"):
        BY_NAME["edinet_fraud"].load_docs(SourceSpec(path=str(path)))


def test_a_data_json_too_large_fails_before_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_FILE_BYTES", 100)
    with pytest.raises(SourceError, match=r"data\.json: .*over the limit of 100 bytes"):
        BY_NAME["fp2"].load_docs(SourceSpec(path=str(RAW / "fp2" / "data.json")))


def test_the_limits_hold_the_real_files_sizes():
    """Generous for the real data: CPA's sheet (1,000 x 17), chABSA's zip (~2,300 documents),
    EDINET rows with whole annual-report sheets."""
    assert limits.MAX_COLUMNS >= 17 * 4 and limits.MAX_ROWS >= 100_000
    assert limits.MAX_MEMBERS >= 10_000 and limits.MAX_LINE_BYTES >= 8 << 20
    assert limits.MAX_MEMBER_BYTES >= 64 << 20 and limits.MAX_FILE_BYTES >= 256 << 20


def test_hub_dataset_loading_scripts_are_refused(tmp_path, monkeypatch):
    """A hub source never runs Python shipped with a dataset (`trust_remote_code` stays off)."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "cache"))
    repo = tmp_path / "evil"
    repo.mkdir()
    marker = tmp_path / "ran"
    (repo / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    shutil.copy(RAW / "gsm8k" / "test.jsonl", repo / "test.jsonl")
    with pytest.raises(SourceError, match="loading script"):
        BY_NAME["gsm8k"].load_docs(SourceSpec(hub=str(repo)))
    assert not marker.exists()
    assert "evil" not in sys.modules and not os.path.exists(marker)
