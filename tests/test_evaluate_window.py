"""The evaluation window: cuts are counted and never touch the answer, generation always gets its
full budget, unfittable items are marked, batching changes nothing, and prompts follow lm-eval's
HF tokenisation with or without the chat template."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
from transformers import AutoTokenizer, LlavaForConditionalGeneration

from finstage.config import ParamsError
from finstage.evaluate import devices
from finstage.evaluate.devices import resolve_device
from finstage.evaluate.lm import FinstageLM
from finstage.evaluate.tokens import decode_answer, encode_pair, encode_text, message_marker_ids
from finstage.evaluate.visual import generate_answers
from finstage.pagestore import PageStore, page_id
from finstage.records import make_record

from .conftest import doc_sha

LONG = "歳出合計は前年度比3.2%増の1,234億円となりました。" * 6


@pytest.fixture(scope="module")
def lm(tiny_p0) -> FinstageLM:
    return FinstageLM.from_checkpoint(tiny_p0, 3, 32, True, "cpu")


def req(kind: str, args: tuple, doc_id: int = 0, task: str = "t") -> Instance:
    return Instance(request_type=kind, doc={}, arguments=args, idx=0, metadata=(task, doc_id, 1))


def gen(context: str, max_gen_toks: int, until: list[str] | None = None, doc_id: int = 0):
    kwargs = {"until": until or [], "max_gen_toks": max_gen_toks}
    return req("generate_until", (context, kwargs), doc_id)


def manual_loglikelihood(lm: FinstageLM, ctx: list[int], cont: list[int]) -> float:
    with torch.no_grad():
        logits = lm.model(input_ids=torch.tensor([ctx + cont])).logits[0].float()
    logprobs = torch.log_softmax(logits, -1)
    return sum(logprobs[len(ctx) - 1 + i, t].item() for i, t in enumerate(cont))


@contextmanager
def talkative(lm: FinstageLM) -> Iterator[list[int]]:
    """EOS banned (the tiny model would stop at once); yields the input width of each forward."""
    eos = lm.tok.eos_token_id
    widths: list[int] = []

    def no_eos(_module, _args, logits):
        return logits.index_fill(-1, torch.tensor([eos]), float("-inf"))

    def width(_module, _args, kwargs):
        widths.append(kwargs["input_ids"].shape[1])

    hooks = [
        lm.model.lm_head.register_forward_hook(no_eos),
        lm.model.register_forward_pre_hook(width, with_kwargs=True),
    ]
    try:
        yield widths
    finally:
        for hook in hooks:
            hook.remove()


def test_loglikelihood_cuts_the_context_from_the_left_counts_it_and_keeps_the_continuation(lm):
    ctx, cont = encode_pair(lm.tok, lm.context_text(LONG), " 1,234")
    over = len(ctx) + len(cont) - (lm.max_length + 1)
    assert over > 0
    requests = [req("loglikelihood", (LONG, " 1,234"), 7), req("loglikelihood", ("予算", " 1"), 8)]
    (ll, _), _ = lm.loglikelihood(requests, disable_tqdm=True)
    assert lm.truncated[("t", 7)] == over and ("t", 8) not in lm.truncated
    # the whole continuation is scored, on the context's last tokens
    assert ll == pytest.approx(manual_loglikelihood(lm, ctx[over:], cont), abs=1e-4)


def test_a_continuation_longer_than_the_window_is_unscorable_not_cut(lm):
    ((ll, greedy),) = lm.loglikelihood([req("loglikelihood", ("予算", LONG), 9)], disable_tqdm=True)
    assert ll == -math.inf and not greedy
    assert ("t", 9) in lm.unscorable


def test_generation_over_the_window_gets_its_full_budget_after_a_left_cut(lm):
    prompt = lm.prompt_ids(LONG)
    budget = 8
    assert len(prompt) > lm.max_length
    with talkative(lm) as widths:
        lm.generate_until([gen(LONG, budget, doc_id=3)], disable_tqdm=True)
    # one forward per new token; the first reads the prompt cut to max_length - budget
    assert len(widths) == budget
    assert widths[0] == lm.max_length - budget
    assert lm.truncated[("t", 3)] == len(prompt) - (lm.max_length - budget)
    with talkative(lm):
        new = lm.generate_tokens([prompt[-(lm.max_length - budget) :]], budget)
    assert len(new[0]) == budget


def test_a_budget_as_long_as_the_window_is_unscorable(lm):
    with talkative(lm) as widths:
        out = lm.generate_until([gen("予算は?", lm.max_length, doc_id=4)], disable_tqdm=True)
    assert out == [""] and widths == []
    assert ("t", 4) in lm.unscorable
    assert lm.window.counts("t")["n_unscorable"] >= 1


def test_length_batched_generation_equals_one_at_a_time(tiny_p0):
    one = FinstageLM.from_checkpoint(tiny_p0, 1, 64, True, "cpu")
    eight = FinstageLM(one.model, one.tok, 8, 64, True, torch.device("cpu"))
    contexts = ["予算", "歳出合計は?", "前年度比3.2%増の1,234億円でした。", "この", "売上高は?"]
    # two stop lists and two budgets, interleaved, so groups and length order both reorder
    requests = [
        gen(c, 6 + (i % 2) * 4, ["。"] if i % 3 == 0 else [], doc_id=i)
        for i, c in enumerate(contexts * 2)
    ]
    with talkative(one):
        alone = [one.generate_until([r], disable_tqdm=True)[0] for r in requests]
        batched = eight.generate_until(requests, disable_tqdm=True)
    assert batched == alone
    assert len(set(alone)) > 1  # the prompts really lead to different outputs


def test_left_padding_decodes_like_the_unpadded_prompt(lm):
    short, long = lm.prompt_ids("予算"), lm.prompt_ids("売上高は前年同期比で増加")
    assert len(short) < len(long)
    with talkative(lm):
        together = lm.generate_tokens([long, short], 6)
        assert together == [lm.generate_tokens([long], 6)[0], lm.generate_tokens([short], 6)[0]]


def test_raw_prompts_are_the_plain_tokenisation_and_differ_from_templated(tiny_p0, lm):
    raw = FinstageLM(lm.model, lm.tok, 3, 32, False, torch.device("cpu"))
    context = "歳出合計は?"
    assert raw.prompt_ids(context) == lm.tok(context)["input_ids"]
    assert lm.prompt_ids(context) != raw.prompt_ids(context)
    ctx, cont = encode_pair(lm.tok, context, " 1,234")
    ((ll, _),) = raw.loglikelihood([req("loglikelihood", (context, " 1,234"))], disable_tqdm=True)
    assert ll == pytest.approx(manual_loglikelihood(lm, ctx, cont), abs=1e-4)


def test_encoding_follows_lm_eval_hf(tiny_p0):
    tok = AutoTokenizer.from_pretrained(tiny_p0)
    # trailing whitespace of the context moves onto the continuation; the pair is encoded whole
    ctx, cont = encode_pair(tok, "予算は ", "1,234")
    whole = tok("予算は 1,234", add_special_tokens=False)["input_ids"]
    assert ctx == tok("予算は", add_special_tokens=False)["input_ids"]
    assert cont == whole[len(ctx) :]
    # an empty context conditions on BOS alone
    assert encode_pair(tok, "", "予算")[0] == [tok.bos_token_id]
    # a tokenizer that adds BOS: raw text gets one, text already starting with it no second
    from tokenizers.processors import TemplateProcessing

    tok.backend_tokenizer.post_processor = TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tok.bos_token_id)]
    )
    assert encode_text(tok, "予算")[0] == tok.bos_token_id
    assert encode_text(tok, "<s>予算").count(tok.bos_token_id) == 1


def test_auto_device_is_the_best_present_and_the_model_lives_there(tiny_p0, monkeypatch):
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if expected == "cpu" and devices._mps_available():
        expected = "mps"
    lm = FinstageLM.from_checkpoint(tiny_p0, 1, 32, True, "auto")
    assert resolve_device("auto").type == expected
    assert {p.device.type for p in lm.model.parameters()} == {expected}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "_mps_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "CPU", ""])
def test_an_unknown_device_names_the_param(spec):
    with pytest.raises(ValueError, match=r"evaluate\.device"):
        resolve_device(spec)


def test_an_absent_device_fails_instead_of_falling_back(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "_mps_available", lambda: False)
    for spec in ("cuda", "cuda:0", "mps"):
        with pytest.raises(ParamsError, match=r"evaluate\.device.*not available"):
            resolve_device(spec)


def test_visual_prompts_that_do_not_fit_are_unscorable_never_cut(tiny_p0, tiny_pages):
    lm = FinstageLM.from_checkpoint(tiny_p0, 2, 64, False, "cpu")
    pid = page_id(doc_sha(0), 0)
    chat = [
        {"role": "user", "content": "<image>歳出合計は?"},
        {"role": "assistant", "content": "1"},
    ]
    records = [make_record(f"v{i}", "vqa", chat, [pid], answer="1") for i in range(3)]
    prompt = lm.encoder.encode_prompt(chat[:-1])
    assert prompt.count(lm.image_token_id) == lm.model.config.image_seq_length  # templated
    fits = lm.max_length - len(prompt)
    store = PageStore(tiny_pages)
    with talkative(lm) as widths:
        answers = generate_answers(lm, records, store, fits, "vqa")
    # two batches (2 + 1 records), each decoding the full budget from the uncut prompt
    assert len(widths) == 2 * fits and widths[0] == len(prompt)
    assert all(answers) and not lm.unscorable
    with talkative(lm) as widths:
        assert generate_answers(lm, records, store, fits + 1, "vqa") == ["", "", ""]
    assert widths == [] and lm.unscorable == {("vqa", i) for i in range(3)}
    assert lm.window.counts("vqa") == {"n_truncated": 0, "n_unscorable": 3}


def test_a_channelled_answer_decodes_to_the_text_after_the_last_message_marker(tiny_p0):
    tok = AutoTokenizer.from_pretrained(tiny_p0)
    assert message_marker_ids(tok) == frozenset()  # our own template has no channels
    tok.add_tokens(
        ["<|start|>", "<|channel|>", "<|message|>", "<|end|>", "<|return|>"], special_tokens=True
    )
    markers = message_marker_ids(tok)
    assert markers == {tok.convert_tokens_to_ids("<|message|>")}
    said = (
        "<|channel|>analysis<|message|>考える<|end|>"
        "<|start|>assistant<|channel|>final<|message|>答え42<|return|>"
    )
    ids = tok(said, add_special_tokens=False)["input_ids"]
    assert decode_answer(tok, ids, markers) == "答え42"
    # a plain decode glues the channel names onto the answer
    assert decode_answer(tok, ids, frozenset()) == "analysis考えるassistantfinal答え42"
    plain = tok("答え42", add_special_tokens=False)["input_ids"]
    assert decode_answer(tok, plain, markers) == "答え42"


def test_a_checkpoint_loads_in_its_saved_dtype_and_scores_in_it(tiny_p0, tiny_pages, tmp_path):
    model = LlavaForConditionalGeneration.from_pretrained(tiny_p0).to(torch.bfloat16)
    model.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(tiny_p0).save_pretrained(tmp_path)
    lm = FinstageLM.from_checkpoint(tmp_path, 2, 64, True, "cpu")
    assert {p.dtype for p in lm.model.parameters()} == {torch.bfloat16}
    ((ll, _),) = lm.loglikelihood([req("loglikelihood", ("予算は?", " 1"))], disable_tqdm=True)
    assert math.isfinite(ll)
    chat = [{"role": "user", "content": "<image>合計は?"}, {"role": "assistant", "content": "1"}]
    record = make_record("v", "ocr", chat, [page_id(doc_sha(1), 0)], answer="1")
    # float32 pixels meet bf16 vision weights: the adapter casts them
    assert len(generate_answers(lm, [record], PageStore(tiny_pages), 4, "ocr")) == 1


def test_stock_lm_eval_hf_reproduces_our_items_raw_and_templated(lm):
    """The same model under `lm-eval --model hf` (templated: `--apply_chat_template`, which
    hands it the rendered prompt) gives the same per-item results, cut contexts included."""
    stock = HFLM(pretrained=lm.model, tokenizer=lm.tok, batch_size=3, max_length=32, device="cpu")
    raw = FinstageLM(lm.model, lm.tok, 3, 32, False, torch.device("cpu"))
    pairs = [("予算は ", "1,234"), ("予算", " 歳出"), (LONG, " 1"), ("前年度比は?", "3.2%")]
    for ours in (raw, lm):
        mine = ours.loglikelihood([req("loglikelihood", p) for p in pairs], disable_tqdm=True)
        rendered = [(ours.context_text(c), x) for c, x in pairs]
        theirs = stock.loglikelihood([req("loglikelihood", p) for p in rendered], True)
        assert [g for _, g in mine] == [g for _, g in theirs]
        assert [ll for ll, _ in mine] == pytest.approx([ll for ll, _ in theirs], abs=1e-5)
    contexts = ["予算", LONG]
    with talkative(lm):
        mine = raw.generate_until([gen(c, 6, ["。"]) for c in contexts], disable_tqdm=True)
        theirs = stock.generate_until([gen(c, 6, ["。"]) for c in contexts], disable_tqdm=True)
    assert mine == theirs and all(mine)
