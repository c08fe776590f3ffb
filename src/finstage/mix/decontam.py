"""Decontamination check: character n-gram overlap between training mixtures and eval sets.

Every mixture is indexed by character n-grams and every item of every evaluation set is checked
against each index: the registered text benchmarks by the item text each benchmark names, and
the held-out page records by their gold answers (their prompts share the training tasks'
wording by design). An item sharing more than `max_share` of its n-grams with a mixture fails
the check, naming mixture, set and item.

Why character n-grams: Japanese has no word spaces, so the usual "13 words" rule has no words to
count; n consecutive characters of NFKC-normalised, whitespace-free text play that role (n around
13-20 is a sentence fragment, long enough that a shared n-gram is rarely a coincidence, short
enough to catch copied passages that were re-wrapped or re-spaced).

Why a polynomial hash and not blake2b per n-gram: a 200k-text mixture holds tens of millions of
n-grams, and a Python-level hashlib call costs ~1 µs each (tens of seconds). Instead each text's
code points are hashed for all window positions at once with numpy (a 64-bit polynomial rolling
hash, arithmetic mod 2^64), and the index is a sorted 64-bit integer array: 8 bytes per distinct
n-gram, membership by binary search. A false match needs a 64-bit collision (expected count
~5e-7 for 10^7 training × 10^6 eval n-grams). Whole texts shorter than n, which have no n-gram,
are hashed with blake2b (64-bit digest) and compared whole.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from finstage.benchmarks.registry import BENCHMARKS, VISUAL_CHECKS, Sources
from finstage.config import require
from finstage.records import Record, read_records
from finstage.textnorm import compact

_BASE = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit multiplier (golden-ratio constant)
_CHUNK_CHARS = 4_000_000  # characters hashed per numpy batch: bounds peak memory (~100 MB)
_SUMMARY_ITEMS_PER_PAIR = 20


def _whole_hash(text: str) -> int:
    """64-bit blake2b of a (normalised) text, for texts too short to have an n-gram."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def _joined_window_hashes(texts: Sequence[str], n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(hashes, valid)`` for every length-n window of the joined texts: the 64-bit polynomial
    hash of each window (viewed as int64, because numpy sorts signed keys faster) and a mask of
    the windows that lie inside one text (not straddling a boundary)."""
    codes = np.frombuffer("".join(texts).encode("utf-32-le"), dtype="<u4").astype(np.uint64)
    span = codes.size - n + 1
    if span <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=bool)
    hashes = codes[:span].copy()
    for k in range(1, n):  # Horner: c0·B^(n-1) + c1·B^(n-2) + … + c(n-1), wrapping mod 2^64
        hashes *= _BASE
        hashes += codes[k : k + span]
    # a window is valid when at least n characters of its own text remain from its start
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    remaining = np.repeat(np.cumsum(lengths), lengths)[:span] - np.arange(span, dtype=np.int64)
    return hashes.view(np.int64), remaining >= n


def _window_hashes(texts: Sequence[str], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hashes of every length-n character window of each text (texts already normalised).

    Returns ``(hashes, owner, start)``: the window hash, the index of its text in ``texts``, and
    its start offset in that text, ordered by text and then position.
    """
    hashes, valid = _joined_window_hashes(texts, n)
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    counts = np.maximum(lengths - n + 1, 0)
    owner = np.repeat(np.arange(len(texts), dtype=np.int64), counts)
    first_window = np.cumsum(counts) - counts
    start = np.arange(owner.size, dtype=np.int64) - first_window[owner]
    return hashes[valid], owner, start


