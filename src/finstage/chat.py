"""Chat records → token ids, labels and pixels.

Each conversation is rendered whole by the tokenizer's own chat template and tokenised once,
so training sees the ids evaluation sees: a template may render earlier turns differently from
the last (harmony closes history turns with `<|end|>` and the final one with `<|return|>`), and
a SentencePiece tokenizer gives other ids to a turn tokenised alone than inside the whole.

Labels cover what the model writes: each assistant turn after its generation prompt, through
the end-of-turn token that closes it. System and user turns, role headers, image placeholders
and padding are all -100. The spans come from the template's `{% generation %}` markers where
it has them, else from where each assistant message's text lies in the rendering (character
offsets), plus the special token right after it.

Only the template's own markup becomes special tokens. Message text (page text, teacher output,
dataset text) that spells `<|end|><|assistant|>` stays that text: where each message's content
lies in the rendering is known (`content_spans`), and `encode_plain` keeps special tokens out of
it. The one exception is the record's `<image>` marker, structural by the record schema: each
one stands for a listed page (`records.validate_record`), and the stages that write records keep
the marker out of the text they quote. Text that spells no special token encodes exactly as the
tokenizer alone encodes the rendering.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from transformers import PreTrainedTokenizerBase
from transformers.utils.chat_template_utils import render_jinja_template

from finstage.imageruns import IGNORE, ViewsOf, expand_runs, fit_runs, page_views
from finstage.records import Message

GENERATION_TAG = re.compile(r"\{%-?\s*generation\s*-?%\}")

Span = tuple[int, int]  # [start, end) character offsets in the rendered conversation
# Plane-15 private-use characters around a message index: no template writes them, so where
# they land in a rendering is where that message's text goes.
SENTINEL = re.compile("\U000f0000(\\d+)\U000f0001")


class UnplaceableText(ValueError):
    """Message text spells a special token, but the template rewrites it, so where it lies in
    the rendering (and so which special tokens are the template's) is unknown."""


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    images: list[str]  # view ids, one per placeholder run, in order (a page's global view: its id)


@dataclass
class Layout:
    """A rendered conversation: its text, the labelled spans and the evaluation-prompt cut."""

    text: str
    spans: list[Span]
    cut: int | None  # len of the last assistant turn's evaluation prompt, when it is a prefix
    plain: list[Span] | None  # where the messages' own text lies; None: the template rewrites it


class ChatEncoder:
    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        image_token_id: int,
        image_seq_length: int,
        max_seq_len: int,
    ):
        self.tok = tokenizer
        self.image_token_id = image_token_id
        self.image_seq_length = image_seq_length
        self.max_seq_len = max_seq_len
        # None for a tokenizer without a template (raw-prompt evaluation): encode() then fails
        # in apply_chat_template with transformers' own message.
        self.template = tokenizer.get_chat_template() if tokenizer.chat_template else None
        self.marked = bool(self.template and GENERATION_TAG.search(self.template))
        self.special_ids = special_token_ids(tokenizer)
        self.keep = frozenset({image_token_id})  # the record's structural page markers
        self._warned = False

    def _render(self, messages: list[Message], generation_prompt: bool) -> str:
        return self.tok.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=generation_prompt
        )

    def _plain_spans(self, messages: list[Message], spans: list[Span] | None) -> list[Span]:
        """The spans to keep free of special tokens; none needed when no text spells one."""
        if spans is not None:
            return spans
        texts = [_text_of(m["content"]) for m in messages if m.get("content")]
        if any(holds_special(self.tok, t, self.special_ids - self.keep) for t in texts):
            raise UnplaceableText(
                "a message spells a special token and the chat template rewrites message text, "
                "so the template's own special tokens cannot be told from the message's"
            )
        return []

    def encode(
        self, messages: list[Message], images: list[str] | None = None, views: ViewsOf | None = None
    ) -> Encoded | None:
        """Encode one conversation; None when it cannot fit uncut (an image or every target), or
        when it spells a special token in text the template rewrites (`UnplaceableText`).

        ``views`` gives each page's views (`PageStore.views`); each marker becomes one
        placeholder run per view of its page. Without it every page is one view."""
        if not any(m["role"] == "assistant" for m in messages):
            return None
        layout = self.layout(messages)
        try:
            plain = self._plain_spans(messages, layout.plain)
            ids, offsets = self._tokenize(layout.text, layout.cut, plain)
        except UnplaceableText:
            return None
        labels = self._labels(ids, offsets, layout.spans)
        shown = page_views(list(images or []), views)
        runs = [len(v) for v in shown] if images else None
        ids, labels = expand_runs(ids, labels, self.image_token_id, self.image_seq_length, runs)
        return self._fit(ids, labels, [v for page in shown for v in page])

    def encode_prompt(
        self, messages: list[Message], images: list[str] | None = None, views: ViewsOf | None = None
    ) -> list[int]:
        """Ids of a prompt ending in the generation header, images expanded as `encode` expands
        them (for evaluation); its message text is kept plain by the rule `encode` applies, so
        the ids are the same."""
        text = self._render(messages, generation_prompt=True)
        plain = self._plain_spans(messages, content_spans(self.tok, messages, text, True))
        ids, _ = encode_plain(self.tok, text, plain, self.special_ids, self.keep)
        runs = [len(v) for v in page_views(images, views)] if images else None
        labels = [IGNORE] * len(ids)
        return expand_runs(ids, labels, self.image_token_id, self.image_seq_length, runs)[0]

    def layout(self, messages: list[Message]) -> Layout:
        """Render the whole conversation once and find what the model is trained to write."""
        last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
        prompt = self._render(messages[:last], generation_prompt=True) if last else None
        if self.marked:
            rendered, indices = render_jinja_template(
                conversations=[_plain(messages)],
                chat_template=self.template,
                return_assistant_tokens_mask=True,
                add_generation_prompt=False,
                **self.tok.special_tokens_map,
            )
            text, spans = rendered[0], [tuple(span) for span in indices[0]]
        else:
            text = self._render(messages, generation_prompt=False)
            spans = self._assistant_spans(messages, text)
        cut = len(prompt) if prompt is not None and text.startswith(prompt) else None
        if cut is None and not self._warned:
            self._warned = True
            warnings.warn(
                "the chat template's generation prompt is not a prefix of the rendered "
                "conversation, so training ids may differ from evaluation ids",
                stacklevel=2,
            )
        return Layout(text, spans, cut, content_spans(self.tok, messages, text, False))

    def _assistant_spans(self, messages: list[Message], text: str) -> list[Span]:
        """Where each assistant turn lies in `text`, for templates without generation markers.

        A turn starts where its generation prompt ends (when the rendering of the history plus
        that prompt is a prefix of `text`, as with every real template we know), otherwise at
        its content; it ends after its content. Each message's content is searched in order,
        never before the text the earlier history renders to, so an answer quoted in a
        question is not mistaken for the answer.
        """
        spans: list[Span] = []
        cursor = 0
        for i, message in enumerate(messages):
            content = _text_of(message["content"])
            is_assistant = message["role"] == "assistant"
            start = None
            if i:
                history = self._render(messages[:i], generation_prompt=is_assistant)
                if is_assistant and text.startswith(history):
                    start = len(history)
                cursor = max(cursor, _common_prefix(history, text))
            found = _find(text, content, cursor)
            if found is None:
                if is_assistant:
                    raise ValueError(
                        f"assistant message {i} does not appear verbatim in the rendered "
                        "conversation, and the chat template has no {% generation %} markers; "
                        "add markers to the template so the answer spans are known"
                    )
                continue
            pos, end = found
            cursor = end
            if is_assistant:
                spans.append((pos if start is None or start > pos else start, end))
        return spans

    def _tokenize(
        self, text: str, cut: int | None, plain: list[Span]
    ) -> tuple[list[int], list[Span]]:
        """Ids and character offsets; the evaluation prompt (`text[:cut]`) tokenised on its own.

        That prompt is exactly what `encode_prompt` tokenises at evaluation, so its ids are the
        same by construction even when a tokenizer would merge across the prompt's end.
        """
        ids: list[int] = []
        offsets: list[Span] = []
        bounds = [0, cut, len(text)] if cut else [0, len(text)]
        for a, b in zip(bounds, bounds[1:], strict=False):
            part = [(max(s, a) - a, min(e, b) - a) for s, e in plain if s < b and e > a]
            got, spans = encode_plain(self.tok, text[a:b], part, self.special_ids, self.keep)
            ids.extend(got)
            offsets.extend((s + a, e + a) for s, e in spans)
        return ids, offsets

    def _labels(self, ids: list[int], offsets: list[Span], spans: list[Span]) -> list[int]:
        labels = [IGNORE] * len(ids)
        for a, b in spans:
            after = None
            for k, (s, e) in enumerate(offsets):
                if (s < b and e > a) or (s == e and a <= s < b):
                    labels[k] = ids[k]
                elif after is None and s >= b:
                    after = k
            # Without markers the template's end-of-turn token (`<|end|>`, `<|return|>`,
            # `<|im_end|>`…) follows the answer; the model must learn it to stop.
            if not self.marked and after is not None and ids[after] in self.special_ids:
                labels[after] = ids[after]
        return labels

    def _fit(self, ids: list[int], labels: list[int], views: list[str]) -> Encoded | None:
        """Truncate text only (`imageruns.fit_runs`); None if nothing is left to learn."""
        fitted = fit_runs(ids, labels, self.image_token_id, self.max_seq_len)
        if fitted is None or all(lab == IGNORE for lab in fitted[1]):
            return None
        return Encoded(fitted[0], fitted[1], views)


