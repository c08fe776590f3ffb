"""The `warmup` section of params.yaml (imported by whole-file validation, so no torch here)."""

from __future__ import annotations

from dataclasses import dataclass

from finstage.config import require
from finstage.warmup.pairs import PairCounts


@dataclass(frozen=True)
class WarmupConfig:
    pairs: PairCounts
    steps: int
    batch_size: int
    lr: float
    warmup_ratio: float
    weight_decay: float
    max_grad_norm: float
    max_seq_len: int
    seed: int

    def check(self, where: str) -> None:
        require(self.steps >= 1, f"{where}.steps", "must be >= 1")
        require(self.batch_size >= 1, f"{where}.batch_size", "must be >= 1")
        require(
            0 <= self.pairs.format_share <= 1, f"{where}.pairs.format_share", "must be in [0, 1]"
        )
