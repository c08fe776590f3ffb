"""Validation of a whole params file, and switching presets.

Stage scripts each parse only their own section; this checks every section at once plus the
cross-section rules (the training chain is well formed, every stage has a mixture), so a preset
or a hand edit fails in a second rather than an hour into `dvc repro`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from finstage.config import ParamsError, parse
from finstage.corpus.fetch import FetchConfig
from finstage.corpus.generate import CorpusConfig
from finstage.distill.teacher import DistillConfig
from finstage.evaluate.decontam import DecontamConfig
from finstage.evaluate.run import EvalConfig
from finstage.mix.build import MixConfig
from finstage.model.assemble import ModelConfig
from finstage.model.plan import StageConfig
from finstage.pages.render import RenderConfig
from finstage.synth.benchmarks import BenchConfig
from finstage.synth.teacher import SynthConfig

SECTIONS: dict[str, type] = {
    "corpus": CorpusConfig,
    "fetch": FetchConfig,
    "render": RenderConfig,
    "synth": SynthConfig,
    "distill": DistillConfig,
    "benchmarks": BenchConfig,
    "model": ModelConfig,
    "evaluate": EvalConfig,
    "decontam": DecontamConfig,
}
PER_STAGE: dict[str, type] = {"mix": MixConfig, "train": StageConfig}
TRAIN_STAGES = ["p1_s1", "p1_s2", "p2_s1", "p3_s1", "p3_s2"]
PRESETS_DIR = Path(__file__).resolve().parents[2] / "presets"


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(Path(path).read_text())
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    return data


def validate(params: dict[str, Any]) -> None:
    """Raise ParamsError naming the first bad key; return quietly when the file is usable."""
    expected = set(SECTIONS) | set(PER_STAGE)
    unknown, missing = sorted(set(params) - expected), sorted(expected - set(params))
    if unknown or missing:
        raise ParamsError(f"params: unknown sections {unknown}, missing sections {missing}")
    for section, cls in SECTIONS.items():
        parse(cls, params[section], section)
    for section, cls in PER_STAGE.items():
        if sorted(params[section]) != sorted(TRAIN_STAGES):
            raise ParamsError(f"params: '{section}' must have exactly the stages {TRAIN_STAGES}")
        for stage, raw in params[section].items():
            parse(cls, raw, f"{section}.{stage}")
    for i, stage in enumerate(TRAIN_STAGES):
        plan = params["train"][stage]
        previous = "p0" if i == 0 else TRAIN_STAGES[i - 1]
        if plan["init"] != previous:
            raise ParamsError(
                f"params: 'train.{stage}.init' is {plan['init']!r}; "
                f"the recipe chains it from {previous!r}"
            )
        if plan["data"] not in params["mix"]:
            raise ParamsError(f"params: 'train.{stage}.data' names no mixture under 'mix'")
    shared = sorted(
        set(params["benchmarks"]["gsm8k"]["templates"]) & set(params["distill"]["templates"])
    )
    if shared:
        raise ParamsError(
            f"params: templates {shared} are in both 'distill.templates' and "
            "'benchmarks.gsm8k.templates'; the GSM8K stand-in must use held-out templates"
        )


def preset_path(name: str) -> Path:
    path = PRESETS_DIR / f"{name}.yaml"
    if not path.exists():
        available = sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))
        raise ParamsError(f"no preset {name!r}; available: {available}")
    return path
