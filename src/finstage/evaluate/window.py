"""What fits in the evaluation window (`evaluate.max_length`), and what was cut to make it fit.

Cutting is always from the left of the prompt: the question and the generation header are at
its end, and a cut continuation or a short generation budget would score something other than
the benchmark. Every cut is counted per item, and an item that cannot fit at all is marked
unscorable rather than scored on a mutilated input. Image placeholder runs are never cut: a
partial run no longer matches its image's features.

The rules equal lm-eval's HF model where it has one (its input is
`(context + continuation)[-(max_length + 1):][:-1]`; its generation prompt is cut to
`max_length - max_gen_toks`), so a stock run under the same window scores the same tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Key = tuple[str | None, int | None]  # (task name, doc id)


def cut_left(ids: list[int], keep: int, image_token_id: int | None) -> tuple[list[int], int] | None:
    """The last `keep` ids and how many were cut; None when the cut would touch an image run."""
    cut = max(0, len(ids) - keep)
    if cut and image_token_id is not None and image_token_id in ids[:cut]:
        return None
    return ids[cut:], cut


def fit_pair(
    context: list[int], continuation: list[int], max_length: int, image_token_id: int | None
) -> tuple[list[int], int] | None:
    """A log-likelihood pair in the window: (cut context, tokens cut), or None if unscorable.

    The model reads context + continuation minus its last token, at most `max_length` tokens.
    Only the context is cut, and at least one context token stays (the first continuation
    token needs something to be predicted from); a continuation longer than the window is
    unscorable.
    """
    if len(continuation) > max_length:
        return None
    return cut_left(context, max_length + 1 - len(continuation), image_token_id)


def fit_prompt(
    prompt: list[int], max_length: int, max_new_tokens: int, image_token_id: int | None
) -> tuple[list[int], int] | None:
    """A generation prompt cut so the full `max_new_tokens` budget fits; None if unscorable."""
    if max_new_tokens >= max_length:
        return None
    return cut_left(prompt, max_length - max_new_tokens, image_token_id)


@dataclass
class WindowLog:
    """Per item: tokens cut (the most over its requests) and whether any request was unscorable."""

    truncated: dict[Key, int] = field(default_factory=dict)
    unscorable: set[Key] = field(default_factory=set)

    def record(self, key: Key, fitted: tuple[list[int], int] | None) -> list[int] | None:
        """Note a fit result under `key`; returns the fitted ids (None when unscorable)."""
        if fitted is None:
            self.unscorable.add(key)
            return None
        ids, cut = fitted
        if cut:
            self.truncated[key] = max(cut, self.truncated.get(key, 0))
        return ids

    def counts(self, task: str) -> dict[str, int]:
        """`n_truncated` and `n_unscorable` for one task name (items, not requests)."""
        return {
            "n_truncated": sum(1 for name, _ in self.truncated if name == task),
            "n_unscorable": sum(1 for name, _ in self.unscorable if name == task),
        }
