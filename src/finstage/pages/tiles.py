"""A page's tiles: an AnyRes-style grid of overlapping page regions, each rendered by MuPDF.

The global view squeezes a whole page into the vision tower's square (128 px embedded, 384 px in
the paper), so 10-point body text ends up a few pixels tall. A tile covers 1/rows of the page's
height (a little more, for the overlap), so the tower sees its text rows times larger. Each tile
is rasterised from the PDF with a clip rectangle at its own zoom, never cropped from the global
render: cropping a 384-px page would only enlarge the blur.

Neighbouring tiles share ``overlap`` of a tile's size, so a line of text cut by one tile's edge
lies whole in the next one. The grid always spans the page exactly: with ``n`` tiles of size
``t`` along an axis, ``t = L / (n - (n - 1) * overlap)`` and tile ``i`` starts at
``i * t * (1 - overlap)``.

Legibility is measured from the text layer rather than guessed: the median height of the
characters' boxes (body text dominates a financial page) in PDF points, turned into a fraction
of a view's height. The tower resizes each view to a square, so that fraction times the tower's
image size is the character height in the pixels the encoder sees.
"""

from __future__ import annotations

import io
import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import Image

from finstage.config import require

if TYPE_CHECKING:  # loaded by the functions that use it: importing this module stays light
    import pymupdf

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in PDF points


@dataclass
class TileConfig:
    """``render.tiles`` in params.yaml."""

    enabled: bool  # off: pages have only their global view (the paper's recipe)
    rows: int
    cols: int
    overlap: float  # fraction of a tile's size shared with its neighbour
    side: int  # each tile's longer side in pixels, rendered at that size directly

    def check(self, where: str) -> None:
        for name, value in (("rows", self.rows), ("cols", self.cols)):
            require(1 <= value <= 8, f"{where}.{name}", f"must be between 1 and 8, got {value}")
        require(
            self.rows * self.cols >= 2 or not self.enabled,
            f"{where}.rows",
            f"rows x cols must be at least 2 when tiles are enabled (one tile is the global "
            f"view again), got {self.rows} x {self.cols}",
        )
        require(
            0 <= self.overlap <= 0.5,
            f"{where}.overlap",
            f"must be in [0, 0.5] (a fraction of the tile size), got {self.overlap}",
        )
        require(
            32 <= self.side <= 4096,
            f"{where}.side",
            f"must be between 32 and 4096 pixels, got {self.side}",
        )

    @property
    def count(self) -> int:
        """Tiles per page: 0 when tiling is off."""
        return self.rows * self.cols if self.enabled else 0


def spans(length: float, n: int, overlap: float) -> list[tuple[float, float]]:
    """``n`` intervals of equal size covering [0, length], neighbours sharing ``overlap``."""
    size = length / (n - (n - 1) * overlap)
    step = size * (1 - overlap)
    return [(i * step, length if i == n - 1 else i * step + size) for i in range(n)]


def tile_boxes(page: Box, rows: int, cols: int, overlap: float) -> list[Box]:
    """The grid's rectangles in row-major order (the order of the tile views)."""
    x0, y0, x1, y1 = page
    return [
        (x0 + a, y0 + top, x0 + b, y0 + bottom)
        for top, bottom in spans(y1 - y0, rows, overlap)
        for a, b in spans(x1 - x0, cols, overlap)
    ]


def tile_zoom(box: Box, side: int) -> float:
    """Zoom that gives the tile a longer side of ``side`` pixels."""
    return side / max(box[2] - box[0], box[3] - box[1], 1e-3)


def render_tiles(page: pymupdf.Page, cfg: TileConfig, compress_level: int) -> list[bytes]:
    """PNG bytes of each tile, row-major; empty when tiling is off."""
    import pymupdf

    if not cfg.enabled:
        return []
    rect = page.rect
    out = []
    for box in tile_boxes(tuple(rect), cfg.rows, cfg.cols, cfg.overlap):
        zoom = tile_zoom(box, cfg.side)
        pix = page.get_pixmap(
            matrix=pymupdf.Matrix(zoom, zoom),
            clip=pymupdf.Rect(box),
            colorspace=pymupdf.csRGB,
            alpha=False,
        )
        buffer = io.BytesIO()
        Image.frombytes("RGB", (pix.width, pix.height), pix.samples).save(
            buffer, format="PNG", compress_level=compress_level
        )
        out.append(buffer.getvalue())
    return out


def body_char_height(page: pymupdf.Page) -> float | None:
    """Median height in points of the page's character boxes; None for a page without text."""
    heights = [
        char["bbox"][3] - char["bbox"][1]
        for block in page.get_text("rawdict")["blocks"]
        for line in block.get("lines", ())
        for span in line["spans"]
        for char in span["chars"]
        if char["c"].strip()
    ]
    return statistics.median(heights) if heights else None


def view_heights(page: pymupdf.Page, cfg: TileConfig, zoom: float) -> dict[str, float] | None:
    """The page's median body character height per view, or None for a page without text:
    ``<view>_fraction`` of the view's height and ``<view>_stored_px`` in the stored image, for
    the ``global`` view rendered at ``zoom`` and, when tiling is on, a ``tile``.

    A fraction, not encoder pixels: the encoder's image size belongs to the model, not to
    rendering, so the report turns it into pixels for a size it is given
    (`finstage.pages.legibility`)."""
    height = body_char_height(page)
    if height is None:
        return None
    out = {"global_fraction": height / page.rect.height, "global_stored_px": height * zoom}
    if cfg.enabled:
        box = tile_boxes(tuple(page.rect), cfg.rows, cfg.cols, cfg.overlap)[0]
        out["tile_fraction"] = height / (box[3] - box[1])
        out["tile_stored_px"] = height * tile_zoom(box, cfg.side)
    return out
