"""Full fine-tuning of the text LLM on the warm-up pairs: a plain loop, nothing to configure.

Full, not LoRA: a config-built LLM's embeddings and LM head are random, and an adapter cannot
move them (measured: p2_s1's LoRA from a random P0 stays near chance loss at any learning rate).
Steps, not epochs: the warm-up is a fixed budget of practice, the same on every machine.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from finstage.chat import Encoded, pad_batch


@dataclass(frozen=True)
class LoopConfig:
    steps: int
    batch_size: int
    lr: float
    warmup_ratio: float  # linear warm-up share of the steps, then cosine to zero
    weight_decay: float
    max_grad_norm: float
    seed: int


def batches(examples: list[Encoded], size: int, seed: int) -> Iterator[list[Encoded]]:
    """Endless batches: each pass over the examples in a fresh seeded order."""
    rng = random.Random(seed)
    while True:
        order = list(range(len(examples)))
        rng.shuffle(order)
        for start in range(0, len(order) - size + 1, size):
            yield [examples[i] for i in order[start : start + size]]


def lr_factor(step: int, steps: int, warmup_ratio: float) -> float:
    warm = max(1, int(warmup_ratio * steps))
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))


def train(
    model: torch.nn.Module, examples: list[Encoded], cfg: LoopConfig, pad_id: int
) -> list[float]:
    """Train every parameter of `model` for `cfg.steps` steps; the loss of each step."""
    if len(examples) < cfg.batch_size:
        raise ValueError(
            f"{len(examples)} warm-up examples, fewer than one batch of {cfg.batch_size}"
        )
    torch.manual_seed(cfg.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, cfg.steps, cfg.warmup_ratio)
    )
    model.train()
    losses = []
    stream = batches(examples, cfg.batch_size, cfg.seed)
    for _ in range(cfg.steps):
        batch = pad_batch(next(stream), pad_id)
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    model.eval()
    return losses
