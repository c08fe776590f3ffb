"""Labels cover assistant content only; images expand to one placeholder per patch."""

from __future__ import annotations

import pytest

from finstage.chat import IGNORE, ChatEncoder, pad_batch
from finstage.model.tokenizer import train_tokenizer

from .conftest import TEXTS


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(TEXTS * 10, 400)


def encoder(tok, max_len=200):
    return ChatEncoder(tok, tok.convert_tokens_to_ids("<image>"), 5, max_len)


CHAT = [
    {"role": "system", "content": "財務の専門家です。"},
    {"role": "user", "content": "<image>歳出合計は?"},
    {"role": "assistant", "content": "1,234,567"},
    {"role": "user", "content": "根拠は?"},
    {"role": "assistant", "content": "歳出合計 1,234,567"},
]


def test_only_assistant_turns_are_labelled(tok):
    enc = encoder(tok).encode(CHAT, ["page-a"])
    labelled = tok.decode(
        [t for t, lab in zip(enc.input_ids, enc.labels, strict=True) if lab != IGNORE]
    )
    assert labelled == "1,234,567<|end|>歳出合計 1,234,567<|end|>"
    assert enc.images == ["page-a"]


def test_image_marker_expands_and_is_masked(tok):
    enc = encoder(tok).encode(CHAT, ["page-a"])
    image_id = tok.convert_tokens_to_ids("<image>")
    positions = [i for i, t in enumerate(enc.input_ids) if t == image_id]
    assert len(positions) == 5 and positions == list(range(positions[0], positions[0] + 5))
    assert all(enc.labels[i] == IGNORE for i in positions)


def test_truncation_never_cuts_an_image_run(tok):
    full = encoder(tok).encode(CHAT, ["page-a"])
    image_id = tok.convert_tokens_to_ids("<image>")
    first = full.input_ids.index(image_id)
    assert encoder(tok, max_len=first + 3).encode(CHAT, ["page-a"]) is None


def test_truncation_keeps_text_when_targets_survive(tok):
    full = encoder(tok).encode(CHAT, ["page-a"])
    cut = encoder(tok, max_len=len(full.input_ids) - 3).encode(CHAT, ["page-a"])
    assert cut is not None and cut.input_ids == full.input_ids[:-3]


def test_padding_is_masked(tok):
    enc = encoder(tok)
    a = enc.encode(CHAT, ["p"])
    b = enc.encode(CHAT[1:3], ["p"])
    batch = pad_batch([a, b], tok.pad_token_id)
    short = len(b.input_ids)
    assert batch["attention_mask"][1, short:].sum() == 0
    assert (batch["labels"][1, short:] == IGNORE).all()
    assert batch["input_ids"].shape == (2, len(a.input_ids))
