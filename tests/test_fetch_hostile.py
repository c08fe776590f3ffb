"""Nothing hostile stops fetch or render, and nothing vanishes: every file ends as a row with its
outcome and reason, every page as a page, a recorded failure, a flagged text layer or a
recorded near-duplicate."""

from __future__ import annotations

import json
from pathlib import Path

import pymupdf
import pytest

from finstage.corpus.fetch import fetch
from finstage.corpus.pdfcheck import inspect_pdf
from finstage.pages.render import render_store
from finstage.pages.textlayer import text_issue
from finstage.pagestore import PageStore
from finstage.pdfstore import read_index

from . import hostile_pdfs as hostile
from .test_fetch import fetch_config, write_manifest
from .test_render import render_config

MAX_PAGES = 4


def hostile_folder(base: Path) -> dict[str, bytes]:
    """Every kind of file the issue lists, in one source folder, by name."""
    good = hostile.pdf(2, seed=1)
    files = {
        "a-good.pdf": good,
        "b-corrupt-page-tree.pdf": hostile.corrupt_page_tree(hostile.pdf(2, seed=2)),
        "c-zero-bytes.pdf": b"",
        "d-truncated.pdf": hostile.truncated(hostile.pdf(2, seed=3)),
        "e-corrupt-xref.pdf": hostile.corrupt_xref(hostile.pdf(2, seed=4)),
        "f-user-password.pdf": hostile.encrypted("secret"),
        "g-owner-password.pdf": hostile.encrypted(""),
        "h-html.pdf": hostile.html_as_pdf(),
        "i-junk-before-header.pdf": hostile.junk_before_header(hostile.pdf(1, seed=5)),
        "j-too-many-pages.pdf": hostile.pdf(MAX_PAGES + 3, seed=6),
        "k-oversized.pdf": hostile.pdf(1, seed=7) + b"%" + b"0" * 70_000 + b"\n",
        "l-duplicate.pdf": good,
        "m-near-duplicate.pdf": hostile.rotated(good),
        "n-image-only.pdf": hostile.image_only(),
        "o-garbage-text.pdf": hostile.garbage_text(),
        "p-attachment-javascript.pdf": hostile.with_attachment_and_javascript(
            hostile.pdf(1, seed=8)
        ),
    }
    folder = base / "pdfs"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / "q-dangling.pdf").symlink_to(base / "gone.pdf")
    return files


