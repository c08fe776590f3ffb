"""Training throughput: our stage loop against a plain `Trainer`, and the feature cache.

Both trainers get the same model (P0 with the stage's plan applied), the same encoded examples,
batch size, epochs and LR schedule, in the same process, so the ratio isolates the loop: length
grouping, the feature cache and per-group optimizers against `Trainer` defaults. Tokens are the
non-padding tokens trained on (identical for both: every example once per epoch).

The cache comparison trains p1_s1 for two epochs on pixels and, from a cold cache, on cached
frozen-tower features, and compares the second epochs, which is where the cache pays off. What
the cache removes is per page (PNG decode, resize, the tower's forward), so its gain depends on
how large the rendered pages are: the comparison re-renders the corpus at each `--page-sides`
cap (384 px is the embedded default, 1536 px the paper preset) with the same page ids, and runs
the same model and examples on each.

Needs the pipeline's outputs (`dvc repro`): models/p0, data/mix/<stage>, data/store.

    python bench/train.py                 # tables + ratios
    python bench/train.py --repeats 5     # steadier medians
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import typer
import yaml
from transformers import (
    AutoTokenizer,
    LlavaForConditionalGeneration,
    Trainer,
    TrainingArguments,
)
from transformers.utils import logging as hf_logging

from finstage.chat import ChatEncoder, Encoded, image_to_pixels, pad_batch
from finstage.config import parse
from finstage.model.plan import StageConfig, apply_plan
from finstage.pages.render import RenderConfig, render_store
from finstage.pagestore import PageStore
from finstage.params import with_preset
from finstage.train.images import BatchInputs, FeatureInputs, PixelInputs
from finstage.train.loop import schedule_length, train_loop
from finstage.train.stage import encode_records


@dataclass
class Setup:
    cfg: StageConfig
    examples: list[Encoded]
    pad_id: int
    init: Path
    pages: PageStore
    image_size: int  # the vision tower's input side: what the pixel path resizes every page to


@dataclass
class Timing:
    tokens: int
    seconds: float
    epochs: list[float]  # wall seconds per epoch

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds


def setup(stage: str, root: Path) -> Setup:
    params = yaml.safe_load((root / "params.yaml").read_text())
    cfg = parse(StageConfig, params["train"][stage], f"train.{stage}")
    cfg = replace(cfg, save_every=0, grad_checkpointing=False)
    init = root / "models" / "p0"  # throughput does not depend on which weights; shapes match
    mix = root / "data" / "mix" / stage
    for path in (init, mix, root / "data" / "pages", root / "data" / "store"):
        if not path.exists():
            raise SystemExit(f"{path} is missing: run `dvc repro` first")
    tok = AutoTokenizer.from_pretrained(init)
    config = LlavaForConditionalGeneration.config_class.from_pretrained(init)
    encoder = ChatEncoder(tok, config.image_token_id, config.image_seq_length, cfg.max_seq_len)
    examples, _ = encode_records(mix, encoder)
    pages = PageStore(root / "data" / "pages")
    return Setup(cfg, examples, tok.pad_token_id, init, pages, config.vision_config.image_size)


def fresh_model(s: Setup) -> torch.nn.Module:
    model = LlavaForConditionalGeneration.from_pretrained(s.init)
    torch.manual_seed(s.cfg.seed)
    return apply_plan(model, s.cfg)


def pixel_inputs(s: Setup, model: torch.nn.Module) -> PixelInputs:
    return PixelInputs(s.pages, model.config.vision_config.image_size, torch.float32)


def ours(s: Setup, cache_dir: Path | None) -> Timing:
    model = fresh_model(s)
    pixels = pixel_inputs(s, model)
    inputs: BatchInputs = pixels if cache_dir is None else FeatureInputs(model, pixels, cache_dir)
    steps_per_epoch = math.ceil(math.ceil(len(s.examples) / s.cfg.batch_size) / s.cfg.grad_accum)
    stamps: list[float] = []
    start = time.perf_counter()
    result = train_loop(
        model,
        s.examples,
        inputs,
        s.cfg,
        s.pad_id,
        lambda step, m: stamps.append(time.perf_counter()),
    )
    seconds = time.perf_counter() - start
    ends = [start] + [stamps[(e + 1) * steps_per_epoch - 1] for e in range(s.cfg.epochs)]
    return Timing(result.tokens, seconds, [b - a for a, b in zip(ends, ends[1:], strict=False)])


def plain_trainer(s: Setup) -> Timing:
    """transformers' Trainer with its defaults: random batches, one LR for everything."""
    model = fresh_model(s)
    pixels = pixel_inputs(s, model)

    def collate(rows: list[dict]) -> dict[str, torch.Tensor]:
        examples = [Encoded(r["input_ids"], r["labels"], r["images"]) for r in rows]
        batch = pad_batch(examples, s.pad_id)
        return pixels(batch, [pid for e in examples for pid in e.images])

    rows = [{"input_ids": e.input_ids, "labels": e.labels, "images": e.images} for e in s.examples]
    lr = max(s.cfg.lr.llm, s.cfg.lr.vision, s.cfg.lr.projector)
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=s.cfg.batch_size,
            gradient_accumulation_steps=s.cfg.grad_accum,
            num_train_epochs=s.cfg.epochs,
            learning_rate=lr,
            lr_scheduler_type="cosine",
            warmup_steps=math.ceil(s.cfg.warmup_ratio * schedule_length(len(rows), s.cfg)),
            weight_decay=s.cfg.weight_decay,
            max_grad_norm=s.cfg.max_grad_norm,
            save_strategy="no",
            report_to=[],
            logging_strategy="no",
            disable_tqdm=True,
            use_cpu=not torch.cuda.is_available(),
            remove_unused_columns=False,
            dataloader_num_workers=0,
            seed=s.cfg.seed,
        )
        trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=collate)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    tokens = s.cfg.epochs * sum(len(e.input_ids) for e in s.examples)
    return Timing(tokens, seconds, [])


