"""Weights load from safetensors only, params load as plain YAML, remote code only when asked.

A `pytorch_model.bin` is a pickle: loading one can run code, and `torch.load(weights_only=True)`
has been bypassed before (CVE-2025-32434). Checkpoints, pretrained components and adapters are
therefore read as safetensors or refused with a message saying so.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, SiglipVisionModel

from finstage.config import parse
from finstage.evaluate.lm import FinstageLM
from finstage.model import assemble
from finstage.model.assemble import ModelConfig, build_p0
from finstage.model.plan import StageConfig, apply_plan, load_for_stage, merge_into_unquantised

from .conftest import ROOT, repo_params
from .test_assemble import local_hub, pretrained_cfg  # noqa: F401 (fixture)


def as_pickle(folder: Path, name: str = "model.safetensors", pickled: str = "pytorch_model.bin"):
    """The same weights, as the pickle file transformers (or PEFT) would also accept."""
    torch.save(load_file(folder / name), folder / pickled)
    os.remove(folder / name)


@pytest.fixture
def bin_only(tmp_path, tiny_p0) -> Path:
    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_p0, folder)
    as_pickle(folder)
    return folder


def stage_cfg(name: str) -> StageConfig:
    return parse(StageConfig, repo_params()["train"][name], f"train.{name}")


@pytest.mark.parametrize("name", ["p1_s1", "p2_s1"])  # unquantised and 4-bit loads
def test_a_stage_refuses_a_pickle_checkpoint(bin_only, name):
    with pytest.raises(ValueError, match=r"pytorch_model\.bin.*safetensors only"):
        load_for_stage(bin_only, stage_cfg(name))


def test_the_handoff_refuses_a_pickle_base_or_adapter(tmp_path, tiny_p0, bin_only):
    cfg = stage_cfg("p3_s1")
    adapter = tmp_path / "adapter"
    apply_plan(load_for_stage(tiny_p0, cfg), cfg).save_pretrained(adapter)
    with pytest.raises(ValueError, match=r"pytorch_model\.bin.*safetensors only"):
        merge_into_unquantised(bin_only, adapter)
    merge_into_unquantised(tiny_p0, adapter)  # the safetensors adapter merges
    as_pickle(adapter, "adapter_model.safetensors", "adapter_model.bin")
    with pytest.raises(ValueError, match=r"adapter_model\.bin.*safetensors only"):
        merge_into_unquantised(tiny_p0, adapter)


def test_evaluation_refuses_a_pickle_checkpoint(bin_only):
    with pytest.raises(OSError, match=r"model\.safetensors"):
        FinstageLM.from_checkpoint(bin_only, 1, 64, True, "cpu")


def test_p0_refuses_pickle_pretrained_components(tmp_path, local_hub):  # noqa: F811
    root = tmp_path / "hub"
    shutil.copytree(local_hub[0], root)
    cfg = pretrained_cfg(root)
    as_pickle(root / "vision")
    tokenizer = assemble.load_tokenizer(cfg.tokenizer, False)
    with pytest.raises(ValueError, match=r"vision.*pytorch_model\.bin.*safetensors only"):
        build_p0(cfg, tokenizer)
    shutil.rmtree(root / "vision")
    shutil.copytree(local_hub[0] / "vision", root / "vision")
    as_pickle(root / "llm")
    with pytest.raises(ValueError, match=r"llm.*pytorch_model\.bin.*safetensors only"):
        build_p0(cfg, tokenizer)


class Loaded(Exception):
    pass


def test_pretrained_loads_ask_for_safetensors_and_no_remote_code(monkeypatch):
    """Hub ids (not local folders) too: the flags go to transformers, which enforces them."""
    calls: dict[str, dict] = {}

    def recorder(name):
        def from_pretrained(*args, **kwargs):
            calls[name] = kwargs
            raise Loaded(name)

        return from_pretrained

    monkeypatch.setattr(SiglipVisionModel, "from_pretrained", recorder("vision"))
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", recorder("llm"))
    raw = repo_params()["model"]
    raw["vision"] = {"pretrained": "org/vision", "revision": "a" * 40, "config": {}}
    raw["llm"] = {"pretrained": "org/llm", "revision": "b" * 40, "config": {}}
    cfg = parse(ModelConfig, raw, "model")
    assert cfg.trust_remote_code is False  # the embedded default
    with pytest.raises(Loaded):
        assemble._vision_tower(cfg, torch.float32)
    with pytest.raises(Loaded):
        assemble.language_model(cfg, None, torch.float32)
    for name in ("vision", "llm"):
        assert calls[name]["use_safetensors"] is True, name
        assert calls[name]["trust_remote_code"] is False, name


SCANNED = sorted([*(ROOT / "src").rglob("*.py"), *(ROOT / "stages").glob("*.py")])
FORBIDDEN = {
    r"\byaml\.(unsafe_)?load\(": "yaml.safe_load (PyYAML's load builds Python objects)",
    r"\bUnsafeLoader\b|\bFullLoader\b|typ=.unsafe.": "yaml.safe_load",
    r"\bimport (c?pickle|dill|marshal|shelve)\b|\b(c?pickle|dill|marshal)\.loads?\(": "safetensors",
    r"\btorch\.load\(|\bjoblib\.load\(": "safetensors.torch.load_file",
    r"(?<![\w.])(eval|exec)\(": "plain code",
    r"weights_only\s*=\s*False|use_safetensors\s*=\s*False": "safetensors",
    r"trust_remote_code\s*=\s*True": "model.trust_remote_code",
}


@pytest.mark.parametrize("pattern", FORBIDDEN)
def test_no_unsafe_loader_in_the_code(pattern):
    hits = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in SCANNED
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(pattern, line)
    ]
    assert not hits, f"use {FORBIDDEN[pattern]} instead:\n" + "\n".join(hits)


NOT_MODELS = re.compile(r"Tokenizer|Config|Processor|config_class|PeftModel")


def test_every_model_load_asks_for_safetensors():
    """PEFT takes no such flag; `merge_into_unquantised` checks the adapter file itself."""
    missing = []
    for path in SCANNED:
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "from_pretrained"
                and not NOT_MODELS.search(ast.unparse(node.func.value))
            ):
                continue
            flags = {k.arg: ast.unparse(k.value) for k in node.keywords}
            if flags.get("use_safetensors") != "True":
                missing.append(f"{rel}:{node.lineno}: {ast.unparse(node)[:80]}")
    assert not missing, "model loads without use_safetensors=True:\n" + "\n".join(missing)


def test_trust_remote_code_comes_only_from_its_param():
    for path in SCANNED:
        for node in ast.walk(ast.parse(path.read_text())):
            for kw in getattr(node, "keywords", []):
                if kw.arg == "trust_remote_code":
                    value = ast.unparse(kw.value)
                    assert value in ("cfg.trust_remote_code", "trust_remote_code"), (
                        f"{path.relative_to(ROOT)}:{node.lineno}: trust_remote_code={value}"
                    )
