"""The loop's loss projects only labelled positions, yet equals HF's loss and gradients."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer, LlavaForConditionalGeneration

from finstage.chat import IGNORE, ChatEncoder, pad_batch
from finstage.config import parse
from finstage.model.plan import StageConfig, apply_plan
from finstage.pagestore import PageStore
from finstage.train.images import PixelInputs
from finstage.train.loop import target_loss
from finstage.train.stage import encode_records

from .conftest import repo_params


def stage_batch(stage: str, tiny_p0, tiny_pages, tiny_mixes):
    raw = {**repo_params()["train"][stage], "max_seq_len": 96}
    model = LlavaForConditionalGeneration.from_pretrained(tiny_p0)
    model = apply_plan(model, parse(StageConfig, raw, f"train.{stage}"))
    tok = AutoTokenizer.from_pretrained(tiny_p0)
    cfg = LlavaForConditionalGeneration.config_class.from_pretrained(tiny_p0)
    encoder = ChatEncoder(tok, cfg.image_token_id, cfg.image_seq_length, 96)
    examples, _ = encode_records(tiny_mixes["visual"], encoder)
    examples = examples[:3]
    pixels = PixelInputs(PageStore(tiny_pages), cfg.vision_config.image_size, torch.float32)
    batch = pixels(pad_batch(examples, tok.pad_token_id), [p for e in examples for p in e.images])
    return model, batch


def loss_and_grads(model, loss_fn) -> tuple[float, dict[str, torch.Tensor]]:
    model.zero_grad()
    torch.manual_seed(0)  # the same LoRA dropout masks for both losses
    loss = loss_fn()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return loss.item(), grads


@pytest.mark.parametrize("stage", ["p1_s1", "p3_s2"])  # frozen LLM; LoRA under PEFT
def test_target_loss_equals_hf_loss_and_gradients(stage, tiny_p0, tiny_pages, tiny_mixes):
    model, batch = stage_batch(stage, tiny_p0, tiny_pages, tiny_mixes)
    hf_loss, hf_grads = loss_and_grads(model, lambda: model(**batch).loss)
    ours, our_grads = loss_and_grads(model, lambda: target_loss(model, batch))
    assert ours == pytest.approx(hf_loss, abs=1e-5)
    assert set(our_grads) == set(hf_grads) and our_grads
    for name, grad in our_grads.items():
        torch.testing.assert_close(grad, hf_grads[name], atol=1e-6, rtol=1e-4)


def test_lm_head_sees_only_positions_with_a_target(tiny_p0, tiny_pages, tiny_mixes):
    model, batch = stage_batch("p1_s1", tiny_p0, tiny_pages, tiny_mixes)
    rows: list[int] = []
    hook = model.lm_head.register_forward_hook(
        lambda _m, args, _out: rows.append(args[0].reshape(-1, args[0].shape[-1]).shape[0])
    )
    target_loss(model, batch)
    hook.remove()
    targets = int((batch["labels"][:, 1:] != IGNORE).sum())
    positions = batch["labels"].numel()
    assert rows == [targets]
    assert targets < positions / 2  # page placeholders and prompts carry no target
