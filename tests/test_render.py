"""Render: RGB PNG page shards within the size cap, a line-faithful text layer, failures kept."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pymupdf
import pytest
from PIL import Image

from finstage.config import ParamsError
from finstage.corpus.fetch import fetch
from finstage.corpus.fetchconfig import FetchConfig
from finstage.corpus.generate import CorpusConfig, generate_corpus, read_truth
from finstage.corpus.layouts import fmt_int
from finstage.pages import render as render_module
from finstage.pages.render import RenderConfig, group_lines, render_store
from finstage.pagestore import PageStore, page_id
from finstage.pdfstore import read_index, relative_path, write_file, write_index

from .conftest import repo_params
from .repo_configs import repo_config, repo_section

ROOT = Path(__file__).resolve().parents[1]


def render_config(**changes) -> RenderConfig:
    return repo_config(RenderConfig, "render", **changes)


def load_stage(name: str):
    spec = importlib.util.spec_from_file_location(f"stage_{name}", ROOT / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A fetched store of a small generated corpus (6 documents, 2 broken files)."""
    root = tmp_path_factory.mktemp("render")
    corpus = repo_config(CorpusConfig, "corpus", seed=5, documents=6, corrupt=2)
    generate_corpus(corpus, root / "corpus", progress=False)
    (root / "sources.yaml").write_text("version: 1\nsources:\n  - path: corpus/pdfs\n")
    fetch_cfg = repo_config(FetchConfig, "fetch", cache_dir=str(root / "fetch-cache"))
    fetch(root / "sources.yaml", root / "store", fetch_cfg, base_dir=root, progress=False)
    return root


def test_group_lines_joins_words_on_one_baseline():
    words = [
        (300.0, 99.25, 345.0, 112.99, "1,200,000", 3, 0, 0),  # Helvetica: slightly taller box
        (50.0, 100.0, 90.0, 112.0, "歳出合計", 1, 0, 0),  # CJK font box
        (400.0, 99.25, 440.0, 112.99, "△34,567", 4, 0, 0),
        (200.0, 99.25, 245.0, 112.99, "1,234,567", 2, 0, 0),
        (50.0, 118.0, 100.0, 130.0, "次の行", 5, 0, 0),
        (50.0, 60.0, 150.0, 75.0, "見出し", 0, 0, 0),
        (10.0, 60.0, 20.0, 75.0, "  ", 0, 0, 1),  # whitespace-only words are dropped
    ]
    assert group_lines(words) == ["見出し", "歳出合計 1,234,567 1,200,000 △34,567", "次の行"]
    assert group_lines(words, tolerance=0.01) != group_lines(words)  # the tolerance matters
    assert group_lines([]) == []


def test_render_writes_every_valid_page(store, tmp_path):
    report = render_store(store / "store", tmp_path, render_config(), progress=False)
    truth = read_truth(store / "corpus")
    # the truncated "broken" file is rebuilt by MuPDF and stored repaired: its pages count too
    [repaired] = read_index(store / "store", statuses=["stored-repaired"])
    total_pages = sum(r["pages"] for r in truth) + repaired["pages_kept"]
    scanned = [
        page_id(r["sha256"], i) for r in truth for i, p in enumerate(r["page_info"]) if p["scanned"]
    ]
    views = report.pop("views")
    assert (views["per_page"], views["grid"]) == (1, None)
    assert views["body_char_height"]["pages_measured"] == total_pages - len(scanned)
    assert "tile" not in views["body_char_height"]
    unusable = report.pop("unusable_text")
    assert sorted(u["page_id"] for u in unusable) == sorted(scanned) and len(scanned) == 3
    assert report == {
        "documents": 7,
        "pages": total_pages,
        "failed_pages": 0,
        "failed_documents": 0,
        "near_duplicate_pages": 0,
        "unusable_text_pages": len(scanned),  # scans: no text layer to take targets from
        "text_issues": {"empty": len(scanned)},
        "failures": [],
        "near_duplicates": [],
    }
    written = json.loads((tmp_path / "render_report.json").read_text())
    assert written == {**report, "views": views, "unusable_text": unusable}

    pages = PageStore(tmp_path)
    assert len(pages) == total_pages
    two_columns = 0
    for record in truth:
        for index in range(record["pages"]):
            page = pages[page_id(record["sha256"], index)]
            assert page["doc_sha256"] == record["sha256"] and page["page_index"] == index
            image = Image.open(io.BytesIO(page["png"]))
            assert image.format == "PNG" and image.mode == "RGB"
            assert image.size == (page["width"], page["height"])
            assert max(image.size) == 384  # A4 at 72 dpi is 595x842, capped to 384 on the long side
        # a scanned page has no text layer; a two-column page reads column by column, so a
        # sentence that runs down a column (or over the gutter into the next) stays whole
        scanned = {i["page"] for i in record["page_info"] if i["scanned"]}
        two_columns += sum("two_column" in i["kinds"] for i in record["page_info"])
        for index in scanned:
            assert pages[page_id(record["sha256"], index)]["text"] == ""
        for table in record["tables"]:
            for row in table["rows"]:
                if row["page"] in scanned:
                    continue
                line = " ".join([row["label"], *map(fmt_int, row["values"])])
                assert line in pages[page_id(record["sha256"], row["page"])]["text"].split("\n")
        for fact in record["facts"]:
            if fact["page"] in scanned:
                continue
            assert fact["sentence"] in pages[page_id(record["sha256"], fact["page"])][
                "text"
            ].replace("\n", "")
    assert two_columns >= 2


