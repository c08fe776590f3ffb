"""Training ids equal evaluation ids, with our tokenizer and with a real instruct model's.

The stand-in (`tests/standin_llm.py`) has what broke training with llm-jp-4: a unigram
tokenizer that puts "▁" after special tokens, and a harmony template that closes earlier
assistant turns with `<|end|>` and the last with `<|return|>` and has no generation markers.
Records are shaped as the pipeline writes them (OCR, two-turn VQA, math CoT, text FinQA).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from finstage.chat import IGNORE, ChatEncoder
from finstage.model.tokenizer import ensure_special_tokens, train_tokenizer
from finstage.records import IMAGE_MARKER

from .conftest import TEXTS
from .standin_llm import build_standin
from .test_chat_template import PREVIOUS_TEMPLATE

IMAGE_RUN = 4

RECORDS: dict[str, tuple[list[dict], list[str]]] = {
    "ocr": (
        [
            {
                "role": "user",
                "content": f"{IMAGE_MARKER}\nこのページの文字を書き起こしてください。",
            },
            {"role": "assistant", "content": "令和6年度 一般会計予算 （単位：百万円）\n歳出合計"},
        ],
        ["page-a"],
    ),
    "vqa_two_turns": (
        [
            {"role": "user", "content": f"{IMAGE_MARKER}\n歳出合計はいくらですか。"},
            {"role": "assistant", "content": "1,234,567百万円"},
            {
                "role": "user",
                "content": "その答えの根拠となる箇所を、ページの記載どおりに抜き出してください。",
            },
            {"role": "assistant", "content": "歳出合計 1,234,567 1,200,000 △34,567"},
        ],
        ["page-b"],
    ),
    "math_cot": (
        [
            {"role": "user", "content": "1個120円のりんごを3個買うと、代金はいくらですか。"},
            {
                "role": "assistant",
                "content": "<Problem>りんご3個の代金</Problem>\n<Thinking>120×3=360\n"
                "よって、答えは360円です。</Thinking>\n<Answer>\\boxed{360}</Answer>",
            },
        ],
        [],
    ),
    "finqa_text": (
        [
            {
                "role": "user",
                "content": "次の表をもとに、質問に答えてください。\n歳出合計 1,234,567 1,200,000\n"
                "\n質問：前年度比の増減率は何%ですか。",
            },
            {"role": "assistant", "content": "(1,234,567−1,200,000)÷1,200,000=2.9%"},
        ],
        [],
    ),
    # The answer also appears inside the question: it must be labelled where the model says it.
    "answer_quoted_in_question": (
        [
            {"role": "system", "content": "You are a careful analyst."},
            {"role": "user", "content": "「1,234,567」を書き写してください。"},
            {"role": "assistant", "content": "1,234,567"},
        ],
        [],
    ),
}


def embedded() -> PreTrainedTokenizerBase:
    return train_tokenizer(TEXTS * 10, 400)


@pytest.fixture(scope="module")
def standin_dir(tmp_path_factory) -> Path:
    return build_standin(tmp_path_factory.mktemp("standin"))


@pytest.fixture(scope="module")
def standin(standin_dir) -> PreTrainedTokenizerBase:
    tok = AutoTokenizer.from_pretrained(standin_dir)
    ensure_special_tokens(tok)
    return tok


@pytest.fixture(scope="module", params=["embedded", "standin"])
def tok(request, standin) -> PreTrainedTokenizerBase:
    return embedded() if request.param == "embedded" else standin


def encoder(tok: PreTrainedTokenizerBase, max_len: int = 4000) -> ChatEncoder:
    return ChatEncoder(tok, tok.convert_tokens_to_ids(IMAGE_MARKER), IMAGE_RUN, max_len)


def expected_turns(tok: PreTrainedTokenizerBase, messages: list[dict]) -> list[str]:
    """What the model must write after each generation prompt, written out per template."""
    answers = [m["content"] for m in messages if m["role"] == "assistant"]
    if "<|channel|>" in tok.chat_template:  # harmony: the final turn alone ends in <|return|>
        ends = ["<|end|>"] * (len(answers) - 1) + ["<|return|>"]
        pairs = zip(answers, ends, strict=True)
        return [f"<|channel|>final<|message|>{a}{end}" for a, end in pairs]
    return [f"{a}<|end|>" for a in answers]


def labelled_runs(ids: list[int], labels: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    previous = IGNORE
    for tid, lab in zip(ids, labels, strict=True):
        if lab != IGNORE:
            assert lab == tid
            if previous == IGNORE:
                runs.append([])
            runs[-1].append(tid)
        previous = lab
    return runs


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_training_prompt_ids_equal_evaluation_ids(tok, name: str):
    messages, images = RECORDS[name]
    enc = encoder(tok).encode(messages, images)
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    prompt = encoder(tok).encode_prompt(messages[:last])
    assert enc.input_ids[: len(prompt)] == prompt
    # the generation prompt is context; what follows it is the model's to write
    assert enc.labels[len(prompt) - 1] == IGNORE and enc.labels[len(prompt)] != IGNORE


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_training_ids_are_the_whole_rendering_tokenised_once(tok, name: str):
    messages, images = RECORDS[name]
    enc = encoder(tok).encode(messages, images)
    whole = tok(tok.apply_chat_template(messages, tokenize=False), add_special_tokens=False)
    image_id = tok.convert_tokens_to_ids(IMAGE_MARKER)
    expanded = [
        t for tid in whole["input_ids"] for t in [tid] * (IMAGE_RUN if tid == image_id else 1)
    ]
    assert enc.input_ids == expanded


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_labels_cover_exactly_each_assistant_turn_and_its_closing_token(tok, name: str):
    messages, images = RECORDS[name]
    enc = encoder(tok).encode(messages, images)
    expected = [
        tok(text, add_special_tokens=False)["input_ids"] for text in expected_turns(tok, messages)
    ]
    assert labelled_runs(enc.input_ids, enc.labels) == expected


def test_two_turn_harmony_record_is_not_prefix_stable_yet_encodes(standin):
    """The template really renders history differently, and both answers are still trained."""
    messages, images = RECORDS["vqa_two_turns"]
    first = standin.apply_chat_template(messages[:2], tokenize=False)
    whole = standin.apply_chat_template(messages, tokenize=False)
    assert first.endswith("<|return|>") and not whole.startswith(first)
    enc = encoder(standin).encode(messages, images)
    runs = labelled_runs(enc.input_ids, enc.labels)
    assert len(runs) == 2
    assert standin.convert_ids_to_tokens(runs[0][-1]) == "<|end|>"
    assert standin.convert_ids_to_tokens(runs[1][-1]) == "<|return|>"


def test_offsets_path_labels_like_the_generation_markers():
    """Our template without its markers (the offsets path) gives the marked path's labels."""
    marked = embedded()
    plain = embedded()
    plain.chat_template = PREVIOUS_TEMPLATE
    assert encoder(plain).marked is False and encoder(marked).marked is True
    for messages, images in RECORDS.values():
        a, b = encoder(marked).encode(messages, images), encoder(plain).encode(messages, images)
        assert (a.input_ids, a.labels) == (b.input_ids, b.labels)