@pytest.fixture(scope="module")
def fetched(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    files = hostile_folder(base)
    manifest = write_manifest(base / "m.yaml", [{"path": "pdfs"}])
    cfg = fetch_config(max_pages=MAX_PAGES, max_bytes=64_000, cache_dir=str(base / "cache"))
    report = fetch(manifest, base / "store", cfg, base_dir=base, progress=False)
    rows = {Path(r["source"]).name: r for r in read_index(base / "store", statuses=None)}
    return base, files, report, rows


def test_every_file_has_a_row_with_its_outcome_and_reason(fetched):
    _, files, report, rows = fetched
    assert sorted(rows) == sorted([*files, "q-dangling.pdf"])
    outcome = {
        name: (row["status"], (row["reason"] or "").split(":")[0]) for name, row in rows.items()
    }
    assert outcome == {
        "a-good.pdf": ("stored", ""),
        "b-corrupt-page-tree.pdf": ("quarantined", "unreadable"),
        "c-zero-bytes.pdf": ("quarantined", "not a PDF"),
        "d-truncated.pdf": ("stored-repaired", "repaired"),  # cut at 60%: MuPDF rebuilds it
        "e-corrupt-xref.pdf": ("stored-repaired", "repaired"),
        "f-user-password.pdf": ("quarantined", "encrypted"),
        "g-owner-password.pdf": ("quarantined", "encrypted"),
        "h-html.pdf": ("quarantined", "not a PDF"),
        "i-junk-before-header.pdf": ("stored", ""),
        "j-too-many-pages.pdf": ("stored-capped", "capped"),
        "k-oversized.pdf": ("quarantined", "too large"),
        "l-duplicate.pdf": ("duplicate", "duplicate of pdfs/a-good.pdf (stored)"),
        "m-near-duplicate.pdf": ("stored", ""),  # other bytes: render finds its pages
        "n-image-only.pdf": ("stored", ""),
        "o-garbage-text.pdf": ("stored", ""),
        "p-attachment-javascript.pdf": ("stored", ""),
        "q-dangling.pdf": ("skipped", "symlink"),
    }  # fmt: skip
    assert "Invalid number of pages" in rows["b-corrupt-page-tree.pdf"]["reason"]
    assert rows["i-junk-before-header.pdf"]["flags"] == ["junk-before-header"]
    assert rows["p-attachment-javascript.pdf"]["flags"] == ["attachments:1", "javascript"]
    capped = rows["j-too-many-pages.pdf"]
    assert (capped["pages"], capped["pages_kept"]) == (MAX_PAGES + 3, MAX_PAGES)
    assert report["outcomes"]["quarantined"] == 6 and report["outcomes"]["skipped"] == 1
    assert sum(report["outcomes"].values()) == report["files"] == len(rows)
    assert report["flags"] == {"attachments": 1, "javascript": 1, "junk-before-header": 1,
                               "repaired": 2}  # fmt: skip


def test_refused_and_oversized_content_is_kept_nowhere(fetched):
    base, files, _, rows = fetched
    kept = [p.read_bytes() for p in base.rglob("*") if p.is_file() and p.suffix != ".json"]
    kept = [b for b in kept if b not in files.values() or b == b""]  # the sources themselves
    for name in ("k-oversized.pdf", "h-html.pdf", "f-user-password.pdf"):
        assert not any(files[name] == data for data in kept), name
    assert not any(b"0" * 1000 in data for data in kept)
    assert rows["k-oversized.pdf"]["path"].startswith("quarantine/")


def test_render_completes_and_accounts_for_every_page(fetched, tmp_path):
    base, _, _, rows = fetched
    report = render_store(base / "store", tmp_path, render_config(), progress=False)
    pages = PageStore(tmp_path)
    stored = [r for r in rows.values() if r["status"].startswith("stored")]
    expected = sum(r["pages_kept"] for r in stored)
    assert report["pages"] + report["failed_pages"] + report["near_duplicate_pages"] == expected
    assert report["documents"] == len(stored)
    docs = {r["sha256"]: name for name, r in rows.items() if r["status"].startswith("stored")}
    by_doc: dict[str, list] = {}
    for page in pages:
        by_doc.setdefault(docs[page["doc_sha256"]], []).append(page)
    assert len(by_doc["j-too-many-pages.pdf"]) == MAX_PAGES  # capped, not dropped
    assert "m-near-duplicate.pdf" not in by_doc  # both its pages repeat a-good.pdf's
    dups = {d["page_id"]: d for d in report["near_duplicates"]}
    assert len(dups) == 2 and all(d["by"] == "text" for d in dups.values())
    issues = {docs[p["doc_sha256"]]: p["text_issue"] for p in pages}
    assert issues["n-image-only.pdf"].startswith("empty")
    assert issues["o-garbage-text.pdf"].startswith("garbage")
    assert issues["a-good.pdf"] is None
    assert report["text_issues"] == {"empty": 1, "garbage": 1}


def test_an_image_only_page_seen_twice_is_caught_by_its_image(tmp_path):
    scan = hostile.image_only(seed=3)
    with pymupdf.open(stream=scan) as doc:
        doc.set_metadata({"title": "re-saved"})
        resaved = doc.tobytes(garbage=3)
    assert resaved != scan
    (tmp_path / "pdfs").mkdir()
    (tmp_path / "pdfs" / "a.pdf").write_bytes(scan)
    (tmp_path / "pdfs" / "b.pdf").write_bytes(resaved)
    (tmp_path / "pdfs" / "c.pdf").write_bytes(hostile.image_only(seed=4))  # another scan
    manifest = write_manifest(tmp_path / "m.yaml", [{"path": "pdfs"}])
    fetch(manifest, tmp_path / "store", fetch_config(), base_dir=tmp_path, progress=False)
    report = render_store(tmp_path / "store", tmp_path / "pages", render_config(), progress=False)
    assert report["pages"] == 2
    assert [d["by"] for d in report["near_duplicates"]] == ["image"]


@pytest.mark.parametrize(
    ("text", "issue"),
    [
        ("", "empty"),
        ("  \n 1 \n", "empty"),
        ("令和6年度 一般会計予算 歳出合計 1,234,567 百万円", None),
        ("Revenue 1,234 (¥ million) ±3.2% §4", None),
        ("令和6年度" + "\ufffd" * 3 + "一般会計予算歳出合計", "garbage"),
        ("".join(chr(0xE000 + i) for i in range(40)), "garbage"),
        ("—ß˜a6”N“x ˆê”Ê‰ïŒv—\\ŽZ •Î•o•‡Œv", "garbage"),
    ],
)
def test_text_layer_check(text, issue):
    found = text_issue(text)
    assert (found.split(":")[0] if found else None) == issue


def test_inspection_never_raises_on_random_damage():
    """Bytes of a real PDF overwritten at random places: every variant gets a verdict."""
    import random

    data = bytearray(hostile.pdf(3))
    rng = random.Random(0)
    statuses = set()
    for _ in range(60):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 12)):
            at = rng.randrange(len(damaged))
            damaged[at : at + 8] = bytes(rng.randrange(256) for _ in range(8))
        statuses.add(inspect_pdf(bytes(damaged), fetch_config()).status)
    assert "quarantined" in statuses or "stored-repaired" in statuses
    assert statuses <= {"stored", "stored-repaired", "stored-capped", "quarantined"}


def test_reports_are_json_with_no_file_bytes(fetched):
    base, files, _, _ = fetched
    text = (base / "store" / "fetch_report.json").read_text()
    json.loads(text)
    assert "404 Not Found" not in text and "MZ" not in text
