"""The trajectory report: best phase, deltas vs P0, interval flags, harness table, advice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finstage.report.curves import LOSS_TSV, plot_losses
from finstage.report.outputs import write_report
from finstage.report.trajectory import MetricsError

PHASES = {
    "p0": "P0",
    "p1_s1": "P1-S1",
    "p1_s2": "P1",
    "p2_s1": "P2",
    "p3_s1": "P3-1",
    "p3_s2": "P3",
}
HALF_WIDTH = 0.08  # every fake interval is value ± 0.08
HARNESS_TASKS = ("cma_basics", "cpa_audit", "fp2", "security_sales_1")
# benchmark -> score -> value per phase (P0, P1-S1, P1, P2, P3-1, P3)
SPEC: dict[str, dict[str, list[float]]] = {
    "gsm8k": {
        # P1-S1 inside P0's reach (†), P1 outside; P2 best but P3-1 lies inside its interval
        "em_strict": [0.10, 0.15, 0.30, 0.60, 0.55, 0.50],
        "em_flexible": [0.20] * 6,
    },
    "chabsa": {
        "harness_f1": [0.60, 0.60, 0.65, 0.62, 0.75, 0.70],
        "macro_f1": [0.40, 0.40, 0.43, 0.41, 0.50, 0.47],
        "acc": [0.70, 0.60, 0.60, 0.50, 0.50, 0.40],
    },
    "cma_basics": {"acc": [0.25, 0.30, 0.30, 0.30, 0.40, 0.35]},
    "cpa_audit": {"acc": [0.40, 0.30, 0.30, 0.20, 0.35, 0.30]},  # P0 stays best
    "fp2": {"acc": [0.30, 0.30, 0.30, 0.35, 0.30, 0.30]},
    "security_sales_1": {"acc": [0.45, 0.45, 0.50, 0.45, 0.50, 0.45]},
    "edinet_fraud": {
        "roc_auc": [0.50, 0.52, 0.55, 0.50, 0.58, 0.60],
        "gen_roc_auc": [0.50, 0.50, 0.51, 0.50, 0.53, 0.55],
    },
    "edinet_industry": {"acc": [0.20, 0.40, 0.50, 0.30, 0.30, 0.50]},  # P1 and P3 tie
    "ocr": {"cer": [0.90, 0.80, 0.70, 0.60, 0.30, 0.50]},  # lower is better: P3-1
    "vqa": {"em": [0.0] * 6, "anls": [0.10, 0.12, 0.30, 0.20, 0.20, 0.25]},
}
SPEC["finharness"] = {
    "avg": [
        (SPEC["chabsa"]["harness_f1"][i] + sum(SPEC[t]["acc"][i] for t in HARNESS_TASKS)) / 5
        for i in range(len(PHASES))
    ]
}
COVERAGE = {"edinet_fraud": [1.0, 0.8, 0.9, 1.0, 1.0, 1.0]}


def fake_metrics(phase: int) -> dict:
    out = {}
    for benchmark, scores in SPEC.items():
        entry = {"n": 10, "n_unparsed": 0, "coverage": COVERAGE.get(benchmark, [1.0] * 6)[phase]}
        for score, values in scores.items():
            v = values[phase]
            entry |= {score: v, f"{score}_lo": v - HALF_WIDTH, f"{score}_hi": v + HALF_WIDTH}
        out[benchmark] = entry
    return out


def write_curves(curves: Path, stages) -> None:
    """A loss curve per training stage, where train@<stage> logs it."""
    for stage in stages:
        tsv = curves / stage / LOSS_TSV
        tsv.parent.mkdir(parents=True, exist_ok=True)
        tsv.write_text("step\tloss\n" + "".join(f"{i}\t{7 - 0.1 * i}\n" for i in range(5)))


def write_fakes(tmp_path, edit=None) -> None:
    write_curves(tmp_path / "curves", list(PHASES)[1:])
    for i, ckpt in enumerate(PHASES):
        metrics = fake_metrics(i)
        if edit:
            edit(ckpt, metrics)
        (tmp_path / f"{ckpt}.json").write_text(json.dumps(metrics, sort_keys=True))


def report(tmp_path):
    md, png, js = tmp_path / "t.md", tmp_path / "t.png", tmp_path / "t.json"
    written = write_report(tmp_path, PHASES, md, png, js, tmp_path / "curves", tmp_path / "l.png")
    rows = {(r.benchmark, r.score): r for r in written}
    return rows, md.read_text(), png, json.loads(js.read_text())


def line(text: str, start: str) -> str:
    (found,) = [x for x in text.splitlines() if x.startswith(start)]
    return found


@pytest.fixture
def built(tmp_path):
    write_fakes(tmp_path)
    return report(tmp_path)


def test_best_phase_is_bold_with_deltas_vs_p0(built):
    rows, md, _, _ = built
    assert rows[("gsm8k", "em_strict")].best == ["P2"]
    gsm = line(md, "| GSM8K · exact match (strict) | 10 | 0.100 |")
    assert "| **0.600 (+0.500)** |" in gsm and gsm.endswith("| P2 |")
    assert gsm.count("**") == 2  # one bold cell only
    assert rows[("cpa_audit", "acc")].best == ["P0"]
    assert line(md, "| CPA audit · accuracy |").startswith(
        "| CPA audit · accuracy | 10 | **0.400** |"
    )


def test_dagger_marks_changes_inside_the_interval(built):
    _, md, _, _ = built
    gsm = line(md, "| GSM8K · exact match (strict) |")
    assert "| 0.150 (+0.050)† |" in gsm  # P1-S1: 0.10 lies in [0.07, 0.23]
    assert "| 0.300 (+0.200) |" in gsm  # P1: 0.10 is outside [0.22, 0.38]
    assert "| 0.100 |" in gsm and "0.100†" not in gsm  # P0 is the reference, never flagged
    assert "95% bootstrap interval contains the P0 value" in md


def test_lower_is_better_for_cer(built):
    rows, md, _, summary = built
    assert rows[("ocr", "cer")].best == ["P3-1"]
    cer = line(md, "| OCR · character error rate ↓ |")
    assert "| **0.300 (-0.600)** |" in cer and cer.endswith("| P3-1 |")
    assert summary["recommendation"]["ocr"]["best"] == "P3-1"
    assert summary["recommendation"]["ocr"]["vs_runner_up"] == "significant"


def test_flat_row_has_no_best(built):
    rows, md, _, summary = built
    assert rows[("vqa", "em")].best == []
    vqa = line(md, "| VQA · exact match |")
    assert vqa == "| VQA · exact match | 10 |" + " 0.000 |" * 6 + " — (flat) |"
    assert summary["recommendation"]["vqa"] == {"score": "em", "best": "flat", "checkpoint": ""}
    assert "- **VQA · exact match**: flat at 0.000 in every phase" in md


def test_coverage_row_only_below_one(built):
    _, md, _, _ = built
    cov = line(md, "| EDINET fraud · coverage (answers parsed) |")
    assert "| 1.000 | 0.800 | 0.900 |" in cov
    assert "GSM8K · coverage" not in md


def test_harness_table_times_100_with_average(built):
    _, md, _, _ = built
    section = md.split("## Japanese financial harness (×100)")[1].split("##")[0]
    assert "| chabsa | 60.00 | 60.00 | 65.00 | 62.00 | **75.00** | 70.00 |" in section
    # P0: (60 + 25 + 40 + 30 + 45) / 5 = 40; P3-1: (75 + 40 + 35 + 30 + 50) / 5 = 46
    assert line(section, "| average |").startswith("| average | 40.00 |")
    assert "**46.00**" in line(section, "| average |")
    tasks = [x.split(" | ")[0][2:] for x in section.splitlines() if x.startswith("| ")]
    assert tasks == [
        "task",
        "chabsa",
        "cma_basics",
        "cpa_audit",
        "fp2",
        "security_sales_1",
        "average",
    ]


def test_recommendation_text(built):
    _, md, _, summary = built
    advice = md.split("## Which checkpoint for which task")[1]
    gsm = line(advice, "- **GSM8K · exact match (strict)**")
    assert "P2 (`models/p2_s1`), 0.600 [0.520, 0.680]" in gsm
    assert "Significantly better than P0 (0.100)" in gsm
    assert "Not significantly better than the runner-up P3-1 (0.550)" in gsm
    assert "Tied with P3; the earliest phase is listed." in line(advice, "- **EDINET industry")
    assert "P0 is the untouched baseline" in line(advice, "- **CPA audit")
    fp2 = line(advice, "- **FP2")  # the runner-up is P0: said once, not twice
    assert fp2.count("P0 (0.300)") == 1 and "runner-up" not in fp2
    assert "Not significantly better than the runner-up P3-1 (0.350)" in line(
        advice, "- **CPA audit"
    )
    assert "chABSA · accuracy" not in advice  # only primary scores are advised on
    rec = summary["recommendation"]["gsm8k"]
    assert (rec["best"], rec["checkpoint"], rec["vs_p0"], rec["vs_runner_up"]) == (
        "P2",
        "p2_s1",
        "significant",
        "not significant",
    )
    assert summary["recommendation"]["edinet_industry"]["tied_with"] == "P3"


def test_summary_json_and_png(built):
    _, _, png, summary = built
    assert summary["gsm8k"]["em_strict"]["P2"] == 0.6
    assert summary["chabsa"]["acc"] == dict(
        zip(PHASES.values(), SPEC["chabsa"]["acc"], strict=True)
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_loss_curves_drawn_for_every_trained_phase(tmp_path):
    write_curves(tmp_path, ["p1_s1", "p1_s2"])
    out = tmp_path / "loss.png"
    plot_losses(tmp_path, {"p1_s1": "P1-S1", "p1_s2": "P1"}, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(FileNotFoundError, match=r"'p2_s1'.*dvc repro train@p2_s1"):
        plot_losses(tmp_path, {"p1_s1": "P1-S1", "p2_s1": "P2"}, out)
    (tmp_path / "p1_s2" / LOSS_TSV).write_text("step\tvalue\n0\t1.0\n")
    with pytest.raises(ValueError, match="loss.tsv: expected a 'step"):
        plot_losses(tmp_path, {"p1_s2": "P1"}, out)


def test_missing_benchmark_names_file_and_key(tmp_path):
    write_fakes(tmp_path, lambda ckpt, m: m.pop("vqa") if ckpt == "p2_s1" else None)
    with pytest.raises(MetricsError, match=r"p2_s1\.json has no key 'vqa'.*dvc repro"):
        report(tmp_path)


def test_missing_interval_names_the_key(tmp_path):
    write_fakes(tmp_path, lambda ckpt, m: m["ocr"].pop("cer_hi"))
    with pytest.raises(MetricsError, match=r"p0\.json has no key 'ocr\.cer_hi'"):
        report(tmp_path)


def test_missing_checkpoint_metrics_name_the_stage(tmp_path):
    (tmp_path / "p0.json").write_text(json.dumps(fake_metrics(0)))
    with pytest.raises(FileNotFoundError, match="p1_s1"):
        report(tmp_path)


def test_a_phase_added_in_params_gains_a_column(tmp_path):
    write_fakes(tmp_path)
    (tmp_path / "p4_s1.json").write_text((tmp_path / "p3_s2.json").read_text())
    md, png, js = tmp_path / "t.md", tmp_path / "t.png", tmp_path / "t.json"
    curves, loss_png = tmp_path / "curves", tmp_path / "l.png"
    write_curves(curves, ["p4_s1"])
    rows = write_report(tmp_path, {**PHASES, "p4_s1": "P4"}, md, png, js, curves, loss_png)
    assert list(rows[0].cells) == [*PHASES.values(), "P4"]
    assert "| P3 | P4 | best |" in md.read_text()
    summary = json.loads(js.read_text())
    assert summary["gsm8k"]["em_strict"]["P4"] == SPEC["gsm8k"]["em_strict"][-1]
    with pytest.raises(FileNotFoundError, match="p5"):
        write_report(tmp_path, {**PHASES, "p5": "P5"}, md, png, js, curves, loss_png)


def with_protocol(chat_template: float, truncated: int = 0, unscorable: int = 0):
    """An edit giving every checkpoint a protocol block and CPA window counts."""

    def edit(ckpt: str, metrics: dict) -> None:
        metrics["protocol"] = {"chat_template": chat_template, "max_length": 512}
        metrics["cpa_audit"] |= {"n_truncated": truncated, "n_unscorable": unscorable}
        metrics["gsm8k"] |= {"n_truncated": 0, "n_unscorable": 0}

    return edit


def test_report_states_the_template_protocol_and_window(tmp_path):
    write_fakes(tmp_path, with_protocol(1.0))
    rows, md, _, summary = report(tmp_path)
    assert "Protocol: each prompt as one user turn of the checkpoint's own chat template" in md
    assert "512-token window" in md and "leaderboard" not in md
    assert summary["protocol"] == {"chat_template": 1.0, "max_length": 512}
    assert all(benchmark != "protocol" for benchmark, _ in rows)  # not a benchmark row
    assert "prompts cut to fit the window" not in md  # no row when nothing was cut


def test_report_states_the_raw_prompt_protocol(tmp_path):
    write_fakes(tmp_path, with_protocol(0.0))
    _, md, _, _ = report(tmp_path)
    assert "raw prompts without a chat template (pfnet's leaderboard protocol)" in md


def test_report_shows_truncation_counts_per_phase(tmp_path):
    write_fakes(tmp_path, with_protocol(1.0, truncated=20, unscorable=1))
    rows, md, _, _ = report(tmp_path)
    cut = line(md, "| CPA audit · prompts cut to fit the window |")
    assert cut == "| CPA audit · prompts cut to fit the window | | " + "20 | " * 6 + "|"
    assert line(md, "| CPA audit · items too long to score |").count("| 1 ") == 6
    assert "GSM8K · prompts cut" not in md
    assert ("cpa_audit", "n_truncated") not in rows  # a count, not a score


def test_checkpoints_scored_under_different_protocols_are_refused(tmp_path):
    def edit(ckpt: str, metrics: dict) -> None:
        with_protocol(0.0 if ckpt == "p2_s1" else 1.0)(ckpt, metrics)

    write_fakes(tmp_path, edit)
    with pytest.raises(MetricsError, match=r"p2_s1\.json was scored under protocol"):
        report(tmp_path)
