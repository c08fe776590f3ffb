"""The paper preset is a complete, valid params file with the paper's hyperparameters."""

from __future__ import annotations

import shutil

import pytest
import yaml
from typer.testing import CliRunner

from finstage.cli import app
from finstage.config import ParamsError
from finstage.params import load_yaml, validate

from .conftest import ROOT, repo_params


def keys(d, prefix=""):
    out = set()
    for k, v in d.items():
        path = f"{prefix}.{k}" if prefix else k
        out.add(path)
        if isinstance(v, dict) and v and not path.endswith((".config", ".sources")):
            out |= keys(v, path)
    return out


@pytest.fixture(scope="module")
def paper():
    return load_yaml(ROOT / "presets" / "paper.yaml")


def test_embedded_params_and_paper_preset_validate(paper):
    validate(repo_params())
    validate(paper)


def test_paper_preset_has_the_same_keys_as_params(paper):
    assert keys(paper) == keys(repo_params())


def test_paper_preset_carries_the_recipe_table(paper):
    t = paper["train"]
    assert t["p1_s1"]["lr"]["projector"] == 1e-3 and t["p1_s1"]["epochs"] == 2
    assert (t["p1_s2"]["lora"]["r"], t["p1_s2"]["lora"]["alpha"]) == (64, 128)
    assert (t["p1_s2"]["lr"]["llm"], t["p1_s2"]["lr"]["vision"]) == (2e-5, 2e-6)
    assert (t["p2_s1"]["lora"]["r"], t["p2_s1"]["lora"]["alpha"], t["p2_s1"]["lr"]["llm"]) == (
        32,
        64,
        2e-4,
    )
    assert t["p2_s1"]["quant"]["quant_type"] == "nf4"
    for s in ("p3_s1", "p3_s2"):
        assert (t[s]["lora"]["r"], t[s]["lora"]["alpha"], t[s]["lr"]["llm"], t[s]["epochs"]) == (
            16,
            32,
            5e-6,
            3,
        )
    assert all(t[s]["batch_size"] == 2 for s in t)
    assert paper["model"]["vision"]["pretrained"] == "google/siglip2-so400m-patch14-384"
    assert paper["model"]["trust_remote_code"] is False


def test_preset_command_switches_params(tmp_path):
    target = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", target)
    result = CliRunner().invoke(app, ["preset", "paper", "--params", str(target)])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(target.read_text())["model"]["dtype"] == "bfloat16"
    assert CliRunner().invoke(app, ["validate", str(target)]).exit_code == 0


def test_unknown_preset_and_bad_params_are_rejected(tmp_path):
    assert CliRunner().invoke(app, ["preset", "nope"]).exit_code == 2
    bad = repo_params()
    bad["train"]["p2_s1"]["init"] = "p0"
    with pytest.raises(ParamsError, match=r"train\.p2_s1\.init"):
        validate(bad)
    bad = repo_params()
    bad["train"]["p3_s2"]["lora"]["r"] = -1
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and "train.p3_s2.lora.r" in result.output