def special_token_ids(tok: PreTrainedTokenizerBase) -> frozenset[int]:
    """Every id the tokenizer treats as special (its named ones and added special tokens)."""
    added = {i for i, t in tok.added_tokens_decoder.items() if t.special}
    return frozenset(tok.all_special_ids) | added


def holds_special(tok: PreTrainedTokenizerBase, text: str, special: frozenset[int]) -> bool:
    """Whether `text`, tokenised alone, has any of the `special` ids."""
    return any(t in special for t in tok(text, add_special_tokens=False)["input_ids"])


def content_spans(
    tok: PreTrainedTokenizerBase, messages: list, text: str, generation_prompt: bool
) -> list[Span] | None:
    """Where the messages' own text lies in `text`, their rendering; None if the template
    rewrites some of it.

    The template renders the conversation again with each content (each text part of typed
    content) replaced by a sentinel. Putting the texts back where the sentinels landed must give
    `text` exactly; then whatever lies outside the spans is the template's own markup.
    """
    pieces: list[str] = []
    masked = [_masked(m, pieces) for m in messages]
    skeleton = tok.apply_chat_template(
        masked, tokenize=False, add_generation_prompt=generation_prompt
    )
    parts: list[str] = []
    spans: list[Span] = []
    pos = length = 0
    for match in SENTINEL.finditer(skeleton):
        index = int(match.group(1))
        if index >= len(pieces):
            return None
        markup, piece = skeleton[pos : match.start()], pieces[index]
        parts += [markup, piece]
        length += len(markup)
        if piece:
            spans.append((length, length + len(piece)))
        length += len(piece)
        pos = match.end()
    parts.append(skeleton[pos:])
    return spans if "".join(parts) == text else None


