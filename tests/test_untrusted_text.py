"""Message text never becomes special tokens, with our tokenizer and harmony's.

A page, a teacher or a benchmark item may spell `<|end|><|assistant|>`; encoded as special
tokens that text would forge a turn boundary in training data or in an evaluation prompt. Only
the template's own markup and the structural `<image>` markers of a record's user turn may be
special; text that spells neither encodes exactly as before.
"""

from __future__ import annotations

import pytest
from transformers import PreTrainedTokenizerBase

from finstage.chat import IGNORE
from finstage.records import IMAGE_MARKER

from .untrusted import INJECTION, encoder, scrub_messages, special_ids, tokenizers

TOKENIZERS = tokenizers()

CONVERSATION = [
    {"role": "system", "content": f"あなたは財務分析の専門家です。{INJECTION}"},
    {"role": "user", "content": f"{IMAGE_MARKER}\n表中の「{INJECTION}歳出合計」の値は？"},
    {"role": "assistant", "content": f"1,234,567{INJECTION}"},
    {"role": "user", "content": f"根拠となる記述を抜き出してください。{INJECTION}"},
    {"role": "assistant", "content": f"歳出合計{INJECTION} 1,234,567 1,200,000"},
]


@pytest.fixture(params=sorted(TOKENIZERS))
def tok(request) -> PreTrainedTokenizerBase:
    return TOKENIZERS[request.param]


def labelled(ids: list[int], labels: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for k, (tid, lab) in enumerate(zip(ids, labels, strict=True)):
        if lab != IGNORE:
            if k == 0 or labels[k - 1] == IGNORE:
                runs.append([])
            runs[-1].append(tid)
    return runs


def test_message_text_spelling_special_tokens_stays_text(tok):
    enc = encoder(tok).encode(CONVERSATION, ["page"])
    clean = encoder(tok).encode(scrub_messages(CONVERSATION), ["page"])
    assert special_ids(tok, enc.input_ids) == special_ids(tok, clean.input_ids)
    image_id = tok.convert_tokens_to_ids(IMAGE_MARKER)
    assert enc.input_ids.count(image_id) == 4  # one structural marker, expanded
    # the forged text is part of what the model writes, and each turn still ends where it did
    runs, clean_runs = labelled(enc.input_ids, enc.labels), labelled(clean.input_ids, clean.labels)
    assert len(runs) == len(clean_runs) == 2
    for run, clean_run in zip(runs, clean_runs, strict=True):
        assert len(run) > len(clean_run) and run[-1] == clean_run[-1]
        assert special_ids(tok, run) == special_ids(tok, clean_run)


def test_forged_text_keeps_training_ids_equal_to_evaluation_ids(tok):
    for last in (2, 4):
        messages = CONVERSATION[: last + 1]
        enc = encoder(tok).encode(messages, ["page"])
        prompt = encoder(tok).encode_prompt(messages[:last])
        clean_prompt = encoder(tok).encode_prompt(scrub_messages(messages[:last]))
        if last == 2 or "<|channel|>" not in tok.chat_template:  # harmony rewrites history
            assert enc.input_ids[: len(prompt)] == prompt
        assert special_ids(tok, prompt) == special_ids(tok, clean_prompt)


def test_a_template_that_rewrites_forged_text_drops_the_record(tok):
    """Where the template changes message text, its markup cannot be told from the message's:
    a record spelling a special token is dropped (None) and its prompt is a clear error, while
    a record spelling none still encodes."""
    template = tok.chat_template
    rewriting = template.replace("{{ content }}", "{{ content | trim }}")
    rewriting = rewriting.replace("['content'] }}", "['content'] | trim }}")
    assert rewriting != template
    messages = [
        {"role": "user", "content": f"{IMAGE_MARKER}\n表の値は？{INJECTION} "},
        {"role": "assistant", "content": "1,234"},
    ]
    tok.chat_template = rewriting
    try:
        assert encoder(tok).encode(messages, ["page"]) is None
        with pytest.raises(ValueError, match="rewrites message text"):
            encoder(tok).encode_prompt(messages[:1])
        assert encoder(tok).encode(scrub_messages(messages), ["page"]) is not None
    finally:
        tok.chat_template = template
