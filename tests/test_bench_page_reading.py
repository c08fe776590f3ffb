"""bench/page_reading.py: blank pages keep each page's size, and the legibility arithmetic."""

from __future__ import annotations

import pytest

from finstage.pagestore import PageStore

from .conftest import bench_script


@pytest.fixture(scope="module")
def bench():
    with bench_script("page_reading.py") as module:
        yield module


def test_blank_pages_are_white_at_the_real_size(bench, tiny_pages):
    real, blank = PageStore(tiny_pages), bench.BlankPages(tiny_pages)
    pid = next(iter(real))["page_id"]
    page, white = real.view_image(pid), blank.view_image(pid)  # what evaluation reads
    assert white.size == page.size and white.getextrema() == ((255, 255),) * 3
    assert page.getextrema() != white.getextrema()


def test_characters_are_under_two_pixels_at_128(bench):
    heights = bench.char_heights(128)
    assert 1.5 < heights["body"] < 1.7 and 1.3 < heights["table"] < heights["body"]
    assert bench.char_heights(512)["body"] == pytest.approx(4 * heights["body"])
