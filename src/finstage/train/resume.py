"""Snapshots that let an interrupted training stage continue where it stopped.

DVC deletes a stage's outputs before rerunning it, so snapshots live outside them, under
`.finstage/resume/<stage>/`, keyed by a fingerprint of everything that determines the run (plan,
starting checkpoint, data). A snapshot from a different run is discarded with a message, never
half-applied; a snapshot that is used is announced ("resuming <stage> from step N"). Those facts go
to stdout only: the checkpoint and curves must not depend on whether a run was resumed, or every
downstream stage would rerun after a resume that changed no weight.

A snapshot is written after the first optimizer step (so a kill seconds into training loses
almost nothing), every `save_every` steps, and whenever `SNAPSHOT_SECONDS` of wall-clock time
have passed since the last one (so a long `save_every` at paper scale loses at most that much).
Saving only reads the training state, so when snapshots happen never changes the trajectory.

Nothing in a snapshot is a pickle: the folder sits outside DVC's hashes, so anyone who can write
there could plant one, and unpickling runs code (`weights_only=True` narrows that, but has been
bypassed before). Trainable weights and every tensor of the optimizer, scheduler and RNG state
are safetensors; the structure around them (param groups, steps, history) is JSON, whose floats
round-trip exactly, so the resumed run stays bit-identical. A folder in any other layout (such
as the `state.pt` an older version wrote) is ignored and the stage starts fresh.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

WEIGHTS = "trainable.safetensors"
STATE = "state.json"  # optimizer, scheduler and RNG state, tensors replaced by references
STATE_TENSORS = "state.safetensors"  # the tensors those references name
META = "meta.json"
# meta.json's `format`; any other folder is not read. /2: curves log `tokens`, not tokens/s, so a
# /1 history replayed into the curves would not match a fresh run's.
FORMAT = "safetensors+json/2"
SNAPSHOT_SECONDS = 600.0


@dataclass
class Snapshot:
    step: int
    tokens: int
    history: list[tuple[int, dict[str, float]]]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    rng: torch.Tensor


class ResumeStore:
    def __init__(
        self,
        root: Path,
        fingerprint: str,
        every: int,
        name: str | None = None,
        seconds: float = SNAPSHOT_SECONDS,
    ):
        """`every` = 0 turns snapshots off; `name` (default: the folder's) is what messages say."""
        self.root = Path(root)
        self.fingerprint = fingerprint
        self.every = every
        self.name = name or self.root.name
        self.seconds = seconds
        self.last_save = time.monotonic()

    def due(self, step: int) -> bool:
        """After step 1, every `every` steps, and once `seconds` passed since the last save."""
        if self.every <= 0:
            return False
        late = time.monotonic() - self.last_save >= self.seconds
        return step == 1 or step % self.every == 0 or late

    def save(self, model: torch.nn.Module, snapshot: Snapshot) -> None:
        """Write to a temporary folder, then swap it in: a kill mid-save leaves the old snapshot."""
        tmp = self.root.with_name(self.root.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        trainable = {
            n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad
        }
        save_file(trainable, tmp / WEIGHTS)
        tensors: dict[str, torch.Tensor] = {}
        state = {"optimizer": snapshot.optimizer, "scheduler": snapshot.scheduler}
        state["rng"] = snapshot.rng
        (tmp / STATE).write_text(json.dumps(encode_tree(state, tensors)))
        save_file(tensors, tmp / STATE_TENSORS)
        meta = {
            "format": FORMAT,
            "fingerprint": self.fingerprint,
            "step": snapshot.step,
            "tokens": snapshot.tokens,
            "history": snapshot.history,
        }
        (tmp / META).write_text(json.dumps(meta))
        shutil.rmtree(self.root, ignore_errors=True)
        tmp.rename(self.root)
        self.last_save = time.monotonic()

    def load(self, model: torch.nn.Module, quiet: bool = False) -> Snapshot | None:
        """Restore trainable weights into `model`; the rest, or None without a usable snapshot.

        Every file is checked to be there before the model is touched, so an unusable folder
        leaves the model as it was loaded. An unusable snapshot is left in place (other processes
        may be reading it): the run's first save replaces it. `quiet` silences the messages on
        all but the main process."""
        say = (lambda _: None) if quiet else print
        meta_path = self.root / META
        if not meta_path.exists():
            return None
        meta = json.loads(meta_path.read_text())
        if meta.get("fingerprint") != self.fingerprint:
            say(
                f"resume: discarding the snapshot in {self.root} (step {meta.get('step')}): it "
                f"was made by a different run of {self.name} (plan, starting checkpoint or data "
                "changed); starting from step 0"
            )
            return None
        files = [self.root / name for name in (WEIGHTS, STATE, STATE_TENSORS)]
        if meta.get("format") != FORMAT or not all(f.is_file() for f in files):
            say(f"resume: {self.root} is not a {FORMAT} snapshot; starting from step 0")
            return None
        state = decode_tree(json.loads(files[1].read_text()), load_file(files[2]))
        weights = load_file(files[0])
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, tensor in weights.items():
                params[name].copy_(tensor)
        history = [(int(s), m) for s, m in meta["history"]]
        say(f"resuming {self.name} from step {meta['step']}")
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


TENSOR, TUPLE, PAIRS = "__tensor__", "__tuple__", "__pairs__"


def encode_tree(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """`value` as JSON data, each tensor moved into `tensors` and replaced by its key.

    Covers what optimizer and scheduler state dicts hold: tensors, dicts (an optimizer's state
    is keyed by int parameter ids), lists, tuples (AdamW's betas) and scalars. Tuples and
    non-string keys are tagged so `decode_tree` gives back the same types; anything else is a
    TypeError rather than a snapshot that would restore differently.
    """
    if isinstance(value, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = value.detach().cpu().contiguous()
        return {TENSOR: key}
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: encode_tree(v, tensors) for k, v in value.items()}
        return {
            PAIRS: [[encode_tree(k, tensors), encode_tree(v, tensors)] for k, v in value.items()]
        }
    if isinstance(value, tuple):
        return {TUPLE: [encode_tree(v, tensors) for v in value]}
    if isinstance(value, list):
        return [encode_tree(v, tensors) for v in value]
    if value is None or type(value) in (bool, int, float, str):
        return value
    raise TypeError(f"resume state holds a {type(value).__name__} object, which is not plain data")


def decode_tree(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of `encode_tree`."""
    if isinstance(value, list):
        return [decode_tree(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if TENSOR in value:
        return tensors[value[TENSOR]]
    if TUPLE in value:
        return tuple(decode_tree(v, tensors) for v in value[TUPLE])
    if PAIRS in value:
        return {decode_tree(k, tensors): decode_tree(v, tensors) for k, v in value[PAIRS]}
    return {k: decode_tree(v, tensors) for k, v in value.items()}
