"""Frozen-vision feature cache: same loss and gradients as pixels, encodes each page once."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, LlavaForConditionalGeneration

from finstage.chat import ChatEncoder, pad_batch
from finstage.config import parse
from finstage.model.plan import StageConfig, apply_plan
from finstage.pagestore import PageStore
from finstage.train.images import FeatureInputs, PixelInputs, vision_fingerprint
from finstage.train.stage import encode_records, run_stage

from .conftest import repo_params


def plan(name: str, **overrides) -> StageConfig:
    raw = {**repo_params()["train"][name], "epochs": 2, "batch_size": 2, "max_seq_len": 96}
    return parse(StageConfig, {**raw, **overrides}, f"train.{name}")


@pytest.fixture
def p1_s1_batch(tiny_p0, tiny_pages, tiny_mixes):
    model = apply_plan(LlavaForConditionalGeneration.from_pretrained(tiny_p0), plan("p1_s1"))
    tok = AutoTokenizer.from_pretrained(tiny_p0)
    cfg = model.config
    encoder = ChatEncoder(tok, cfg.image_token_id, cfg.image_seq_length, 96)
    examples, _ = encode_records(tiny_mixes["visual"], encoder)
    batch = pad_batch(examples[:3], tok.pad_token_id)
    pages = [pid for e in examples[:3] for pid in e.images]
    pixels = PixelInputs(PageStore(tiny_pages), cfg.vision_config.image_size, torch.float32)
    return model, batch, pages, pixels


def loss_and_grads(model, batch) -> tuple[float, dict[str, torch.Tensor]]:
    model.zero_grad()
    loss = model(**batch).loss
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return loss.item(), grads


def test_cached_features_give_the_pixel_paths_loss_and_gradients(tmp_path, p1_s1_batch):
    model, batch, pages, pixels = p1_s1_batch
    cache = FeatureInputs(model, pixels, tmp_path)
    pixel_loss, pixel_grads = loss_and_grads(model, pixels(batch, pages))
    first_loss, first_grads = loss_and_grads(model, cache(batch, pages))  # encodes and stores
    cached_loss, cached_grads = loss_and_grads(model, cache(batch, pages))  # reads from disk
    assert set(pixel_grads) == set(cached_grads) and pixel_grads  # projector only
    assert all("multi_modal_projector" in n for n in pixel_grads)
    for loss, grads in ((first_loss, first_grads), (cached_loss, cached_grads)):
        assert loss == pytest.approx(pixel_loss, abs=1e-6)
        for name, grad in grads.items():
            torch.testing.assert_close(grad, pixel_grads[name], atol=1e-6, rtol=1e-5)
    assert (cache.computed, cache.hits) == (len(set(pages)), len(set(pages)))


def test_cache_is_keyed_by_vision_weights_and_page_image(tmp_path, p1_s1_batch):
    model, batch, pages, pixels = p1_s1_batch
    before = vision_fingerprint(model, pixels.image_size)
    assert vision_fingerprint(model, pixels.image_size * 2) != before  # another page view
    FeatureInputs(model, pixels, tmp_path)(batch, pages)
    files = sorted(tmp_path.rglob("*.safetensors"))
    assert len(files) == len(set(pages))
    assert {f.stem for f in files} == {pixels.view_hash(p) for p in pages}
    with torch.no_grad():
        next(model.model.vision_tower.parameters()).add_(0.01)
    changed = FeatureInputs(model, pixels, tmp_path)
    assert changed.dir.name != before
    changed(batch, pages)
    assert changed.computed == len(set(pages)) and changed.hits == 0
    stored = load_file(files[0])["features"]
    assert stored.shape[0] == model.config.image_seq_length


def test_stage_with_cache_matches_stage_without(tmp_path, tiny_p0, tiny_pages, tiny_mixes):
    cfg = plan("p1_s1")
    runs = {}
    features = tmp_path / "features"
    for name, feature_dir in (("pixels", None), ("cached", features), ("warm", features)):
        out = tmp_path / name
        runs[name] = run_stage(
            "p1_s1", cfg, tiny_p0, tiny_mixes["visual"], tiny_pages, out, feature_dir=feature_dir
        )
    a, b = runs["pixels"]["training"]["losses"], runs["cached"]["training"]["losses"]
    assert a == pytest.approx(b, abs=1e-5)
    assert len(list((tmp_path / "features").rglob("*.safetensors"))) == 4  # 4 pages, once each
    wa = load_file(tmp_path / "pixels" / "model.safetensors")
    wb = load_file(tmp_path / "cached" / "model.safetensors")
    for key, tensor in wa.items():
        torch.testing.assert_close(wb[key], tensor, atol=1e-5, rtol=1e-4)
    # a warm cache replays the cold run exactly: features never depend on their batch-mates
    warm = load_file(tmp_path / "warm" / "model.safetensors")
    assert all(torch.equal(warm[k], t) for k, t in wb.items())


def test_trained_vision_tower_never_uses_the_cache():
    assert plan("p1_s1").caches_features()
    assert not plan("p1_s2").caches_features()  # vision LoRA: features change every step
    assert not plan("p1_s1", feature_cache=False).caches_features()
