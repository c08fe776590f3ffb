"""A bfloat16 model trains float32 masters: small steps land, the checkpoint stays bfloat16."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, LlavaForConditionalGeneration

from finstage.chat import ChatEncoder
from finstage.config import parse
from finstage.model.assemble import build_p0
from finstage.model.plan import (
    StageConfig,
    _inputs_to_weight_dtype,
    _OutputsTo,
    apply_plan,
    checkpoint_dtype,
    compute_dtype,
    load_for_stage,
    param_groups,
    to_checkpoint_dtype,
)
from finstage.model.tokenizer import train_tokenizer
from finstage.pagestore import PageStore
from finstage.train.images import FeatureInputs, PixelInputs
from finstage.train.loop import train_loop
from finstage.train.stage import encode_records, run_stage

from .conftest import TEXTS, repo_params, tiny_model_config

SMALL_LR = 5e-6  # the paper's LoRA-stage LR: far below a bf16 weight's rounding step


@pytest.fixture(scope="module")
def bf16_p0(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("p0_bf16")
    tokenizer = train_tokenizer(TEXTS * 20, 400)
    build_p0(dataclasses.replace(tiny_model_config(), dtype="bfloat16"), tokenizer).save_pretrained(
        out
    )
    tokenizer.save_pretrained(out)
    return out


def plan(name: str, lr: float | None = None, **overrides) -> StageConfig:
    raw = {**repo_params()["train"][name], "max_seq_len": 96, **overrides}
    if lr is not None:  # every trained group at `lr`, frozen ones stay at 0
        raw["lr"] = {g: 0.0 if mode == "frozen" else lr for g, mode in raw["modules"].items()}
    return parse(StageConfig, raw, f"train.{name}")


def image_batch(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    config = model.config
    ids = torch.tensor([[1] + [config.image_token_id] * config.image_seq_length + [*range(10, 40)]])
    pixels = torch.linspace(-1, 1, 3 * 32 * 32).reshape(1, 3, 32, 32)
    return {"input_ids": ids, "pixel_values": pixels.to(compute_dtype(model)), "labels": ids}


def boundary_casts(model: torch.nn.Module) -> list[object]:
    """The forward hooks `keep_fp32_masters` registered, on any module."""
    hooks = [
        hook
        for module in model.modules()
        for hook in [*module._forward_pre_hooks.values(), *module._forward_hooks.values()]
    ]
    return [h for h in hooks if isinstance(h, _OutputsTo) or h is _inputs_to_weight_dtype]


def one_step(model: torch.nn.Module, cfg: StageConfig) -> dict[str, tuple[int, int]]:
    """Per trained tensor: (weights one AdamW step changed, weights with a non-zero gradient)."""
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    before = {n: p.detach().float().clone() for n, p in params.items()}
    optimizer = torch.optim.AdamW(param_groups(model, cfg))
    torch.manual_seed(0)
    model.train()
    model(**image_batch(model)).loss.backward()
    # no gradient at all: the vision layers after the selected one (-2) feed nothing
    moved = {
        n: torch.zeros_like(p, dtype=torch.bool) if p.grad is None else p.grad != 0
        for n, p in params.items()
    }
    optimizer.step()
    return {
        n: (int(((p.detach().float() != before[n]) & moved[n]).sum()), int(moved[n].sum()))
        for n, p in params.items()
    }


@pytest.mark.parametrize("stage", ["p1_s1", "p3_s2"])  # projector alone; LoRA + projector
def test_trained_weights_are_fp32_masters_and_the_rest_stays_bf16(bf16_p0, stage):
    cfg = plan(stage)
    model = apply_plan(load_for_stage(bf16_p0, cfg), cfg)
    dtypes = {(p.requires_grad, p.dtype) for p in model.parameters() if p.is_floating_point()}
    assert dtypes == {(True, torch.float32), (False, torch.bfloat16)}
    assert boundary_casts(model)
    assert compute_dtype(model) == checkpoint_dtype(model) == torch.bfloat16


@pytest.mark.parametrize("stage", ["p1_s1", "p3_s2"])
def test_one_small_step_moves_every_trained_weight(bf16_p0, stage):
    cfg = plan(stage, lr=SMALL_LR)
    torch.manual_seed(0)
    counts = one_step(apply_plan(load_for_stage(bf16_p0, cfg), cfg), cfg)
    projector = [n for n in counts if "multi_modal_projector" in n]
    assert projector and all(counts[n][1] > 0 for n in projector)
    assert all(changed == moved for changed, moved in counts.values())
    assert sum(moved for _, moved in counts.values()) > 0


def test_the_same_step_on_bf16_weights_mostly_rounds_away(bf16_p0):
    """The contrast: projector weights kept in bf16, as before masters, barely move at 5e-6."""
    cfg = plan("p1_s1", lr=SMALL_LR)
    model = to_checkpoint_dtype(apply_plan(load_for_stage(bf16_p0, cfg), cfg))
    assert {p.dtype for p in model.parameters() if p.requires_grad} == {torch.bfloat16}
    counts = one_step(model, cfg).values()
    changed, moved = sum(c for c, _ in counts), sum(m for _, m in counts)
    assert moved > 0 and changed / moved < 0.5


def test_a_bf16_model_built_in_memory_trains_every_module_and_goes_back_to_bf16():
    """All three towers full: every kind of layer gets the casts; nothing frozen names the dtype."""
    tokenizer = train_tokenizer(TEXTS * 20, 400)
    model = build_p0(dataclasses.replace(tiny_model_config(), dtype="bfloat16"), tokenizer)
    cfg = plan("p1_s1", lr=SMALL_LR, modules={"llm": "full", "vision": "full", "projector": "full"})
    model = apply_plan(model, cfg)
    assert {p.dtype for p in model.parameters() if p.requires_grad} == {torch.float32}
    # the vision layers past `vision_feature_layer` stay frozen, in the checkpoint's dtype
    assert {p.dtype for p in model.parameters() if not p.requires_grad} == {torch.bfloat16}
    assert compute_dtype(model) == checkpoint_dtype(model) == torch.bfloat16
    counts = one_step(model, cfg)
    assert all(changed == moved for changed, moved in counts.values())
    assert {n.split(".")[1] for n, (_, moved) in counts.items() if moved} >= {
        "vision_tower",
        "multi_modal_projector",
        "language_model",
    }
    to_checkpoint_dtype(model)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    with torch.no_grad():
        assert torch.isfinite(model(**image_batch(model)).logits).all()


def test_the_loop_refuses_half_precision_trained_weights(bf16_p0, tiny_mixes):
    cfg = plan("p1_s1", epochs=1, batch_size=4)
    model = to_checkpoint_dtype(apply_plan(load_for_stage(bf16_p0, cfg), cfg))
    tok = AutoTokenizer.from_pretrained(bf16_p0)
    encoder = ChatEncoder(tok, model.config.image_token_id, model.config.image_seq_length, 96)
    examples, _ = encode_records(tiny_mixes["text"], encoder)
    with pytest.raises(ValueError, match="half precision.*multi_modal_projector"):
        train_loop(model, examples, lambda batch, _pages: batch, cfg, tok.pad_token_id)


def test_a_float32_model_gets_no_casts(tiny_p0):
    """The embedded default computes in float32: the plan must leave it exactly as it was."""
    cfg = plan("p3_s2", grad_checkpointing=True)
    model = apply_plan(load_for_stage(tiny_p0, cfg), cfg)
    assert {p.dtype for p in model.parameters() if p.is_floating_point()} == {torch.float32}
    assert not boundary_casts(model)


def test_bf16_full_module_stage_trains_and_saves_a_bf16_checkpoint(
    bf16_p0, tiny_pages, tiny_mixes, tmp_path
):
    """p1_s1 through the real loop on cached features (the projector runs outside forward)."""
    cfg = plan("p1_s1", epochs=1, batch_size=4)
    model = apply_plan(load_for_stage(bf16_p0, cfg), cfg)
    tok = AutoTokenizer.from_pretrained(bf16_p0)
    config = model.config
    encoder = ChatEncoder(tok, config.image_token_id, config.image_seq_length, cfg.max_seq_len)
    examples, _ = encode_records(tiny_mixes["visual"], encoder)
    pixels = PixelInputs(PageStore(tiny_pages), 32, compute_dtype(model))
    inputs = FeatureInputs(model, pixels, tmp_path / "features")
    before = model.model.multi_modal_projector.linear_1.weight.detach().clone()
    result = train_loop(model, examples, inputs, cfg, tok.pad_token_id)
    assert result.steps == 2 and all(math.isfinite(loss) for loss in result.losses)
    after = model.model.multi_modal_projector.linear_1.weight
    assert after.dtype == torch.float32 and not torch.equal(after, before)
    to_checkpoint_dtype(model).save_pretrained(tmp_path / "out")
    tensors = load_file(tmp_path / "out" / "model.safetensors")
    assert {t.dtype for t in tensors.values()} == {torch.bfloat16}
    reloaded = LlavaForConditionalGeneration.from_pretrained(tmp_path / "out").eval()
    batch = image_batch(model)
    with torch.no_grad():
        torch.testing.assert_close(
            reloaded(**batch).logits, model.eval()(**batch).logits, rtol=0, atol=0
        )


class Interrupt(Exception):
    pass


def test_bf16_adapter_stage_merges_to_bf16_and_resumes_exactly(
    bf16_p0, tiny_pages, tiny_mixes, tmp_path, capsys
):
    """p3_s2 end to end in bf16: finite losses, a bf16 merged checkpoint, an exact resume."""
    cfg = plan("p3_s2", epochs=2, batch_size=2, save_every=2)

    def run(out: str, kill_at: int = 0) -> dict:
        def log(step: int, _metrics: dict) -> None:
            if step == kill_at:
                raise Interrupt

        mix = tiny_mixes["visual"]
        return run_stage(
            "p3_s2", cfg, bf16_p0, mix, tiny_pages, tmp_path / out, log, tmp_path / f"r_{out}"
        )

    full = run("full")
    assert all(math.isfinite(loss) for loss in full["training"]["losses"])
    assert math.isfinite(full["handoff"]["mean_abs_logit_diff"])
    tensors = load_file(tmp_path / "full" / "model.safetensors")
    assert {t.dtype for t in tensors.values()} == {torch.bfloat16}
    assert json.loads((tmp_path / "full" / "config.json").read_text())["dtype"] == "bfloat16"
    with pytest.raises(Interrupt):
        run("cut", kill_at=5)
    snapshot = load_file(tmp_path / "r_cut" / "trainable.safetensors")
    assert {t.dtype for t in snapshot.values()} == {torch.float32}  # the masters, not bf16
    capsys.readouterr()
    resumed = run("cut")
    assert "resuming p3_s2 from step 4\n" in capsys.readouterr().out
    assert resumed["training"]["losses"] == full["training"]["losses"]
    cut = load_file(tmp_path / "cut" / "model.safetensors")
    assert all(torch.equal(tensors[k], cut[k]) for k in tensors)
