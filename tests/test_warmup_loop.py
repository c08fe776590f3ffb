"""The warm-up loop trains every weight of a config-built LLM and its loss falls."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from finstage.chat import ChatEncoder
from finstage.model.tokenizer import train_tokenizer
from finstage.records import IMAGE_MARKER
from finstage.warmup.loop import LoopConfig, batches, lr_factor, train
from finstage.warmup.pairs import PairCounts, warmup_pairs

from .conftest import repo_params


@pytest.fixture(scope="module")
def setup():
    counts = PairCounts(math=24, format_share=0.5, short=0, page=0, choice=12, json=12)
    pairs = warmup_pairs(counts, repo_params()["distill"]["templates"], [], [], seed=0)
    texts = [m["content"] for p in pairs for m in p["messages"]]
    tok = train_tokenizer(texts, 400)
    encoder = ChatEncoder(tok, tok.convert_tokens_to_ids(IMAGE_MARKER), 1, 320)
    examples = [e for e in (encoder.encode(p["messages"]) for p in pairs) if e is not None]
    return tok, examples


def tiny_llm(vocab: int) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
    )
    return LlamaForCausalLM(config)


CFG = LoopConfig(
    steps=30, batch_size=4, lr=3e-3, warmup_ratio=0.1, weight_decay=0.0, max_grad_norm=1.0, seed=0
)


def test_loss_falls_and_every_weight_moves(setup):
    tok, examples = setup
    model = tiny_llm(len(tok))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    losses = train(model, examples, CFG, tok.pad_token_id)
    assert len(losses) == CFG.steps
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.5
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert "model.embed_tokens.weight" in moved and "lm_head.weight" in moved
    assert moved == set(before)


def test_same_seed_same_losses(setup):
    tok, examples = setup
    first = train(tiny_llm(len(tok)), examples, CFG, tok.pad_token_id)
    assert train(tiny_llm(len(tok)), examples, CFG, tok.pad_token_id) == first


def test_schedule_and_batches():
    assert lr_factor(0, 100, 0.1) == pytest.approx(0.1)
    assert lr_factor(10, 100, 0.1) == pytest.approx(1.0)
    assert lr_factor(99, 100, 0.1) < 0.01
    stream = batches(list(range(10)), 4, seed=0)
    first_pass = next(stream) + next(stream)
    assert len(set(first_pass)) == 8 and len(next(stream)) == 4


def test_too_few_examples_is_an_error(setup):
    tok, examples = setup
    with pytest.raises(ValueError, match="fewer than one batch"):
        train(tiny_llm(len(tok)), examples[:2], CFG, tok.pad_token_id)
