"""Held-out documents, and the visual evaluation items read back from their records.

The split is per document, never per page: pages of one PDF share layout, wording and numbers,
so a page-level split would leak. A document is held out when a hash of (seed, doc_sha256)
falls below `fraction`; this is stable when other documents are added or removed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from finstage.records import IMAGE_MARKER, read_records

VISUAL_EVAL_TASKS = ("ocr", "vqa", "finqa_visual")


def doc_score(doc_sha256: str, seed: int) -> float:
    digest = hashlib.sha256(f"finstage-split:{seed}:{doc_sha256}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_documents(doc_ids: Iterable[str], seed: int, fraction: float) -> set[str]:
    """The held-out (evaluation) documents. With two or more documents and fraction > 0, at least
    one document is held out and at least one is kept for training."""
    docs = sorted(set(doc_ids))
    scores = {d: doc_score(d, seed) for d in docs}
    held = {d for d in docs if scores[d] < fraction}
    if fraction > 0 and len(docs) >= 2:
        if not held:
            held = {min(docs, key=scores.__getitem__)}
        if held == set(docs):
            held.discard(max(docs, key=scores.__getitem__))
    return held


def visual_eval_items(
    eval_dir: Path, tasks: Iterable[str] = VISUAL_EVAL_TASKS
) -> Iterator[dict[str, Any]]:
    """Flat items for visual evaluation from ``data/synth/eval/<task>/``:
    ``{"id", "task", "kind", "page_id", "question", "answer"}`` (question without the image
    marker; for OCR the question is the transcription instruction, the answer the reference
    text, and ids ending in ``:0`` are the page-top chunks). `kind` is the question type
    (cell, fact_amount, …; diff, pct_change, …; ocr)."""
    for task in tasks:
        for record in read_records(Path(eval_dir) / task):
            question = record["messages"][0]["content"].replace(IMAGE_MARKER, "").strip()
            yield {
                "id": record["id"],
                "task": task,
                "kind": record["meta"].get("kind", task),
                "page_id": record["images"][0],
                "question": question,
                "answer": record["answer"],
            }
