"""Does a checkpoint read the page? Visual scores with the real pages against blank pages.

A tiny model can raise VQA ANLS or OCR CER by learning what answers look like (a figure with
its unit, a line of budget prose) without reading anything. This scores the held-out visual
checks twice in one process, once with each record's real page and once with a white page of
the same size, and prints both with their ratio: a ratio near 1 means the score comes from
answer form, not from the page. It also prints how tall the generated PDFs' characters are at
the vision input, the first thing that limits reading.

    python bench/page_reading.py --checkpoint models/p1_s2
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
import yaml
from PIL import Image

from finstage.corpus.pdfwriter import PAGE_H, PdfWriter
from finstage.evaluate.lm import FinstageLM
from finstage.evaluate.visual import score_visual
from finstage.pagestore import PageStore


class BlankPages(PageStore):
    """The page store with every view (global view and tiles) replaced by white pixels of the
    same size; evaluation reads views, not `image`."""

    def view_image(self, view: str) -> Image.Image:
        return Image.new("RGB", super().view_image(view).size, "white")


@dataclass(frozen=True)
class Line:
    check: str
    score: str
    real: float
    blank: float


def compare(
    checkpoint: Path, visual: Path, pages: Path, limit: int | None, budget: int
) -> list[Line]:
    lm = FinstageLM.from_checkpoint(checkpoint, 8, 512, True, "cpu")
    real, _ = score_visual(lm, visual, PageStore(pages), limit, budget)
    blank, _ = score_visual(lm, visual, BlankPages(pages), limit, budget)
    return [
        Line(check, name, stat(real[check].items[name]), stat(blank[check].items[name]))
        for check in real
        for name, stat in real[check].stats.items()
    ]


def char_heights(image_size: int) -> dict[str, float]:
    """Pixel height of the corpus's body and table characters once a page is resized to the
    vision tower's square input (an A4 page's height becomes `image_size`)."""
    return {
        "body": PdfWriter.BODY * image_size / PAGE_H,
        "table": PdfWriter.TABLE_SIZE * image_size / PAGE_H,
    }


def main(
    checkpoint: Annotated[Path, typer.Option(help="Checkpoint folder")] = Path("models/p1_s2"),
    visual: Annotated[Path, typer.Option(help="Held-out visual records")] = Path("data/synth/eval"),
    pages: Annotated[Path, typer.Option(help="Page store")] = Path("data/pages"),
    limit: Annotated[int, typer.Option(help="Records per check (0: all)")] = 0,
    budget: Annotated[
        int, typer.Option(help="Tokens to generate per answer (0: params.yaml's visual budget)")
    ] = 0,
) -> None:
    if not budget:
        budget = yaml.safe_load(Path("params.yaml").read_text())["evaluate"][
            "visual_max_new_tokens"
        ]
    lines = compare(checkpoint, visual, pages, limit or None, budget)
    typer.echo(f"{'check':<14}{'score':<16}{'real page':>10}{'blank':>10}{'real/blank':>12}")
    for line in lines:
        ratio = f"{line.real / line.blank:.2f}" if line.blank else "-"
        typer.echo(
            f"{line.check:<14}{line.score:<16}{line.real:>10.3f}{line.blank:>10.3f}{ratio:>12}"
        )
    from transformers import AutoConfig

    size = AutoConfig.from_pretrained(checkpoint).vision_config.image_size
    heights = ", ".join(f"{k} {v:.1f} px" for k, v in char_heights(size).items())
    typer.echo(f"character height at the {size}-px vision input: {heights}")


if __name__ == "__main__":
    typer.run(main)
