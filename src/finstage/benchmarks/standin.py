"""Shared machinery of the generated evaluation stand-ins: the raw files and their manifest,
and keeping every item out of the training data.

An item a model has trained on measures memory, not skill, so each stand-in item is checked
against the training records' text before it is kept: an item whose text occurs there, as is
or after `compact` (full-width digits, re-wrapped lines), is dropped and counted.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finstage.config import require
from finstage.records import Record
from finstage.textnorm import compact


@dataclass
class ItemCount:
    """A stand-in whose only size is how many items it has."""

    n_items: int

    def check(self, where: str) -> None:
        require(self.n_items >= 1, f"{where}.n_items", f"must be >= 1, got {self.n_items}")


@dataclass
class StandIns:
    """The stand-ins being written: where, from which seed, what they must not repeat, and the
    manifest entry of each benchmark (its source spec, sizes and the files' sha256)."""

    out_dir: Path
    seed: int
    training_prompts: set[str]  # user turns of the training records
    training_text: str  # every training message, joined, also in `compact` form
    manifest: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def excluding(cls, out_dir: Path, seed: int, records: Iterable[Record]) -> StandIns:
        prompts: set[str] = set()
        chunks: list[str] = []
        for r in records:
            for m in r["messages"]:
                chunks.append(m["content"])
                if m["role"] == "user":
                    prompts.add(m["content"])
        joined = "\n\x00\n".join(chunks)
        return cls(Path(out_dir), seed, prompts, joined + "\n\x00\n" + compact(joined))

    def in_training(self, text: str) -> bool:
        return text in self.training_text or compact(text) in self.training_text

    def entry(self, name: str, fmt: str, source: dict[str, str], **facts: Any) -> dict[str, Any]:
        """A new manifest entry for benchmark `name`; `source` is its SourceSpec, relative."""
        entry = {"format": fmt, "source": source, "files": {}, **facts}
        self.manifest[name] = entry
        return entry

    def file(self, entry: dict[str, Any], rel: str, payload: str | bytes) -> None:
        """Write one raw file under the output folder and record its sha256 in `entry`."""
        path = self.out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(payload, str):
            path.write_text(payload, encoding="utf-8")
            payload = payload.encode()
        else:
            path.write_bytes(payload)
        entry["files"][rel] = hashlib.sha256(payload).hexdigest()


def jsonl(rows: Iterable[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def draw_unique(
    targets: Sequence[Any],
    make: Callable[[random.Random, Any], tuple[str, Any]],
    rng: random.Random,
    out: StandIns,
    what: str,
) -> tuple[list[Any], int]:
    """One item per target, each with a new key absent from training; returns (items, dropped).

    The key is the text a model reads for the item; it is what the contamination check looks for.
    """
    items: list[Any] = []
    seen: set[str] = set()
    dropped = 0
    for target in targets:
        for _ in range(1000):
            key, item = make(rng, target)
            if key in seen:
                continue
            seen.add(key)
            if out.in_training(key):
                dropped += 1
                continue
            items.append(item)
            break
        else:
            raise RuntimeError(
                f"could only generate {len(items)} of {len(targets)} distinct {what} items "
                f"disjoint from training; lower benchmarks.{what}.n_items"
            )
    return items, dropped


def untargeted(make: Callable[[random.Random], tuple[str, Any]]) -> Callable:
    """A maker that needs no target, for draw_unique."""
    return lambda rng, _target: make(rng)


def edinet_codes(rng: random.Random, n: int) -> list[str]:
    """`n` distinct EDINET codes E10000..E39999 from a seeded start (7919 is prime to 30000)."""
    if n > 30000:
        raise ValueError(f"at most 30000 distinct EDINET codes, asked for {n}")
    first = rng.randrange(30000)
    return [f"E{10000 + (first + 7919 * i) % 30000:05d}" for i in range(n)]