def test_quarantined_files_are_not_rendered(store, tmp_path):
    render_store(store / "store", tmp_path, render_config(), progress=False)
    quarantined = {r["sha256"] for r in read_index(store / "store", statuses=["quarantined"])}
    assert len(quarantined) == 1  # the HTML error page; the truncated file is repaired
    assert not {p["doc_sha256"] for p in PageStore(tmp_path)} & quarantined


def test_dpi_without_cap_and_sharding(store, tmp_path):
    cfg = render_config(dpi=36, max_side=None, shard_size=4)
    report = render_store(store / "store", tmp_path, cfg, progress=False)
    shards = sorted(tmp_path.glob("pages-*.parquet"))
    assert len(shards) == -(-report["pages"] // 4)
    row = pq.read_table(shards[0]).to_pylist()[0]
    assert (row["width"], row["height"]) == (298, 421)  # 595x842 pt at half scale


def test_parallel_workers_give_identical_output(store, tmp_path):
    render_store(store / "store", tmp_path / "one", render_config(), progress=False)
    render_store(store / "store", tmp_path / "two", render_config(workers=2), progress=False)
    one = pq.read_table(tmp_path / "one" / "pages-00000.parquet")
    two = pq.read_table(tmp_path / "two" / "pages-00000.parquet")
    assert one.equals(two)


def test_failures_are_recorded_and_skipped(store, tmp_path, monkeypatch):
    # a stored object (at its content address) that does not open as a PDF
    broken_store = tmp_path / "store"
    shutil.copytree(store / "store", broken_store)
    rows = read_index(broken_store, statuses=None)
    k = next(k for k, r in enumerate(rows) if r["status"] == "stored")
    garbage = b"garbage"
    sha = hashlib.sha256(garbage).hexdigest()
    rows[k] = {**rows[k], "sha256": sha, "path": relative_path(sha, valid=True)}
    write_file(broken_store / rows[k]["path"], garbage)
    write_index(broken_store, rows)
    report = render_store(broken_store, tmp_path / "pages", render_config(), progress=False)
    [failure] = report["failures"]
    assert failure["doc_sha256"] == sha and failure["page_index"] is None
    assert failure["reason"].startswith("cannot open: ")
    assert report["failed_documents"] == 1 and report["failed_pages"] == 0
    ok = read_index(broken_store)
    assert report["pages"] == sum(r["pages"] for r in ok) - rows[k]["pages"]
    assert not any(p["doc_sha256"] == sha for p in PageStore(tmp_path / "pages"))

    # a page whose rasterisation raises (in this process: the stage's workers import afresh)
    multi = next(r for r in ok if r["pages"] > 2)
    real = render_module.render_page

    def flaky(page, cfg):
        if page.number == 1:
            raise RuntimeError("simulated rasteriser crash")
        return real(page, cfg)

    monkeypatch.setattr(render_module, "render_page", flaky)
    pages, failures = render_module.render_document(
        broken_store / multi["path"], multi["sha256"], render_config()
    )
    assert failures == [
        {
            "doc_sha256": multi["sha256"],
            "page_index": 1,
            "reason": "RuntimeError: simulated rasteriser crash",
        }
    ]
    assert [p["page_index"] for p in pages] == [i for i in range(multi["pages"]) if i != 1]


def test_render_page_respects_max_side_for_odd_sizes():
    with pymupdf.open() as doc:
        page = doc.new_page(width=1000.3, height=333.7)
        png, width, height = render_module.render_page(page, render_config(dpi=300, max_side=257))
        assert max(width, height) <= 257 and Image.open(io.BytesIO(png)).size == (width, height)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"dpi": 5}, "render.dpi"),
        ({"max_side": 8}, "render.max_side"),
        ({"line_tolerance": 0}, "render.line_tolerance"),
        ({"png_compress_level": 10}, "render.png_compress_level"),
        ({"workers": 0}, "render.workers"),
        ({"dpi": 72.5}, "render.dpi"),
        ({"max_sides": 384}, "render.max_sides"),
    ],
)
def test_invalid_params_name_the_key(change, key):
    with pytest.raises(ParamsError, match=key):
        load_stage("render").load_config({"render": repo_section("render", **change)})


def test_stage_script(store, tmp_path, monkeypatch):
    stage = load_stage("render")
    assert stage.load_config(repo_params()) == render_config()
    assert stage.load_config({"render": repo_section("render", max_side=None)}).max_side is None
    params = {"render": repo_section("render")}
    monkeypatch.setattr(stage, "stage_params", lambda name: params if name == "render" else {})
    stage.main(store=store / "store", out=tmp_path, metrics_out=tmp_path / "m.json", stage="render")
    assert (
        (tmp_path / "render_report.json").exists()
        and (tmp_path / "m.json").exists()
        and len(PageStore(tmp_path)) > 6
    )
