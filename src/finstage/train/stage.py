"""One training stage end to end: load its base, apply its plan, train, hand off a checkpoint.

The checkpoint folder is what the next stage (and every evaluation) starts from: the merged
unquantised model in `save_pretrained` layout, the stage's adapter, and `card.json` recording
parents, params, data hashes and trainable parameter counts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import torch
from transformers import AutoTokenizer

from finstage.model.assemble import parameter_counts
from finstage.model.plan import StageConfig, apply_plan, load_for_stage, merge_into_unquantised
from finstage.pages.store import PageStore
from finstage.records import read_records
from finstage.train.collate import ChatEncoder, Encoded, image_to_pixels
from finstage.train.loop import StepLogger, TrainResult, train_loop
from finstage.train.probe import handoff_gap
from finstage.train.resume import ResumeStore

CARD = "card.json"
PROBE_EXAMPLES = 8  # fixed probe: the mixture's first examples, same for every rerun


def encode_records(mix_dir: Path, encoder: ChatEncoder) -> tuple[list[Encoded], int]:
    examples, dropped = [], 0
    for record in read_records(mix_dir):
        encoded = encoder.encode(record["messages"], record["images"])
        if encoded is None:
            dropped += 1
        else:
            examples.append(encoded)
    return examples, dropped


def run_stage(
    name: str,
    cfg: StageConfig,
    init_dir: Path,
    mix_dir: Path,
    pages_dir: Path,
    out_dir: Path,
    log: StepLogger | None = None,
    resume_dir: Path | None = None,
) -> dict:
    tokenizer = AutoTokenizer.from_pretrained(init_dir)
    model = load_for_stage(init_dir, cfg)
    image_token_id = model.config.image_token_id
    image_size = model.config.vision_config.image_size
    encoder = ChatEncoder(tokenizer, image_token_id, model.config.image_seq_length, cfg.max_seq_len)
    examples, dropped = encode_records(mix_dir, encoder)
    torch.manual_seed(cfg.seed)  # LoRA init draws random numbers: same seed, same adapter
    model = apply_plan(model, cfg)
    counts = parameter_counts(model)
    store = PageStore(pages_dir) if any(e.images for e in examples) else None

    def pixels(page_ids: list[str]) -> torch.Tensor:
        assert store is not None
        dtype = next(p.dtype for p in model.parameters() if p.is_floating_point())
        return torch.stack([image_to_pixels(store.image(pid), image_size) for pid in page_ids]).to(
            dtype
        )

    resume = None
    if resume_dir is not None:
        resume = ResumeStore(resume_dir, run_fingerprint(cfg, init_dir, mix_dir), cfg.save_every)
    result = train_loop(model, examples, pixels, cfg, tokenizer.pad_token_id, log, resume)
    out_dir.mkdir(parents=True, exist_ok=True)
    gap = None
    if cfg.lora is not None:
        adapter_dir = out_dir / "adapter"
        model.save_pretrained(adapter_dir)
        merged = merge_into_unquantised(init_dir, adapter_dir)
        probe = examples[:PROBE_EXAMPLES]
        gap = handoff_gap(model, merged, probe, pixels, tokenizer.pad_token_id)
        model = merged
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    card = stage_card(name, cfg, init_dir, mix_dir, counts, result, len(examples), dropped)
    card["handoff"] = gap
    if resume is not None:
        resume.clear()
    (out_dir / CARD).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    return card


def stage_card(
    name: str,
    cfg: StageConfig,
    init_dir: Path,
    mix_dir: Path,
    counts: dict,
    result: TrainResult,
    n_examples: int,
    dropped: int,
) -> dict:
    parent_card = init_dir / CARD
    lineage = json.loads(parent_card.read_text())["lineage"] if parent_card.exists() else []
    return {
        "stage": name,
        "lineage": [*lineage, name],
        "init": init_dir.name,
        "params": dataclasses.asdict(cfg),
        "data": {
            "mixture": str(mix_dir),
            "sha256": dir_sha256(mix_dir),
            "examples": n_examples,
            "dropped": dropped,
        },
        "parameters": counts,
        "training": {
            "steps": result.steps,
            "tokens": result.tokens,
            "padding_waste": round(result.padding_waste, 4),
            "resumed_from": result.resumed_from,
            "loss_first": result.losses[0],
            "loss_last": result.losses[-1],
            "losses": result.losses,
        },
    }


def run_fingerprint(cfg: StageConfig, init_dir: Path, mix_dir: Path) -> str:
    """What makes two runs the same run: the plan, the starting checkpoint's card, the data."""
    digest = hashlib.sha256(json.dumps(dataclasses.asdict(cfg), sort_keys=True).encode())
    card = init_dir / CARD
    digest.update(card.read_bytes() if card.exists() else str(init_dir.resolve()).encode())
    digest.update(dir_sha256(mix_dir).encode())
    return digest.hexdigest()


def dir_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in Path(path).rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()
