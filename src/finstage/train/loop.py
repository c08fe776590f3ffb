"""The training loop every stage shares: plain PyTorch, readable top to bottom.

AdamW with one parameter group per module group (each at its own LR), cosine schedule with
linear warmup, gradient accumulation and clipping. What trains is decided by the stage plan
before the loop starts; the loop itself is the same for p1_s1 and p3_s2.

Under `accelerate launch` with N processes, each optimizer step consumes N × grad_accum
micro-batches of the same epoch order a single process would use, process r taking every N-th
one; DDP averages the gradients. N processes with grad_accum=1 therefore take the same steps as
one process with grad_accum=N.

The curves hold only what a rerun repeats exactly (loss, cumulative `tokens`, LRs): they are
DVC metrics and plots, so a wall-clock figure in them would change dvc.lock on every forced
rerun. Throughput (tokens/s) goes to the progress bar and `TrainResult.tokens_per_s` instead.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from tqdm import tqdm
from transformers import get_cosine_schedule_with_warmup

from finstage.chat import IGNORE, Encoded, pad_batch
from finstage.model.plan import StageConfig, is_half, param_groups
from finstage.train.images import BatchInputs
from finstage.train.resume import ResumeStore, Snapshot

StepLogger = Callable[[int, dict[str, float]], None]


@dataclass
class TrainResult:
    losses: list[float] = field(default_factory=list)
    steps: int = 0
    tokens: int = 0
    padding_waste: float = 0.0  # worst epoch
    resumed_from: int = 0  # optimizer step of the snapshot this run continued from (0 = fresh)
    tokens_per_s: float = 0.0  # wall-clock throughput of this run's own steps; stdout only


def schedule_length(n_examples: int, cfg: StageConfig, processes: int = 1) -> int:
    batches = math.ceil(n_examples / cfg.batch_size)
    batches -= batches % processes  # see train_loop: each process gets a micro-batch per step
    return cfg.epochs * math.ceil(batches / (cfg.grad_accum * processes))


GROUP_WINDOW = 16  # batches per length-sorting window: local sort, global shuffle


def micro_batches(lengths: Sequence[int], cfg: StageConfig, epoch: int) -> list[list[int]]:
    """Length-grouped batches for one epoch, seeded by (seed, epoch) so reruns repeat exactly.

    The shuffled order is cut into windows of GROUP_WINDOW batches; each window is sorted by
    length before it is cut into batches, and the batches are then shuffled. Batches hold
    similar lengths (little padding) while the epoch still visits examples in random order.
    """
    gen = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
    order = torch.randperm(len(lengths), generator=gen).tolist()
    window = cfg.batch_size * GROUP_WINDOW
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: -lengths[i])
        batches += [chunk[i : i + cfg.batch_size] for i in range(0, len(chunk), cfg.batch_size)]
    shuffle = torch.randperm(len(batches), generator=gen).tolist()
    return [batches[i] for i in shuffle]


def padding_waste(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """Share of padded positions in the batches (0 = none)."""
    padded = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    return 1.0 - sum(lengths[i] for b in batches for i in b) / padded


def target_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean next-token cross-entropy over the labelled positions, the same value as HF's loss.

    Only positions whose next token is a target go through the LM head and the log-softmax over
    the vocabulary. Most positions have none (page placeholders, prompts, padding). At the
    embedded scale those two are the priciest per-token work left when the LLM is frozen; at
    paper scale the full logits (2 × 1k positions × 99k vocabulary in fp32) would be the
    largest activation.
    """
    targets = batch["labels"][:, 1:]
    keep = F.pad(targets != IGNORE, (0, 1), value=False)
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    logits = model(**inputs, logits_to_keep=keep).logits
    return F.cross_entropy(logits.float(), targets[keep[:, :-1]])