def test_a_template_that_rewrites_the_answer_is_a_clear_error():
    tok = embedded()
    tok.chat_template = PREVIOUS_TEMPLATE.replace("m['content']", "m['content'] | upper")
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "abc"}]
    with pytest.raises(ValueError, match="generation"):
        encoder(tok).encode(messages)


def test_pretrained_template_gets_only_the_image_marker(standin_dir):
    tok = AutoTokenizer.from_pretrained(standin_dir)
    template, size = tok.chat_template, len(tok)
    assert ensure_special_tokens(tok) == 1
    assert len(tok) == size + 1 and tok.chat_template == template
    assert "<|user|>" not in tok.get_vocab()
    assert tok.pad_token == tok.eos_token == "<|return|>"


def test_one_placeholder_run_per_image_despite_the_inserted_metaspace(standin):
    """The normaliser adds "▁" after `<image>`; that is text, never a placeholder."""
    image_id = standin.convert_tokens_to_ids(IMAGE_MARKER)
    text = f"{IMAGE_MARKER}\n左{IMAGE_MARKER}右 {IMAGE_MARKER}"
    raw = standin(text, add_special_tokens=False)["input_ids"]
    assert raw.count(image_id) == 3
    messages = [{"role": "user", "content": text}, {"role": "assistant", "content": "了解"}]
    enc = encoder(standin).encode(messages, ["a", "b", "c"])
    runs = "".join("i" if t == image_id else "." for t in enc.input_ids).split(".")
    assert sorted(len(r) for r in runs if r) == [IMAGE_RUN] * 3


def test_truncation_rules_hold_for_the_standin(standin):
    messages, images = RECORDS["vqa_two_turns"]
    full = encoder(standin).encode(messages, images)
    image_id = standin.convert_tokens_to_ids(IMAGE_MARKER)
    first = full.input_ids.index(image_id)
    assert encoder(standin, first + 2).encode(messages, images) is None  # would cut the image
    prompt_len = len(encoder(standin).encode_prompt(messages[:1]))
    assert encoder(standin, prompt_len).encode(messages, images) is None  # nothing trainable
    cut = encoder(standin, len(full.input_ids) - 3).encode(messages, images)
    assert cut.input_ids == full.input_ids[:-3] and cut.labels == full.labels[:-3]
