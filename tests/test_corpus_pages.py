"""What makes generated pages look like ministry PDFs: charts, two columns, running heads and
footnotes, 和暦 dates and full-width digits, scanned pages. Each check reads the PDF back with
PyMuPDF and holds it against truth.jsonl, so truth that drifts from the page fails here."""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from collections import Counter
from pathlib import Path

import pymupdf
import pytest

from finstage.corpus.generate import PAGE_KINDS, generate_corpus, read_truth
from finstage.corpus.numerals import fiscal_year, fullwidth, wareki
from finstage.pages.render import page_text

from .test_corpus import corpus_config, reading_text

FULLWIDTH_DIGIT = re.compile("[０-９]")
WAREKI = re.compile(r"令和(元|\d+)年(\d+)月(\d+)日")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pages")
    cfg = corpus_config(seed=11, documents=12, charts_per_doc=2, fullwidth_share=0.5, corrupt=0)
    generate_corpus(cfg, out, progress=False)
    return out


def documents(corpus: Path):
    """(record, open document) pairs."""
    for record in read_truth(corpus):
        with pymupdf.open(corpus / record["file"]) as doc:
            yield record, doc


def centre(word: tuple) -> tuple[float, float]:
    return (word[0] + word[2]) / 2, (word[1] + word[3]) / 2


def test_chart_values_sit_by_their_labels_in_the_text_layer(corpus):
    seen: Counter = Counter()
    for record, doc in documents(corpus):
        scanned = {i["page"] for i in record["page_info"] if i["scanned"]}
        for chart in record["charts"]:
            assert "chart" in record["page_info"][chart["page"]]["kinds"]
            if chart["page"] in scanned:
                continue
            page = doc[chart["page"]]
            lines = page_text(page).split("\n")
            assert f"{chart['title']}{chart['footnote']}" in lines
            assert f"（単位：{chart['unit']}）" in lines
            words = page.get_text("words")
            [series] = chart["series"]
            for point in series["points"]:
                assert float(point["text"].replace(",", "")) == point["value"]
                label = next(w for w in words if w[4] == point["label"])
                values = [centre(w) for w in words if w[4] == point["text"]]
                lx, ly = centre(label)
                if chart["orientation"] == "vertical":  # value above its bar/point, same x
                    assert any(abs(x - lx) < 1.0 and y < ly for x, y in values), point
                else:  # value right of its bar, on the label's row
                    assert any(abs(y - ly) < 1.0 and x > lx for x, y in values), point
            seen[chart["kind"], chart["orientation"]] += 1
    assert set(seen) == {("bar", "horizontal"), ("bar", "vertical"), ("line", "vertical")}


def test_table_chart_shows_the_largest_table_items(corpus):
    for record in read_truth(corpus):
        if record["tables"] and record["charts"]:
            *items, _total = record["tables"][0]["rows"]
            top = sorted(items, key=lambda r: -r["values"][1])[:5]
            points = record["charts"][0]["series"][0]["points"]
            assert [(p["label"], p["value"]) for p in points] == [
                (r["label"], r["values"][1]) for r in top
            ]


def test_two_columns_read_left_column_first(corpus):
    pages = 0
    for record, doc in documents(corpus):
        for info in record["page_info"]:
            if "columns" not in info or info["scanned"]:
                continue
            pages += 1
            page, box = doc[info["page"]], info["columns"]
            body = [
                w
                for w in page.get_text("words", sort=False)
                if box["top"] <= centre(w)[1] <= box["bottom"]
            ]
            left = [w for w in body if w[2] <= box["right_x"] - 10.0]
            right = [w for w in body if w[0] >= box["right_x"] - 1.0]
            assert left and right and len(left) + len(right) == len(body)  # nothing straddles
            # the content stream (what a text extractor meets first) holds the left column first
            assert max(w[5] for w in left) < min(w[5] for w in right)
            text = reading_text(page, info).replace("\n", "")
            render_text = page_text(page).replace("\n", "")
            for fact in record["facts"]:
                if fact["page"] == info["page"]:
                    assert fact["sentence"] in text
                    assert fact["sentence"] in render_text  # render reads column by column
    assert pages >= 2


