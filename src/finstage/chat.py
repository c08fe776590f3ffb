"""Chat records → token ids, labels and pixels.

Labels cover only assistant content (and its end-of-turn token): system and user turns,
role headers, image placeholders and padding are all -100. The prompt/answer boundary comes
from rendering the tokenizer's own chat template turn by turn, so the same code masks
correctly for our embedded template and for a real model's template.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from transformers import PreTrainedTokenizerBase

from finstage.records import Message

IGNORE = -100


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    images: list[str]


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

    def _render(self, messages: list[Message], generation_prompt: bool) -> str:
        return self.tok.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=generation_prompt
        )

    def _ids(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def encode(self, messages: list[Message], images: list[str] | None = None) -> Encoded | None:
        """Encode one conversation; None when it cannot fit uncut (an image or every target)."""
        ids: list[int] = []
        labels: list[int] = []
        rendered = ""
        for i, message in enumerate(messages):
            if message["role"] == "assistant":
                with_prompt = self._render(messages[:i], generation_prompt=True)
                self._append(ids, labels, _suffix(rendered, with_prompt), train=False)
                rendered = with_prompt
            full = self._render(messages[: i + 1], generation_prompt=False)
            self._append(ids, labels, _suffix(rendered, full), train=message["role"] == "assistant")
            rendered = full
        self._append(
            ids,
            labels,
            _suffix(rendered, self._render(messages, generation_prompt=False)),
            train=False,
        )
        return self._expand_and_fit(ids, labels, list(images or []))

    def encode_prompt(self, messages: list[Message]) -> list[int]:
        """Ids of a prompt ending in the generation header, images expanded (for evaluation)."""
        ids = self._ids(self._render(messages, generation_prompt=True))
        return self._expand(ids, [IGNORE] * len(ids))[0]

    def _append(self, ids: list[int], labels: list[int], text: str, train: bool) -> None:
        if not text:
            return
        new = self._ids(text)
        ids.extend(new)
        labels.extend(new if train else [IGNORE] * len(new))

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


def _suffix(prefix: str, full: str) -> str:
    if not full.startswith(prefix):
        raise ValueError(
            "the chat template is not prefix-stable (rendering more turns changed earlier text); "
            "finstage needs a template where each turn appends to the previous rendering"
        )
    return full[len(prefix) :]


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
