"""Params are the only source of values; presets are overlays of the keys they change."""

from __future__ import annotations

import re
import shutil

import pytest
import yaml
from typer.testing import CliRunner

from finstage import presets
from finstage.cli import app
from finstage.config import ParamsError
from finstage.params import SECTIONS, validate, with_preset

from .conftest import ROOT, repo_params


def merged(name: str) -> dict:
    return with_preset(ROOT / "params.yaml", name)


def leaves(data: dict) -> set[str]:
    return set(presets._flatten(data))


def test_embedded_params_and_merged_paper_preset_validate():
    validate(repo_params())
    validate(merged("paper"))


def test_paper_preset_holds_only_overrides():
    overlay = yaml.safe_load(presets.preset_path("paper").read_text())
    base = repo_params()
    changed = {key for key, _, _ in presets.diff(base, merged("paper"))}
    for key in leaves(overlay):
        if key.startswith("evaluate.sources."):
            continue  # a one-of spec is replaced whole, so it repeats its unchanged companions
        assert any(c == key or c.startswith(f"{key}.") for c in changed), (
            f"presets/paper.yaml sets {key} to the value params.yaml already has"
        )
    assert len(leaves(overlay)) < len(leaves(base)) / 2


def test_merged_paper_preset_carries_the_recipe_table():
    p = merged("paper")
    t = p["train"]
    assert t["p1_s1"]["lr"]["projector"] == 1e-3 and t["p1_s1"]["epochs"] == 2
    assert (t["p1_s2"]["lora"]["r"], t["p1_s2"]["lora"]["alpha"]) == (64, 128)
    lr = t["p1_s2"]["lr"]
    assert (lr["llm"], lr["vision"], lr["projector"]) == (1e-5, 2e-6, 2e-5)  # P1-S2B rows
    assert (t["p2_s1"]["lora"]["r"], t["p2_s1"]["lora"]["alpha"]) == (32, 64)
    assert t["p2_s1"]["lr"]["llm"] == 2e-4 and t["p2_s1"]["quant"]["quant_type"] == "nf4"
    assert t["p2_s1"]["quant"]["compute_dtype"] == "bfloat16"
    for s in ("p3_s1", "p3_s2"):
        lora, lr = t[s]["lora"], t[s]["lr"]
        assert (lora["r"], lora["alpha"], lr["llm"], t[s]["epochs"]) == (16, 32, 5e-6, 3)
    assert all(t[s]["batch_size"] == 2 for s in t)
    assert [t[s]["epochs"] for s in t] == [2, 1, 1, 3, 3]
    model = p["model"]
    assert model["vision"] == {
        "pretrained": "google/siglip2-so400m-patch14-384",
        "revision": "e8e487298228002f3d8a82e0cd5c8ea9c567f57f",
        "config": {},
    }
    assert model["llm"]["pretrained"] == "llm-jp/llm-jp-4-8b-instruct"
    assert model["dtype"] == "bfloat16" and model["trust_remote_code"] is False
    assert p["mix"]["p1_s1"]["sources"] == {"ocr": 1.0}  # replaced whole, not merged
    assert p["evaluate"]["sources"]["gsm8k"] == {
        "hub": "openai/gsm8k",
        "config": "main",
        "split": "test",
        "revision": "cc7b047b6e5bb11b4f1af84efc572db110a51b3c",
    }  # a one-of spec: the embedded `path` does not survive next to `hub`


COMMIT = re.compile(r"[0-9a-f]{40}")


def test_paper_preset_pins_every_model_dataset_and_url_to_a_commit():
    p = merged("paper")
    model = p["model"]
    for part in (model["vision"], model["llm"], model["tokenizer"]):
        assert COMMIT.fullmatch(part["revision"]), part
    for name, spec in p["evaluate"]["sources"].items():
        if "hub" in spec:
            assert COMMIT.fullmatch(spec["revision"]), name
        if "url" in spec:
            # upstream keeps the files under jlm_fin_eval/datasets/, at a fixed commit
            parts = spec["url"].split("/")
            assert COMMIT.fullmatch(parts[5]), name
            assert parts[6:8] == ["jlm_fin_eval", "datasets"], name