def cache_comparison(s: Setup, repeats: int) -> tuple[Timing, Timing]:
    """Median pixel run and median cold-cache run (by second epoch, where the cache pays off)."""
    plain = median_run(lambda: ours(s, None), repeats)
    timings = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as cache:  # cold cache: epoch 1 encodes, 2 reads
            timings.append(ours(s, Path(cache)))
    return plain, sorted(timings, key=lambda t: t.epochs[1])[len(timings) // 2]


def page_ids(s: Setup) -> list[str]:
    return sorted({pid for e in s.examples for pid in e.images})


def page_size(s: Setup) -> str:
    width, height = s.pages.image(page_ids(s)[0]).size
    return f"{width}×{height}"


def decode_ms(s: Setup) -> float:
    """What the pixel path pays per page view and the cache does not: decode and resize."""
    ids = page_ids(s)
    start = time.perf_counter()
    for pid in ids:
        image_to_pixels(s.pages.image(pid), s.image_size)
    return (time.perf_counter() - start) / len(ids) * 1000


def median_run(fn, repeats: int) -> Timing:
    runs = [fn() for _ in range(repeats)]
    return sorted(runs, key=lambda t: t.seconds)[len(runs) // 2]


def main(
    root: Path = typer.Option(Path("."), help="Repository root holding params.yaml and outputs."),
    repeats: int = typer.Option(3, help="Runs per configuration; the median is reported."),
    page_sides: list[int] = typer.Option(
        [384, 768, 1536], help="Longer-side caps (px) to re-render the pages at for the cache run."
    ),
) -> None:
    hf_logging.set_verbosity_error()
    rows = []
    for stage in ("p3_s2", "p1_s1"):
        s = setup(stage, root)
        trainer = median_run(lambda s=s: plain_trainer(s), repeats)
        with tempfile.TemporaryDirectory() as cache:
            ours_t = median_run(lambda s=s, c=cache: ours(s, Path(c)), repeats)
        rows.append((stage, "finstage loop", ours_t, ours_t.tokens_per_s / trainer.tokens_per_s))
        rows.append((stage, "transformers Trainer", trainer, 1.0))
    print("\n| stage | trainer | tokens | seconds | tokens/s | vs Trainer |")
    print("|---|---|---:|---:|---:|---:|")
    for stage, name, t, ratio in rows:
        cells = [stage, name, str(t.tokens), f"{t.seconds:.2f}", f"{t.tokens_per_s:.0f}"]
        print("| " + " | ".join(cells) + f" | {ratio:.2f}× |")

    s = setup("p1_s1", root)
    s.cfg = replace(s.cfg, epochs=max(s.cfg.epochs, 2))
    render = parse(
        RenderConfig, yaml.safe_load((root / "params.yaml").read_text())["render"], "render"
    )
    dpi = with_preset(root / "params.yaml", "paper")["render"]["dpi"]
    print(
        "\n| p1_s1 pages | decode+resize ms/page | pixels: epoch 1 s | epoch 2 s "
        "| cache (cold): epoch 1 s | epoch 2 s | epoch 2 speed-up |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for side in page_sides:
        with tempfile.TemporaryDirectory() as pages:
            cfg = replace(render, dpi=dpi, max_side=side, workers=1)
            render_store(root / "data" / "store", Path(pages), cfg, progress=False)
            at_side = replace(s, pages=PageStore(Path(pages)))
            plain, cached = cache_comparison(at_side, repeats)
            cells = [
                f"{side} px ({page_size(at_side)})",
                f"{decode_ms(at_side):.1f}",
                *(f"{t:.2f}" for t in plain.epochs[:2]),
                *(f"{t:.2f}" for t in cached.epochs[:2]),
            ]
            ratio = plain.epochs[1] / cached.epochs[1]
            print("| " + " | ".join(cells) + f" | **{ratio:.2f}×** |")
    print(
        f"\nmedian of {repeats} runs each; epoch times exclude model loading; pages rendered "
        f"at {dpi} dpi under each cap (384 px: the embedded default's pages, "
        "1536 px: the paper preset's)"
    )


if __name__ == "__main__":
    typer.run(main)
