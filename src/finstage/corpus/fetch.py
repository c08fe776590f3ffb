"""Bring every manifest source into the content-addressed PDF store, validated and deduplicated.

Real crawls return broken downloads, HTML error pages saved as .pdf, password-protected files and
the same PDF linked from three pages. None of that may stop a run or reach the renderer, and
nothing may be fetched from a host nobody approved. So fetch walks the manifest in order and, for
each file:

- copies a local file, or downloads an http(s) URL through `HttpClient` (allowed hosts only,
  robots.txt, retries, per-host delay, byte limit);
- validates it with PyMuPDF (a ``%PDF-`` header, a ``%%EOF`` near the end, opens, not
  encrypted, 1..``max_pages`` pages that load, at most ``max_bytes``);
- stores each content once, as a usable object or in quarantine with the reason;

then writes the index, each host's robots.txt and ``fetch_report.json`` (counts). The store's
layout and index rows are `finstage.pdfstore`'s, so that render reads them without importing this.

Secrets: if a host needs an ``Authorization`` header, ``fetch.auth_env`` maps the host to the
*name* of an environment variable holding it; the value never enters params, logs or the index.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymupdf

from finstage import pdfstore
from finstage.corpus.fetchconfig import FetchConfig
from finstage.corpus.httpclient import FetchFailure, HttpClient
from finstage.corpus.manifest import Item, check_hosts, expand, load_manifest


class FetchError(RuntimeError):
    """The run cannot proceed (a misconfiguration, not a bad file); the message says the fix."""


def validate_pdf(data: bytes, cfg: FetchConfig) -> tuple[str | None, int | None]:
    """(reason, pages): reason is None for a PDF the pipeline can use."""
    if len(data) > cfg.max_bytes:
        return f"too large: {len(data)} bytes exceeds fetch.max_bytes ({cfg.max_bytes})", None
    if b"%PDF-" not in data[:1024]:
        return f"not a PDF: no %PDF- header (starts with {data[:16]!r})", None
    if b"%%EOF" not in data[-1024:]:
        return "truncated: no %%EOF marker in the last 1024 bytes", None
    display = pymupdf.TOOLS.mupdf_display_errors()
    pymupdf.TOOLS.mupdf_display_errors(False)
    try:
        try:
            doc = pymupdf.open(stream=data, filetype="pdf")
        except Exception as err:  # noqa: BLE001 - any MuPDF failure means unusable
            return f"unreadable: PyMuPDF cannot open it ({err})", None
        with doc:
            if doc.needs_pass:
                return "encrypted: needs a password to open", None
            encryption = (doc.metadata or {}).get("encryption")
            pages = doc.page_count
            if encryption and not cfg.allow_owner_password:
                return (
                    f"encrypted: {encryption} with an owner password "
                    f"(set fetch.allow_owner_password: true to accept such files)",
                    pages,
                )
            if pages < 1:
                return "empty: the PDF has no pages", 0
            if pages > cfg.max_pages:
                return f"too many pages: {pages} exceeds fetch.max_pages ({cfg.max_pages})", pages
            for i in range(pages):
                try:
                    doc.load_page(i)
                except Exception as err:  # noqa: BLE001
                    return f"unreadable: page {i} cannot be loaded ({err})", pages
        return None, pages
    finally:
        pymupdf.TOOLS.mupdf_warnings(reset=True)
        pymupdf.TOOLS.mupdf_display_errors(display)


def fetch(
    manifest: Path,
    store: Path,
    cfg: FetchConfig,
    base_dir: Path | None = None,
    progress: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Fetch every source of ``manifest`` into ``store``; returns the report (also written)."""
    manifest, store = Path(manifest), Path(store)
    sources = load_manifest(manifest)
    check_hosts(sources, cfg.allowed_hosts, str(manifest))
    items = expand(sources, base_dir, str(manifest))
    client = HttpClient(cfg, _auth_headers(cfg, {s.host for s in sources if s.host}), sleep=sleep)
    pdfstore.prepare(store)
    rows, duplicates = _store_items(items, store, client, cfg, progress)
    for netloc, text in sorted(client.robots_text.items()):
        if text is not None:
            pdfstore.write_robots(store, netloc, text)
    pdfstore.write_index(store, rows)
    report = _report(rows, len(sources), len(items), duplicates, client.requests)
    pdfstore.write_report(store, report)
    return report


