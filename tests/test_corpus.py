"""The generated corpus: deterministic bytes, small files, truth that the text layer confirms."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import pymupdf
import pytest

from finstage.config import ParamsError
from finstage.corpus.generate import (
    CorpusConfig,
    generate_corpus,
    generate_document,
    read_truth,
)
from finstage.corpus.layouts import fmt_int
from finstage.pages.render import group_lines, page_text

from .conftest import repo_params
from .repo_configs import repo_config, repo_section

ROOT = Path(__file__).resolve().parents[1]
BYTES_PER_PAGE_BOUND = 30_000  # the stated bound; text pages are about 2 KB, scans about 20 KB


def corpus_config(**changes) -> CorpusConfig:
    return repo_config(CorpusConfig, "corpus", **changes)


def load_stage(name: str):
    spec = importlib.util.spec_from_file_location(f"stage_{name}", ROOT / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def reading_text(page: pymupdf.Page, info: dict) -> str:
    """The page's lines in reading order: render's `page_text`, except that a two-column page is
    read column by column (render merges side-by-side lines into one)."""
    if "columns" not in info:
        return page_text(page)
    box = info["columns"]
    words = page.get_text("words", sort=False)
    band = [w for w in words if box["top"] <= (w[1] + w[3]) / 2 <= box["bottom"]]
    parts = [
        [w for w in words if (w[1] + w[3]) / 2 < box["top"]],
        [w for w in band if w[0] < box["right_x"] - 1.0],
        [w for w in band if w[0] >= box["right_x"] - 1.0],
        [w for w in words if (w[1] + w[3]) / 2 > box["bottom"]],
    ]
    return "\n".join(line for part in parts for line in group_lines(part))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    generate_corpus(corpus_config(seed=7, documents=12, corrupt=2), out, progress=False)
    return out


def test_same_params_give_byte_identical_files(corpus, tmp_path):
    # every page kind is in the compared files: charts, two columns and scans are deterministic too
    report = json.loads((corpus / "corpus_report.json").read_text())
    assert all(report["page_kinds"].values()), report["page_kinds"]
    generate_corpus(
        corpus_config(seed=7, documents=12, corrupt=2), tmp_path / "again", progress=False
    )
    assert digests(tmp_path / "again") == digests(corpus)
    other, data = generate_document(corpus_config(seed=8), 0)
    assert hashlib.sha256(data).hexdigest() != read_truth(corpus)[0]["sha256"]


def test_truth_records_sha256_and_size(corpus):
    for record in read_truth(corpus):
        data = (corpus / record["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == record["sha256"]
        assert len(data) == record["bytes"]


def test_files_stay_small_and_fonts_are_not_embedded(corpus):
    truth = read_truth(corpus)
    total_bytes = sum(r["bytes"] for r in truth)
    total_pages = sum(r["pages"] for r in truth)
    assert total_bytes / total_pages < BYTES_PER_PAGE_BOUND
    for record in truth:
        with pymupdf.open(corpus / record["file"]) as doc:
            assert record["bytes"] / doc.page_count < BYTES_PER_PAGE_BOUND, record["doc_id"]
            for page in doc:
                for xref, ext, *_ in page.get_fonts():
                    assert ext == "n/a", f"{record['doc_id']}: font {xref} is embedded ({ext})"


def test_metadata_is_fixed(corpus):
    record = read_truth(corpus)[0]
    with pymupdf.open(corpus / record["file"]) as doc:
        assert doc.metadata["creationDate"] == doc.metadata["modDate"] == "D:20250401000000+09'00'"
        assert doc.metadata["title"] == record["title"]
        assert doc.metadata["author"] == record["org"]


def test_every_table_row_and_fact_is_in_the_text_layer(corpus):
    truth = read_truth(corpus)
    assert {r["layout"] for r in truth} == {"budget", "settlement", "notice"}
    checked_rows = checked_facts = negatives = 0
    for record in truth:
        with pymupdf.open(corpus / record["file"]) as doc:
            assert doc.page_count == record["pages"] == len(record["page_info"])
            # max_pages, plus one for a chart that does not fit on the last page
            assert 1 <= record["pages"] <= 3 + 1
            texts = [
                reading_text(page, info)
                for page, info in zip(doc, record["page_info"], strict=True)
            ]
        scanned = {info["page"] for info in record["page_info"] if info["scanned"]}
        if 0 not in scanned:
            assert record["fiscal_year"] in texts[0] and record["title"] in texts[0].split("\n")
        for table in record["tables"]:
            for page in set(table["pages"]) - scanned:
                assert "（単位：百万円）" in texts[page].split("\n")
                assert " ".join(table["columns"]) in texts[page].split("\n")
            *items, total = table["rows"]
            assert total["label"].endswith("合計")
            assert total["values"] == [sum(r["values"][i] for r in items) for i in range(3)]
            for row in table["rows"]:
                if row["page"] in scanned:
                    continue
                line = " ".join([row["label"], *map(fmt_int, row["values"])])
                assert line in texts[row["page"]].split("\n"), (record["doc_id"], line)
                negatives += any(v < 0 for v in row["values"])
                checked_rows += 1
        for fact in record["facts"]:
            if fact["page"] in scanned:
                continue
            lines = texts[fact["page"]].split("\n")
            assert fact["sentence"] in "".join(lines), (record["doc_id"], fact["sentence"])
            assert any(fact["text"] in line for line in lines), (record["doc_id"], fact["text"])
            assert fact["text"] in fact["sentence"]
            checked_facts += 1
    assert checked_rows > 50 and checked_facts > 20 and negatives > 0


def test_negative_numbers_use_the_triangle():
    assert fmt_int(-34567) == "△34,567"
    assert fmt_int(1234567) == "1,234,567"


def test_long_tables_span_pages(tmp_path):
    cfg = corpus_config(
        seed=3,
        documents=2,
        layouts=["budget", "settlement"],
        min_pages=3,
        max_pages=3,
        rows_per_page=4,
        corrupt=0,
        scanned_pages=0,
    )
    generate_corpus(cfg, tmp_path, progress=False)
    for record in read_truth(tmp_path):
        table = record["tables"][0]
        assert record["pages"] == 3 and table["pages"] == [0, 1, 2]
        with pymupdf.open(tmp_path / record["file"]) as doc:
            assert f"{table['caption']}（続き）" in page_text(doc[1]).split("\n")


def test_corrupt_files_are_written_and_listed(corpus):
    broken = [json.loads(line) for line in (corpus / "corrupt.jsonl").read_text().splitlines()]
    assert [b["kind"] for b in broken] == ["truncated", "not_pdf"]
    truncated, not_pdf = ((corpus / b["file"]).read_bytes() for b in broken)
    assert truncated.startswith(b"%PDF-") and b"%%EOF" not in truncated
    assert not not_pdf.startswith(b"%PDF")
    assert all(b["file"].endswith(".pdf") for b in broken)
    assert len(list((corpus / "pdfs").glob("*.pdf"))) == 12 + 2


def test_rerun_removes_stale_pdfs(tmp_path):
    generate_corpus(corpus_config(documents=4, corrupt=1), tmp_path, progress=False)
    generate_corpus(
        corpus_config(documents=2, corrupt=0, scanned_pages=0), tmp_path, progress=False
    )
    assert len(list((tmp_path / "pdfs").iterdir())) == 2


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"rows_per_page": 1}, "corpus.rows_per_page"),
        ({"documents": 0}, "corpus.documents"),
        ({"max_pages": 0}, "corpus.max_pages"),
        ({"layouts": ["budget", "pamphlet"]}, "corpus.layouts[1]"),
        ({"layouts": []}, "corpus.layouts"),
        ({"corrupt": -1}, "corpus.corrupt"),
        ({"seed": "seven"}, "corpus.seed"),
        ({"documnets": 3}, "corpus.documnets"),
        ({"charts_per_doc": 5}, "corpus.charts_per_doc"),
        ({"charts_per_doc": -1}, "corpus.charts_per_doc"),
        ({"two_column_share": 1.5}, "corpus.two_column_share"),
        ({"fullwidth_share": -0.1}, "corpus.fullwidth_share"),
        ({"scanned_pages": -1}, "corpus.scanned_pages"),
        ({"documents": 2, "scanned_pages": 3}, "corpus.scanned_pages"),
    ],
)
def test_invalid_params_name_the_key(change, key):
    params = {"corpus": repo_section("corpus", **change)}
    with pytest.raises(ParamsError, match=key.replace("[", r"\[").replace("]", r"\]")):
        load_stage("corpus").load_config(params)


def test_stage_reads_only_its_declared_params(tmp_path, monkeypatch):
    stage = load_stage("corpus")
    assert stage.load_config(repo_params()) == corpus_config()
    small = {"corpus": repo_section("corpus", documents=3, corrupt=1)}
    monkeypatch.setattr(stage, "stage_params", lambda name: small if name == "corpus" else {})
    stage.main(out=tmp_path, stage="corpus")
    assert len(read_truth(tmp_path)) == 3
