"""One training stage end to end: load its base, apply its plan, train, hand off a checkpoint.

The checkpoint folder is what the next stage (and every evaluation) starts from: the merged
unquantised model in `save_pretrained` layout, the stage's adapter, and `card.json` recording
parents, params, data hashes and trainable parameter counts. The folder is a DVC output that
downstream stages hash, so it holds only what a rerun repeats exactly: whether the run was resumed
and how fast it went are printed, not recorded, since a resumed run's weights are bit-identical.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs
from transformers import AutoTokenizer

from finstage.chat import ChatEncoder, Encoded
from finstage.imageruns import ViewsOf
from finstage.model.assemble import parameter_counts
from finstage.model.export import save_processor, uniform_modes
from finstage.model.plan import (
    StageConfig,
    apply_plan,
    compute_dtype,
    load_for_stage,
    merge_into_unquantised,
    to_checkpoint_dtype,
)
from finstage.model.versions import package_versions
from finstage.pagestore import PageStore
from finstage.records import read_records
from finstage.train.images import Batch, BatchInputs, FeatureInputs, PixelInputs
from finstage.train.loop import StepLogger, TrainResult, train_loop
from finstage.train.probe import handoff_gap
from finstage.train.resume import ResumeStore

CARD = "card.json"
PROBE_EXAMPLES = 8  # fixed probe: the mixture's first examples, same for every rerun


def encode_records(
    mix_dir: Path, encoder: ChatEncoder, views: ViewsOf | None = None
) -> tuple[list[Encoded], int]:
    """The mixture's encodable examples and how many were dropped; ``views`` (the page store's)
    expands each page to its global view and tiles."""
    examples, dropped = [], 0
    for record in read_records(mix_dir):
        encoded = encoder.encode(record["messages"], record["images"], views)
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
    feature_dir: Path | None = None,
) -> dict | None:
    """Train and write the checkpoint; returns the card (None on non-main processes)."""
    tokenizer = AutoTokenizer.from_pretrained(init_dir)
    model = load_for_stage(init_dir, cfg)
    image_token_id = model.config.image_token_id
    image_size = model.config.vision_config.image_size
    encoder = ChatEncoder(tokenizer, image_token_id, model.config.image_seq_length, cfg.max_seq_len)
    visual = any(r["images"] for r in read_records(mix_dir))
    store = PageStore(pages_dir) if visual else None
    examples, dropped = encode_records(mix_dir, encoder, store.views if store else None)
    torch.manual_seed(cfg.seed)  # LoRA init draws random numbers: same seed, same adapter
    model = apply_plan(model, cfg)
    counts = parameter_counts(model)
    dtype = compute_dtype(model)
    has_images = store is not None and any(e.images for e in examples)
    pixels = PixelInputs(store, image_size, dtype) if has_images else no_images
    inputs: BatchInputs = pixels
    if has_images and cfg.caches_features() and feature_dir is not None:
        inputs = FeatureInputs(model, pixels, feature_dir)
    resume = None
    if resume_dir is not None:
        fingerprint = run_fingerprint(cfg, init_dir, mix_dir)
        resume = ResumeStore(resume_dir, fingerprint, cfg.save_every, name=name)
    accelerator = make_accelerator(cfg, examples)
    trained = (  # bitsandbytes placed the 4-bit weights already; moving them breaks them
        accelerator.prepare_model(model, device_placement=cfg.quant is None)
    )
    main = accelerator.is_main_process
    result = train_loop(
        trained,
        examples,
        inputs,
        cfg,
        tokenizer.pad_token_id,
        log if main else None,
        resume,
        accelerator,
    )
    if isinstance(inputs, FeatureInputs):
        print(f"feature cache: {inputs.hits} pages read, {inputs.computed} encoded ({inputs.dir})")
    accelerator.wait_for_everyone()
    if not main:
        return None
    print(
        f"{name}: {result.tokens_per_s:,.0f} tokens/s over this run's"
        f" {result.steps - result.resumed_from} steps"
        + (f" (resumed from step {result.resumed_from})" if result.resumed_from else "")
    )
    model = accelerator.unwrap_model(trained)
    out_dir.mkdir(parents=True, exist_ok=True)
    gap = None
    if cfg.lora is not None:
        adapter_dir = out_dir / "adapter"
        model.save_pretrained(adapter_dir)
        merged = merge_into_unquantised(init_dir, adapter_dir)
        probe = examples[:PROBE_EXAMPLES]
        gap = handoff_gap(model, merged, probe, pixels, tokenizer.pad_token_id)
        model = merged
    else:
        model = to_checkpoint_dtype(model)  # float32 master weights back to the checkpoint's dtype
    model.save_pretrained(out_dir)
    save_processor(model.config, tokenizer, out_dir)
    card = stage_card(name, cfg, init_dir, mix_dir, counts, result, len(examples), dropped)
    card["data"]["visual_tokens"] = visual_tokens(examples, image_token_id)
    card["handoff"] = gap
    if resume is not None:
        resume.clear()
    (out_dir / CARD).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    uniform_modes(out_dir)
    return card


def no_images(batch: Batch, page_ids: list[str]) -> Batch:
    if page_ids:
        raise ValueError(f"example refers to pages {page_ids[:3]} but no page store was opened")
    return batch


def visual_tokens(examples: list[Encoded], image_token_id: int) -> dict[str, float]:
    """Image placeholder tokens per example (mean and max): what tiles cost in sequence length;
    a page with T tiles takes (1 + T) x image_seq_length of them."""
    counts = [e.input_ids.count(image_token_id) for e in examples] or [0]
    return {"mean": round(sum(counts) / len(counts), 2), "max": max(counts)}


def make_accelerator(cfg: StageConfig, examples: list[Encoded]) -> Accelerator:
    """One process, or one of several under `accelerate launch`.

    DDP must be told when some trainable parameters get no gradient in a step: a text-only
    example leaves a trained projector or vision tower unused.
    """
    unused = any(not e.images for e in examples) and (
        cfg.modules.vision != "frozen" or cfg.modules.projector != "frozen"
    )
    ddp = DistributedDataParallelKwargs(find_unused_parameters=unused)
    return Accelerator(cpu=not torch.cuda.is_available(), kwargs_handlers=[ddp])


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
            "loss_first": result.losses[0],
            "loss_last": result.losses[-1],
            "losses": result.losses,
        },
        "versions": package_versions(),
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
