"""A small corpus of Japanese government-style financial PDFs whose content is known exactly.

The embedded pipeline cannot crawl ministries, and even a real crawl gives no ground truth to
score OCR or question answering against. So this module writes PDFs that look like the
documents a real crawl returns — 予算 tables (当初予算額/補正後予算額/増減額), 決算 tables
(予算額/決算額/差額, negatives written with △), and 報道発表/お知らせ notices whose sentences
carry figures such as ``前年度比3.2%増の1,234億円`` — and records every number in
``truth.jsonl``. Tables may span pages (the caption repeats with （続き））. Like real ones, the
documents also carry vector bar and line charts, two-column notice pages, a running header,
``- N -`` page numbers and ※ footnotes, 和暦 dates, 兆円/億円/百万円 amounts, full-width digits
(``１２３億円``), and a few scanned pages that are only an image (no text layer).

Outputs under ``out``:

- ``pdfs/<doc_id>.pdf``: one file per document, doc ids like ``budget-003``.
- ``truth.jsonl``: one JSON object per valid document::

    {"doc_id", "file" (relative to out), "sha256", "bytes", "layout" (budget|settlement|notice),
     "title", "org", "fiscal_year" ("令和6年度"), "fiscal_year_ad" (2024), "unit" ("百万円" or
     null), "pages" (count),
     "tables": [{"caption", "columns" (header words, label column first), "unit", "page" (first
                 0-based page), "pages", "rows": [{"label", "values": [int, ...], "page"}]}],
     "facts": [{"sentence", "label", "value" (int or float, negative for △/減; an ISO date
                string for a 和暦 date), "unit" ("兆円"|"億円"|"百万円"|"%"|"件"|"date"), "text"
                (the figure as printed, full-width digits included), "page"}],
     "charts": [see `finstage.corpus.charts`],
     "page_info": [{"page", "kinds" (of table, prose, two_column, chart, scanned), "header",
                    "footer" ("- 3 -"), "footnotes": [{"mark" ("※1"), "text"}], "scanned",
                    "columns" (two-column pages: {"top", "bottom", "right_x"}, the band the
                    columns fill and where the right one starts, in pt from the top left),
                    "rotation_deg" and "text" (scanned pages: the lines the image shows)}]}

  Page numbers are 0-based, like ``page_index`` in the page store. The last table row is the
  total (label ending in 合計) and equals the sum of the rows above it. Rows, facts and charts on
  a scanned page are still listed: the page shows them, only its text layer is gone.
- ``corrupt.jsonl``: the deliberately broken files (``corrupt: N``) — alternately a truncated copy
  of the first PDF (MuPDF rebuilds what is left: fetch stores it as ``stored-repaired``) and an
  HTML error page saved as ``.pdf`` (quarantined) — so both paths are exercised every run.
- ``corpus_report.json``: documents, pages, bytes per page (mean over the corpus; max and mean
  of each page's own streams) and how many pages hold each kind of content.

Modules: `layouts` (what each kind of document says and where), `vocabulary` (the words and
ranges it draws from), `numerals` (和暦 and full-width printing), `charts`, `scan`, `pdfwriter`
(small pages with non-embedded fonts). The same params give byte-identical files: one
``random.Random`` per document, seeded from the corpus seed and the document number, and fixed
PDF metadata.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from finstage.config import require
from finstage.corpus.layouts import Style, notice_document, table_document
from finstage.corpus.vocabulary import BUREAUS, PLACES

LAYOUTS = ("budget", "settlement", "notice")
PAGE_KINDS = ("table", "prose", "two_column", "chart", "scanned")
Layout = Literal["budget", "settlement", "notice"]


@dataclass
class CorpusConfig:
    """``corpus:`` in params.yaml."""

    seed: int
    documents: int  # valid documents, layouts assigned round-robin
    layouts: list[Layout]
    min_pages: int
    max_pages: int
    rows_per_page: int  # table rows on one page; longer tables continue on the next
    corrupt: int  # extra broken files (truncated PDF, HTML saved as .pdf), alternating
    charts_per_doc: int  # charts in every document (a chart that does not fit adds a page)
    two_column_share: float  # chance that a notice is set in two columns
    scanned_pages: int  # documents whose last page is an image-only scan, spread evenly
    fullwidth_share: float  # chance that a date or amount in prose uses full-width digits

    def check(self, where: str) -> None:
        require(
            self.documents >= 1, f"{where}.documents", f"must be at least 1, got {self.documents}"
        )
        require(
            bool(self.layouts), f"{where}.layouts", f"must name at least one of {list(LAYOUTS)}"
        )
        require(
            len(set(self.layouts)) == len(self.layouts),
            f"{where}.layouts",
            f"lists a layout twice: {self.layouts}",
        )
        require(
            self.min_pages >= 1, f"{where}.min_pages", f"must be at least 1, got {self.min_pages}"
        )
        require(
            self.min_pages <= self.max_pages <= 20,
            f"{where}.max_pages",
            f"must be between {where}.min_pages ({self.min_pages}) and 20, got {self.max_pages}",
        )
        require(
            3 <= self.rows_per_page <= 28,
            f"{where}.rows_per_page",
            f"must be between 3 and 28 (what fits on an A4 page), got {self.rows_per_page}",
        )
        require(self.corrupt >= 0, f"{where}.corrupt", f"must be 0 or more, got {self.corrupt}")
        require(
            0 <= self.charts_per_doc <= 4,
            f"{where}.charts_per_doc",
            f"must be between 0 and 4, got {self.charts_per_doc}",
        )
        for name in ("two_column_share", "fullwidth_share"):
            value = getattr(self, name)
            require(0.0 <= value <= 1.0, f"{where}.{name}", f"must be in [0, 1], got {value}")
        require(
            0 <= self.scanned_pages <= self.documents,
            f"{where}.scanned_pages",
            f"must be between 0 and {where}.documents ({self.documents}) (one scanned page per "
            f"document at most), got {self.scanned_pages}",
        )

    def scanned(self, number: int) -> bool:
        """Whether document ``number`` ends in a scanned page: ``scanned_pages`` documents,
        spread evenly over the corpus so every layout gets some."""
        s, d = self.scanned_pages, self.documents
        return (number + 1) * s // d > number * s // d


def generate_document(cfg: CorpusConfig, number: int) -> tuple[dict[str, Any], bytes]:
    """Document ``number``: its truth record and PDF bytes (independent of the other documents)."""
    rng = random.Random(f"finstage-corpus/{cfg.seed}/{number}")
    layout = cfg.layouts[number % len(cfg.layouts)]
    pages = rng.randint(cfg.min_pages, cfg.max_pages)
    era = rng.randint(2, 7)
    org = rng.choice(PLACES) + rng.choice(BUREAUS)
    style = Style(
        charts=cfg.charts_per_doc,
        two_column=layout == "notice" and rng.random() < cfg.two_column_share,
        scan=cfg.scanned(number),
        fullwidth_share=cfg.fullwidth_share,
    )
    if layout == "notice":
        truth, data = notice_document(rng, pages, era, org, style)
    else:
        truth, data = table_document(layout, rng, pages, cfg.rows_per_page, era, org, style)
    doc_id = f"{layout}-{number:03d}"
    record = {
        "doc_id": doc_id,
        "file": f"pdfs/{doc_id}.pdf",
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "layout": layout,
        "title": truth["title"],
        "org": org,
        "fiscal_year": f"令和{era}年度",
        "fiscal_year_ad": 2018 + era,
        "unit": truth["unit"],
        "pages": truth["pages"],
        "tables": truth["tables"],
        "facts": truth["facts"],
        "charts": truth["charts"],
        "page_info": truth["page_info"],
    }
    return record, data


_HTML_ERROR = (
    '<!DOCTYPE html>\n<html lang="ja"><head><meta charset="utf-8">'
    "<title>404 Not Found</title></head>\n"
    "<body><h1>お探しのページは見つかりませんでした</h1></body></html>\n"
).encode()


def corrupt_bytes(kind: str, valid_pdf: bytes) -> bytes:
    """A broken file of ``kind``: ``truncated`` (a PDF cut short, no %%EOF) or ``not_pdf``."""
    if kind == "truncated":
        cut = valid_pdf[: max(64, int(len(valid_pdf) * 0.6))]
        assert b"%%EOF" not in cut[-1024:]
        return cut
    if kind == "not_pdf":
        return _HTML_ERROR
    raise ValueError(f"unknown corrupt kind {kind!r}; use 'truncated' or 'not_pdf'")


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)


def generate_corpus(cfg: CorpusConfig, out: Path, progress: bool = True) -> dict[str, Any]:
    """Write the corpus under ``out`` (see the module docstring); returns a summary."""
    from tqdm import tqdm

    out = Path(out)
    pdf_dir = out / "pdfs"
    if pdf_dir.exists():
        shutil.rmtree(pdf_dir)  # stale files from a larger earlier run would otherwise be fetched
    pdf_dir.mkdir(parents=True)
    truth, pages, total_bytes, first_pdf = [], 0, 0, b""
    own_bytes: list[int] = []
    for number in tqdm(range(cfg.documents), desc="corpus", unit="doc", disable=not progress):
        record, data = generate_document(cfg, number)
        (out / record["file"]).write_bytes(data)
        truth.append(record)
        pages += record["pages"]
        total_bytes += len(data)
        own_bytes += page_stream_bytes(data)
        first_pdf = first_pdf or data
    broken = []
    for j in range(cfg.corrupt):
        kind = ("truncated", "not_pdf")[j % 2]
        data = corrupt_bytes(kind, first_pdf)
        name = f"pdfs/broken-{j:03d}.pdf"
        (out / name).write_bytes(data)
        broken.append(
            {
                "file": name,
                "kind": kind,
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
    _write_jsonl(out / "truth.jsonl", truth)
    _write_jsonl(out / "corrupt.jsonl", broken)
    kinds = [kind for r in truth for page in r["page_info"] for kind in page["kinds"]]
    summary = {
        "documents": len(truth),
        "pages": pages,
        "bytes": total_bytes,
        "bytes_per_page": total_bytes / max(pages, 1),
        "page_stream_bytes": {
            "mean": sum(own_bytes) / max(len(own_bytes), 1),
            "max": max(own_bytes, default=0),
        },
        "page_kinds": {kind: kinds.count(kind) for kind in PAGE_KINDS},
        "corrupt": len(broken),
        "layouts": {name: sum(r["layout"] == name for r in truth) for name in cfg.layouts},
    }
    (out / "corpus_report.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def page_stream_bytes(data: bytes) -> list[int]:
    """Each page's own bytes as stored: its content streams and images, compressed. Whole-file
    size per page hides a 20 KB scan among 2 KB text pages; this shows it."""
    import pymupdf

    with pymupdf.open(stream=data, filetype="pdf") as doc:
        return [
            sum(len(doc.xref_stream_raw(x)) for x in page.get_contents())
            + sum(len(doc.xref_stream_raw(image[0])) for image in page.get_images(full=True))
            for page in doc
        ]


def read_truth(corpus_dir: Path) -> list[dict[str, Any]]:
    """The truth records of a generated corpus, in document order."""
    path = Path(corpus_dir) / "truth.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run `dvc repro corpus` first")
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