def _chunks(texts: Iterable[str], max_chars: int) -> Iterable[list[str]]:
    batch: list[str] = []
    size = 0
    for text in texts:
        batch.append(text)
        size += len(text)
        if size >= max_chars:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _sorted_unique(values: np.ndarray, presorted_runs: bool = False) -> np.ndarray:
    """Sorted distinct values; sorts ``values`` in place (callers pass a fresh array).

    Not ``np.unique``: numpy 2.x takes a hash-table path there that is ~10x slower than sorting
    for tens of millions of 64-bit keys. ``presorted_runs``: ``values`` is a concatenation of
    sorted arrays, which timsort ("stable") merges in near-linear time where quicksort does not.
    """
    values.sort(kind="stable" if presorted_runs else "quicksort")
    if values.size < 2:
        return values
    keep = np.empty(values.size, dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


def _contains(sorted_values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Boolean mask: which ``queries`` occur in the sorted array ``sorted_values``. The queries
    are searched in sorted order: binary searches for random keys in a large array are
    cache-miss bound (20x slower than for sorted keys)."""
    found = np.zeros(queries.size, dtype=bool)
    if sorted_values.size == 0 or queries.size == 0:
        return found
    order = np.argsort(queries)
    ordered = queries[order]
    at = np.searchsorted(sorted_values, ordered)
    at[at == sorted_values.size] = 0
    found[order] = sorted_values[at] == ordered
    return found


@dataclass(frozen=True)
class Overlap:
    """How much of one eval item was seen in training.

    ``share``: fraction of the item's n-gram positions whose n-gram occurs in the training texts
    (an item shorter than n: 1.0 if a whole training text equals it, else 0.0; an empty item:
    0.0). ``example``: the first such n-gram (or the short item itself), to show a user.
    """

    share: float
    example: str | None


@dataclass(frozen=True)
class TrainIndex:
    """The distinct hashed character n-grams of a set of training texts.

    ``grams``: sorted unique 64-bit window hashes (as int64); ``short``: sorted unique 64-bit
    blake2b hashes of the texts shorter than ``n`` (compared whole). Build with `TrainIndex.build`.
    """

    n: int
    grams: np.ndarray
    short: np.ndarray

    @classmethod
    def build(cls, texts: Iterable[str], n: int) -> TrainIndex:
        """Index ``texts`` (any iterable, consumed once) by their character ``n``-grams."""
        if n < 1:
            raise ValueError("n must be at least 1")
        parts: list[np.ndarray] = []
        short: set[int] = set()
        for batch in _chunks((compact(t) for t in texts), _CHUNK_CHARS):
            hashes, valid = _joined_window_hashes(batch, n)
            parts.append(_sorted_unique(hashes[valid]))
            short.update(_whole_hash(t) for t in batch if 0 < len(t) < n)
        if len(parts) == 1:
            grams = parts[0]
        elif parts:
            grams = _sorted_unique(np.concatenate(parts), presorted_runs=True)
        else:
            grams = np.empty(0, dtype=np.int64)
        short_array = np.array(sorted(short), dtype=np.int64)
        return cls(n=n, grams=grams, short=short_array)

    def overlaps(self, texts: Sequence[str]) -> list[Overlap]:
        """`Overlap` for each of ``texts``, computed in vectorised batches."""
        results: list[Overlap] = []
        for batch in _chunks((compact(t) for t in texts), _CHUNK_CHARS):
            results.extend(self._overlaps_normalised(batch))
        return results

    def _overlaps_normalised(self, texts: list[str]) -> list[Overlap]:
        results = [Overlap(0.0, None)] * len(texts)
        hashes, owner, start = _window_hashes(texts, self.n)
        seen = _contains(self.grams, hashes)
        windows = np.bincount(owner, minlength=len(texts))
        hits = np.bincount(owner[seen], minlength=len(texts))
        # windows are ordered by owner then position: an owner's first seen window is its earliest
        seen_owner, seen_start = owner[seen], start[seen]
        first = np.ones(seen_owner.size, dtype=bool)
        first[1:] = seen_owner[1:] != seen_owner[:-1]
        first_start = dict(zip(seen_owner[first].tolist(), seen_start[first].tolist(), strict=True))
        for i, text in enumerate(texts):
            if windows[i]:
                at = first_start.get(i)
                example = text[at : at + self.n] if at is not None else None
                results[i] = Overlap(float(hits[i] / windows[i]), example)
            elif text:  # shorter than n: compared whole
                whole = np.array([_whole_hash(text)], dtype=np.int64)
                if _contains(self.short, whole)[0]:
                    results[i] = Overlap(1.0, text)
        return results


@dataclass(frozen=True)
class Flag:
    """One eval item whose n-gram share with a training mixture is above the limit."""

    mixture: str
    eval_set: str
    item_id: str
    share: float
    example: str | None


@dataclass(frozen=True)
class PairCount:
    """Per (mixture, eval set) totals: items checked, items flagged, and the largest share."""

    mixture: str
    eval_set: str
    n_items: int
    n_flagged: int
    worst_share: float


@dataclass
class Report:
    """Result of `check`: every flagged item plus per-pair counts."""

    n: int
    max_share: float
    flagged: list[Flag] = field(default_factory=list)
    pairs: list[PairCount] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no eval item is above ``max_share`` for any mixture."""
        return not self.flagged

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (for a DVC metrics/plots file)."""
        return {
            "ok": self.ok,
            "n": self.n,
            "max_share": self.max_share,
            "n_flagged": len(self.flagged),
            "pairs": [asdict(p) for p in self.pairs],
            "flagged": [asdict(f) for f in self.flagged],
        }

    def summary(self) -> str:
        """A human-readable verdict naming each offending mixture, eval set and item."""
        n_items = sum(p.n_items for p in self.pairs)
        worst = max((p.worst_share for p in self.pairs), default=0.0)
        if self.ok:
            return (
                f"decontamination ok: no eval item shares more than {self.max_share:.1%} of its "
                f"{self.n}-grams with a training mixture ({len(self.pairs)} mixture × eval-set "
                f"pairs, {n_items} item checks, worst share {worst:.1%})"
            )
        lines = [
            f"decontamination FAILED: {len(self.flagged)} eval item(s) share more than "
            f"{self.max_share:.1%} of their {self.n}-grams with a training mixture"
        ]
        for pair in self.pairs:
            if not pair.n_flagged:
                continue
            lines.append(
                f"  mixture {pair.mixture!r} x eval set {pair.eval_set!r}: "
                f"{pair.n_flagged}/{pair.n_items} items flagged (worst {pair.worst_share:.1%})"
            )
            flags = [
                f for f in self.flagged if (f.mixture, f.eval_set) == (pair.mixture, pair.eval_set)
            ]
            for flag in flags[:_SUMMARY_ITEMS_PER_PAIR]:
                lines.append(
                    f"    item {flag.item_id!r}: {flag.share:.1%} of {self.n}-grams seen in "
                    f"training, e.g. {flag.example!r}"
                )
            if len(flags) > _SUMMARY_ITEMS_PER_PAIR:
                lines.append(f"    … and {len(flags) - _SUMMARY_ITEMS_PER_PAIR} more (see to_json)")
        lines.append(
            "fix: remove the overlapping texts (or their source documents) from the mixture, "
            "or drop the items from the eval set"
        )
        return "\n".join(lines)


@dataclass
class DecontamConfig:
    """The `decontam` params: n-gram length in characters and the share that fails an item."""

    n: int
    max_share: float

    def check(self, where: str) -> None:
        require(self.n >= 5, f"{where}.n", "must be >= 5 characters")
        require(0.0 <= self.max_share <= 1.0, f"{where}.max_share", "must be in [0, 1]")


def check(
    mixtures: dict[str, list[str]],
    eval_sets: dict[str, dict[str, str]],
    n: int,
    max_share: float,
) -> Report:
    """Check every eval item against every training mixture.

    ``mixtures``: mixture name → training texts. ``eval_sets``: eval set name → {item id → item
    text}. An item is flagged for a mixture when its `Overlap.share` exceeds ``max_share``
    (``max_share=0`` flags any shared n-gram). One index is built per mixture.
    """
    if not 0.0 <= max_share <= 1.0:
        raise ValueError("max_share must be in [0, 1]")
    report = Report(n=n, max_share=max_share)
    for mixture, texts in mixtures.items():
        index = TrainIndex.build(texts, n)
        for eval_set, items in eval_sets.items():
            ids = list(items)
            overlaps = index.overlaps([items[i] for i in ids])
            flags = [
                Flag(mixture, eval_set, str(item_id), o.share, o.example)
                for item_id, o in zip(ids, overlaps, strict=True)
                if o.share > max_share
            ]
            report.flagged.extend(flags)
            report.pairs.append(
                PairCount(
                    mixture=mixture,
                    eval_set=eval_set,
                    n_items=len(ids),
                    n_flagged=len(flags),
                    worst_share=max((o.share for o in overlaps), default=0.0),
                )
            )
    return report


def record_text(record: Record) -> str:
    return "\n".join(m["content"] for m in record["messages"])


def answers_text(record: Record) -> str:
    return "\n".join(m["content"] for m in record["messages"] if m["role"] == "assistant")


def eval_sets(sources: Sources, visual: Path) -> dict[str, dict[str, str]]:
    """{eval set: {item id: item text}} for every registered benchmark (read whole, as
    published) and every visual check (page-specific content: the gold answers, not the task's
    prompt wording)."""
    sets = {}
    for benchmark in BENCHMARKS:
        docs = benchmark.load_docs(getattr(sources, benchmark.name))
        sets[benchmark.name] = {str(d["id"]): benchmark.item_text(d) for d in docs}
    for visual_check in VISUAL_CHECKS:
        records = read_records(visual / visual_check.name)
        sets[f"visual/{visual_check.name}"] = {r["id"]: answers_text(r) for r in records}
    return sets


def decontaminate(
    cfg: DecontamConfig, mix: Path, warmup: Path, visual: Path, sources: Sources
) -> Report:
    """Check every evaluation set against every mixture under `mix` and the warm-up pairs."""
    mixtures = {
        d.name: [record_text(r) for r in read_records(d)]
        for d in sorted(p for p in mix.iterdir() if p.is_dir())
    }
    if any(warmup.glob("*.parquet")):  # none when the warm-up was skipped for a pretrained LLM
        mixtures["warmup"] = [record_text(r) for r in read_records(warmup)]
    return check(mixtures, eval_sets(sources, visual), cfg.n, cfg.max_share)
