"""Render under hostile input: image bombs and endless pages are skipped per page, and a tampered
index never makes render open a file outside the store."""

from __future__ import annotations

import hashlib
import io
import time
import zlib
from pathlib import Path

import pymupdf
import pytest
from PIL import Image

from finstage.config import ParamsError, parse
from finstage.pages.render import RenderConfig, render_store
from finstage.pagestore import PageStore, page_id
from finstage.pdfstore import index_row, prepare, relative_path, write_file, write_index

from .repo_configs import repo_config, repo_section

SOURCE = {"source": "test", "entry": 0, "license": "test", "org": "test"}


def render_config(**changes) -> RenderConfig:
    return repo_config(RenderConfig, "render", **changes)


def plain_pdf(*texts: str) -> bytes:
    """A PDF with one page of text per argument."""
    with pymupdf.open() as doc:
        for text in texts:
            doc.new_page().insert_text((72, 72), text)
        return doc.tobytes()


def zeros_flate_twice(pixels: int) -> bytes:
    """``pixels`` zero bytes, deflated twice: a few hundred bytes that inflate to ``pixels``."""
    deflate, chunk, parts = zlib.compressobj(9), bytes(1 << 22), []
    while pixels > 0:
        parts.append(deflate.compress(chunk[: min(pixels, len(chunk))]))
        pixels -= len(chunk)
    parts.append(deflate.flush())
    return zlib.compress(b"".join(parts), 9)


def bomb_pdf(side: int) -> bytes:
    """Three pages; the middle one shows a ``side`` x ``side`` grey image stored doubly deflated."""
    with pymupdf.open() as doc:
        doc.new_page().insert_text((72, 72), "before the bomb")
        page = doc.new_page()
        page.insert_text((72, 72), "bomb")
        png = io.BytesIO()
        Image.new("L", (2, 2)).save(png, format="PNG")
        xref = page.insert_image(pymupdf.Rect(50, 100, 550, 700), stream=png.getvalue())
        doc.update_stream(xref, zeros_flate_twice(side * side), compress=False)
        for key, value in {
            "Width": str(side),
            "Height": str(side),
            "Filter": "[/FlateDecode /FlateDecode]",
            "ColorSpace": "/DeviceGray",
            "BitsPerComponent": "8",
            "DecodeParms": "null",
            "SMask": "null",
        }.items():
            doc.xref_set_key(xref, key, value)
        doc.new_page().insert_text((72, 72), "after the bomb")
        return doc.tobytes()


def endless_pdf(depth: int) -> bytes:
    """Three pages; the middle one draws a form that draws the next form ten times, ``depth``
    levels deep: 10**depth fills from a file of a few KB, and no image at all."""
    with pymupdf.open() as doc:
        doc.new_page().insert_text((72, 72), "before the slow page")
        page = doc.new_page()
        inner = None
        for _ in range(depth):
            xref = doc.get_new_xref()
            if inner is None:
                resources, body = "<< >>", b"0 0 1 1 re f"
            else:
                resources = f"<< /XObject << /F {inner} 0 R >> >>"
                body = b" ".join(b"q 1 0 0 1 %d 0 cm /F Do Q" % (i % 3) for i in range(10))
            form = "/Type /XObject /Subtype /Form /BBox [0 0 600 800]"
            doc.update_object(xref, f"<< {form} /Resources {resources} >>")
            doc.update_stream(xref, body)
            inner = xref
        contents = doc.get_new_xref()
        doc.update_object(contents, "<< >>")
        doc.update_stream(contents, b"q /Top Do Q")
        doc.xref_set_key(page.xref, "Resources", f"<< /XObject << /Top {inner} 0 R >> >>")
        doc.xref_set_key(page.xref, "Contents", f"{contents} 0 R")
        doc.new_page().insert_text((72, 72), "after the slow page")
        return doc.tobytes()


