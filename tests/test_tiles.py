"""Page tiles at render time: the grid covers the page with the asked overlap, a tile is rasterised
at its own higher resolution, tiled pages reach the shards, the report measures body text."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pymupdf
import pytest
from PIL import Image

from finstage import presets
from finstage.config import ParamsError
from finstage.pages.legibility import encoder_px
from finstage.pages.render import RenderConfig, render_document
from finstage.pages.tiles import tile_boxes, view_heights
from finstage.pagestore import PageStore, tile_view, write_pages
from finstage.params import validate, with_preset

from .conftest import ROOT
from .repo_configs import repo_config

TILES = {"enabled": True, "rows": 2, "cols": 2, "overlap": 0.0, "side": 400}


def render_config(**changes) -> RenderConfig:
    return repo_config(RenderConfig, "render", **changes)


@pytest.mark.parametrize(("rows", "cols", "overlap"), [(2, 2, 0.1), (3, 2, 0.25), (1, 4, 0.0)])
def test_tiles_cover_the_page_with_the_requested_overlap(rows, cols, overlap):
    page = (0.0, 0.0, 595.0, 842.0)
    boxes = tile_boxes(page, rows, cols, overlap)
    assert len(boxes) == rows * cols
    widths = {round(b[2] - b[0], 6) for b in boxes}
    heights = {round(b[3] - b[1], 6) for b in boxes}
    assert len(widths) == 1 and len(heights) == 1  # one tile size: one scale for every tile
    width, height = widths.pop(), heights.pop()
    assert min(b[0] for b in boxes) == 0 and max(b[2] for b in boxes) == pytest.approx(595)
    assert min(b[1] for b in boxes) == 0 and max(b[3] for b in boxes) == pytest.approx(842)
    for r in range(rows):  # row-major: a row's tiles share their top, neighbours overlap
        row = boxes[r * cols : (r + 1) * cols]
        assert len({b[1] for b in row}) == 1
        for left, right in zip(row, row[1:], strict=False):
            assert left[2] - right[0] == pytest.approx(overlap * width)
    for upper, lower in zip(boxes[::cols], boxes[cols::cols], strict=False):
        assert upper[3] - lower[1] == pytest.approx(overlap * height)


def ink_rows(png: bytes) -> int:
    """How many pixel rows hold dark ink."""
    gray = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
    return int((gray < 128).any(axis=1).sum())


def one_page_pdf(path: Path) -> Path:
    """A 400 x 400 pt page with one line of 20-pt capitals in its top-left quarter."""
    doc = pymupdf.open()
    page = doc.new_page(width=400, height=400)
    page.insert_text((40, 80), "HHHH", fontsize=20)
    doc.save(path)
    return path


def test_a_tile_is_rendered_at_its_own_higher_resolution(tmp_path):
    pdf = one_page_pdf(tmp_path / "page.pdf")
    sha = hashlib.sha256(pdf.read_bytes()).hexdigest()
    cfg = render_config(max_side=200, tiles=TILES)  # global: 0.5 px/pt; tiles: 400/200 = 2 px/pt
    pages, failures = render_document(pdf, sha, cfg)
    assert failures == [] and len(pages) == 1
    page = pages[0]
    assert len(page["tiles"]) == 4 and (page["tile_rows"], page["tile_cols"]) == (2, 2)
    sizes = [Image.open(io.BytesIO(t)).size for t in page["tiles"]]
    assert sizes == [(400, 400)] * 4
    global_px, tile_px = ink_rows(page["png"]), ink_rows(page["tiles"][0])
    assert global_px >= 5 and tile_px / global_px == pytest.approx(4, rel=0.2)
    assert all(ink_rows(t) == 0 for t in page["tiles"][1:])  # the text lies in tile 0 only
    with pymupdf.open(pdf) as doc:  # the report's measure scales by the same factor
        heights = view_heights(doc[0], cfg.tiles, 0.5)
    assert heights["tile_fraction"] / heights["global_fraction"] == pytest.approx(2)
    assert heights["tile_stored_px"] / heights["global_stored_px"] == pytest.approx(4)


def test_tiled_pages_are_stored_with_their_views(tmp_path):
    pdf = one_page_pdf(tmp_path / "page.pdf")
    sha = hashlib.sha256(pdf.read_bytes()).hexdigest()
    pages, _ = render_document(pdf, sha, render_config(max_side=200, tiles=TILES))
    write_pages(tmp_path / "pages", pages, tiled=True)
    store = PageStore(tmp_path / "pages")
    pid = pages[0]["page_id"]
    assert store.views(pid) == [pid, *(tile_view(pid, k) for k in range(4))]
    assert store.view_png(pid) == pages[0]["png"]
    assert [store.view_png(v) for v in store.views(pid)[1:]] == pages[0]["tiles"]
    assert "legibility" not in store[pid]  # a report figure, not a column
    with pytest.raises(KeyError, match="no tile 4"):
        store.view_png(tile_view(pid, 4))


def test_untiled_render_keeps_the_original_page_schema(tmp_path):
    pdf = one_page_pdf(tmp_path / "page.pdf")
    sha = hashlib.sha256(pdf.read_bytes()).hexdigest()
    pages, _ = render_document(pdf, sha, render_config())
    assert "tiles" not in pages[0]
    write_pages(tmp_path / "pages", pages)
    store = PageStore(tmp_path / "pages")
    assert set(store[pages[0]["page_id"]]) == {
        "page_id",
        "doc_sha256",
        "page_index",
        "width",
        "height",
        "png",
        "text",
        "text_issue",
    }
    assert store.views(pages[0]["page_id"]) == [pages[0]["page_id"]]


def test_encoder_pixels_follow_the_encoder_size():
    views = {"body_char_height": {"global": {"fraction": 0.015}, "tile": {"fraction": 0.03}}}
    assert encoder_px(views, 384) == {"global": 5.76, "tile": 11.52}
    assert encoder_px(views, 128) == {"global": 1.92, "tile": 3.84}


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"rows": 0}, "render.tiles.rows"),
        ({"cols": 9}, "render.tiles.cols"),
        ({"rows": 1, "cols": 1}, "render.tiles.rows"),
        ({"overlap": 0.6}, "render.tiles.overlap"),
        ({"overlap": -0.1}, "render.tiles.overlap"),
        ({"side": 16}, "render.tiles.side"),
        ({"enabled": "yes"}, "render.tiles.enabled"),
    ],
)
def test_bad_tile_params_are_refused(change, key):
    with pytest.raises(ParamsError, match=key.replace(".", r"\.")):
        render_config(tiles={**TILES, **change})


def test_a_tile_over_the_pixel_cap_is_refused():
    with pytest.raises(ParamsError, match=r"render\.tiles\.side.*max_image_pixels"):
        render_config(max_image_pixels=100_000, tiles={**TILES, "side": 400})


def test_tiles_are_off_by_default_and_in_the_paper_preset_on_in_its_tiles_variant():
    assert not render_config().tiles.enabled
    paper = with_preset(ROOT / "params.yaml", "paper")
    tiled = with_preset(ROOT / "params.yaml", "paper-tiles")
    validate(tiled)
    assert paper["render"]["tiles"]["enabled"] is False
    assert tiled["render"]["tiles"]["enabled"] is True
    changed = {key for key, _, _ in presets.diff(paper, tiled)}
    allowed = {"render.tiles.", "evaluate.max_length"} | {
        f"train.{s}.max_seq_len" for s in ("p1_s1", "p1_s2", "p3_s2")
    }
    assert changed and all(any(k.startswith(a) for a in allowed) for k in changed), changed
