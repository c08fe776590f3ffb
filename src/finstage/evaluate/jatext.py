"""Text similarity that works on Japanese: MeCab-token ROUGE, ANLS, and character n-gram F-score.

Why this module exists: ``rouge-score``'s default tokenizer lowercases and keeps only ``[a-z0-9]``
runs, so every kana and kanji is deleted and two unrelated Japanese sentences that share two
numbers score ROUGE-1 = 1.0. English sentence-embedding models (all-MiniLM-L6-v2) map most
financial kanji to ``[UNK]`` and score 当期純利益…増 vs 当期純損失…減 at cosine 1.0. So:

* ROUGE runs on MeCab surface tokens (fugashi + unidic-lite, offline);
* ANLS (Biten et al., 2019) scores short extractive answers (page VQA) with partial credit;
* rationale similarity is a chrF-style character n-gram F-score, which needs no tokenizer and no
  model, and treats kanji as the content they are.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence

import fugashi

from finstage.textnorm import compact, nfkc

__all__ = ["anls", "levenshtein", "rationale_similarity", "rouge_scores", "tokenize_ja"]

_TAGGERS: dict[int, fugashi.Tagger] = {}


def _tagger() -> fugashi.Tagger:
    """One MeCab tagger per process (keyed by pid, so a forked DataLoader/lm-eval worker builds
    its own instead of sharing the parent's C state). Loading the dictionary costs ~0.1 s."""
    pid = os.getpid()
    tagger = _TAGGERS.get(pid)
    if tagger is None:
        tagger = _TAGGERS[pid] = fugashi.Tagger()  # finds unidic-lite when full unidic is absent
    return tagger


def tokenize_ja(text: str) -> list[str]:
    """MeCab surface forms of ``text`` after NFKC and lower-casing, whitespace tokens dropped.

    NFKC makes ``１２％`` and ``12%`` the same tokens; lower-casing matches rouge-score's
    behaviour for Latin text. Mixed Japanese/English text works: MeCab keeps ASCII words whole.
    """
    normalised = nfkc(text or "").lower()
    if not normalised.strip():
        return []
    return [w.surface for w in _tagger()(normalised) if w.surface and not w.surface.isspace()]


def _f1(overlap: int, n_pred: int, n_ref: int) -> float:
    if overlap == 0 or n_pred == 0 or n_ref == 0:
        return 0.0
    precision, recall = overlap / n_pred, overlap / n_ref
    return 2 * precision * recall / (precision + recall)


def _ngram_f1(pred: Sequence[str], ref: Sequence[str], n: int) -> float:
    pred_grams = Counter(tuple(pred[i : i + n]) for i in range(len(pred) - n + 1))
    ref_grams = Counter(tuple(ref[i : i + n]) for i in range(len(ref) - n + 1))
    overlap = sum((pred_grams & ref_grams).values())  # clipped counts
    return _f1(overlap, sum(pred_grams.values()), sum(ref_grams.values()))


def _lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, 1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_scores(pred: str, ref: str) -> dict[str, float]:
    """ROUGE-1, ROUGE-2 (clipped n-gram counts) and ROUGE-L (longest common token subsequence,
    sentence level, β = 1 like rouge-score's ``rougeL``) F1 on `tokenize_ja` tokens; 0.0 when
    either side has none, as rouge-score does."""
    p, r = tokenize_ja(pred), tokenize_ja(ref)
    return {
        "rouge1": _ngram_f1(p, r, 1),
        "rouge2": _ngram_f1(p, r, 2),
        "rougeL": _f1(_lcs_length(p, r), len(p), len(r)),
    }


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insert/delete/substitute, unit costs) between two strings."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def _anls_normalise(text: str) -> str:
    """NFKC, case-folded, whitespace runs collapsed to one space and the ends stripped (the
    DocVQA convention, plus NFKC so full-width and half-width forms match)."""
    return " ".join(nfkc(text or "").casefold().split())


def anls(pred: str, golds: Sequence[str], threshold: float = 0.5) -> float:
    """Per-item ANLS (Biten et al., 2019): the best over ``golds`` of ``1 - NL`` where
    ``NL = levenshtein / max(len)`` of the normalised strings, and 0 when ``NL >= threshold``
    (a mostly-wrong answer gets nothing, not a little). Two empty strings score 1.
    Average the per-item values over a dataset to get the dataset ANLS."""
    if isinstance(golds, str):
        raise TypeError("golds must be a list of acceptable answers, not a string")
    if not golds:
        raise ValueError("anls needs at least one gold answer")
    p = _anls_normalise(pred)
    best = 0.0
    for gold in golds:
        g = _anls_normalise(gold)
        longest = max(len(p), len(g))
        nl = levenshtein(p, g) / longest if longest else 0.0
        if nl < threshold:
            best = max(best, 1.0 - nl)
    return best


def _char_ngrams(text: str, n: int) -> Counter[str]:
    return Counter(text[i : i + n] for i in range(len(text) - n + 1))


def rationale_similarity(pred: str, ref: str, max_n: int = 6, beta: float = 2.0) -> float:
    """chrF-style character n-gram F-score in [0, 1] (Popović 2015; chrF2 defaults β = 2, n = 1–6).

    Both texts are NFKC-normalised with all whitespace removed (Japanese has no word spaces, and
    chrF ignores whitespace too). For each order n the clipped n-gram precision and recall are
    computed; precision and recall are averaged over the orders both texts are long enough for,
    then combined as F_β, so recall (covering the reference rationale) weighs β² = 4 times
    precision. Language-agnostic and model-free: 利益 vs 損失 differ, unlike in English
    embedding models. Two empty texts score 1.0; one empty text scores 0.0.
    """
    p, r = compact(pred or ""), compact(ref or "")
    if not p or not r:
        return 1.0 if p == r else 0.0
    precisions, recalls = [], []
    for n in range(1, max_n + 1):
        pred_grams, ref_grams = _char_ngrams(p, n), _char_ngrams(r, n)
        if not pred_grams or not ref_grams:
            break  # longer orders are empty too
        overlap = sum((pred_grams & ref_grams).values())
        precisions.append(overlap / sum(pred_grams.values()))
        recalls.append(overlap / sum(ref_grams.values()))
    precision = sum(precisions) / len(precisions)
    recall = sum(recalls) / len(recalls)
    if precision == 0.0 and recall == 0.0:
        return 0.0
    b2 = beta * beta
    return (1 + b2) * precision * recall / (b2 * precision + recall)