def _auth_headers(cfg: FetchConfig, hosts: set[str]) -> dict[str, str]:
    auth = {}
    for host, var in cfg.auth_env.items():
        if host not in hosts:
            continue
        value = os.environ.get(var)
        if not value:
            raise FetchError(
                f"fetch.auth_env.{host} names the environment variable {var}, which is not set; "
                f"export {var}=<Authorization header value> before running"
            )
        auth[host] = value
    return auth


def _store_items(
    items: list[Item], store: Path, client: HttpClient, cfg: FetchConfig, progress: bool
) -> tuple[list[dict[str, Any]], int]:
    """Index rows in manifest order, and how many files repeated content already stored."""
    from tqdm import tqdm

    rows: list[dict[str, Any]] = []
    by_sha: dict[str, dict[str, Any]] = {}
    duplicates = 0
    for item in tqdm(items, desc="fetch", unit="file", disable=not progress):
        info: dict[str, Any] = {
            "source": item.ref,
            "entry": item.source.entry,
            "license": item.source.license,
            "org": item.source.org,
        }
        try:
            sha, data, size = _read(item, client, cfg, info)
        except FetchFailure as err:
            rows.append(pdfstore.index_row(None, "failed", str(err), None, None, None, info))
            continue
        if sha in by_sha:
            by_sha[sha]["sources"].append(info)
            duplicates += 1
            continue
        by_sha[sha] = _store_new(store, item, sha, data, size, cfg, info)
        rows.append(by_sha[sha])
    return rows, duplicates


def _read(
    item: Item, client: HttpClient, cfg: FetchConfig, info: dict[str, Any]
) -> tuple[str, bytes | None, int]:
    """(sha256, bytes, size) of one file; bytes are None for a local file too large to read in.
    A download's HTTP metadata is added to ``info``, which becomes its entry in the index."""
    if item.url is not None:
        data, meta = client.get(item.url)
        info.update(meta)
        return hashlib.sha256(data).hexdigest(), data, len(data)
    assert item.path is not None
    try:
        size = item.path.stat().st_size
        if size > cfg.max_bytes:
            return _sha256_file(item.path), None, size
        data = item.path.read_bytes()
    except OSError as err:
        raise FetchFailure(f"cannot read {item.path}: {err}") from None
    return hashlib.sha256(data).hexdigest(), data, size


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _store_new(
    store: Path,
    item: Item,
    sha: str,
    data: bytes | None,
    size: int,
    cfg: FetchConfig,
    info: dict[str, Any],
) -> dict[str, Any]:
    """Validate content seen for the first time, store it as an object or in quarantine."""
    if data is None:  # a local file over max_bytes: quarantined without reading it in
        assert item.path is not None
        reason, pages = f"too large: {size} bytes exceeds fetch.max_bytes ({cfg.max_bytes})", None
        rel = pdfstore.relative_path(sha, valid=False)
        pdfstore.copy_file(store / rel, item.path)
    else:
        reason, pages = validate_pdf(data, cfg)
        rel = pdfstore.relative_path(sha, valid=reason is None)
        pdfstore.write_file(store / rel, data)
    status = "ok" if reason is None else "quarantined"
    return pdfstore.index_row(sha, status, reason, size, pages, rel, info)


def _report(
    rows: list[dict[str, Any]], sources: int, files: int, duplicates: int, requests: int
) -> dict[str, Any]:
    status = Counter(row["status"] for row in rows)
    return {
        "sources": sources,
        "files": files,
        "stored": status["ok"],
        "duplicates": duplicates,
        "quarantined": status["quarantined"],
        "failed": status["failed"],
        "pages": sum(row["pages"] or 0 for row in rows if row["status"] == "ok"),
        "bytes": sum(row["bytes"] or 0 for row in rows if row["status"] == "ok"),
        "reasons": dict(
            sorted(Counter(row["reason"].split(":")[0] for row in rows if row["reason"]).items())
        ),
        "problems": [
            {"source": row["source"], "status": row["status"], "reason": row["reason"]}
            for row in rows
            if row["status"] != "ok"
        ],
        "http_requests": requests,
    }


def format_report(report: dict[str, Any], store: Path) -> str:
    """The human summary the stage prints."""
    lines = [
        f"fetch: {report['files']} file(s) from {report['sources']} source(s): "
        f"{report['stored']} stored, {report['duplicates']} duplicate(s), "
        f"{report['quarantined']} quarantined, {report['failed']} failed "
        f"-> {Path(store) / 'index.jsonl'}"
    ]
    lines += [f"  {p['status']}: {p['source']}: {p['reason']}" for p in report["problems"]]
    return "\n".join(lines)
