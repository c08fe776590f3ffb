"""The page PNG encoder: lossless RGB whatever the rows hold, a valid zlib stream (its Adler-32
over repeated rows, which are never read, included), and the same bytes for the same pixels."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pymupdf
import pytest
from PIL import Image

from finstage.pages.png import encode_rgb


def idat(png: bytes) -> bytes:
    """The concatenated IDAT data of a PNG."""
    data, at = b"", 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        if png[at + 4 : at + 8] == b"IDAT":
            data += png[at + 8 : at + 8 + length]
        at += 12 + length
    return data


def page_like(height: int, width: int, seed: int) -> np.ndarray:
    """White rows with bands of random ink between them (a band may repeat a row), starting and
    ending either way."""
    rng = np.random.default_rng(seed)
    pixels = np.full((height, width, 3), 255, np.uint8)
    for _ in range(6):
        top = int(rng.integers(0, height))
        band = rng.integers(0, 256, (min(int(rng.integers(1, 9)), height - top), width, 3))
        pixels[top : top + band.shape[0]] = band
    pixels[height // 2 :: 3] = pixels[height // 2 - 1]  # a rule crossing white: rows repeat
    return pixels


@pytest.mark.parametrize("level", [0, 1, 6, 9])
@pytest.mark.parametrize(("height", "width", "seed"), [(1, 1, 0), (40, 7, 1), (300, 33, 2)])
def test_pixels_round_trip_and_stream_checks(level: int, height: int, width: int, seed: int):
    pixels = page_like(height, width, seed)
    png = encode_rgb(memoryview(pixels.tobytes()), width, height, 3 * width, level)
    image = Image.open(io.BytesIO(png))
    assert image.mode == "RGB" and image.size == (width, height)
    assert np.array_equal(np.asarray(image), pixels)
    assert len(zlib.decompress(idat(png))) == height * (3 * width + 1)  # checks the Adler-32


@pytest.mark.parametrize("fill", [255, 0])
def test_uniform_pages(fill: int):
    pixels = np.full((2000, 50, 3), fill, np.uint8)
    png = encode_rgb(memoryview(pixels.tobytes()), 50, 2000, 150, 1)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), pixels)
    first, repeat = bytes([0]) + bytes([fill]) * 150, bytes([2]) + bytes(150)  # None, then Up
    assert zlib.decompress(idat(png)) == first + repeat * 1999


def test_rows_padded_past_the_pixels_are_read_by_stride():
    pixels = page_like(30, 10, 3)
    padded = np.zeros((30, 32), np.uint8)
    padded[:, :30] = pixels.reshape(30, 30)
    padded[:, 30:] = 7  # stride padding that must not leak into the image
    png = encode_rgb(memoryview(padded.tobytes()), 10, 30, 32, 1)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), pixels)


def test_a_rendered_page_is_encoded_exactly_and_deterministically():
    with pymupdf.open() as doc:
        page = doc.new_page()
        page.insert_text((72, 72), "歳出合計 1,234,567", fontname="japan")
        page.draw_rect(pymupdf.Rect(60, 100, 400, 300), color=(0, 0, 0))
        pix = page.get_pixmap(matrix=pymupdf.Matrix(2, 2), colorspace=pymupdf.csRGB, alpha=False)
    png = encode_rgb(pix.samples_mv, pix.width, pix.height, pix.stride, 1)
    assert np.asarray(Image.open(io.BytesIO(png))).tobytes() == pix.samples
    assert encode_rgb(pix.samples_mv, pix.width, pix.height, pix.stride, 1) == png
    smaller = encode_rgb(pix.samples_mv, pix.width, pix.height, pix.stride, 9)
    assert len(smaller) < len(png) < 3 * pix.width * pix.height / 20
