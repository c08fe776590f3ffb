"""Text ↔ token ids for evaluation, following lm-eval's HF model (`lm_eval.models.huggingface`).

Log-likelihoods depend on where the context/continuation boundary falls in token space. We use
the same rule as `lm-eval --model hf` (its `_encode_pair` and `tok_encode`) so a stock run under
the same protocol reproduces our per-item log-likelihoods: trailing whitespace of the context
moves onto the continuation, the pair is encoded whole, and the continuation is whatever the
whole encoding has beyond the context's own encoding.

Contexts and continuations are dataset text, so they never become special tokens: an item
spelling `<|end|>` or `<image>` is scored as that text, raw or inside the chat template, whose
own markup alone is special (`finstage.chat.encode_plain`, the rule training applies to message
text). Text spelling no special token is tokenised exactly as lm-eval's HF model tokenises it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from finstage.chat import Span, content_spans, encode_plain, holds_special, special_token_ids

# Markers after which a channelled ("harmony") response carries the answer text:
# `<|channel|>final<|message|>ANSWER<|return|>`.
MESSAGE_MARKERS = ("<|message|>",)


@dataclass(frozen=True)
class Rendered:
    """What the model reads for a context, and where the dataset's own text lies in it."""

    text: str
    plain: tuple[Span, ...]


def render_context(tok: PreTrainedTokenizerBase, context: str, templated: bool) -> Rendered:
    """The context itself, or one user turn of the chat template ending in the generation
    header. Raises ValueError for a context spelling a special token that the template rewrites
    (its place in the rendering, and so which special tokens are markup, is then unknown)."""
    if not templated:
        return Rendered(context, ((0, len(context)),))
    messages = [{"role": "user", "content": context}]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    spans = content_spans(tok, messages, text, generation_prompt=True)
    if spans is None:
        if holds_special(tok, context, special_token_ids(tok)):
            raise ValueError(
                "the chat template rewrites a context that spells a special token, so that "
                f"text cannot be kept plain: {context[:80]!r}"
            )
        spans = []
    return Rendered(text, tuple(spans))


def encode_text(tok: PreTrainedTokenizerBase, text: str, plain: Sequence[Span] = ()) -> list[int]:
    """The tokenizer's own encoding (its BOS if it adds one), with no special token made from
    the `plain` spans (dataset text); a text that already starts with the BOS string as markup,
    as a rendered chat template often does, gets no second BOS (lm-eval's `tok_encode` with
    `add_special_tokens=None`)."""
    bos = tok.bos_token
    add_special = not (bos and text.startswith(bos) and not any(a <= 0 < b for a, b in plain))
    ids, _ = encode_plain(
        tok, text, list(plain), special_token_ids(tok), add_special_tokens=add_special
    )
    return ids


def text_ids(tok: PreTrainedTokenizerBase, text: str) -> list[int]:
    """A dataset text on its own (lm-eval's rolling log-likelihood), all of it plain."""
    return encode_text(tok, text, ((0, len(text)),))


def context_ids(tok: PreTrainedTokenizerBase, context: str, templated: bool) -> list[int]:
    """A generation prompt's ids, before any cut to the window."""
    rendered = render_context(tok, context, templated)
    return encode_text(tok, rendered.text, rendered.plain)


def context_pair(
    tok: PreTrainedTokenizerBase, context: str, continuation: str, templated: bool
) -> tuple[list[int], list[int]]:
    """`encode_pair` of the rendered context and a continuation, both dataset text."""
    rendered = render_context(tok, context, templated)
    return encode_pair(tok, rendered.text, continuation, rendered.plain, plain_continuation=True)


def prefix_token_id(tok: PreTrainedTokenizerBase) -> int:
    """What an empty context conditions on: BOS, or EOS when the tokenizer has no BOS."""
    return tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id


def encode_pair(
    tok: PreTrainedTokenizerBase,
    context: str,
    continuation: str,
    plain: Sequence[Span] = (),
    plain_continuation: bool = False,
) -> tuple[list[int], list[int]]:
    """(context ids, continuation ids) by lm-eval's causal-model rule.

    The context ids are the context's own encoding and the continuation ids are
    `encode(context + continuation)[len(context ids):]`, so a token that merges across the
    boundary is not split in a way the tokenizer never produces. An empty context conditions on
    the prefix token alone. `plain` (spans of `context`) and, with `plain_continuation`, the
    continuation are dataset text, kept free of special tokens.
    """
    end = len(context) + len(continuation)
    whole_plain = [*plain, (len(context), end)] if plain_continuation else list(plain)
    if not context:
        cont, _ = encode_plain(tok, continuation, whole_plain, special_token_ids(tok))
        prefix = prefix_token_id(tok)
        if cont and cont[0] == prefix:
            return cont[:1], cont[1:]
        return [prefix], cont
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    whole = encode_text(tok, context + continuation, whole_plain)
    ctx_plain = [(a, min(b, len(context))) for a, b in plain if a < len(context)]
    ctx = encode_text(tok, context, ctx_plain)
    return ctx, whole[len(ctx) :]


def message_marker_ids(tok: PreTrainedTokenizerBase) -> frozenset[int]:
    """Ids of the special tokens in MESSAGE_MARKERS this tokenizer has (usually none)."""
    added = tok.added_tokens_decoder
    return frozenset(i for i, t in added.items() if t.special and t.content in MESSAGE_MARKERS)


def decode_answer(tok: PreTrainedTokenizerBase, ids: list[int], markers: frozenset[int]) -> str:
    """Generated ids → answer text: what follows the last message marker, if there is one.

    A harmony-style template ends the prompt at `<|start|>assistant` and the model writes the
    channel header itself; decoding everything with `skip_special_tokens` would glue the
    channel name onto the answer ("final42"). Without markers this is a plain decode.
    """
    last = max((i for i, t in enumerate(ids) if t in markers), default=-1)
    return tok.decode(ids[last + 1 :], skip_special_tokens=True)