def make_store(root: Path, pdfs: list[bytes]) -> tuple[Path, list[dict]]:
    """A store holding ``pdfs`` as fetch would write it, and its index rows."""
    store = root / "store"
    prepare(store)
    rows = []
    for data in pdfs:
        sha = hashlib.sha256(data).hexdigest()
        path = relative_path(sha, valid=True)
        write_file(store / path, data)
        with pymupdf.open(stream=data) as doc:
            rows.append(index_row(sha, "stored", None, len(data), doc.page_count, path, SOURCE))
    write_index(store, rows)
    return store, rows


def failures_of(report: dict, sha: str) -> list[dict]:
    return [f for f in report["failures"] if f["doc_sha256"] == sha]


def test_image_bomb_page_is_skipped_and_recorded(tmp_path):
    bomb = bomb_pdf(12_000)  # 144 million pixels (144 MB) from a file of a few KB
    assert len(bomb) < 8_000
    store, rows = make_store(tmp_path, [plain_pdf("first"), bomb, plain_pdf("last", "last 2")])
    started = time.monotonic()
    report = render_store(store, tmp_path / "pages", render_config(), progress=False)
    assert time.monotonic() - started < 60
    sha = rows[1]["sha256"]
    [failure] = report["failures"]
    assert failure["doc_sha256"] == sha and failure["page_index"] == 1
    assert failure["reason"].startswith("image too large: 144000000 pixels")
    assert report["failed_pages"] == 1 and report["failed_documents"] == 0
    assert report["pages"] == 5 and report["documents"] == 3
    ids = {p["page_id"] for p in PageStore(tmp_path / "pages")}
    assert {page_id(sha, 0), page_id(sha, 2)} <= ids and page_id(sha, 1) not in ids

    # the cap is what skipped it: above the image's size the page renders
    report = render_store(
        store, tmp_path / "all", render_config(max_image_pixels=200_000_000), progress=False
    )
    assert report["failures"] == [] and report["pages"] == 6


def test_output_pixmap_counts_against_the_cap(tmp_path):
    store, rows = make_store(tmp_path, [plain_pdf("a", "b")])
    cfg = render_config(dpi=600, max_side=None, max_image_pixels=1_000_000)  # A4 at 600 dpi: 35 MP
    report = render_store(store, tmp_path / "pages", cfg, progress=False)
    assert report["pages"] == 0 and report["failed_pages"] == 2
    assert all(f["reason"].startswith("image too large") for f in report["failures"])


def test_endless_page_is_killed_at_the_timeout(tmp_path):
    slow = endless_pdf(8)  # about 10**8 fills: tens of seconds to minutes to render
    store, rows = make_store(tmp_path, [slow, plain_pdf("next document")])
    started = time.monotonic()
    cfg = render_config(page_timeout_s=2)
    report = render_store(store, tmp_path / "pages", cfg, progress=False)
    assert time.monotonic() - started < 30
    sha = rows[0]["sha256"]
    assert report["failures"] == [
        {"doc_sha256": sha, "page_index": 1, "reason": "timed out after 2 s"}
    ]
    ids = {p["page_id"] for p in PageStore(tmp_path / "pages")}
    assert ids == {page_id(sha, 0), page_id(sha, 2), page_id(rows[1]["sha256"], 0)}


def test_a_document_of_endless_pages_is_abandoned(tmp_path):
    """Each killed page costs a timeout and a fresh worker; a file of 2,000 such pages must not
    cost 2,000 of them."""
    with pymupdf.open(stream=endless_pdf(8)) as one, pymupdf.open() as doc:
        for _ in range(6):
            doc.insert_pdf(one, from_page=1, to_page=1)
        many = doc.tobytes()
    store, rows = make_store(tmp_path, [many, plain_pdf("next document")])
    cfg = render_config(page_timeout_s=1, max_page_timeouts=2)
    started = time.monotonic()
    report = render_store(store, tmp_path / "pages", cfg, progress=False)
    assert time.monotonic() - started < 30
    sha = rows[0]["sha256"]
    assert report["failures"] == [
        {"doc_sha256": sha, "page_index": 0, "reason": "timed out after 1 s"},
        {"doc_sha256": sha, "page_index": 1, "reason": "timed out after 1 s"},
        {
            "doc_sha256": sha,
            "page_index": None,
            "reason": "abandoned after 2 killed page(s): pages 2-5 not rendered",
        },
    ]
    assert [p["doc_sha256"] for p in PageStore(tmp_path / "pages")] == [rows[1]["sha256"]]


