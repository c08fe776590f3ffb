"""Paper-shaped training steps: tokens/s, peak memory and MFU of p1_s2 and p2_s1 on a GPU.

The model is random-init with the recipe's shapes: SigLIP so400m-patch14-384 (27 layers, width
1152, 729 patch tokens), the LLaVA projector and an 8B Llama shaped like llm-jp-4-8b (32
layers, width 4096, FFN 14336, GQA 32/8, untied 196,608-token vocabulary), in bf16. It trains
for a few steps of each stage under the paper preset's plan (`presets/paper.yaml`):

- p1_s2: LoRA r=64 on the vision tower and LLM, the projector fully trained;
- p2_s1: NF4 QLoRA r=32 on the LLM, loaded through the same 4-bit path as the pipeline.

Both go through the pipeline's own `apply_plan` and `train_loop`. Weights do not change the
cost of a step, so random weights measure what trained ones would. Inputs are synthetic: each
example holds `--text-tokens` random text tokens, with a page's 729 placeholders in front for
p1_s2, and labels on the last half of the text.

FLOPs are counted, not estimated: torch's `FlopCounterMode` over one forward and backward of
a batch. Counted with gradient checkpointing as the plan has it, they give HFU, which includes
the recomputed forward. Counted with it off, they give MFU. Peak FLOP/s is the GPU's dense bf16
figure (`--peak-tflops`; known for H100/H200/A100).

    python bench/paper_shape.py                     # a CUDA GPU; the bf16 weights alone are 17 GB
    python bench/paper_shape.py --shape embedded    # any machine: the same code at toy shapes
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import bitsandbytes as bnb
import torch
import typer
import yaml
from torch.utils.flop_counter import FlopCounterMode
from transformers import LlamaConfig, LlavaConfig, LlavaForConditionalGeneration, SiglipVisionConfig
from transformers.utils import logging as hf_logging

from finstage.chat import IGNORE, Encoded, pad_batch
from finstage.config import parse
from finstage.model.plan import StageConfig, apply_plan, load_for_stage
from finstage.params import with_preset
from finstage.train.images import unwrap
from finstage.train.loop import target_loss, train_loop

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("p1_s2", "p2_s1")
PAPER_VISION = dict(
    hidden_size=1152,
    intermediate_size=4304,
    num_hidden_layers=27,
    num_attention_heads=16,
    image_size=384,
    patch_size=14,
)
PAPER_LLM = dict(
    hidden_size=4096,
    intermediate_size=14336,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    vocab_size=196_608,
    max_position_embeddings=4096,
    rms_norm_eps=1e-5,
)
PEAK_BF16_TFLOPS = {"H200": 989.4, "H100": 989.4, "A100": 312.0}  # dense, per GPU


@dataclass
class Row:
    stage: str
    steps: int
    tokens_per_s: float
    seconds_per_step: float
    peak_gib: float | None
    hardware_tflop_per_step: float
    model_tflop_per_step: float
    trainable: int
    four_bit_linears: int  # bitsandbytes Linear4bit modules: proof that QLoRA ran on 4-bit weights

    def utilisation(self, peak_tflops: float | None, tflop: float) -> float | None:
        return None if peak_tflops is None else tflop / self.seconds_per_step / peak_tflops


def shapes(shape: str) -> tuple[dict, dict]:
    if shape == "paper":
        return PAPER_VISION, PAPER_LLM
    if shape != "embedded":
        raise typer.BadParameter(f"--shape must be 'paper' or 'embedded', got {shape!r}")
    model = yaml.safe_load((ROOT / "params.yaml").read_text())["model"]
    vocab = model["tokenizer"]["vocab_size"]
    return model["vision"]["config"], {**model["llm"]["config"], "vocab_size": vocab}


def build(vision: dict, llm: dict, device: torch.device, dtype: torch.dtype):
    """Random-init Llava built directly on the device: an 8B model never touches CPU memory."""
    text = LlamaConfig(**llm, tie_word_embeddings=False, pad_token_id=0, bos_token_id=1)
    config = LlavaConfig(
        vision_config=SiglipVisionConfig(**{"vision_use_head": False, **vision}),
        text_config=text,
        image_token_id=llm["vocab_size"] - 1,
        projector_hidden_act="gelu",
        vision_feature_layer=-2,
        vision_feature_select_strategy="full",
        image_seq_length=(vision["image_size"] // vision["patch_size"]) ** 2,
        multimodal_projector_bias=True,
        tie_word_embeddings=False,
    )
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with device:
            model = LlavaForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(default)
    return model


def examples(config: LlavaConfig, n: int, text_tokens: int, with_page: bool) -> list[Encoded]:
    gen = torch.Generator().manual_seed(0)
    image = [config.image_token_id] * config.image_seq_length if with_page else []
    out = []
    for i in range(n):
        text = torch.randint(2, config.text_config.vocab_size - 1, (text_tokens,), generator=gen)
        labels = [IGNORE] * (len(image) + text_tokens // 2) + text[text_tokens // 2 :].tolist()
        out.append(Encoded(image + text.tolist(), labels, [f"page{i}"] if with_page else []))
    return out


def random_pages(config: LlavaConfig, dtype: torch.dtype):
    size = config.vision_config.image_size

    def inputs(batch: dict[str, torch.Tensor], page_ids: list[str]) -> dict[str, torch.Tensor]:
        if not page_ids:
            return batch
        return {**batch, "pixel_values": torch.randn(len(page_ids), 3, size, size, dtype=dtype)}

    return inputs


def step_tflop(model, batch: dict[str, torch.Tensor], checkpointing: bool) -> float:
    """FLOPs of one forward + backward, counted by torch (the gradients are discarded)."""
    inner = unwrap(model)
    if checkpointing:
        inner.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    else:
        inner.gradient_checkpointing_disable()
    counter = FlopCounterMode(display=False)
    with counter:
        target_loss(model, batch).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / 1e12


def run_stage(
    stage: str,
    shape: str,
    device: torch.device,
    steps: int,
    warmup: int,
    text_tokens: int,
    workdir: Path,
) -> Row:
    preset = with_preset(ROOT / "params.yaml", "paper")["train"][stage]
    cfg = parse(StageConfig, preset, f"train.{stage}")
    total = steps + warmup
    cfg = replace(cfg, epochs=1, save_every=0, warmup_ratio=0.0)
    vision, llm = shapes(shape)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = build(vision, llm, device, dtype)
    if cfg.quant is not None:  # the pipeline's 4-bit path: quantised while loading
        model.save_pretrained(workdir / stage)
        del model
        model = load_for_stage(workdir / stage, cfg)
    config = model.config
    torch.manual_seed(cfg.seed)
    model = apply_plan(model, cfg)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    four_bit = sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())
    data = examples(config, total * cfg.batch_size * cfg.grad_accum, text_tokens, stage == "p1_s2")
    inputs = random_pages(config, dtype)
    first = data[: cfg.batch_size]
    batch = inputs(pad_batch(first, 0), [pid for e in first for pid in e.images])
    probe = {k: v.to(device) for k, v in batch.items()}
    model.train()
    model_tflop = step_tflop(model, probe, checkpointing=False)
    hardware_tflop = step_tflop(model, probe, checkpointing=cfg.grad_checkpointing)
    stamps: list[float] = []

    def stamp(step: int, metrics: dict[str, float]) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    train_loop(model, data, inputs, cfg, 0, stamp)
    seconds = (stamps[-1] - stamps[warmup - 1]) / steps
    tokens = cfg.batch_size * cfg.grad_accum * len(data[0].input_ids)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    return Row(
        stage,
        steps,
        tokens / seconds,
        seconds,
        peak,
        hardware_tflop,
        model_tflop,
        trainable,
        four_bit,
    )


def gpu_peak_tflops() -> float | None:
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def main(
    shape: str = typer.Option(
        "paper", help="'paper' (GPU) or 'embedded' (params.yaml's toy shapes)."
    ),
    steps: int = typer.Option(5, min=1, help="Timed optimizer steps per stage."),
    warmup: int = typer.Option(2, min=1, help="Untimed steps first (allocator, kernels)."),
    text_tokens: int = typer.Option(512, min=4, help="Random text tokens per example."),
    peak_tflops: float | None = typer.Option(
        None, help="The GPU's dense bf16 peak in TFLOP/s; found from its name when left out."
    ),
    stages: list[str] = typer.Option(list(STAGES), "--stage", help="Stages to run."),
) -> None:
    hf_logging.set_verbosity_error()
    cuda = torch.cuda.is_available()
    if shape == "paper" and not cuda:
        raise typer.BadParameter("the paper shapes need a CUDA GPU; try --shape embedded")
    device = torch.device("cuda" if cuda else "cpu")
    peak = peak_tflops if peak_tflops is not None else (gpu_peak_tflops() if cuda else None)
    where = torch.cuda.get_device_name() if cuda else "CPU"
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for stage in stages:
            rows.append(run_stage(stage, shape, device, steps, warmup, text_tokens, Path(workdir)))
    print(f"\n{shape} shapes on {where}, peak {peak or 'unknown'} TFLOP/s (bf16 dense)")
    print(
        "| stage | trainable params | 4-bit linears | tokens/s | s/step | peak GiB "
        "| model TFLOP/step | MFU | hardware TFLOP/step | HFU |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        mfu, hfu = (
            r.utilisation(peak, r.model_tflop_per_step),
            r.utilisation(peak, r.hardware_tflop_per_step),
        )
        cells = [
            r.stage,
            f"{r.trainable:,}",
            str(r.four_bit_linears),
            f"{r.tokens_per_s:,.0f}",
            f"{r.seconds_per_step:.3f}",
            "n/a" if r.peak_gib is None else f"{r.peak_gib:.1f}",
            f"{r.model_tflop_per_step:.4g}",
            "n/a" if mfu is None else f"{mfu:.1%}",
            f"{r.hardware_tflop_per_step:.4g}",
            "n/a" if hfu is None else f"{hfu:.1%}",
        ]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    typer.run(main)