def train_loop(
    model: torch.nn.Module,
    examples: Sequence[Encoded],
    inputs: BatchInputs,
    cfg: StageConfig,
    pad_id: int,
    log: StepLogger | None = None,
    resume: ResumeStore | None = None,
    accelerator: Accelerator | None = None,
) -> TrainResult:
    """Train `model` in place. With an accelerator, `model` must be what it prepared (DDP)."""
    if not examples:
        raise ValueError("no trainable examples: the mixture is empty or every record was dropped")
    acc = accelerator or Accelerator(cpu=not torch.cuda.is_available())
    ranks, rank = acc.num_processes, acc.process_index
    inner = acc.unwrap_model(model)
    half = [n for n, p in inner.named_parameters() if p.requires_grad and is_half(p.dtype)]
    if half:  # an AdamW step at a small LR rounds away on most bf16 weights
        raise ValueError(
            f"{len(half)} trained tensors are half precision (first: {half[0]}); "
            "apply_plan keeps float32 masters of them"
        )
    torch.manual_seed(cfg.seed)
    optimizer = torch.optim.AdamW(param_groups(inner, cfg))
    total = schedule_length(len(examples), cfg, ranks)
    if total == 0:
        raise ValueError(
            f"{len(examples)} examples make fewer micro-batches of {cfg.batch_size} than the "
            f"{ranks} processes; lower batch_size or the process count"
        )
    scheduler = get_cosine_schedule_with_warmup(
        optimizer, math.ceil(cfg.warmup_ratio * total), total
    )
    trainable = [p for p in model.parameters() if p.requires_grad]
    lengths = [len(e.input_ids) for e in examples]
    result = TrainResult()
    history: list[tuple[int, dict[str, float]]] = []
    snapshot = resume.load(inner, quiet=rank > 0) if resume is not None else None
    if snapshot is not None:
        optimizer.load_state_dict(snapshot.optimizer)
        scheduler.load_state_dict(snapshot.scheduler)
        torch.set_rng_state(snapshot.rng)
        result.steps, result.tokens, history = snapshot.step, snapshot.tokens, snapshot.history
        result.resumed_from = snapshot.step
        result.losses = [metrics["loss"] for _, metrics in history]
        for step, metrics in history:  # replay so the curves cover the whole run
            if log is not None:
                log(step, metrics)
    model.train()
    start, run_tokens = time.perf_counter(), 0
    bar = tqdm(total=total, initial=result.steps, desc="train", unit="step", disable=rank > 0)
    step = 0
    per_step = cfg.grad_accum * ranks
    for epoch in range(cfg.epochs):
        batches = micro_batches(lengths, cfg, epoch)
        if ranks > 1:  # every process needs a micro-batch in every step, or DDP waits forever
            batches = batches[: len(batches) - len(batches) % ranks]
        result.padding_waste = max(result.padding_waste, padding_waste(lengths, batches))
        for first in range(0, len(batches), per_step):
            step += 1
            if step <= result.steps:  # already done before the interruption
                continue
            group = batches[first : first + per_step][rank::ranks]
            step_loss, step_tokens = _accumulate(model, group, examples, inputs, pad_id, acc)
            acc.clip_grad_norm_(trainable, cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step_loss = float(acc.reduce(torch.tensor(step_loss, device=acc.device), "mean"))
            step_tokens = int(acc.reduce(torch.tensor(step_tokens, device=acc.device), "sum"))
            result.steps = step
            result.tokens += step_tokens
            result.losses.append(step_loss)
            run_tokens += step_tokens
            result.tokens_per_s = run_tokens / max(time.perf_counter() - start, 1e-9)
            bar.update(1)
            bar.set_postfix(loss=f"{step_loss:.3f}", tok_s=f"{result.tokens_per_s:,.0f}")
            metrics = {"loss": step_loss, "tokens": float(result.tokens)}
            for g in optimizer.param_groups:
                metrics[f"lr/{g['name']}"] = g["lr"]
            history.append((step, metrics))
            if log is not None:
                log(step, metrics)
            if resume is not None and resume.due(step) and step < total and acc.is_main_process:
                resume.save(
                    inner,
                    Snapshot(
                        step,
                        result.tokens,
                        history,
                        optimizer.state_dict(),
                        scheduler.state_dict(),
                        torch.get_rng_state(),
                    ),
                )
    bar.close()
    model.eval()
    return result


def _accumulate(
    model: torch.nn.Module,
    group: list[list[int]],
    examples: Sequence[Encoded],
    inputs: BatchInputs,
    pad_id: int,
    acc: Accelerator,
) -> tuple[float, int]:
    """Forward and backward this process's micro-batches of one step; gradients sync once."""
    step_loss, step_tokens = 0.0, 0
    for i, indices in enumerate(group):
        batch = {
            k: v.to(acc.device)
            for k, v in pad_batch([examples[j] for j in indices], pad_id).items()
        }
        batch = inputs(batch, [pid for j in indices for pid in examples[j].images])
        batch = {k: v.to(acc.device) for k, v in batch.items()}
        context = acc.no_sync(model) if i < len(group) - 1 else contextlib.nullcontext()
        with context:
            loss = target_loss(model, batch) / len(group)
            acc.backward(loss)
        step_loss += loss.item()
        step_tokens += int(batch["attention_mask"].sum())
    return step_loss, step_tokens
