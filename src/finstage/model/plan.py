"""Stage plans: which modules a training stage updates, with which adapter, at which LR.

A plan is data in params.yaml (`train.<stage>`), validated before any weights load, and
applied here to a loaded checkpoint. LoRA targets are full-name regexes scoped to one tower,
because a bare suffix list like ["q_proj"] silently matches the vision tower too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training
from transformers import BitsAndBytesConfig, LlavaForConditionalGeneration

from finstage.config import require
from finstage.model.assemble import DTYPES, module_group

Mode = Literal["frozen", "lora", "full"]
TOWER_PATTERNS = {"llm": r".*language_model.*", "vision": r".*vision_tower.*"}
FULL_MODULES = {
    "llm": ["language_model", "lm_head"],
    "vision": ["vision_tower"],
    "projector": ["multi_modal_projector"],
}


@dataclass
class ModulesSpec:
    llm: Mode
    vision: Mode
    projector: Literal["frozen", "full"]

    def trained(self) -> list[str]:
        return [g for g in ("llm", "vision", "projector") if getattr(self, g) != "frozen"]


@dataclass
class LoraSpec:
    r: int
    alpha: int
    dropout: float
    llm_targets: list[str]
    vision_targets: list[str]

    def check(self, where: str) -> None:
        require(self.r > 0, f"{where}.r", "must be a positive integer")
        require(self.alpha > 0, f"{where}.alpha", "must be positive")
        require(0.0 <= self.dropout < 1.0, f"{where}.dropout", "must be in [0, 1)")


@dataclass
class QuantSpec:
    """4-bit weights for the LLM only; `keep` lists modules never quantised (regex or prefix)."""

    quant_type: Literal["nf4", "fp4"]
    double_quant: bool
    compute_dtype: str
    keep: list[str]

    def check(self, where: str) -> None:
        require(
            self.compute_dtype in DTYPES,
            f"{where}.compute_dtype",
            f"must be one of {sorted(DTYPES)}",
        )


@dataclass
class LRSpec:
    llm: float
    vision: float
    projector: float


@dataclass
class StageConfig:
    init: str
    data: str
    modules: ModulesSpec
    lr: LRSpec
    lora: LoraSpec | None
    quant: QuantSpec | None
    epochs: int
    batch_size: int
    grad_accum: int
    warmup_ratio: float
    weight_decay: float
    max_grad_norm: float
    max_seq_len: int
    grad_checkpointing: bool
    save_every: int  # optimizer steps between resume snapshots; 0 = never
    feature_cache: bool  # cache frozen vision-tower features per page (unused if it trains)
    processes: int  # > 1: the stage relaunches itself under `accelerate launch`
    seed: int

    def check(self, where: str) -> None:
        lora_groups = [g for g in ("llm", "vision") if getattr(self.modules, g) == "lora"]
        require(
            bool(self.modules.trained()),
            f"{where}.modules",
            "trains nothing; set a module to lora or full",
        )
        require(
            (self.lora is not None) == bool(lora_groups),
            f"{where}.lora",
            "must be set exactly when a module is 'lora' (and null otherwise)",
        )
        if self.quant is not None:
            require(
                self.modules.llm == "lora",
                f"{where}.quant",
                "needs modules.llm: lora (QLoRA trains adapters on 4-bit weights)",
            )
            require(
                self.modules.vision != "lora",
                f"{where}.quant",
                "is LLM-only; the vision tower is never quantised",
            )
        for group in self.modules.trained():
            require(
                getattr(self.lr, group) > 0,
                f"{where}.lr.{group}",
                f"must be > 0 because modules.{group} trains",
            )
        for group in ("llm", "vision", "projector"):
            if group not in self.modules.trained():
                require(
                    getattr(self.lr, group) == 0,
                    f"{where}.lr.{group}",
                    f"must be 0 because modules.{group} is frozen",
                )
        require(self.epochs >= 1, f"{where}.epochs", "must be >= 1")
        require(self.batch_size >= 1, f"{where}.batch_size", "must be >= 1")
        require(self.grad_accum >= 1, f"{where}.grad_accum", "must be >= 1")
        require(0.0 <= self.warmup_ratio < 1.0, f"{where}.warmup_ratio", "must be in [0, 1)")
        require(self.max_seq_len >= 16, f"{where}.max_seq_len", "must be >= 16")
        require(self.save_every >= 0, f"{where}.save_every", "must be >= 0 (0 disables snapshots)")
        require(self.processes >= 1, f"{where}.processes", "must be >= 1")

    def caches_features(self) -> bool:
        return self.feature_cache and self.modules.vision == "frozen"


def lora_target_regex(cfg: StageConfig) -> str:
    assert cfg.lora is not None
    parts = []
    for group, targets in (("llm", cfg.lora.llm_targets), ("vision", cfg.lora.vision_targets)):
        if getattr(cfg.modules, group) == "lora":
            parts.append(rf"{TOWER_PATTERNS[group]}\.({'|'.join(targets)})")
    return "|".join(f"(?:{p})" for p in parts)


def quantization_config(quant: QuantSpec) -> BitsAndBytesConfig:
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=quant.quant_type,
        bnb_4bit_use_double_quant=quant.double_quant,
        bnb_4bit_compute_dtype=DTYPES[quant.compute_dtype],
        llm_int8_skip_modules=list(quant.keep),
    )


def load_for_stage(init_dir: Path, cfg: StageConfig) -> LlavaForConditionalGeneration:
    """Load the stage's starting checkpoint, 4-bit when the plan says, unquantised otherwise."""
    if cfg.quant is None:
        return LlavaForConditionalGeneration.from_pretrained(init_dir)
    return LlavaForConditionalGeneration.from_pretrained(
        init_dir,
        quantization_config=quantization_config(cfg.quant),
        device_map="cpu" if not torch.cuda.is_available() else None,
    )


def apply_plan(model: LlavaForConditionalGeneration, cfg: StageConfig) -> torch.nn.Module:
    """Freeze everything, then open exactly what the plan trains; returns the model to optimise."""
    model.requires_grad_(False)
    if cfg.quant is not None:
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=cfg.grad_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    elif cfg.grad_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    full = [
        name
        for g in cfg.modules.trained()
        if getattr(cfg.modules, g) == "full"
        for name in FULL_MODULES[g]
    ]
    if cfg.lora is None:
        for name, module in model.named_modules():
            if name.split(".")[-1] in full:
                module.requires_grad_(True)
        return model
    lora = LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=lora_target_regex(cfg),
        modules_to_save=full or None,
        bias="none",
    )
    return get_peft_model(model, lora)


def param_groups(model: torch.nn.Module, cfg: StageConfig) -> list[dict]:
    """One AdamW group per module group, each at its own LR; no decay on biases and norms."""
    groups: dict[tuple[str, bool], list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        decay = param.ndim >= 2
        groups.setdefault((module_group(name), decay), []).append(param)
    return [
        {
            "name": f"{group}" + ("" if decay else "_no_decay"),
            "params": params,
            "lr": getattr(cfg.lr, group),
            "weight_decay": cfg.weight_decay if decay else 0.0,
        }
        for (group, decay), params in sorted(groups.items())
    ]


def merge_into_unquantised(init_dir: Path, adapter_dir: Path) -> LlavaForConditionalGeneration:
    """Merge a stage's adapter into a fresh unquantised copy of the stage's base.

    Never merge into 4-bit weights: that requantises the sum and bakes rounding error into every
    later stage.
    """
    base = LlavaForConditionalGeneration.from_pretrained(init_dir)
    return PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
