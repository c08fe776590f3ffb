"""Benchmark text never becomes special tokens in evaluation prompts, raw or templated.

lm-eval contexts and continuations are dataset text: an item spelling `<|end|>` or `<image>`
must be scored as that text, with the template's own markup the only special tokens; an item
without such strings is tokenised exactly as lm-eval's HF model does.
"""

from __future__ import annotations

import pytest
from transformers import PreTrainedTokenizerBase

from finstage.evaluate.tokens import context_ids, context_pair, encode_pair, text_ids
from finstage.records import IMAGE_MARKER

from .untrusted import INJECTION, scrub, special_ids, tokenizers

TOKENIZERS = tokenizers()


@pytest.fixture(params=sorted(TOKENIZERS))
def tok(request) -> PreTrainedTokenizerBase:
    return TOKENIZERS[request.param]


def rendered(tok: PreTrainedTokenizerBase, context: str, templated: bool) -> str:
    if not templated:
        return context
    return tok.apply_chat_template(
        [{"role": "user", "content": context}], tokenize=False, add_generation_prompt=True
    )


@pytest.mark.parametrize("templated", [True, False])
@pytest.mark.parametrize("where", ["start", "middle"])
def test_benchmark_text_spelling_special_tokens_stays_text(tok, templated, where):
    body = f"センテンス: 売上高は増加{IMAGE_MARKER}した。\nターゲット: 売上高\n回答:"
    context = INJECTION + body if where == "start" else body.replace("増加", "増加" + INJECTION)
    clean = scrub(context).replace(IMAGE_MARKER, "")
    ctx, cont = context_pair(tok, context, f" ポジティブ{INJECTION}", templated)
    clean_ctx, clean_cont = context_pair(tok, clean, " ポジティブ", templated)
    assert special_ids(tok, ctx) == special_ids(tok, clean_ctx)
    assert special_ids(tok, cont) == special_ids(tok, clean_cont) == []
    assert special_ids(tok, context_ids(tok, context, templated)) == special_ids(tok, clean_ctx)
    assert special_ids(tok, text_ids(tok, context)) == special_ids(tok, text_ids(tok, clean))
    # text without such strings: lm-eval's own split of the rendered prompt, id for id
    assert (clean_ctx, clean_cont) == encode_pair(
        tok, rendered(tok, clean, templated), " ポジティブ"
    )
