"""Assemble P0: a vision tower, a fresh 2-layer GELU projector and an instruction LLM.

The same code builds the embedded tiny model (random SigLIP + Llama from configs, our own
tokenizer) and the paper model (SigLIP-2 so400m + llm-jp-4-8B from hub ids or local paths).
P0 is HF's `LlavaForConditionalGeneration`, so every checkpoint loads with transformers alone.
The LLM's class comes from its config (`AutoModelForCausalLM`), so any decoder-only causal LM
transformers knows (Llama, Qwen2, Mistral, Gemma, ...) can be the language model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch and transformers load inside the functions that build models, so
    # validating params (`finstage validate`) reads these dataclasses without importing them
    import torch
    from transformers import (
        LlavaForConditionalGeneration,
        PreTrainedModel,
        PreTrainedTokenizerBase,
        SiglipVisionModel,
    )

from finstage.config import require
from finstage.model.tokenizer import ensure_special_tokens, is_iso_date
from finstage.records import IMAGE_MARKER

DTYPE_NAMES = ("float32", "bfloat16", "float16")  # what params may name; torch_dtype maps them
DEFAULT_LLM_TYPE = "llama"  # a `config` without `model_type` builds a Llama, as it always has
MODEL_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")  # one file, or shards
PICKLES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


@dataclass
class ComponentSpec:
    """Either `pretrained` (hub id or local directory, pinned by `revision`) or a `config`."""

    pretrained: str | None
    revision: str | None
    config: dict[str, Any]

    def check(self, where: str) -> None:
        require(
            (self.pretrained is None) != (not self.config),
            where,
            "needs exactly one of 'pretrained' (id or path) or 'config' (build from scratch)",
        )


@dataclass
class TokenizerSpec:
    """`pretrained` loads the LLM's tokenizer; otherwise a BPE of `vocab_size` is trained."""

    pretrained: str | None
    revision: str | None
    vocab_size: int

    def check(self, where: str) -> None:
        require(
            self.vocab_size >= 300, f"{where}.vocab_size", "must be >= 300 (256 bytes + specials)"
        )