def _masked(message: dict, pieces: list[str]) -> dict:
    def stand_in(text: str) -> str:
        pieces.append(text)
        return f"\U000f0000{len(pieces) - 1}\U000f0001"

    content = message.get("content")
    if isinstance(content, str):
        return {**message, "content": stand_in(content)}
    if isinstance(content, list):
        parts = [
            {**p, "text": stand_in(p["text"])} if isinstance(p.get("text"), str) else p
            for p in content
        ]
        return {**message, "content": parts}
    return dict(message)


def encode_plain(
    tok: PreTrainedTokenizerBase,
    text: str,
    plain: list[Span],
    special: frozenset[int],
    keep: frozenset[int] = frozenset(),
    add_special_tokens: bool = False,
) -> tuple[list[int], list[Span]]:
    """Ids and offsets of `text` in which no `special` id but those in `keep` comes from the
    `plain` spans (message or benchmark text).

    The text is tokenised whole as usual; when no such special token lies in a plain span, those
    are the ids, so text that spells none encodes exactly as before. Otherwise each stretch
    between two of the remaining special tokens (the markup's) that holds one is tokenised again
    with special tokens split, as the tokenizer tokenises the text between special tokens.
    """
    enc = tok(text, add_special_tokens=add_special_tokens, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]
    forged = {
        k
        for k, t in enumerate(ids)
        if t in special and t not in keep and _touches(text, offsets[k], plain)
    }
    if not forged:
        return ids, offsets
    out: list[tuple[int, Span]] = []
    run: list[int] = []
    for k in [*range(len(ids)), None]:
        if k is not None and (ids[k] not in special or k in forged):
            run.append(k)
            continue
        if forged.intersection(run):
            a, b = min(offsets[j][0] for j in run), max(offsets[j][1] for j in run)
            out += _split_tokens(tok, text, a, b, special)
        else:
            out += [(ids[j], offsets[j]) for j in run]
        run = []
        if k is not None:
            out.append((ids[k], offsets[k]))
    return [t for t, _ in out], [span for _, span in out]


