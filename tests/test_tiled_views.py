"""Tiled pages through training and evaluation: a marker becomes one image run per view, pixels
and cached features list the same views in the same order, the stock Llava model accepts them."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw
from transformers import AutoTokenizer, LlavaForConditionalGeneration

from finstage.chat import ChatEncoder, pad_batch
from finstage.evaluate.lm import FinstageLM
from finstage.evaluate.visual import generate_answers
from finstage.pagestore import PageStore, page_id, tile_view, write_pages
from finstage.records import make_record
from finstage.train.images import FeatureInputs, PixelInputs
from finstage.train.stage import visual_tokens

from .conftest import doc_sha

TILES = 4
CHAT = [
    {"role": "user", "content": "<image>このページを読んでください。"},
    {"role": "assistant", "content": "歳出合計 1,234,567"},
]
TWO_PAGES = [
    {"role": "user", "content": "<image><image>二つのページの合計は?"},
    {"role": "assistant", "content": "2,469,134"},
]


def png(seed: int) -> bytes:
    image = Image.new("RGB", (48, 64), "white")
    ImageDraw.Draw(image).rectangle([2 + seed, 3, 30, 10 + 2 * seed], fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def tiled_pages(tmp_path_factory) -> Path:
    """Two pages, each a global view and a 2 x 2 grid of tiles, every view a different image."""
    out = tmp_path_factory.mktemp("tiled")
    pages = [
        {
            "page_id": page_id(doc_sha(i), 0),
            "doc_sha256": doc_sha(i),
            "page_index": 0,
            "width": 48,
            "height": 64,
            "png": png(10 * i),
            "text": "歳出合計 1,234,567",
            "tiles": [png(10 * i + 1 + k) for k in range(TILES)],
            "tile_rows": 2,
            "tile_cols": 2,
        }
        for i in range(2)
    ]
    write_pages(out, pages, tiled=True)
    return out


@pytest.fixture(scope="module")
def tiny(tiny_p0):
    model = LlavaForConditionalGeneration.from_pretrained(tiny_p0).eval()
    return model, AutoTokenizer.from_pretrained(tiny_p0)


def encoder(model, tok) -> ChatEncoder:
    return ChatEncoder(tok, model.config.image_token_id, model.config.image_seq_length, 256)


def test_a_tiled_page_collates_to_one_run_per_view_with_matching_pixels(tiny, tiled_pages):
    model, tok = tiny
    store, seq = PageStore(tiled_pages), model.config.image_seq_length
    pid = page_id(doc_sha(0), 0)
    plain = encoder(model, tok).encode(CHAT, [pid])
    tiled = encoder(model, tok).encode(CHAT, [pid], store.views)
    assert plain.input_ids.count(model.config.image_token_id) == seq  # without views: one run
    assert tiled.input_ids.count(model.config.image_token_id) == (1 + TILES) * seq
    assert tiled.images == [pid, *(tile_view(pid, k) for k in range(TILES))]
    assert len(tiled.input_ids) - len(plain.input_ids) == TILES * seq
    assert [x for x in tiled.labels if x != -100] == [x for x in plain.labels if x != -100]
    pixels = PixelInputs(store, model.config.vision_config.image_size, torch.float32)
    batch = pixels(pad_batch([tiled], tok.pad_token_id), tiled.images)
    size = model.config.vision_config.image_size
    assert batch["pixel_values"].shape == (1 + TILES, 3, size, size)
    assert len({tuple(p.flatten().tolist()) for p in batch["pixel_values"]}) == 1 + TILES
    with torch.no_grad():
        loss = model(**batch).loss  # the stock model matches features to placeholders
    assert torch.isfinite(loss)
    assert visual_tokens([tiled, plain], model.config.image_token_id) == {
        "mean": (1 + TILES + 1) * seq / 2,
        "max": (1 + TILES) * seq,
    }


def test_a_two_page_record_with_tiles_shows_every_view_of_both_pages(tiny, tiled_pages):
    model, tok = tiny
    store, seq = PageStore(tiled_pages), model.config.image_seq_length
    pids = [page_id(doc_sha(0), 0), page_id(doc_sha(1), 0)]
    enc = encoder(model, tok).encode(TWO_PAGES, pids, store.views)
    assert enc.images == store.views(pids[0]) + store.views(pids[1])
    assert enc.input_ids.count(model.config.image_token_id) == 2 * (1 + TILES) * seq
    pixels = PixelInputs(store, model.config.vision_config.image_size, torch.float32)
    batch = pixels(pad_batch([enc], tok.pad_token_id), enc.images)
    assert batch["pixel_values"].shape[0] == 2 * (1 + TILES)
    with torch.no_grad():
        assert torch.isfinite(model(**batch).loss)
    with pytest.raises(ValueError, match="2 image markers .* views for 1 pages"):
        encoder(model, tok).encode(TWO_PAGES, pids[:1], store.views)


def test_the_feature_cache_keys_each_view_apart(tiny, tiled_pages, tmp_path):
    model, tok = tiny
    store = PageStore(tiled_pages)
    pid = page_id(doc_sha(0), 0)
    enc = encoder(model, tok).encode(CHAT, [pid], store.views)
    pixels = PixelInputs(store, model.config.vision_config.image_size, torch.float32)
    cache = FeatureInputs(model, pixels, tmp_path)
    cache.features([pid])  # the global view alone is cached first
    assert (cache.computed, cache.hits) == (1, 0)
    cache.features([tile_view(pid, 0)])  # a tile is not served the global view's features
    assert (cache.computed, cache.hits) == (2, 0)
    batch = pad_batch([enc], tok.pad_token_id)
    with torch.no_grad():
        cached = model(**cache(batch, enc.images)).loss
        direct = model(**pixels(batch, enc.images)).loss
    assert cached.item() == pytest.approx(direct.item(), abs=1e-5)
    keys = {pixels.view_hash(v) for v in enc.images}
    assert len(keys) == 1 + TILES
    assert {f.stem for f in tmp_path.rglob("*.safetensors")} == keys


def test_evaluation_shows_the_model_every_view_of_a_tiled_page(tiny_p0, tiled_pages):
    lm = FinstageLM.from_checkpoint(tiny_p0, 2, 256, False, "cpu")
    store, seq = PageStore(tiled_pages), lm.model.config.image_seq_length
    pids = [page_id(doc_sha(0), 0), page_id(doc_sha(1), 0)]
    records = [
        make_record("one", "vqa", CHAT, pids[:1], answer="1"),
        make_record("two", "vqa", TWO_PAGES, pids, answer="2"),
    ]
    seen: list[tuple[list[int], tuple[int, ...]]] = []
    generate = lm.generate_ids

    def spy(prompts, max_new_tokens, stop=None, pixel_values=None):
        seen.append(([p.count(lm.image_token_id) for p in prompts], tuple(pixel_values.shape)))
        return generate(prompts, max_new_tokens, stop, pixel_values)

    lm.generate_ids = spy
    answers = generate_answers(lm, records, store, 4, "vqa")
    assert len(answers) == 2 and not lm.unscorable
    size = lm.model.config.vision_config.image_size
    assert seen == [([(1 + TILES) * seq, 2 * (1 + TILES) * seq], (3 * (1 + TILES), 3, size, size))]
