"""Our chat template: string content keeps its bytes, typed content renders the same way.

Existing checkpoints were trained on the string rendering, so any change to it would silently
shift every prompt; stock transformers callers send the typed form, which must land on the same
bytes (and so the same token ids) as the string-with-marker form our records use.
"""

from __future__ import annotations

import re
from fractions import Fraction

import pytest
from jinja2 import TemplateError

from finstage.model.tokenizer import TRACE_TAGS, train_tokenizer
from finstage.records import IMAGE_MARKER
from finstage.traces import format_trace
from finstage.wordproblems import Problem

from .conftest import TEXTS

# The template as it was before typed content and generation markers, verbatim.
PREVIOUS_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

CONVERSATIONS = [
    [
        {"role": "user", "content": "<image>このページの文字を書き起こしてください。"},
        {"role": "assistant", "content": "歳出合計 1,234,567"},
    ],
    [
        {"role": "system", "content": " 財務の専門家です。\n"},
        {"role": "user", "content": "<image>歳出合計は? {{ not a tag }} {% raw %}"},
        {"role": "assistant", "content": "1,234,567\n\n "},
        {"role": "user", "content": "根拠は?"},
        {"role": "assistant", "content": "<Problem>x</Problem>\n<Answer>\\boxed{3}</Answer>"},
    ],
    [{"role": "user", "content": "前年度比は?"}],
]


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(TEXTS * 10, 400)


@pytest.mark.parametrize("generation_prompt", [True, False])
@pytest.mark.parametrize("index", range(len(CONVERSATIONS)))
def test_string_content_renders_as_before(tok, index: int, generation_prompt: bool):
    messages = CONVERSATIONS[index]
    now = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    before = tok.apply_chat_template(
        messages,
        tokenize=False,
        add_generation_prompt=generation_prompt,
        chat_template=PREVIOUS_TEMPLATE,
    )
    assert now == before


def typed(messages: list[dict]) -> list[dict]:
    """The standard typed form of string messages: each marker becomes an image part."""
    out = []
    for m in messages:
        parts: list[dict] = []
        for i, piece in enumerate(m["content"].split(IMAGE_MARKER)):
            if i:
                parts.append({"type": "image"})
            if piece:
                parts.append({"type": "text", "text": piece})
        out.append({"role": m["role"], "content": parts})
    return out


@pytest.mark.parametrize("index", range(len(CONVERSATIONS)))
def test_typed_content_renders_like_the_marker_string(tok, index: int):
    messages = CONVERSATIONS[index]
    as_string = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    as_typed = tok.apply_chat_template(typed(messages), tokenize=False, add_generation_prompt=True)
    assert as_typed == as_string
    assert tok.apply_chat_template(typed(messages)) == tok.apply_chat_template(messages)


def test_image_and_text_parts_keep_their_order(tok):
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "前"},
                {"type": "image"},
                {"type": "text", "text": "後"},
                {"type": "image"},
            ],
        }
    ]
    rendered = tok.apply_chat_template(messages, tokenize=False)
    assert rendered == f"<|user|>前{IMAGE_MARKER}後{IMAGE_MARKER}<|end|>"


def test_unknown_part_type_is_an_error_not_silently_dropped(tok):
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "x"}]}]
    with pytest.raises(TemplateError, match="video"):
        tok.apply_chat_template(messages, tokenize=False)


def test_numbers_are_split_into_single_digits():
    """Even numbers frequent enough for BPE to merge stay one token per digit."""
    text = "歳出合計 1,286,243百万円 2.5%増"
    tok = train_tokenizer(TEXTS * 10 + [text] * 200, 400)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    pieces = [tok.decode([i]) for i in ids]
    digits = [p.strip() for p in pieces if any(c.isdigit() for c in p)]
    assert digits == list("128624325"), pieces
    assert tok.decode(ids) == text


def test_each_trace_tag_is_one_plain_token():
    """The trace's tags are whole tokens (not special: a page may print them and they decode as
    text), and they are exactly the tags `format_trace` writes."""
    tok = train_tokenizer(TEXTS * 10, 400)
    problem = Problem("p", "sum", "1と2の和は?", "1と2の和", (), (), "円")
    trace = format_trace(problem, ["1 + 2 = 3"], Fraction(3))
    assert sorted(set(re.findall(r"</?[A-Z][a-z]+>", trace))) == sorted(TRACE_TAGS)
    ids = tok(trace, add_special_tokens=False)["input_ids"]
    pieces = tok.convert_ids_to_tokens(ids)
    assert [p for p in pieces if p in TRACE_TAGS] == [
        "<Problem>", "</Problem>", "<Thinking>", "</Thinking>", "<Answer>", "</Answer>"
    ]  # fmt: skip
    assert tok.decode(ids) == trace
    assert not set(tok.convert_tokens_to_ids(list(TRACE_TAGS))) & set(tok.all_special_ids)
