"""How tall is body text where the vision tower reads it: one view per page against page tiles.

Generates a small corpus, renders it three ways (the embedded default, presets/paper.yaml and
presets/paper-tiles.yaml) and prints each render report's median body character height, in the
stored image and in the pixels the encoder sees (each view resized to the tower's square: 128 px
embedded, 384 px for the paper's SigLIP2). `--docs` also writes docs/img/global.png and
docs/img/tile.png: one page's global view and its first tile as the 384-px tower sees them.

    python bench/legibility.py
    python bench/legibility.py --docs
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
import yaml
from PIL import Image

from finstage.config import parse
from finstage.corpus.fetch import fetch
from finstage.corpus.fetchconfig import FetchConfig
from finstage.corpus.generate import CorpusConfig, generate_corpus
from finstage.pages.legibility import encoder_px
from finstage.pages.render import RenderConfig, render_store
from finstage.pagestore import PageStore, tile_view
from finstage.params import with_preset

PARAMS = Path("params.yaml")
SETTINGS = (("embedded", None, 128), ("paper", "paper", 384), ("paper-tiles", "paper-tiles", 384))


def corpus_store(root: Path, documents: int) -> Path:
    """A fetched store of a generated corpus, as the pipeline's fetch stage leaves it."""
    params = yaml.safe_load(PARAMS.read_text())
    corpus = parse(CorpusConfig, {**params["corpus"], "documents": documents}, "corpus")
    generate_corpus(corpus, root / "corpus", progress=False)
    (root / "sources.yaml").write_text("version: 1\nsources:\n  - path: corpus/pdfs\n")
    fetch_cfg = parse(FetchConfig, params["fetch"], "fetch")
    fetch(root / "sources.yaml", root / "store", fetch_cfg, base_dir=root, progress=False)
    return root / "store"


def write_docs_images(pages: Path, out: Path) -> None:
    """The first multi-line page's global view and tile 0, resized as the 384-px tower sees them
    (grayscale: the pages are black on white, and the files stay small)."""
    store = PageStore(pages)
    page = min(store, key=lambda p: (p["page_index"], -len(p["text"])))
    for name, view in (("global", page["page_id"]), ("tile", tile_view(page["page_id"], 0))):
        image = store.view_image(view).resize((384, 384), Image.BICUBIC).convert("L")
        image.save(out / f"{name}.png", optimize=True)


def main(
    documents: Annotated[int, typer.Option(help="Generated documents")] = 4,
    docs: Annotated[bool, typer.Option(help="Write docs/img/global.png and tile.png")] = False,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = corpus_store(root, documents)
        typer.echo(f"{'setting':<13}{'views':>6}{'view':>8}{'stored px':>11}{'encoder px':>12}")
        for label, preset, size in SETTINGS:
            params = with_preset(PARAMS, preset) if preset else yaml.safe_load(PARAMS.read_text())
            cfg = parse(RenderConfig, {**params["render"], "workers": 1}, "render")
            views = render_store(store, root / label, cfg, progress=False)["views"]
            heights, px = views["body_char_height"], encoder_px(views, size)
            for view in px:
                typer.echo(
                    f"{label:<13}{views['per_page']:>6}{view:>8}"
                    f"{heights[view]['stored_px']:>11.2f}{px[view]:>9.2f} @{size}"
                )
        if docs:
            write_docs_images(root / "paper-tiles", Path("docs/img"))


if __name__ == "__main__":
    typer.run(main)
