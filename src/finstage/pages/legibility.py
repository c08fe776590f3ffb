"""How large body text is in each view of a page, for the render report and the training card.

Rendering records the median body character height per view as a fraction of the view's height
(plus its height in the stored image); the pixels the vision encoder sees follow from the
encoder's square image size, which is the model's and not rendering's. Keeping the report
size-free means switching models does not re-render every page, and the paper's encoder size
(384, from the hub config) need not be restated in ``render:``: whoever knows the size (the
training stage, or `encoder_px` called by hand) turns the fractions into pixels.
"""

from __future__ import annotations

import statistics
from typing import Any

from finstage.pages.tiles import TileConfig

VIEWS = ("global", "tile")


def summarise(measures: list[dict[str, float]], tiles: TileConfig) -> dict[str, Any]:
    """The report's ``views`` block from the pages' `tiles.view_heights` (pages with text)."""
    heights: dict[str, Any] = {"pages_measured": len(measures)}
    for view in VIEWS:
        found = [m for m in measures if f"{view}_fraction" in m]
        if found:
            heights[view] = {
                "fraction": round(statistics.median(m[f"{view}_fraction"] for m in found), 6),
                "stored_px": round(statistics.median(m[f"{view}_stored_px"] for m in found), 2),
            }
    return {
        "per_page": 1 + tiles.count,
        "grid": [tiles.rows, tiles.cols] if tiles.enabled else None,
        "overlap": tiles.overlap if tiles.enabled else None,
        "body_char_height": heights,
    }


def encoder_px(views: dict[str, Any], image_size: int) -> dict[str, float]:
    """Median body character height in encoder pixels per view, for an encoder that resizes
    each view to ``image_size`` × ``image_size``; from a report's ``views`` block."""
    heights = views["body_char_height"]
    return {v: round(heights[v]["fraction"] * image_size, 2) for v in VIEWS if v in heights}
