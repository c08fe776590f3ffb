"""Text ↔ token ids for evaluation, following lm-eval's HF model (`lm_eval.models.huggingface`).

Log-likelihoods depend on where the context/continuation boundary falls in token space. We use
the same rule as `lm-eval --model hf` (its `_encode_pair` and `tok_encode`) so a stock run under
the same protocol reproduces our per-item log-likelihoods: trailing whitespace of the context
moves onto the continuation, the pair is encoded whole, and the continuation is whatever the
whole encoding has beyond the context's own encoding.
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

# Markers after which a channelled ("harmony") response carries the answer text:
# `<|channel|>final<|message|>ANSWER<|return|>`.
MESSAGE_MARKERS = ("<|message|>",)


def encode_text(tok: PreTrainedTokenizerBase, text: str) -> list[int]:
    """The tokenizer's own encoding, special tokens included (its BOS if it adds one), except
    when the text already starts with the BOS string, as a rendered chat template often does:
    then no second BOS (lm-eval's `tok_encode` with `add_special_tokens=None`)."""
    bos = tok.bos_token
    add_special = not (bos and text.startswith(bos))
    return tok(text, add_special_tokens=add_special)["input_ids"]


def prefix_token_id(tok: PreTrainedTokenizerBase) -> int:
    """What an empty context conditions on: BOS, or EOS when the tokenizer has no BOS."""
    return tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id


def encode_pair(
    tok: PreTrainedTokenizerBase, context: str, continuation: str
) -> tuple[list[int], list[int]]:
    """(context ids, continuation ids) by lm-eval's causal-model rule.

    The context ids are the context's own encoding and the continuation ids are
    `encode(context + continuation)[len(context ids):]`, so a token that merges across the
    boundary is not split in a way the tokenizer never produces. An empty context conditions on
    the prefix token alone.
    """
    if not context:
        cont = tok(continuation, add_special_tokens=False)["input_ids"]
        prefix = prefix_token_id(tok)
        if cont and cont[0] == prefix:
            return cont[:1], cont[1:]
        return [prefix], cont
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    whole = encode_text(tok, context + continuation)
    ctx = encode_text(tok, context)
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
