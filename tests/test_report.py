"""The trajectory marks the best phase per row, lowest for error rates."""

from __future__ import annotations

import json

import pytest

from finstage.report.trajectory import PHASES, write_report


def fake_metrics(i: int) -> dict:
    return {
        "gsm8k": {
            "exact_match_strict": 0.1 * i,
            "exact_match_flexible": 0.2,
            "n": 10,
            "n_unparsed": 1,
        },
        "chabsa": {"acc": 0.5 - 0.01 * i, "macro_f1": 0.4, "n": 10, "n_unparsed": 0},
        "ocr": {"cer": 0.9 - 0.1 * i, "n": 4, "n_unparsed": 0},
        "vqa": {"exact_match": 0.0, "n": 4, "n_unparsed": 0},
    }


def test_report_marks_best_phase(tmp_path):
    for i, (_, ckpt) in enumerate(PHASES):
        (tmp_path / f"{ckpt}.json").write_text(json.dumps(fake_metrics(i)))
    md, png, js = tmp_path / "t.md", tmp_path / "t.png", tmp_path / "t.json"
    rows = {r["benchmark"]: r for r in write_report(tmp_path, md, png, js)}
    assert rows["GSM8K exact match (strict)"]["best"] == "P3"
    assert rows["chabsa accuracy"]["best"] == "P0"
    assert rows["OCR character error rate"]["best"] == "P3"
    assert "| chabsa accuracy | 10 | **0.500** |" in md.read_text()
    assert rows["VQA exact match"]["best"] is None
    assert "| VQA exact match | 4 | 0.000 |" in md.read_text() and "— (flat)" in md.read_text()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(js.read_text())["chabsa accuracy"]["P0"] == 0.5


def test_missing_checkpoint_metrics_name_the_stage(tmp_path):
    (tmp_path / "p0.json").write_text(json.dumps(fake_metrics(0)))
    with pytest.raises(FileNotFoundError, match="p1_s1"):
        write_report(tmp_path, tmp_path / "a.md", tmp_path / "a.png", tmp_path / "a.json")
