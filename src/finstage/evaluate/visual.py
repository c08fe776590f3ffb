"""Visual checks on held-out pages: OCR character error rate and VQA exact match.

lm-eval's log-likelihood path has no images, so page-image items are generated here with the
same prompt encoding and greedy decoding the LM adapter uses for text.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

import torch
from tqdm import tqdm

from finstage.evaluate.lm import FinstageLM
from finstage.pages.store import PageStore
from finstage.records import Record
from finstage.train.collate import image_to_pixels


def normalise(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


def edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def char_error_rate(prediction: str, reference: str) -> float:
    """Edit distance over reference length, whitespace-insensitive and NFKC-normalised."""
    ref, hyp = normalise(reference), normalise(prediction)
    return edit_distance(hyp, ref) / max(len(ref), 1)


def generate_answers(
    lm: FinstageLM, records: list[Record], store: PageStore, max_new_tokens: int
) -> list[str]:
    image_size = lm.model.config.vision_config.image_size
    answers: list[str] = []
    for start in tqdm(range(0, len(records), lm.batch_size), desc="visual"):
        batch = records[start : start + lm.batch_size]
        prompts = [lm.encoder.encode_prompt(r["messages"][:-1]) for r in batch]
        page_ids = [pid for r in batch for pid in r["images"]]
        pixels = (
            torch.stack([image_to_pixels(store.image(pid), image_size) for pid in page_ids])
            if page_ids
            else None
        )
        answers.extend(lm.generate_ids(prompts, max_new_tokens, pixels))
    return answers


def score_ocr(records: Iterable[Record], answers: list[str]) -> dict[str, float]:
    rates = [
        char_error_rate(a, r["messages"][-1]["content"])
        for r, a in zip(records, answers, strict=True)
    ]
    return {
        "cer": sum(rates) / len(rates) if rates else 1.0,
        "n": len(rates),
        "n_unparsed": sum(1 for a in answers if not a.strip()),
    }


def score_vqa(records: Iterable[Record], answers: list[str]) -> dict[str, float]:
    golds = [r["answer"] or r["messages"][-1]["content"] for r in records]
    hits = [normalise(a) == normalise(g) for a, g in zip(answers, golds, strict=True)]
    return {
        "exact_match": sum(hits) / len(hits) if hits else 0.0,
        "n": len(hits),
        "n_unparsed": sum(1 for a in answers if not a.strip()),
    }
