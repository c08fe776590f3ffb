"""Scanned pages: a finished page replaced by a slightly rotated, speckled picture of itself.

Ministry sites still publish pages that were printed, stamped and scanned back: no text layer,
a skew of a degree or two, toner specks. Render must keep such a page, and synthesis must not take
its (empty) text layer for what the page says, so the corpus carries a few, with the lines they
show in the truth record.

The picture is bilevel at ``DPI``, like a photocopier scan, so a scanned page costs about 20 KB
instead of the ~100 KB of an 8-bit greyscale one; PyMuPDF stores it as a Flate-compressed image
XObject, and the page gets nothing else (no fonts, no text).
"""

from __future__ import annotations

import io
import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # loaded by the function that uses it: importing this module stays light
    import pymupdf

DPI = 150
MIN_DEG, MAX_DEG = 0.5, 2.0  # the skew of a page fed by hand
SPECKLE_SHARE = 0.0004  # share of pixels hit by a toner speck
THRESHOLD = 150  # grey level below which a pixel prints black


def scan_page(doc: pymupdf.Document, index: int, rng: random.Random) -> float:
    """Replace page ``index`` of ``doc`` with its scan; returns the rotation in degrees
    (positive is counter-clockwise)."""
    import pymupdf
    from PIL import Image, ImageDraw

    page = doc[index]
    width, height = page.rect.width, page.rect.height
    pix = page.get_pixmap(dpi=DPI, colorspace=pymupdf.csGRAY)
    image = Image.frombytes("L", (pix.width, pix.height), pix.samples)
    degrees = round(rng.choice([-1, 1]) * rng.uniform(MIN_DEG, MAX_DEG), 2)
    image = image.rotate(degrees, resample=Image.Resampling.BICUBIC, fillcolor=255)
    draw = ImageDraw.Draw(image)
    for _ in range(int(image.width * image.height * SPECKLE_SHARE)):
        x, y = rng.randrange(image.width), rng.randrange(image.height)
        size = rng.choice([0, 0, 0, 1, 2])
        draw.ellipse((x, y, x + size, y + size), fill=rng.randint(0, 100))
    image = image.point(lambda v: 255 if v > THRESHOLD else 0).convert("1")
    png = io.BytesIO()
    image.save(png, "PNG")
    doc.delete_page(index)
    scanned = doc.new_page(pno=index, width=width, height=height)
    scanned.insert_image(scanned.rect, stream=png.getvalue())
    return degrees
