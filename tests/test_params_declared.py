"""Every DVC stage reads exactly the params it declares in dvc.yaml: no more, no less.

A read of an undeclared key would not rerun the stage when that key changes; a declared key
nobody reads reruns it for nothing. Each stage script's `load_config` is the only place it reads
params, so calling it with DVC's view of the stage's declared params, through a mapping that
records what is read, checks both directions.
"""

from __future__ import annotations

import importlib.util
import shlex
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from dvc.repo import Repo

from finstage.recipe import checkpoints, training_stages

from .conftest import ROOT, repo_params


class Tracked(Mapping):
    def __init__(self, data: Mapping, path: str, seen: set[str]):
        self._data, self._path, self._seen = data, path, seen

    def __getitem__(self, key: str) -> Any:
        value = self._data[key]
        path = f"{self._path}.{key}" if self._path else key
        if isinstance(value, Mapping) and value:
            return Tracked(value, path, self._seen)
        self._seen.add(path)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def leaves(data: Mapping, path: str = "") -> set[str]:
    out: set[str] = set()
    for key, value in data.items():
        sub = f"{path}.{key}" if path else key
        out |= leaves(value, sub) if isinstance(value, Mapping) and value else {sub}
    return out


def pipeline_stages() -> list[tuple[str, str, dict]]:
    with Repo(str(ROOT)) as repo:
        stages = [(s.addressing, s.cmd) for s in repo.index.stages]
        params = {name: repo.params.show(stages=[name], deps_only=True) for name, _ in stages}
    out = []
    for name, cmd in stages:
        per_file = next(iter(params[name].values()), {}).get("data", {})
        declared = per_file.get(str(ROOT / "params.yaml"), per_file.get("params.yaml", {})).get(
            "data", {}
        )
        out.append((name, cmd, declared))
    return out


def load_script(path: str):
    spec = importlib.util.spec_from_file_location(f"stage_{path.replace('/', '_')}", ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


STAGES = pipeline_stages()


def test_pipeline_expands_the_recipe_from_params():
    """dvc.yaml's mixtures, training stages and evaluations are exactly what params declare."""
    params = repo_params()
    names = {name for name, _, _ in STAGES}
    fixed = {"corpus", "fetch", "render", "synthesize", "distill", "benchmarks", "sources"}
    fixed |= {"decontam", "validate", "budgets", "warmup"}
    expected = fixed | {"base", "report"}
    expected |= {f"mix@{m}" for m in params["mix"]}
    expected |= {f"train@{s}" for s in training_stages(params)}
    expected |= {f"evaluate@{c.name}" for c in checkpoints(params)}
    assert names == expected


@pytest.mark.parametrize("name, cmd, declared", STAGES, ids=[s[0] for s in STAGES])
def test_stage_reads_exactly_its_declared_params(name, cmd, declared):
    argv = shlex.split(cmd)
    script = load_script(argv[1])
    if not declared:
        assert not hasattr(script, "load_config"), f"{name} reads params but declares none"
        return
    extra = [argv[argv.index("--name") + 1]] if "--name" in argv else []
    seen: set[str] = set()
    script.load_config(Tracked(declared, "", seen), *extra)
    assert seen == leaves(declared), f"{name}: declared but unread {leaves(declared) - seen}"