def test_merge_follows_the_schema():
    base = {"train": {"a": {"lr": {"llm": 1.0, "vision": 0.0, "projector": 0.0}, "epochs": 2}}}
    out = presets.merge(base["train"], {"a": {"lr": {"llm": 5.0}}}, SECTIONS["train"])
    assert out["a"] == {"lr": {"llm": 5.0, "vision": 0.0, "projector": 0.0}, "epochs": 2}
    mixture = {"total": 10, "sources": {"ocr": 0.5, "caption": 0.5}}
    out = presets.merge(mixture, {"sources": {"vqa": 1.0}}, SECTIONS["mix"].__args__[1])
    assert out == {"total": 10, "sources": {"vqa": 1.0}}


def test_apply_keeps_comments_and_unchanged_text():
    text = (ROOT / "params.yaml").read_text()
    assert presets.apply(text, "{}", SECTIONS) == text
    out = presets.apply(text, "train: {p3_s2: {lora: {r: 32}}}", SECTIONS)
    assert "# rank: capacity of the update" in out
    assert yaml.safe_load(out)["train"]["p3_s2"]["lora"]["r"] == 32
    assert [k for k, _, _ in presets.diff(yaml.safe_load(text), yaml.safe_load(out))] == [
        "train.p3_s2.lora.r"
    ]


def test_preset_command_lists_diffs_and_switches(tmp_path):
    runner = CliRunner()
    listing = runner.invoke(app, ["preset", "--list"])
    assert listing.exit_code == 0 and listing.output.startswith("paper")
    target = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", target)
    shown = runner.invoke(app, ["preset", "paper", "--params", str(target), "--diff"])
    assert shown.exit_code == 0, shown.output
    assert "train.p2_s1.lr.llm: 0.002 -> 0.0002" in shown.output
    assert "evaluate.sources.gsm8k.path: 'data/bench/gsm8k/test.jsonl' -> (absent)" in shown.output
    assert target.read_text() == (ROOT / "params.yaml").read_text()  # --diff writes nothing
    result = runner.invoke(app, ["preset", "paper", "--params", str(target)])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(target.read_text()) == merged("paper")
    assert runner.invoke(app, ["validate", str(target)]).exit_code == 0
    again = runner.invoke(app, ["preset", "paper", "--params", str(target), "--diff"])
    assert "0 key(s) would change" in again.output  # applying twice changes nothing


def test_deleting_a_key_fails_validation_and_the_stage_naming_it(tmp_path):
    text = (ROOT / "params.yaml").read_text()
    params = yaml.safe_load(text)
    del params["train"]["p3_s1"]["save_every"]
    with pytest.raises(ParamsError, match=r"missing key 'train\.p3_s1\.save_every'"):
        validate(params)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and "train.p3_s1.save_every" in result.output
    from .test_params_declared import load_script

    with pytest.raises(ParamsError, match=r"train\.p3_s1\.save_every"):
        load_script("stages/train.py").load_config(params, "p3_s1")


def test_unknown_preset_and_bad_params_are_rejected(tmp_path):
    assert CliRunner().invoke(app, ["preset", "nope"]).exit_code == 2
    bad = repo_params()
    bad["train"]["p2_s1"]["init"] = "p3_s1"  # starts from a checkpoint trained after it
    with pytest.raises(ParamsError, match=r"train\.p2_s1\.init"):
        validate(bad)
    bad = repo_params()
    bad["train"]["p3_s2"]["lora"]["r"] = -1
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and "train.p3_s2.lora.r" in result.output
    with pytest.raises(ParamsError, match="unknown section 'trian'"):
        presets.apply((ROOT / "params.yaml").read_text(), "trian: {}", SECTIONS)


@pytest.mark.parametrize("name", ["../params", "../presets/paper", "/etc/passwd", "Paper", ""])
def test_a_preset_name_never_reaches_outside_presets(tmp_path, name):
    """`finstage preset NAME` reads presets/NAME.yaml only; a path is not a name."""
    with pytest.raises(ParamsError, match=r"\[a-z0-9_-\]\+"):
        presets.preset_path(name)
    target = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", target)
    result = CliRunner().invoke(app, ["preset", name, "--params", str(target), "--diff"])
    assert result.exit_code == 2 and "[a-z0-9_-]+" in result.output, result.output
    assert target.read_text() == (ROOT / "params.yaml").read_text()


def test_a_preset_linked_from_outside_presets_is_refused(tmp_path, monkeypatch):
    (tmp_path / "presets").mkdir()
    (tmp_path / "secret.yaml").write_text("train: {}\n")
    (tmp_path / "presets" / "link.yaml").symlink_to(tmp_path / "secret.yaml")
    monkeypatch.setattr(presets, "PRESETS_DIR", tmp_path / "presets")
    with pytest.raises(ParamsError, match="outside"):
        presets.preset_path("link")
