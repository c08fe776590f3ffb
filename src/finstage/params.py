"""Validation of a whole params file: every section, plus the rules that span sections.

Stage scripts each parse only their own section; this checks every section at once plus the
cross-section rules (the training chain is well formed, every stage has a mixture), so a preset
or a hand edit fails in a second rather than an hour into `dvc repro`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from finstage import presets
from finstage.benchmarks.registry import BenchConfig
from finstage.config import ParamsError, check_names, parse
from finstage.corpus.fetchconfig import FetchConfig
from finstage.corpus.generate import CorpusConfig
from finstage.distill.teacher import DistillConfig
from finstage.evaluate.run import EvalConfig
from finstage.mix.build import MixConfig
from finstage.mix.decontam import DecontamConfig
from finstage.model.assemble import ModelConfig
from finstage.model.plan import StageConfig
from finstage.pages.render import RenderConfig
from finstage.recipe import ReportConfig, checkpoints
from finstage.synth.teacher import SynthConfig
from finstage.warmup.config import WarmupConfig

SECTIONS: dict[str, Any] = {
    "corpus": CorpusConfig,
    "fetch": FetchConfig,
    "render": RenderConfig,
    "synth": SynthConfig,
    "distill": DistillConfig,
    "benchmarks": BenchConfig,
    "mix": dict[str, MixConfig],
    "model": ModelConfig,
    "warmup": WarmupConfig,
    "train": dict[str, StageConfig],
    "evaluate": EvalConfig,
    "decontam": DecontamConfig,
    "report": ReportConfig,
}


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader keeps the last of two equal keys without a word; DVC refuses the file
    as corrupted. A merge that leaves a key twice must fail here, naming the key and its line."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                line = key_node.start_mark.line + 1
                raise ParamsError(f"key {key!r} appears twice in one mapping (line {line})")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: Path) -> dict[str, Any]:
    loader = _UniqueKeyLoader(Path(path).read_text())
    try:
        data = loader.get_single_data()
    except ParamsError as err:
        raise ParamsError(f"{path}: {err}; keep one of them") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    return data


def validate(params: Mapping[str, Any]) -> None:
    """Raise ParamsError naming the first bad key; return quietly when the file is usable.

    Names go first: one that dvc.yaml would put into a shell command must be reported as such,
    not as whatever else is wrong with its entry."""
    check_names(params)
    unknown, missing = sorted(set(params) - set(SECTIONS)), sorted(set(SECTIONS) - set(params))
    if unknown or missing:
        raise ParamsError(f"params: unknown sections {unknown}, missing sections {missing}")
    for section, tp in SECTIONS.items():
        if isinstance(tp, type):
            parse(tp, params[section], section)
            continue
        value_type = tp.__args__[1]
        if not isinstance(params[section], Mapping) or not params[section]:
            raise ParamsError(f"params: '{section}' must map names to {value_type.__name__}s")
        for name, raw in params[section].items():
            parse(value_type, raw, f"{section}.{name}")
    checkpoints(params)
    shared = sorted(
        set(params["benchmarks"]["gsm8k"]["templates"]) & set(params["distill"]["templates"])
    )
    if shared:
        raise ParamsError(
            f"params: templates {shared} are in both 'distill.templates' and "
            "'benchmarks.gsm8k.templates'; the GSM8K stand-in must use held-out templates"
        )


def with_preset(params_path: Path, name: str) -> dict[str, Any]:
    """The params `finstage preset NAME` would write over `params_path`, without writing them."""
    overlay = presets.preset_path(name).read_text()
    return yaml.safe_load(presets.apply(Path(params_path).read_text(), overlay, SECTIONS))