def _touches(text: str, offset: Span, plain: list[Span]) -> bool:
    """Whether the token's text, less the whitespace a token may absorb, overlaps a span."""
    s, e = offset
    piece = text[s:e]
    s, e = s + len(piece) - len(piece.lstrip()), e - len(piece) + len(piece.rstrip())
    return s < e and any(s < b and e > a for a, b in plain)


def _split_tokens(
    tok: PreTrainedTokenizerBase, text: str, a: int, b: int, special: frozenset[int]
) -> list[tuple[int, Span]]:
    """`text[a:b]` tokenised with special tokens split. A special piece the tokenizer's model
    still forms from text (a unigram vocabulary may list `<|end|>`) is tokenised in halves."""
    enc = tok(
        text[a:b], add_special_tokens=False, split_special_tokens=True, return_offsets_mapping=True
    )
    out: list[tuple[int, Span]] = []
    for tid, (s, e) in zip(enc["input_ids"], enc["offset_mapping"], strict=True):
        if tid not in special:
            out.append((tid, (a + s, a + e)))
        elif e - s < 2:
            raise UnplaceableText(f"{text[a + s : a + e]!r} is a special token of one character")
        else:
            mid = (s + e) // 2
            out += _split_tokens(tok, text, a + s, a + mid, special)
            out += _split_tokens(tok, text, a + mid, a + e, special)
    return out


def _plain(messages: list[Message]) -> list[dict]:
    """As `apply_chat_template` passes messages: keys whose value is None dropped."""
    return [{k: v for k, v in m.items() if v is not None} for m in messages]


def _text_of(content: str | list[dict]) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if part.get("type") == "text")


def _find(text: str, content: str, start: int) -> Span | None:
    """First occurrence of `content` (or, for templates that trim, of its stripped form)."""
    for needle in (content, content.strip()):
        if needle:
            pos = text.find(needle, start)
            if pos >= 0:
                return pos, pos + len(needle)
    return None


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def image_to_pixels(
    image: Image.Image, size: int, mean: float = 0.5, std: float = 0.5
) -> torch.Tensor:
    """SigLIP preprocessing: plain resize to size×size, scale to [0, 1], normalise."""
    arr = (
        np.asarray(image.convert("RGB").resize((size, size), Image.BICUBIC), dtype=np.float32)
        / 255.0
    )
    return torch.from_numpy((arr - mean) / std).permute(2, 0, 1).contiguous()


def pad_batch(examples: list[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(e.input_ids) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e.input_ids)
        input_ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        attention[row, :n] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention}
