"""Stage plans: which modules a training stage updates, with which adapter, at which LR.

A plan is data in params.yaml (`train.<stage>`), validated before any weights load, and
applied here to a loaded checkpoint. LoRA targets are full-name regexes scoped to one tower,
because a bare suffix list like ["q_proj"] silently matches the vision tower too. Vision LoRA
and a full vision plan are further held to the encoder layers whose output the model uses
(`vision_layers_used`): anything trainable past `vision_feature_layer` gets no gradient, which
wastes parameters in one process and stops DDP in several.

Trained weights are float32 masters even when the checkpoint is bfloat16 (see `keep_fp32_masters`):
an AdamW step at a small LR is far below a bf16 weight's rounding step, so most of it would
round away. The frozen model keeps computing in its own dtype.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # torch, peft and transformers load where a model is; params validation
    import torch  # (`finstage validate`) reads the dataclasses below without them
    from transformers import BitsAndBytesConfig, LlavaForConditionalGeneration

from finstage.config import require
from finstage.model.assemble import DTYPE_NAMES, module_group, require_safetensors, torch_dtype

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
            self.compute_dtype in DTYPE_NAMES,
            f"{where}.compute_dtype",
            f"must be one of {sorted(DTYPE_NAMES)}",
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


def vision_layers_used(config: Any) -> list[int]:
    """Indices of the vision encoder layers whose output reaches the projector.

    LLaVA reads `hidden_states[vision_feature_layer]` (or concatenates several for a list) of a
    tuple that starts with the embeddings output, so it has num_hidden_layers + 1 entries and
    entry i is the output of encoder layer i - 1: -2 uses layers 0..n-2 and discards the last.
    Later layers, and the tower's post_layernorm and head, never reach the loss.
    """
    n = config.vision_config.num_hidden_layers
    selected = config.vision_feature_layer
    indices = [selected] if isinstance(selected, int) else list(selected)
    deepest = 0
    for index in indices:
        if not -(n + 1) <= index <= n:
            raise ValueError(
                f"vision_feature_layer {selected!r}: {index} is outside the vision tower's "
                f"hidden states (embeddings + {n} layers)"
            )
        deepest = max(deepest, index % (n + 1))
    return list(range(deepest))


def lora_target_regex(cfg: StageConfig, vision_layers: list[int]) -> str:
    """One regex for PEFT's `target_modules`: each LoRA tower's targets, vision in used layers only.

    `vision_layers` comes from `vision_layers_used`; LoRA on a discarded layer would be
    parameters that never receive a gradient.
    """
    assert cfg.lora is not None
    parts = []
    if cfg.modules.llm == "lora":
        parts.append(rf"{TOWER_PATTERNS['llm']}\.({'|'.join(cfg.lora.llm_targets)})")
    if cfg.modules.vision == "lora":
        if not vision_layers:
            raise ValueError(
                "modules.vision is lora, but vision_feature_layer selects the embeddings: "
                "no vision encoder layer reaches the projector"
            )
        layers = "|".join(str(i) for i in vision_layers)
        targets = "|".join(cfg.lora.vision_targets)
        parts.append(
            rf"{TOWER_PATTERNS['vision']}\.encoder\.layers\.({layers})\.(?:.*\.)?({targets})"
        )
    return "|".join(f"(?:{p})" for p in parts)


def freeze_unused_vision(model: torch.nn.Module, vision_layers: list[int]) -> None:
    """Freeze the parts of a fully trained vision tower that the model's output never reaches.

    Encoder layers past `vision_layers`, `post_layernorm` and a pooling `head`: LLaVA takes a
    hidden state from inside the encoder, so these get no gradient. Names are matched under
    `vision_tower` wherever PEFT puts the trainable copy (`modules_to_save.default`).
    """
    unused = re.compile(r".*vision_tower(?:\..*)?\.(?:encoder\.layers\.(\d+)|post_layernorm|head)")
    for name, module in model.named_modules():
        match = unused.fullmatch(name)
        if match and (match.group(1) is None or int(match.group(1)) not in vision_layers):
            module.requires_grad_(False)


def is_half(dtype: torch.dtype) -> bool:
    """bfloat16 or float16: a weight whose small updates round away (see `keep_fp32_masters`)."""
    return dtype in (torch_dtype("bfloat16"), torch_dtype("float16"))


def quantization_config(quant: QuantSpec) -> BitsAndBytesConfig:
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=quant.quant_type,
        bnb_4bit_use_double_quant=quant.double_quant,
        bnb_4bit_compute_dtype=torch_dtype(quant.compute_dtype),
        llm_int8_skip_modules=list(quant.keep),
    )


def load_for_stage(init_dir: Path, cfg: StageConfig) -> LlavaForConditionalGeneration:
    """Load the stage's starting checkpoint, 4-bit when the plan says, unquantised otherwise.

    Safetensors only (see `require_safetensors`): a checkpoint is a folder anyone with write
    access to models/ or the DVC remote could have replaced."""
    import torch
    from transformers import LlavaForConditionalGeneration

    require_safetensors(init_dir, "checkpoint")
    if cfg.quant is None:
        return LlavaForConditionalGeneration.from_pretrained(init_dir, use_safetensors=True)
    return LlavaForConditionalGeneration.from_pretrained(
        init_dir,
        use_safetensors=True,
        quantization_config=quantization_config(cfg.quant),
        device_map="cpu" if not torch.cuda.is_available() else None,
    )


def apply_plan(model: LlavaForConditionalGeneration, cfg: StageConfig) -> torch.nn.Module:
    """Freeze everything, then open exactly what the plan trains; returns the model to optimise.

    Nothing trainable is left on a module whose output the model discards (see
    `vision_layers_used`): DDP requires every trainable tensor to get a gradient each step.
    """
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    vision_layers = vision_layers_used(model.config)
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
    else:
        lora = LoraConfig(
            r=cfg.lora.r,
            lora_alpha=cfg.lora.alpha,
            lora_dropout=cfg.lora.dropout,
            target_modules=lora_target_regex(cfg, vision_layers),
            modules_to_save=full or None,
            bias="none",
        )
        model = get_peft_model(model, lora)  # casts the LoRA matrices to float32 itself
    if cfg.modules.vision == "full":
        freeze_unused_vision(model, vision_layers)
    keep_fp32_masters(model)
    return model


def compute_dtype(model: torch.nn.Module) -> torch.dtype:
    """The dtype the frozen weights compute in, which pixel inputs must have.

    Not "the first parameter's dtype": after `apply_plan` trained weights are float32 masters
    while the frozen rest stays bfloat16. A model with nothing frozen computes in its
    checkpoint's dtype (the boundary casts of `keep_fp32_masters` hand that dtype on).
    """
    floating = [p for p in model.parameters() if p.is_floating_point()]
    frozen = next((p.dtype for p in floating if not p.requires_grad), None)
    return frozen if frozen is not None else checkpoint_dtype(model)


def checkpoint_dtype(model: torch.nn.Module) -> torch.dtype:
    """The dtype the model's checkpoint stores, whatever the training copy holds.

    A loaded model's config names it; `keep_fp32_masters` records it in the config of a model
    built in memory. Otherwise the frozen weights say it (`save_pretrained` would take the first
    weight's, a float32 master if a trained tower comes first).
    """
    dtype = getattr(getattr(model, "module", model).config, "dtype", None)
    if isinstance(dtype, str):
        import torch

        return getattr(torch, dtype)
    if dtype is not None:
        return dtype
    floating = [p for p in model.parameters() if p.is_floating_point()]
    return next((p.dtype for p in floating if not p.requires_grad), floating[0].dtype)


def keep_fp32_masters(model: torch.nn.Module) -> None:
    """Hold every trainable half-precision weight in float32, casting at its module's boundary.

    Why not autocast or a master copy inside the optimiser: the trained weights themselves are
    the masters, so gradients, clipping, AdamW state, DDP's all-reduce and resume snapshots are
    all float32 with no second copy to keep in step, and the model runs the same in any caller
    (training loop, feature cache, hand-off probe) with no context to remember. This is what
    PEFT already does for LoRA matrices (`autocast_adapter_dtype`): the module computes in
    float32 and hands its output on in the frozen model's dtype. A float32 model has no half
    weights, so this changes nothing there; nor for QLoRA, whose kbit preparation already
    upcasts every unquantised weight.
    """
    frozen_dtype = compute_dtype(model)
    config = getattr(model, "module", model).config
    if getattr(config, "dtype", None) is None:  # built in memory: record it while it shows
        config.dtype = frozen_dtype
    halves = {id(p) for p in model.parameters() if p.requires_grad and is_half(p.dtype)}
    if not halves:
        return
    owners = [  # a tied weight has several owners: each of them needs the casts
        module
        for module in model.modules()
        if any(id(p) in halves for p in module.parameters(recurse=False))
    ]
    for module in owners:
        module.register_forward_pre_hook(_inputs_to_weight_dtype, with_kwargs=True)
        module.register_forward_hook(_OutputsTo(frozen_dtype))
    for param in model.parameters():
        if id(param) in halves:
            param.data = param.data.float()


def to_checkpoint_dtype(model: torch.nn.Module) -> torch.nn.Module:
    """Cast trained float32 masters back to the checkpoint's dtype, before `save_pretrained`.

    An adapter stage needs none of this (its checkpoint is merged into a fresh copy of its
    base); a full-module stage saves the trained model itself and must not write float32
    tensors into a bfloat16 checkpoint. The boundary casts follow the weights' dtype, so the
    model still runs afterwards, as it did before training.
    """
    dtype = checkpoint_dtype(model)
    for param in model.parameters():
        if param.requires_grad and param.is_floating_point() and param.dtype != dtype:
            param.data = param.data.to(dtype)
    return model


def _cast(value: Any, dtype: torch.dtype) -> Any:
    """Floating tensors in `value` (tensors, tuples, lists, dicts, model outputs) as `dtype`."""
    import torch
    from transformers.utils import ModelOutput

    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() else value
    if isinstance(value, ModelOutput):
        return type(value)(**{k: _cast(v, dtype) for k, v in value.items()})
    if isinstance(value, (tuple, list)) and not hasattr(value, "_fields"):
        return type(value)(_cast(v, dtype) for v in value)
    if isinstance(value, dict):
        return {k: _cast(v, dtype) for k, v in value.items()}
    return value


def _inputs_to_weight_dtype(
    module: torch.nn.Module, args: tuple, kwargs: dict
) -> tuple[tuple, dict]:
    dtype = next(module.parameters(recurse=False)).dtype
    return _cast(args, dtype), _cast(kwargs, dtype)


class _OutputsTo:
    """Forward hook: hand a float32 module's output on in the frozen model's dtype."""

    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype

    def __call__(self, module: torch.nn.Module, args: tuple, output: Any) -> Any:
        return _cast(output, self.dtype)


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
    later stage. Base and adapter are read as safetensors only; PEFT takes no flag for that and
    falls back to `adapter_model.bin`, so the adapter folder is checked here.
    """
    require_safetensors(init_dir, "checkpoint")
    require_safetensors(adapter_dir, "adapter", ("adapter_model.safetensors",))
    from peft import PeftModel
    from transformers import LlavaForConditionalGeneration

    base = LlavaForConditionalGeneration.from_pretrained(init_dir, use_safetensors=True)
    return PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
