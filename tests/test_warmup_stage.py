"""The warmup stage: a practised LLM that `base` takes over, or a skip for a pretrained one."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from finstage.model.base import build_base
from finstage.records import read_records
from finstage.warmup.config import WarmupConfig
from finstage.warmup.pairs import PairCounts
from finstage.warmup.stage import run_warmup

from .conftest import TEXTS, tiny_model_config

CFG = WarmupConfig(
    pairs=PairCounts(math=12, format_share=0.5, short=0, page=0, choice=6, json=6),
    steps=3,
    batch_size=4,
    lr=3e-3,
    warmup_ratio=0.0,
    weight_decay=0.0,
    max_grad_norm=1.0,
    max_seq_len=256,
    seed=0,
)


def warm(tmp_path: Path, model_cfg) -> dict:
    templates = ["shopping", "discount"]
    return run_warmup(
        model_cfg,
        CFG,
        templates,
        TEXTS * 20,
        [],
        [],
        tmp_path / "warmup",
        tmp_path / "data",
        tmp_path / "curves",
    )


def test_practises_then_base_loads_the_practised_llm(tmp_path: Path):
    cfg = tiny_model_config()
    card = warm(tmp_path, cfg)
    assert card["pairs"] == {"written": 24, "trained": 24, "too_long": 0}
    assert len(list(read_records(tmp_path / "data"))) == 24
    curve = (tmp_path / "curves/plots/metrics/loss.tsv").read_text().splitlines()
    assert curve[0] == "step\tloss" and len(curve) == 1 + CFG.steps
    practised = load_file(tmp_path / "warmup" / "model.safetensors")

    base_card = build_base(cfg, [], tmp_path / "warmup", tmp_path / "p0")
    assert base_card["llm_from"] == "warmup"
    p0 = load_file(tmp_path / "p0" / "model.safetensors")
    embed = next(k for k in p0 if k.endswith("embed_tokens.weight"))
    assert torch.equal(p0[embed], practised["model.embed_tokens.weight"])
    saved = json.loads((tmp_path / "p0" / "tokenizer.json").read_text())["model"]["vocab"]
    assert (
        saved == json.loads((tmp_path / "warmup" / "tokenizer.json").read_text())["model"]["vocab"]
    )


def test_a_pretrained_llm_skips_the_practice(tmp_path: Path):
    cfg = tiny_model_config()
    cfg = dataclasses.replace(cfg, llm=dataclasses.replace(cfg.llm, pretrained="org/instruct"))
    card = warm(tmp_path, cfg)
    assert card == {"stage": "warmup", "skipped": "model.llm.pretrained is org/instruct"}
    assert list((tmp_path / "warmup").iterdir()) == [tmp_path / "warmup" / "card.json"]
    assert list((tmp_path / "data").iterdir()) == []
    curve = (tmp_path / "curves/plots/metrics/loss.tsv").read_text()
    assert curve == "step\tloss\n"


def test_same_params_same_bytes(tmp_path: Path):
    """The random init is seeded: two runs save the same practised weights."""
    cfg = tiny_model_config()
    warm(tmp_path / "a", cfg)
    warm(tmp_path / "b", cfg)
    first = (tmp_path / "a" / "warmup" / "model.safetensors").read_bytes()
    assert (tmp_path / "b" / "warmup" / "model.safetensors").read_bytes() == first
