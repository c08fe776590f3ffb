"""Visual checks on held-out pages: OCR character error rate, VQA exact match and ANLS, and
finance QA with a worked rationale (answer accuracy, Japanese ROUGE, rationale similarity).

lm-eval's log-likelihood path has no images, so page-image items are generated here with the
LM adapter's greedy decoding. Their prompts always go through the chat template (the page is
part of a user turn), even when text tasks run without it. The checks and their
scores are listed in `finstage.benchmarks.registry.VISUAL_CHECKS`; `SCORERS` scores each.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from finstage.answers import extract_flexible, numbers_equal
from finstage.benchmarks.registry import VISUAL_CHECKS
from finstage.evaluate.jatext import anls, levenshtein, rationale_similarity, rouge_scores
from finstage.evaluate.summary import Scored
from finstage.pagestore import PageStore
from finstage.records import Record, read_records
from finstage.scoring import mean
from finstage.textnorm import compact

if TYPE_CHECKING:  # torch and the model load when answers are generated; rescoring and
    from finstage.evaluate.lm import FinstageLM  # params validation read SCORERS without them


def char_error_rate(prediction: str, reference: str) -> float:
    """Edit distance over reference length, whitespace-insensitive and NFKC-normalised."""
    ref, hyp = compact(reference), compact(prediction)
    return levenshtein(hyp, ref) / max(len(ref), 1)


def generate_answers(
    lm: FinstageLM, records: list[Record], store: PageStore, max_new_tokens: int, task: str
) -> list[str]:
    """Greedy answers to each record's prompt (its messages but the last), in record order.

    Page images go in a user turn, so visual prompts always use the checkpoint's chat template,
    whatever `lm.templated` says for text tasks. Each page is shown as all its views (global view,
    then tiles; `PageStore.views`), one placeholder run each, as training shows it. A prompt is
    never cut: the image runs sit near its start, and cutting before or into one would misalign
    features and placeholders. A record
    whose prompt does not fit the window with the full `max_new_tokens` budget is answered ""
    and recorded in `lm.unscorable` as (task, record index).
    """
    import torch

    from finstage.chat import image_to_pixels

    image_size = lm.model.config.vision_config.image_size
    answers = [""] * len(records)
    fitting = []
    for i, record in enumerate(records):
        prompt = lm.encoder.encode_prompt(record["messages"][:-1], record["images"], store.views)
        if max_new_tokens < lm.max_length and len(prompt) + max_new_tokens <= lm.max_length:
            fitting.append((i, prompt))
        else:
            lm.unscorable.add((task, i))
    for start in tqdm(range(0, len(fitting), lm.batch_size), desc="visual"):
        batch = fitting[start : start + lm.batch_size]
        views = [v for i, _ in batch for pid in records[i]["images"] for v in store.views(pid)]
        pixels = (
            torch.stack([image_to_pixels(store.view_image(v), image_size) for v in views])
            if views
            else None
        )
        texts = lm.generate_ids([p for _, p in batch], max_new_tokens, pixel_values=pixels)
        for (i, _), text in zip(batch, texts, strict=True):
            answers[i] = text
    return answers


def ocr_scored(records: Sequence[Record], answers: list[str]) -> Scored:
    scored = Scored()
    golds = [r["messages"][-1]["content"] for r in records]
    scored.add("cer", [char_error_rate(a, g) for a, g in zip(answers, golds, strict=True)], mean)
    return scored


def vqa_scored(records: Sequence[Record], answers: list[str]) -> Scored:
    """Exact match and ANLS on the extractive first turn (its gold is the short value)."""
    golds = [r["answer"] or r["messages"][-1]["content"] for r in records]
    pairs = list(zip(answers, golds, strict=True))
    scored = Scored()
    scored.add("em", [float(compact(a) == compact(g)) for a, g in pairs], mean)
    scored.add("anls", [anls(a, [g]) for a, g in pairs], mean)
    return scored


_FINAL = re.compile(r"答え[:：]\s*(.+)")


def final_answer(text: str) -> str | None:
    """The number on the response's '答え：' line (the format finqa records teach)."""
    found = _FINAL.findall(text)
    return extract_flexible(found[-1]) if found else None


def finqa_scored(records: Sequence[Record], answers: list[str]) -> Scored:
    """Answer accuracy plus similarity of the worked calculation to the gold rationale.

    ROUGE runs on MeCab tokens: the default rouge-score tokeniser deletes Japanese.
    """
    golds = [r["messages"][-1]["content"] for r in records]
    finals = [final_answer(a) for a in answers]
    gold_values = [final_answer(g) for g in golds]
    scored = Scored(parsed=[float(f is not None) for f in finals])
    hits = [
        float(f is not None and v is not None and numbers_equal(f, v))
        for f, v in zip(finals, gold_values, strict=True)
    ]
    scored.add("acc", hits, mean)
    rouge = [rouge_scores(a, g) for a, g in zip(answers, golds, strict=True)]
    for key in ("rouge1", "rouge2", "rougeL"):
        scored.add(key, [r[key] for r in rouge], mean)
    sims = [rationale_similarity(a, g) for a, g in zip(answers, golds, strict=True)]
    scored.add("rationale_sim", sims, mean)
    return scored


SCORERS: dict[str, Callable[[Sequence[Record], list[str]], Scored]] = {
    "ocr": ocr_scored,
    "vqa": vqa_scored,
    "finqa_visual": finqa_scored,
}


def first_turn(record: Record) -> Record:
    """VQA is scored on the extractive first turn: its answer is the short gold value."""
    first_answer = next(i for i, m in enumerate(record["messages"]) if m["role"] == "assistant")
    return {**record, "messages": record["messages"][: first_answer + 1]}


def score_visual(
    lm: FinstageLM, visual: Path, store: PageStore, limit: int | None, max_new_tokens: int
) -> tuple[dict[str, Scored], list[dict]]:
    """Every visual check on its held-out records under `visual`: (blocks, predictions).

    Unscorable records (prompt too long for the window) are scored on an empty answer, like an
    unscorable text item, and listed in `lm.unscorable` under (check name, record index);
    `lm.window.counts(check name)` gives a check's `n_truncated` (always 0: visual prompts are
    never cut) and `n_unscorable`.
    """
    blocks, predictions = {}, []
    for check in VISUAL_CHECKS:
        records = list(islice(read_records(visual / check.name), limit))
        if check.name == "vqa":
            records = [first_turn(r) for r in records]
        answers = generate_answers(lm, records, store, max_new_tokens, check.name)
        blocks[check.name] = SCORERS[check.name](records, answers)
        predictions += [
            {
                "task": check.name,
                "id": r["id"],
                "gold": r["messages"][-1]["content"],
                "prediction": a,
            }
            for r, a in zip(records, answers, strict=True)
        ]
    return blocks, predictions
