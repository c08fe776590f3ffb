"""The `decontam` stage passes clean data and fails the run, naming the item, on a planted leak."""

from __future__ import annotations

import importlib.util
import json

import pytest
from typer.testing import CliRunner

from finstage.records import make_record, write_records

from .conftest import ROOT

RAW = ROOT / "tests" / "fixtures" / "raw"
LEAKED = "りんごが1個120円で売られています。5個買うと代金はいくらですか。"  # gsm8k fixture item 0


def stage_module():
    spec = importlib.util.spec_from_file_location("decontam_stage", ROOT / "stages/decontam.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def params() -> dict:
    sources = {
        task: {"path": str(RAW / task)}
        for task in ("chabsa", "cma_basics", "fp2", "security_sales_1")
    }
    sources["gsm8k"] = {"path": str(RAW / "gsm8k" / "test.jsonl")}
    sources["cpa_audit"] = {"path": "CPA_AUDIT.xlsx"}
    for task, split in (("fraud", "test"), ("earnings", "test"), ("industry", "train")):
        sources[f"edinet_{task}"] = {"path": str(RAW / "edinet"), "split": split}
    return {"decontam": {"n": 12, "max_share": 0.5}, "evaluate": {"sources": sources}}


def chat(user: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]


@pytest.mark.parametrize("leak", [None, "p2_s1", "warmup"])
def test_stage_fails_only_on_overlap(tmp_path, monkeypatch, leak):
    """A leak into a mixture or into the warm-up's pairs fails; an empty warm-up (skipped) is ok."""
    from .test_sources import write_cpa

    monkeypatch.chdir(tmp_path)
    write_cpa(tmp_path / "CPA_AUDIT.xlsx")
    module = stage_module()
    monkeypatch.setattr(module, "stage_params", lambda stage: params())
    clean = "売上高は前年同期比で増加し、営業利益も改善しました。"
    mix_text = LEAKED if leak == "p2_s1" else clean
    write_records(tmp_path / "mix" / "p2_s1", [make_record("m0", "math", chat(mix_text, "600円"))])
    (tmp_path / "warmup").mkdir()
    if leak == "warmup":
        write_records(tmp_path / "warmup", [make_record("w0", "warmup_math", chat(LEAKED, "6"))])
    for name in ("ocr", "vqa", "finqa_visual"):
        gold = chat(f"<image>{name}", f"{name}の答えは固有の値です")
        write_records(tmp_path / "eval" / name, [make_record(name, name, gold, ["p"])])
    report = tmp_path / "decontam.json"
    args = ["--mix", "mix", "--warmup", "warmup", "--visual", "eval", "--report", str(report)]
    args += ["--stage", "decontam"]
    result = CliRunner().invoke(_app(module), args)
    written = json.loads(report.read_text())
    if leak:
        assert result.exit_code == 1
        assert f"mixture '{leak}' x eval set 'gsm8k'" in result.output
        assert [(f["eval_set"], f["item_id"]) for f in written["flagged"]] == [("gsm8k", "0")]
    else:
        assert result.exit_code == 0, result.output
        assert written["ok"] and "decontamination ok" in result.output


def _app(module):
    import typer

    app = typer.Typer()
    app.command()(module.main)
    return app
