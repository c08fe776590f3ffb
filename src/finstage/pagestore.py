"""Page images and their text layer, stored in Parquet shards rather than one file per page.

Hundreds of thousands of small PNGs make DVC hashing, pushing and checkout slow; a few
shards do not. A page id is stable across runs (document hash + page number), so records
can refer to pages without copying pixels.

A page is seen through one or more views: its global render (``png``) and, when rendering tiled
it, the tiles of an AnyRes-style grid (``tiles``, row-major, ``tile_rows`` × ``tile_cols``;
`finstage.pages.tiles`). A view id is the page id for the global view and ``<page id>/t<k>`` for
tile ``k``, so a page without tiles has exactly one view whose id is its page id. Shards of an
untiled render keep the original schema, without the tile columns.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NotRequired, TypedDict

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

PAGE_SCHEMA = pa.schema(
    [
        ("page_id", pa.string()),
        ("doc_sha256", pa.string()),
        ("page_index", pa.int32()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("png", pa.binary()),
        ("text", pa.string()),
        ("text_issue", pa.string()),  # why the text layer is unusable (finstage.pages.textlayer)
    ]
)
TILED_SCHEMA = (
    PAGE_SCHEMA.append(pa.field("tiles", pa.list_(pa.binary())))
    .append(pa.field("tile_rows", pa.int32()))
    .append(pa.field("tile_cols", pa.int32()))
)
TILE_MARK = "/t"


class Page(TypedDict):
    page_id: str
    doc_sha256: str
    page_index: int
    width: int
    height: int
    png: bytes
    text: str
    text_issue: str | None
    tiles: NotRequired[list[bytes]]  # row-major PNGs, in tiled renders only
    tile_rows: NotRequired[int]
    tile_cols: NotRequired[int]
    legibility: NotRequired[dict[str, float] | None]  # render's report figures, not stored


def page_id(doc_sha256: str, page_index: int) -> str:
    return f"{doc_sha256[:16]}-p{page_index:04d}"


def tile_view(pid: str, k: int) -> str:
    return f"{pid}{TILE_MARK}{k}"


def write_pages(
    out_dir: Path, pages: Iterable[Page], shard_size: int = 500, tiled: bool = False
) -> int:
    """Shards of ``shard_size`` pages; keys outside the schema (report figures) are not stored."""
    schema = TILED_SCHEMA if tiled else PAGE_SCHEMA
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    count, shard, buffer = 0, 0, []
    for page in pages:
        buffer.append(page)
        count += 1
        if len(buffer) >= shard_size:
            pq.write_table(
                pa.Table.from_pylist(buffer, schema=schema),
                out_dir / f"pages-{shard:05d}.parquet",
            )
            shard, buffer = shard + 1, []
    if buffer or shard == 0:
        pq.write_table(
            pa.Table.from_pylist(buffer, schema=schema), out_dir / f"pages-{shard:05d}.parquet"
        )
    return count


class PageStore:
    """Random access to pages by id; loads shard contents lazily and keeps them in memory."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._shards = sorted(self.root.glob("pages-*.parquet"))
        if not self._shards:
            raise FileNotFoundError(f"no page shards in {self.root}: run `dvc repro render` first")
        self._pages: dict[str, Page] | None = None

    def _load(self) -> dict[str, Page]:
        if self._pages is None:
            self._pages = {}
            for shard in self._shards:
                for row in pq.read_table(shard).to_pylist():
                    self._pages[row["page_id"]] = row
        return self._pages

    def __iter__(self) -> Iterator[Page]:
        return iter(self._load().values())

    def __len__(self) -> int:
        return len(self._load())

    def __getitem__(self, pid: str) -> Page:
        try:
            return self._load()[pid]
        except KeyError:
            raise KeyError(f"page {pid!r} is not in the page store {self.root}") from None

    def image(self, pid: str) -> Image.Image:
        return Image.open(io.BytesIO(self[pid]["png"])).convert("RGB")

    def views(self, pid: str) -> list[str]:
        """The page's view ids: the global view first, then its tiles row-major."""
        return [pid, *(tile_view(pid, k) for k in range(len(self[pid].get("tiles") or ())))]

    def view_png(self, view: str) -> bytes:
        """A view's PNG bytes, by view id (a page id is its global view)."""
        pid, mark, k = view.rpartition(TILE_MARK)
        if not mark or not k.isdigit():
            return self[view]["png"]
        tiles = self[pid].get("tiles") or []
        if int(k) >= len(tiles):
            raise KeyError(f"page {pid!r} has {len(tiles)} tiles in {self.root}, no tile {k}")
        return tiles[int(k)]

    def view_image(self, view: str) -> Image.Image:
        return Image.open(io.BytesIO(self.view_png(view))).convert("RGB")
