"""Names that dvc.yaml interpolates into shell commands are plain identifiers, or nothing runs.

DVC expands `mix@<key>`, `train@<key>` (with `${item.init}`, `${item.data}`) and
`evaluate@<key>` from params and substitutes them into each stage's `cmd`, which runs in a
shell: a key like `x$(id)` would run `id`. `finstage validate` (and so the pre-commit hook and
CI) rejects such a params file, and every stage refuses to start under one.
"""

from __future__ import annotations

import copy
import re

import pytest
import yaml
from typer.testing import CliRunner

from finstage import config
from finstage.cli import app
from finstage.config import ParamsError
from finstage.params import validate

from .conftest import ROOT, repo_params
from .test_params_declared import load_script

EVIL = "x$(touch pwned)"


def evil_train_key(params: dict) -> None:
    params["train"][EVIL] = copy.deepcopy(params["train"]["p3_s2"])
    params["report"]["phases"][EVIL] = "P4"


def evil_init(params: dict) -> None:
    params["train"]["p3_s2"]["init"] = "p3_s1; touch pwned"


def evil_data(params: dict) -> None:
    params["train"]["p3_s2"]["data"] = "p3_s2`touch pwned`"


def evil_mix_key(params: dict) -> None:
    params["mix"]["m$(id)"] = copy.deepcopy(params["mix"]["p3_s2"])


def evil_phase_key(params: dict) -> None:
    params["report"]["phases"]["p0 && id"] = "PX"


CASES = [
    (evil_train_key, "train.x$(touch pwned)"),
    (evil_init, "train.p3_s2.init"),
    (evil_data, "train.p3_s2.data"),
    (evil_mix_key, "mix.m$(id)"),
    (evil_phase_key, "report.phases.p0 && id"),
]


@pytest.mark.parametrize("edit, key", CASES)
def test_validate_rejects_a_shell_name_naming_the_key(tmp_path, edit, key):
    params = repo_params()
    edit(params)
    with pytest.raises(ParamsError, match=_escaped(key)):
        validate(params)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, allow_unicode=True))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert key in result.output and "[a-z0-9_]+" in result.output


def test_a_non_string_key_is_rejected():
    params = repo_params()
    params["mix"][7] = params["mix"]["p3_s2"]
    with pytest.raises(ParamsError, match=r"mix\.7"):
        config.check_names(params)


def test_the_embedded_and_extended_chains_pass():
    params = repo_params()
    config.check_names(params)
    params["train"]["p4_s1"] = {**params["train"]["p3_s2"], "init": "p3_s2", "data": "p3_s2"}
    params["report"]["phases"]["p4_s1"] = "P4"
    validate(params)


@pytest.mark.parametrize("edit, key", CASES)
def test_every_stage_refuses_to_start_under_a_shell_name(tmp_path, monkeypatch, edit, key):
    """stage_params is what every stage script calls first; it checks the whole params file."""
    params = repo_params()
    edit(params)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True))
    monkeypatch.chdir(tmp_path)
    seen = []
    monkeypatch.setattr("dvc.api.params_show", lambda *a, **k: seen.append(1) or params)
    with pytest.raises(ParamsError, match=_escaped(key)):
        config.stage_params("corpus")
    assert not seen, "params were read for the stage before the names were checked"


def test_a_stage_started_under_a_shell_name_refuses_before_work(tmp_path, monkeypatch):
    """DVC has already run the shell by then (see the module docstring); the stage still refuses
    to write outputs under a mangled name, and says which stage name is bad."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(repo_params(), allow_unicode=True))
    monkeypatch.chdir(tmp_path)
    mix = load_script("stages/mix.py")
    built = []
    monkeypatch.setattr(mix, "build_mixture", lambda *a: built.append(a))
    monkeypatch.setattr("dvc.api.params_show", lambda *a, **k: repo_params())
    with pytest.raises(ParamsError, match=re.escape("mix@x$(touch pwned)")):
        mix.main(name="x", source_root=[tmp_path], out=tmp_path / "out", stage=f"mix@{EVIL}")
    assert not built


def _escaped(key: str) -> str:
    """The message names the key, then the rule it breaks."""
    return re.escape(key) + ".*" + re.escape("[a-z0-9_]+")


def test_a_shell_name_is_reported_before_any_other_error():
    """The message that matters comes first, even when the hostile entry is otherwise broken."""
    params = repo_params()
    params["train"][EVIL] = {"init": "p0", "data": "p1_s1"}  # no plan at all
    params["report"]["phases"][EVIL] = "P4"
    del params["evaluate"]["batch_size"]
    with pytest.raises(ParamsError, match=_escaped(f"train.{EVIL}")):
        validate(params)


def test_check_names_covers_everything_dvc_yaml_interpolates():
    """A new `${...}` in a command must be added to config.SHELL_NAMES, or this fails."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    used: dict[str, set[str]] = {}
    for name, stage in stages.items():
        body = stage.get("do", stage)
        refs = set(re.findall(r"\$\{([^}]*)\}", body["cmd"]))
        if "foreach" not in stage:
            assert not refs, f"{name}: cmd interpolates {refs}"
            continue
        source = re.fullmatch(r"\$\{(.+)\}", stage["foreach"]).group(1)
        fields = {r.removeprefix("item.") for r in refs - {"key"}}
        assert all(r == "key" or r.startswith("item.") for r in refs), (name, refs)
        used.setdefault(source, set()).update(fields)
    assert used == {where: set(fields) for where, fields in config.SHELL_NAMES.items()}


def test_a_key_written_twice_is_rejected_naming_it_and_its_line(tmp_path):
    """PyYAML keeps the second of two equal keys silently, DVC refuses the whole file: a merge
    that leaves `cache_dir` twice in `fetch:` must fail validation, not the next `dvc repro`."""
    text = (ROOT / "params.yaml").read_text()
    twice = text.replace("\nrender:\n", "\n  max_pages: 3\nrender:\n", 1)
    path = tmp_path / "params.yaml"
    path.write_text(twice)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    line = twice[: twice.index("  max_pages: 3\nrender:")].count("\n") + 1
    assert "'max_pages' appears twice" in result.output and f"line {line}" in result.output