@dataclass
class ModelConfig:
    vision: ComponentSpec
    llm: ComponentSpec
    tokenizer: TokenizerSpec
    vision_feature_layer: int
    dtype: str
    trust_remote_code: bool
    seed: int
    chat_date: str  # "today" for chat templates that print a date (pinned: prompts stay fixed)

    def check(self, where: str) -> None:
        require(
            self.dtype in DTYPE_NAMES, f"{where}.dtype", f"must be one of {sorted(DTYPE_NAMES)}"
        )
        require(
            is_iso_date(self.chat_date),
            f"{where}.chat_date",
            f"must be a date written YYYY-MM-DD (quoted in YAML), got {self.chat_date!r}",
        )


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype a params name (one of DTYPE_NAMES) stands for; imports torch on use."""
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def __getattr__(name: str) -> Any:
    """`DTYPES` (name -> torch dtype) is built on first use, so importing this module is light."""
    if name == "DTYPES":
        return {dtype: torch_dtype(dtype) for dtype in DTYPE_NAMES}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def require_safetensors(
    folder: str | Path, what: str, names: tuple[str, ...] = MODEL_WEIGHTS
) -> None:
    """Refuse a local weights folder that holds no safetensors, naming what it holds instead.

    Every model load also passes `use_safetensors=True`, which is what guards hub ids; this
    check says why a local folder is refused: a pickle (`pytorch_model.bin`) runs code when it
    is loaded, and `weights_only=True` has been bypassed before, so no pickle is read at all.
    """
    folder = Path(folder)
    if not folder.is_dir() or any((folder / name).is_file() for name in names):
        return
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLES)
    raise ValueError(
        f"{what} {folder}: holds {pickles or 'no weights'} but no {names[0]}; finstage loads "
        "safetensors only (a pickle can run code when loaded); re-save the model with "
        "save_pretrained, which writes safetensors"
    )


def load_tokenizer(spec: TokenizerSpec, trust_remote_code: bool) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(
        spec.pretrained, revision=spec.revision, trust_remote_code=trust_remote_code
    )


def build_p0(cfg: ModelConfig, tokenizer: PreTrainedTokenizerBase) -> LlavaForConditionalGeneration:
    """Build the untouched baseline: pretrained (or seeded random) towers + a fresh projector."""
    import torch
    from transformers import LlavaConfig, LlavaForConditionalGeneration

    torch.manual_seed(cfg.seed)
    dtype = torch_dtype(cfg.dtype)
    vision = _vision_tower(cfg, dtype)
    llm = language_model(cfg, tokenizer, dtype)
    image_size = vision.config.image_size
    patch = vision.config.patch_size
    llava_cfg = LlavaConfig(
        vision_config=vision.config,
        text_config=llm.config,
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_MARKER),
        projector_hidden_act="gelu",
        vision_feature_layer=cfg.vision_feature_layer,
        vision_feature_select_strategy="full",
        image_seq_length=(image_size // patch) ** 2,
        multimodal_projector_bias=True,
        tie_word_embeddings=llm.config.tie_word_embeddings,  # as the LLM was trained
    )
    model = LlavaForConditionalGeneration(llava_cfg).to(dtype)
    model.model.vision_tower.load_state_dict(vision.state_dict())
    # `base_model` and `get_output_embeddings` name the decoder and the head whatever the class
    # calls them; a tied head is the embedding itself, and LlavaConfig keeps it tied
    model.model.language_model.load_state_dict(llm.base_model.state_dict())
    model.lm_head.load_state_dict(llm.get_output_embeddings().state_dict())
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def _vision_tower(cfg: ModelConfig, dtype: torch.dtype) -> SiglipVisionModel:
    from transformers import SiglipVisionConfig, SiglipVisionModel

    spec = cfg.vision
    if spec.pretrained:
        require_safetensors(spec.pretrained, "model.vision.pretrained")
        return SiglipVisionModel.from_pretrained(
            spec.pretrained,
            revision=spec.revision,
            dtype=dtype,
            trust_remote_code=cfg.trust_remote_code,
            use_safetensors=True,
            vision_use_head=False,
        )
    return SiglipVisionModel(SiglipVisionConfig(**{"vision_use_head": False, **spec.config}))


def language_model(
    cfg: ModelConfig, tokenizer: PreTrainedTokenizerBase, dtype: torch.dtype
) -> PreTrainedModel:
    """The causal LM whose decoder and head P0 takes over, of whatever class its config names."""
    from transformers import AutoConfig, AutoModelForCausalLM

    spec = cfg.llm
    if spec.pretrained:
        require_safetensors(spec.pretrained, "model.llm.pretrained")
        llm = AutoModelForCausalLM.from_pretrained(
            spec.pretrained,
            revision=spec.revision,
            dtype=dtype,
            trust_remote_code=cfg.trust_remote_code,
            use_safetensors=True,
        )
        if ensure_special_tokens(tokenizer) or llm.config.vocab_size < len(tokenizer):
            llm.resize_token_embeddings(len(tokenizer))
    else:
        settings = dict(spec.config)
        model_type = settings.pop("model_type", DEFAULT_LLM_TYPE)
        text_cfg = AutoConfig.for_model(
            model_type,
            **{
                "tie_word_embeddings": False,
                **settings,
                "vocab_size": len(tokenizer),
                "bos_token_id": tokenizer.bos_token_id,
                "eos_token_id": tokenizer.eos_token_id,
                "pad_token_id": tokenizer.pad_token_id,
            },
        )
        llm = AutoModelForCausalLM.from_config(text_cfg, trust_remote_code=cfg.trust_remote_code)
    _check_llava_compatible(llm)
    return llm


def _check_llava_compatible(llm: PreTrainedModel) -> None:
    """Refuse an LLM whose causal-LM head does more than a linear layer.

    LLaVA runs the decoder it builds from the text config and then its own `lm_head`; logit
    soft-capping (Gemma 2) lives in the causal-LM class's forward and would be silently lost.
    """
    softcap = getattr(llm.config, "final_logit_softcapping", None)
    if softcap:
        raise ValueError(
            f"{type(llm).__name__} soft-caps its logits (final_logit_softcapping={softcap}), "
            "which LlavaForConditionalGeneration does not do; P0 would not be the same LLM"
        )


def parameter_counts(model: torch.nn.Module) -> dict[str, dict[str, int]]:
    """Total and trainable parameters per module group (vision / projector / llm)."""
    import torch

    counts: dict[str, dict[str, int]] = {}
    for name, param in model.named_parameters():
        group = module_group(name)
        entry = counts.setdefault(group, {"total": 0, "trainable": 0})
        n = param.numel() * (2 if param.dtype == torch.uint8 else 1)  # 4-bit packs two per byte
        entry["total"] += n
        if param.requires_grad:
            entry["trainable"] += n
    return dict(sorted(counts.items()))


def module_group(param_name: str) -> str:
    if "vision_tower" in param_name:
        return "vision"
    if "multi_modal_projector" in param_name:
        return "projector"
    return "llm"
