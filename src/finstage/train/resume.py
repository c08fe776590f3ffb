"""Snapshots that let an interrupted training stage continue where it stopped.

DVC deletes a stage's outputs before rerunning it, so snapshots live outside them, under
`.finstage/resume/<stage>/`, keyed by a fingerprint of everything that determines the run (plan,
starting checkpoint, data). A snapshot from a different run is ignored, never half-applied.
Trainable weights are safetensors; optimizer, scheduler and RNG state are loaded with
`weights_only=True`, so no arbitrary pickle is ever executed.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

WEIGHTS = "trainable.safetensors"
STATE = "state.pt"
META = "meta.json"


@dataclass
class Snapshot:
    step: int
    tokens: int
    history: list[tuple[int, dict[str, float]]]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    rng: torch.Tensor


class ResumeStore:
    def __init__(self, root: Path, fingerprint: str, every: int):
        self.root = Path(root)
        self.fingerprint = fingerprint
        self.every = every

    def due(self, step: int) -> bool:
        return self.every > 0 and step % self.every == 0

    def save(self, model: torch.nn.Module, snapshot: Snapshot) -> None:
        """Write to a temporary folder, then swap it in: a kill mid-save leaves the old snapshot."""
        tmp = self.root.with_name(self.root.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        trainable = {
            n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad
        }
        save_file(trainable, tmp / WEIGHTS)
        torch.save(
            {"optimizer": snapshot.optimizer, "scheduler": snapshot.scheduler, "rng": snapshot.rng},
            tmp / STATE,
        )
        meta = {
            "fingerprint": self.fingerprint,
            "step": snapshot.step,
            "tokens": snapshot.tokens,
            "history": snapshot.history,
        }
        (tmp / META).write_text(json.dumps(meta))
        shutil.rmtree(self.root, ignore_errors=True)
        tmp.rename(self.root)

    def load(self, model: torch.nn.Module) -> Snapshot | None:
        """Restore trainable weights into `model`; the rest, or None without a usable snapshot."""
        meta_path = self.root / META
        if not meta_path.exists():
            return None
        meta = json.loads(meta_path.read_text())
        if meta["fingerprint"] != self.fingerprint:
            return None
        weights = load_file(self.root / WEIGHTS)
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, tensor in weights.items():
                params[name].copy_(tensor)
        state = torch.load(self.root / STATE, weights_only=True)
        history = [(int(s), m) for s, m in meta["history"]]
        return Snapshot(
            meta["step"],
            meta["tokens"],
            history,
            state["optimizer"],
            state["scheduler"],
            state["rng"],
        )

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
