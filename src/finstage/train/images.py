"""How page images reach the model in a training step: as pixels, or as cached vision features.

A stage that keeps the vision tower frozen gets the same tower output for a page every time it
sees it, so encoding the page again each epoch (PNG decode, resize, the tower's forward) is
wasted work. `FeatureInputs` keeps the tower's selected hidden state per view on disk (a page's
global view, or one of its tiles: `finstage.pagestore`), keyed by a hash of that view's own
image and a hash of the vision weights and preprocessing, and rebuilds the
language model's input embeddings from it the way `LlavaModel.forward` does, so loss and
gradients are the same as on the pixel path. The projector still runs every step: p1_s1 and
p3_s2 train it.

The cache lives outside DVC outputs (`.finstage/features/`), like resume snapshots: a rerun of
the same stage, or a later stage with the same vision weights, finds the features there.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import torch
from peft import PeftModel
from safetensors.torch import load_file, save_file
from transformers import LlavaForConditionalGeneration

from finstage.chat import image_to_pixels
from finstage.pagestore import PageStore

Batch = dict[str, torch.Tensor]
BatchInputs = Callable[[Batch, list[str]], Batch]
CACHE_FORMAT = "1"  # bump when what a cached tensor means changes


def unwrap(model: torch.nn.Module) -> LlavaForConditionalGeneration:
    """The Llava model under DDP and PEFT wrappers (their forward is the same model's)."""
    model = getattr(model, "module", model)
    if isinstance(model, PeftModel):
        model = model.get_base_model()
    return model


class PixelInputs:
    """Page views as SigLIP-normalised pixels, decoded from the page store at every use; called
    with the view ids of a batch (`Encoded.images`), in placeholder-run order."""

    def __init__(self, store: PageStore, image_size: int, dtype: torch.dtype):
        self.store = store
        self.image_size = image_size
        self.dtype = dtype
        self._hashes: dict[str, str] = {}

    def pixels(self, views: list[str]) -> torch.Tensor:
        images = [image_to_pixels(self.store.view_image(v), self.image_size) for v in views]
        return torch.stack(images).to(self.dtype)

    def view_hash(self, view: str) -> str:
        """Hash of the view's rendered image itself: a re-render at another DPI is another view,
        and a tile is never served the features of its page's global view."""
        if view not in self._hashes:
            self._hashes[view] = hashlib.sha256(self.store.view_png(view)).hexdigest()
        return self._hashes[view]

    def __call__(self, batch: Batch, views: list[str]) -> Batch:
        return {**batch, "pixel_values": self.pixels(views)} if views else batch


def vision_fingerprint(model: LlavaForConditionalGeneration, image_size: int) -> str:
    """Everything the cached features depend on: tower weights, selected layer, preprocessing."""
    digest = hashlib.sha256(CACHE_FORMAT.encode())
    config = model.config
    settings = (config.vision_feature_layer, config.vision_feature_select_strategy, image_size)
    digest.update(repr(settings).encode())
    for name, tensor in sorted(model.model.vision_tower.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:24]


class FeatureInputs:
    """Frozen-tower features per view from a disk cache; computes and stores the missing ones."""

    def __init__(self, model: torch.nn.Module, pixels: PixelInputs, root: Path):
        self.model = model
        self.llava = unwrap(model)
        self.pixels = pixels
        self.dir = Path(root) / vision_fingerprint(self.llava, pixels.image_size)
        self.hits = 0
        self.computed = 0

    def _path(self, view: str) -> Path:
        key = self.pixels.view_hash(view)
        return self.dir / key[:2] / f"{key}.safetensors"

    @torch.no_grad()
    def _encode(self, views: list[str]) -> torch.Tensor:
        config = self.llava.config
        pixels = self.pixels.pixels(views).to(self.llava.device)
        out = self.llava.model.vision_tower(pixels, output_hidden_states=True, return_dict=True)
        selected = out.hidden_states[config.vision_feature_layer]
        if config.vision_feature_select_strategy == "default":
            selected = selected[:, 1:]  # drop CLS, as LlavaModel.get_image_features does
        return selected

    def features(self, views: list[str]) -> torch.Tensor:
        """(views, patches, hidden) tower features in the order of ``views``."""
        found: dict[str, torch.Tensor] = {}
        for view in dict.fromkeys(views):
            path = self._path(view)
            if path.exists():
                found[view] = load_file(path)["features"]
        self.hits += len(found)
        missing = [view for view in dict.fromkeys(views) if view not in found]
        for view in missing:  # one view per forward: features must not depend on batch-mates
            found[view] = self._encode([view])[0].cpu().contiguous()
            self._store(self._path(view), found[view])
        self.computed += len(missing)
        return torch.stack([found[view] for view in views])

    @staticmethod
    def _store(path: Path, features: torch.Tensor) -> None:
        """Write then rename, so a killed run or a second process never leaves a torn file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        save_file({"features": features}, tmp)
        tmp.replace(path)

    def __call__(self, batch: Batch, views: list[str]) -> Batch:
        if not views:
            return batch
        input_ids = batch["input_ids"]
        embeds = self.model.get_input_embeddings()(input_ids)
        features = self.features(views).to(input_ids.device)
        image_features = self.llava.model.multi_modal_projector(features)
        mask = (input_ids == self.llava.config.image_token_id).unsqueeze(-1).expand_as(embeds)
        if int(mask[..., 0].sum()) != image_features.shape[0] * image_features.shape[1]:
            raise ValueError(
                f"{int(mask[..., 0].sum())} image placeholder tokens for "
                f"{image_features.shape[0]}×{image_features.shape[1]} image features; "
                "the collator must expand every image to image_seq_length placeholders"
            )
        embeds = embeds.masked_scatter(mask, image_features.to(embeds.dtype))
        return {**{k: v for k, v in batch.items() if k != "input_ids"}, "inputs_embeds": embeds}