def test_scanned_pages_are_images_without_text(corpus):
    scans = 0
    for record, doc in documents(corpus):
        for info in record["page_info"]:
            page = doc[info["page"]]
            if not info["scanned"]:
                assert page_text(page) and not page.get_images()
                continue
            scans += 1
            assert info["page"] == record["pages"] - 1 and "scanned" in info["kinds"]
            assert page.get_text() == "" and not page.get_fonts()
            [image] = page.get_images(full=True)
            assert (image[2], image[3]) == (1240, 1755)  # A4 (595x842 pt) at 150 dpi, rounded up
            pix = pymupdf.Pixmap(doc, image[0])
            ink = pix.samples.count(0) / len(pix.samples)
            assert 0.005 < ink < 0.3  # the page's print, not a blank or black sheet
            assert 0.5 <= abs(info["rotation_deg"]) <= 2.0
            assert info["text"][0] == info["header"] and info["text"][-1] == info["footer"]
            if info["page"] == 0:
                assert record["title"] in info["text"]
    assert scans == 3


def test_fullwidth_digits_and_wareki_dates_match_their_values(corpus):
    dates = fullwidth_amounts = 0
    for record, doc in documents(corpus):
        scanned = {i["page"] for i in record["page_info"] if i["scanned"]}
        texts = [
            reading_text(page, info) for page, info in zip(doc, record["page_info"], strict=True)
        ]
        for fact in record["facts"]:
            plain = unicodedata.normalize("NFKC", fact["text"])
            if fact["unit"] == "date":
                era, month, day = WAREKI.fullmatch(plain).groups()
                year = 2018 + (1 if era == "元" else int(era))
                assert dt.date(year, int(month), int(day)).isoformat() == fact["value"]
                dates += 1
            elif FULLWIDTH_DIGIT.search(fact["text"]):
                number = plain.removesuffix(fact["unit"]).replace(",", "").replace("△", "-")
                assert float(number) == fact["value"]
                fullwidth_amounts += 1
            if fact["page"] not in scanned:
                assert fact["text"] in texts[fact["page"]]
    assert dates >= 12 and fullwidth_amounts >= 5
    assert {f["unit"] for r in read_truth(corpus) for f in r["facts"]} >= {"兆円", "億円", "百万円"}


def test_numerals():
    assert wareki(dt.date(2019, 5, 1)) == "令和元年5月1日"
    assert wareki(dt.date(2024, 4, 1)) == "令和6年4月1日"
    with pytest.raises(ValueError, match="before 令和"):
        wareki(dt.date(2018, 4, 1))
    assert fullwidth("1,234.5億円") == "１，２３４．５億円"
    assert [fiscal_year(r) for r in (-1, 0, 1, 2)] == [
        "平成29年度",
        "平成30年度",
        "令和元年度",
        "令和2年度",
    ]


def test_every_text_page_has_header_footer_and_its_footnotes(corpus):
    for record, doc in documents(corpus):
        for page, info in zip(doc, record["page_info"], strict=True):
            if info["scanned"]:
                continue
            lines = page_text(page).split("\n")
            assert lines[0] == info["header"] and lines[-1] == info["footer"]
            assert info["footer"] == f"- {info['page'] + 1} -"
            assert record["org"] in info["header"]
            for note in info["footnotes"]:
                assert f"{note['mark']} {note['text']}" in lines
                body = "".join(lines[1 : lines.index(f"{note['mark']} {note['text']}")])
                assert note["mark"] in body  # the mark is printed where the note applies
        marks = [n["mark"] for i in record["page_info"] for n in i["footnotes"]]
        assert marks == [f"※{k}" for k in range(1, len(marks) + 1)]  # numbered through the doc


def test_report_counts_page_kinds_and_bytes(corpus):
    report = json.loads((corpus / "corpus_report.json").read_text())
    truth = read_truth(corpus)
    kinds = Counter(k for r in truth for i in r["page_info"] for k in i["kinds"])
    assert report["page_kinds"] == {kind: kinds[kind] for kind in PAGE_KINDS}
    assert report["pages"] == sum(r["pages"] for r in truth)
    sizes = report["page_stream_bytes"]
    assert sizes["max"] > 10_000 > sizes["mean"]  # a scan dwarfs the text pages
    assert report["bytes_per_page"] == sum(r["bytes"] for r in truth) / report["pages"]
