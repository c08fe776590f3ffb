"""One training mixture per stage: named sources, weights, a total size, a seed.

Each training stage reads exactly one mixture, so what a stage saw is a DVC output with a hash,
not a side effect of a data loader. Sources are record directories found by name under the
source roots (``data/synth/train/ocr``, ``data/distill/math_cot``, …). Exact duplicates
(same normalised message text on the same images) are removed first; then each source gets its
share of the total (largest remainder), sampled without replacement, or repeated whole plus a
sample when the source is smaller than its share, which is reported as upsampling.
"""

from __future__ import annotations

import json
import random
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from finstage.config import require
from finstage.records import Record, read_records, write_records


@dataclass
class MixConfig:
    total: int
    seed: int
    sources: dict[str, float]  # source name → weight (normalised over the listed sources)
    dedup: bool

    def check(self, where: str) -> None:
        require(self.total >= 1, f"{where}.total", f"must be >= 1, got {self.total}")
        require(bool(self.sources), f"{where}.sources", "must name at least one source")
        for name, weight in self.sources.items():
            require(weight >= 0, f"{where}.sources.{name}", f"must be >= 0, got {weight}")
        require(sum(self.sources.values()) > 0, f"{where}.sources", "weights must not all be 0")


def normalized_key(record: Record) -> str:
    """Exact-duplicate key: NFKC, whitespace-collapsed message text, plus the images it shows."""
    parts = [
        f"{m['role']}\x1f{' '.join(unicodedata.normalize('NFKC', m['content']).split())}"
        for m in record["messages"]
    ]
    return "\x1e".join(parts) + "\x1d" + "\x1f".join(record["images"])


def allocate(total: int, weights: dict[str, float]) -> dict[str, int]:
    """Largest-remainder split of `total` by `weights` (ties broken by name), summing to total."""
    wsum = sum(Fraction(w).limit_denominator(10**9) for w in weights.values())
    exact = {k: Fraction(w).limit_denominator(10**9) * total / wsum for k, w in weights.items()}
    counts = {k: int(v) for k, v in exact.items()}
    left = total - sum(counts.values())
    for k in sorted(exact, key=lambda k: (-(exact[k] - counts[k]), k))[:left]:
        counts[k] += 1
    return counts


def find_source(name: str, roots: Iterable[Path]) -> Path:
    roots = [Path(r) for r in roots]
    for root in roots:
        if (root / name).is_dir():
            return root / name
    raise FileNotFoundError(
        f"mixture source {name!r} not found under {[str(r) for r in roots]}: check the source "
        f"name in params.yaml (mix.<stage>.sources) or run the stage that writes it"
    )


@dataclass
class SourceStats:
    available: int
    unique: int
    requested: int
    taken_unique: int
    upsampled: bool

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def mix_records(
    sources: dict[str, list[Record]], cfg: MixConfig
) -> tuple[list[Record], dict[str, SourceStats]]:
    """Deduplicate, allocate, sample and shuffle; deterministic for the same inputs and seed."""
    seen: set[str] = set()
    pools: dict[str, list[Record]] = {}
    for name in sorted(sources):  # dedup across sources in a fixed order
        pool = []
        for record in sorted(sources[name], key=lambda r: r["id"]):
            key = normalized_key(record) if cfg.dedup else record["id"]
            if key in seen:
                continue
            seen.add(key)
            pool.append(record)
        pools[name] = pool
    shares = allocate(cfg.total, cfg.sources)
    mixture: list[Record] = []
    stats: dict[str, SourceStats] = {}
    for name in sorted(cfg.sources):
        pool, want = pools.get(name, []), shares[name]
        rng = random.Random(f"finstage-mix:{cfg.seed}:{name}")
        if want and not pool:
            raise ValueError(f"mixture source {name!r} is empty but its share is {want} records")
        picked: list[Record] = []
        if want <= len(pool):
            picked = rng.sample(pool, want)
        else:  # smaller than its share: every record once per full pass, then a sample
            for rep in range(want // len(pool)):
                picked += [_copy(r, rep) for r in pool]
            picked += [_copy(r, want // len(pool)) for r in rng.sample(pool, want % len(pool))]
        mixture += picked
        stats[name] = SourceStats(
            available=len(sources.get(name, [])),
            unique=len(pool),
            requested=want,
            taken_unique=len({r["meta"].get("mix_of", r["id"]) for r in picked}),
            upsampled=want > len(pool),
        )
    random.Random(f"finstage-mix:{cfg.seed}:shuffle").shuffle(mixture)
    return mixture, stats


def _copy(record: Record, rep: int) -> Record:
    if rep == 0:
        return record
    return {
        **record,
        "id": f"{record['id']}#r{rep}",
        "meta": {**record["meta"], "mix_of": record["id"]},
    }


def format_table(stats: dict[str, SourceStats], cfg: MixConfig) -> str:
    rows = [("source", "weight", "available", "unique", "taken", "note")]
    for name, s in stats.items():
        note = f"upsampled x{s.requested / max(s.unique, 1):.2f}" if s.upsampled else ""
        rows.append(
            (
                name,
                f"{cfg.sources[name]:g}",
                str(s.available),
                str(s.unique),
                str(s.requested),
                note,
            )
        )
    rows.append(("total", "", "", "", str(sum(s.requested for s in stats.values())), ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def build_mixture(
    cfg: MixConfig, roots: Iterable[Path], out_dir: Path, name: str = ""
) -> dict[str, Any]:
    """Read the sources named in `cfg` under `roots`, mix them, write the shards and stats.json."""
    roots = list(roots)
    sources = {src: list(read_records(find_source(src, roots))) for src in sorted(cfg.sources)}
    mixture, stats = mix_records(sources, cfg)
    out_dir = Path(out_dir)
    for stale in out_dir.glob("part-*.parquet"):
        stale.unlink()
    written = write_records(out_dir, mixture)
    table = format_table(stats, cfg)
    print(f"mixture {name or out_dir}: {written} records (seed {cfg.seed})\n{table}")
    summary = {
        "stage": name,
        "total": written,
        "seed": cfg.seed,
        "dedup": cfg.dedup,
        "duplicates_removed": sum(s.available - s.unique for s in stats.values()),
        "sources": {k: v.as_dict() for k, v in stats.items()},
        "upsampled": sorted(k for k, v in stats.items() if v.upsampled),
    }
    (out_dir / "stats.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n")
    return summary