def test_timeouts_with_parallel_workers_keep_the_order(tmp_path):
    pdfs = [plain_pdf("one"), endless_pdf(8), plain_pdf("three", "3b"), plain_pdf("four")]
    store, rows = make_store(tmp_path, pdfs)
    report = render_store(store, tmp_path / "two", render_config(page_timeout_s=2), progress=False)
    cfg = render_config(page_timeout_s=2, workers=2)
    parallel = render_store(store, tmp_path / "par", cfg, progress=False)
    assert parallel == report and report["failed_pages"] == 1 and report["pages"] == 6
    one = [p["page_id"] for p in PageStore(tmp_path / "two")]
    two = [p["page_id"] for p in PageStore(tmp_path / "par")]
    assert one == two


def tamper(store: Path, rows: list[dict], k: int, **changes) -> None:
    rows[k] = {**rows[k], **changes}
    write_index(store, rows)


@pytest.mark.parametrize("where", ["relative", "absolute", "object"])
def test_index_paths_outside_the_store_are_refused(tmp_path, where):
    outside = plain_pdf("secret outside the store")
    (tmp_path / "outside.pdf").write_bytes(outside)
    store, rows = make_store(tmp_path, [plain_pdf("inside"), plain_pdf("inside too")])
    sha = hashlib.sha256(outside).hexdigest()
    path = {
        "relative": "../outside.pdf",
        "absolute": str(tmp_path / "outside.pdf"),
        "object": f"objects/{rows[1]['sha256'][:2]}/../../../outside.pdf",
    }[where]
    tamper(store, rows, 0, sha256=sha, path=path)
    report = render_store(store, tmp_path / "pages", render_config(), progress=False)
    [failure] = report["failures"]
    assert failure["doc_sha256"] == sha and failure["page_index"] is None
    assert failure["reason"].startswith("refused: index path")
    assert report["failed_documents"] == 1 and report["pages"] == 1
    assert [p["doc_sha256"] for p in PageStore(tmp_path / "pages")] == [rows[1]["sha256"]]


@pytest.mark.parametrize("sha", ["../../etc/passwd", "/etc/passwd", "AB" * 32, None])
def test_index_hashes_that_are_not_hashes_are_refused(tmp_path, sha):
    (tmp_path / "outside.pdf").write_bytes(plain_pdf("secret outside the store"))
    store, rows = make_store(tmp_path, [plain_pdf("inside"), plain_pdf("inside too")])
    tamper(store, rows, 0, sha256=sha, path="../outside.pdf")
    report = render_store(store, tmp_path / "pages", render_config(), progress=False)
    [failure] = report["failures"]
    assert failure["page_index"] is None and failure["reason"].startswith("refused: sha256")
    assert report["pages"] == 1


def test_content_that_does_not_match_its_hash_is_refused(tmp_path):
    store, rows = make_store(tmp_path, [plain_pdf("inside"), plain_pdf("other", "pages")])
    (store / rows[0]["path"]).write_bytes((store / rows[1]["path"]).read_bytes())
    report = render_store(store, tmp_path / "pages", render_config(), progress=False)
    assert report["failures"] == [
        {
            "doc_sha256": rows[0]["sha256"],
            "page_index": None,
            "reason": "refused: content does not match its sha256",
        }
    ]
    assert {p["doc_sha256"] for p in PageStore(tmp_path / "pages")} == {rows[1]["sha256"]}


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"max_image_pixels": 0}, "'render.max_image_pixels' must be"),
        ({"max_image_pixels": 1.5}, "'render.max_image_pixels' must be an integer"),
        ({"page_timeout_s": 0}, "'render.page_timeout_s' must be"),
        ({"page_timeout_s": None}, "'render.page_timeout_s' must be a number"),
        ({"max_page_timeouts": 0}, "'render.max_page_timeouts' must be"),
    ],
)
def test_invalid_limits_name_the_key(change, key):
    with pytest.raises(ParamsError, match=key):
        parse(RenderConfig, repo_section("render", **change), "render")
