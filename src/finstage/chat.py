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

from finstage.records import Message

IGNORE = -100
GENERATION_TAG = re.compile(r"\{%-?\s*generation\s*-?%\}")

Span = tuple[int, int]  # [start, end) character offsets in the rendered conversation


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    images: list[str]


@dataclass
class Layout:
    """A rendered conversation: its text, the labelled spans and the evaluation-prompt cut."""

    text: str
    spans: list[Span]
    cut: int | None  # len of the last assistant turn's evaluation prompt, when it is a prefix


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
        self.special_ids = set(tokenizer.all_special_ids) | {
            i for i, t in tokenizer.added_tokens_decoder.items() if t.special
        }
        self._warned = False

    def _render(self, messages: list[Message], generation_prompt: bool) -> str:
        return self.tok.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=generation_prompt
        )

    def _ids(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def encode(self, messages: list[Message], images: list[str] | None = None) -> Encoded | None:
        """Encode one conversation; None when it cannot fit uncut (an image or every target)."""
        if not any(m["role"] == "assistant" for m in messages):
            return None
        layout = self.layout(messages)
        ids, offsets = self._tokenize(layout.text, layout.cut)
        labels = self._labels(ids, offsets, layout.spans)
        return self._expand_and_fit(ids, labels, list(images or []))

    def encode_prompt(self, messages: list[Message]) -> list[int]:
        """Ids of a prompt ending in the generation header, images expanded (for evaluation)."""
        ids = self._ids(self._render(messages, generation_prompt=True))
        return self._expand(ids, [IGNORE] * len(ids))[0]

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
        return Layout(text, spans, cut)

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

    def _tokenize(self, text: str, cut: int | None) -> tuple[list[int], list[Span]]:
        """Ids and character offsets; the evaluation prompt (`text[:cut]`) tokenised on its own.

        That prompt is exactly what `encode_prompt` tokenises at evaluation, so its ids are the
        same by construction even when a tokenizer would merge across the prompt's end.
        """
        ids: list[int] = []
        offsets: list[Span] = []
        bounds = [0, cut, len(text)] if cut else [0, len(text)]
        for a, b in zip(bounds, bounds[1:], strict=False):
            enc = self.tok(text[a:b], add_special_tokens=False, return_offsets_mapping=True)
            ids.extend(enc["input_ids"])
            offsets.extend((s + a, e + a) for s, e in enc["offset_mapping"])
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

    def _expand(self, ids: list[int], labels: list[int]) -> tuple[list[int], list[int], int]:
        out_ids: list[int] = []
        out_labels: list[int] = []
        n_images = 0
        for tid, lab in zip(ids, labels, strict=True):
            if tid == self.image_token_id:
                out_ids.extend([tid] * self.image_seq_length)
                out_labels.extend([IGNORE] * self.image_seq_length)
                n_images += 1
            else:
                out_ids.append(tid)
                out_labels.append(lab)
        return out_ids, out_labels, n_images

    def _expand_and_fit(
        self, ids: list[int], labels: list[int], images: list[str]
    ) -> Encoded | None:
        ids, labels, _ = self._expand(ids, labels)
        if len(ids) > self.max_seq_len:
            # Truncate text only: a cut inside an image run would leave fewer placeholders than
            # vision features ("Image features and image tokens do not match").
            cut = self.max_seq_len
            if ids[cut - 1] == self.image_token_id or (
                cut < len(ids) and ids[cut] == self.image_token_id
            ):
                return None
            if ids[cut:].count(self.image_token_id):
                return None
            ids, labels = ids[:cut], labels[:cut]
        if all(lab == IGNORE for lab in labels):
            return None
        return Encoded(ids, labels, images)


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
