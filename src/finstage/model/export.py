"""What a checkpoint folder needs so that stock tools load it without finstage.

`save_pretrained` alone leaves a checkpoint that transformers can load as a model but not run
on an image: without a processor, `AutoProcessor` has nothing to load and a hand-built one
expands `<image>` to the wrong number of placeholders. `save_processor` writes a
`LlavaProcessor` whose image processor is our `chat.image_to_pixels` (same resize, same
resampling filter, same normalisation) and whose placeholder count is the model's
`image_seq_length`, so `AutoProcessor` + `AutoModelForImageTextToText` reproduce our own
prompts and pixels exactly.

lm-eval's `hf` model loads only causal LMs, and a Llava folder is not one, so
`export_text_backbone` writes the language model and its head as a standalone causal LM folder
(on demand, not per checkpoint: at paper scale it is a second copy of the LLM's weights).

safetensors >= 0.8 writes through a temporary file that is created 0600 and renamed into place
(safetensors/safetensors#782), so weights and adapters end up readable by their writer only
while every JSON file next to them is 0644. `uniform_modes` sets one mode for everything in a
checkpoint, independent of the writer's umask, so a checkpoint copied out of the DVC cache or
shared on a multi-user machine reads the same everywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedTokenizerBase,
    SiglipImageProcessorPil,
)
from transformers.image_utils import PILImageResampling

from finstage.model.tokenizer import save_tokenizer
from finstage.records import IMAGE_MARKER

FILE_MODE = 0o644
DIR_MODE = 0o755

# `chat.image_to_pixels`: a plain size×size bicubic resize (PIL), /255, then (x - 0.5) / 0.5.
PIXEL_MEAN = 0.5
PIXEL_STD = 0.5
RESAMPLE = PILImageResampling.BICUBIC


def build_processor(config: LlavaConfig, tokenizer: PreTrainedTokenizerBase) -> LlavaProcessor:
    """A `LlavaProcessor` that prepares inputs exactly as our collator and evaluators do.

    LlavaProcessor replaces each `<image>` with (H/patch)·(W/patch) + num_additional_image_tokens
    placeholders, minus one for strategy "default" (which drops a CLS feature SigLIP does not
    have). Our model keeps every patch feature (strategy "full") and SigLIP adds no token, so
    with num_additional_image_tokens = 0 the count is (size/patch)², the model's
    `image_seq_length`; a config where that does not hold is rejected rather than saved.
    """
    vision = config.vision_config
    size = vision.image_size
    strategy = config.vision_feature_select_strategy
    expected = (size // vision.patch_size) ** 2 - (1 if strategy == "default" else 0)
    if expected != config.image_seq_length:
        raise ValueError(
            f"LlavaProcessor would expand <image> to {expected} placeholders but the model "
            f"expects image_seq_length={config.image_seq_length}"
        )
    marker_id = tokenizer.convert_tokens_to_ids(IMAGE_MARKER)
    if marker_id != config.image_token_id:
        raise ValueError(
            f"the tokenizer's {IMAGE_MARKER} is id {marker_id}, "
            f"the model's image_token_id is {config.image_token_id}"
        )
    image_processor = SiglipImageProcessorPil(
        do_resize=True,
        size={"height": size, "width": size},
        resample=RESAMPLE,
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=[PIXEL_MEAN] * 3,
        image_std=[PIXEL_STD] * 3,
        do_convert_rgb=True,
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=vision.patch_size,
        vision_feature_select_strategy=strategy,
        num_additional_image_tokens=0,
        image_token=IMAGE_MARKER,
        chat_template=tokenizer.chat_template,
    )


def save_processor(config: LlavaConfig, tokenizer: PreTrainedTokenizerBase, out_dir: Path) -> None:
    """Write `processor_config.json` (and the tokenizer it wraps) into a checkpoint folder.

    The processor re-saves its tokenizer, adding `processor_class` to `tokenizer_config.json`;
    `save_tokenizer` runs first so the load-time settings it drops stay dropped.
    """
    save_tokenizer(tokenizer, out_dir)
    build_processor(config, tokenizer).save_pretrained(out_dir)


def uniform_modes(root: Path) -> None:
    """Every file under `root` 0644 and every folder 0755, whatever wrote it and whatever umask.

    Called last on a checkpoint folder (adapter/ included): the fix for safetensors' 0600 files
    has to come after the write, since safetensors offers no way to choose the mode.
    """
    root = Path(root)
    os.chmod(root, DIR_MODE)
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            continue
        os.chmod(path, DIR_MODE if path.is_dir() else FILE_MODE)


def export_text_backbone(checkpoint: Path, out_dir: Path) -> Path:
    """The checkpoint's language model + LM head as a standalone causal LM folder, tokenizer too.

    lm-eval's `hf` model (and `AutoModelForCausalLM`) then loads `out_dir` by path. The weights
    are the checkpoint's own tensors, so text-only log-likelihoods equal the Llava model's.
    """
    model = LlavaForConditionalGeneration.from_pretrained(checkpoint, use_safetensors=True)
    text = AutoModelForCausalLM.from_config(model.config.text_config, dtype=model.dtype)
    text.model.load_state_dict(model.model.language_model.state_dict())
    text.lm_head.load_state_dict(model.lm_head.state_dict())
    text.generation_config = model.generation_config
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text.save_pretrained(out_dir)
    save_tokenizer(AutoTokenizer.from_pretrained(checkpoint), out_dir)
    uniform_modes(out_dir)
    return out_dir
