"""A training stage hands the next one a merged, unquantised checkpoint equal to base + adapter."""

from __future__ import annotations

import json

import peft
import pytest
import torch
import transformers
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoTokenizer, LlavaForConditionalGeneration

from finstage.config import parse
from finstage.model.plan import StageConfig
from finstage.model.tokenizer import save_tokenizer
from finstage.train.stage import run_stage

from .conftest import repo_params

MERGE_ATOL = 1e-5  # fp32 merge: W + (alpha/r)·BA folded into W vs applied on the fly


def small(name: str, **overrides) -> StageConfig:
    raw = {
        **repo_params()["train"][name],
        "epochs": 2,
        "batch_size": 4,
        "max_seq_len": 96,
        **overrides,
    }
    return parse(StageConfig, raw, f"train.{name}")


def probe(model, image_token_id: int, seq: int):
    ids = torch.tensor([[1] + [image_token_id] * seq + [10, 11, 12, 13]])
    with torch.no_grad():
        return model(
            input_ids=ids, pixel_values=torch.linspace(-1, 1, 3 * 32 * 32).reshape(1, 3, 32, 32)
        ).logits


@pytest.mark.parametrize("name, mix", [("p1_s2", "visual"), ("p2_s1", "text"), ("p3_s2", "visual")])
def test_merged_checkpoint_equals_base_plus_adapter(
    tmp_path, tiny_p0, tiny_pages, tiny_mixes, name, mix
):
    cfg = small(name)
    out = tmp_path / name
    card = run_stage(name, cfg, tiny_p0, tiny_mixes[mix], tiny_pages, out)
    merged = LlavaForConditionalGeneration.from_pretrained(out).eval()
    base = LlavaForConditionalGeneration.from_pretrained(tiny_p0)
    with_adapter = PeftModel.from_pretrained(base, out / "adapter").eval()
    cfg_model = merged.config
    a = probe(merged, cfg_model.image_token_id, cfg_model.image_seq_length)
    b = probe(with_adapter, cfg_model.image_token_id, cfg_model.image_seq_length)
    assert torch.allclose(a, b, atol=MERGE_ATOL), (a - b).abs().max()
    # the stage really changed the model: merged differs from its base
    c = probe(
        LlavaForConditionalGeneration.from_pretrained(tiny_p0).eval(),
        cfg_model.image_token_id,
        cfg_model.image_seq_length,
    )
    assert (a - c).abs().max() > 1e-4
    # merged weights are plain floating-point tensors (never 4-bit)
    weights = load_file(out / "model.safetensors")
    assert all(t.is_floating_point() for t in weights.values())
    assert card["lineage"] == [name] and card["data"]["examples"] == 8
    gap = card["handoff"]
    assert gap["probe_examples"] == 8
    if name == "p2_s1":  # trained on 4-bit weights, handed off unquantised: a real, nonzero gap
        assert gap["mean_abs_logit_diff"] > 1e-4
    else:  # unquantised LoRA: the merge is exact up to float rounding
        assert gap["mean_abs_logit_diff"] < MERGE_ATOL
        assert gap["probe_loss_trained"] == pytest.approx(gap["probe_loss_handed_off"], abs=1e-5)


def test_projector_only_stage_leaves_llm_and_vision_bit_identical(
    tmp_path, tiny_p0, tiny_pages, tiny_mixes
):
    out = tmp_path / "p1_s1"
    card = run_stage("p1_s1", small("p1_s1"), tiny_p0, tiny_mixes["visual"], tiny_pages, out)
    before = load_file(tiny_p0 / "model.safetensors")
    after = load_file(out / "model.safetensors")
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all("multi_modal_projector" in k for k in changed)
    assert not (out / "adapter").exists()
    assert card["parameters"]["llm"]["trainable"] == 0
    assert card["parameters"]["projector"]["trainable"] == card["parameters"]["projector"]["total"]


def test_loss_falls_and_card_records_the_run(tmp_path, tiny_p0, tiny_pages, tiny_mixes):
    cfg = small("p3_s1", epochs=6, lr={"llm": 0.01, "vision": 0.0, "projector": 0.0})
    out = tmp_path / "p3_s1"
    card = run_stage("p3_s1", cfg, tiny_p0, tiny_mixes["text"], tiny_pages, out)
    losses = card["training"]["losses"]
    assert len(losses) == 12
    assert sum(losses[-3:]) / 3 < 0.95 * sum(losses[:3]) / 3
    saved = json.loads((out / "card.json").read_text())
    assert saved["params"]["lora"]["r"] == 16 and saved["data"]["sha256"]
    assert saved["versions"]["torch"] == torch.__version__
    assert saved["versions"]["transformers"] == transformers.__version__
    assert saved["versions"]["peft"] == peft.__version__


def test_same_seed_same_weights(tmp_path, tiny_p0, tiny_pages, tiny_mixes):
    cfg = small("p3_s1", epochs=1)
    for run in ("a", "b"):
        run_stage("p3_s1", cfg, tiny_p0, tiny_mixes["text"], tiny_pages, tmp_path / run)
    a = load_file(tmp_path / "a" / "model.safetensors")
    b = load_file(tmp_path / "b" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_saved_tokenizer_does_not_depend_on_how_it_was_loaded(tmp_path, tiny_p0):
    """Offline CI and an online laptop must write the same checkpoint bytes."""
    for offline in (True, False):
        tokenizer = AutoTokenizer.from_pretrained(tiny_p0, local_files_only=offline)
        save_tokenizer(tokenizer, tmp_path / str(offline))
    saved = [(tmp_path / str(o) / "tokenizer_config.json").read_text() for o in (True, False)]
    assert saved[0] == saved[1] and "local_files_only" not in saved[0]
