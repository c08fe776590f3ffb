"""Bring every manifest source into a content-addressed store, validated, deduplicated, politely.

Real crawls return broken downloads, HTML error pages saved as .pdf, password-protected files and
the same PDF linked from three pages. None of that may stop a run or reach the renderer, and
nothing may be fetched from a host nobody approved. So fetch:

- copies local files and downloads http(s) URLs (``urllib.request``: a descriptive User-Agent,
  timeout, retries with exponential backoff that honour ``Retry-After``, a per-host delay that
  also honours robots.txt ``Crawl-delay``/``Request-rate``, a byte limit, only hosts listed in
  ``fetch.allowed_hosts`` — redirects included — and only what robots.txt allows);
- validates every file with PyMuPDF (a ``%PDF-`` header, a ``%%EOF`` near the end, opens, not
  encrypted, 1..``max_pages`` pages that load, at most ``max_bytes``);
- stores valid files once per content as ``<store>/objects/<sha[:2]>/<sha>.pdf`` and invalid ones as
  ``<store>/quarantine/<sha>.pdf``, with the reason;
- writes ``<store>/index.jsonl`` (one row per distinct content, or per failed download, in manifest
  order) and ``<store>/fetch_report.json`` (counts), and keeps each host's robots.txt under
  ``<store>/robots/``.

Index row: ``sha256`` (null when the download failed), ``status`` (ok | quarantined | failed),
``reason`` (null when ok), ``bytes``, ``pages``, ``path`` (relative to the store; null when failed),
``source`` (the first source), ``license``, ``org`` (of the first source) and ``sources`` (every
source that gave these bytes: ``source``, ``entry``, ``license``, ``org``, plus ``final_url``,
``content_type``, ``etag``, ``last_modified`` for downloads).

Secrets: if a host needs an ``Authorization`` header, ``fetch.auth_env`` maps the host to the
*name* of an environment variable holding it; the value never enters params, logs or the index,
and is dropped if a redirect leaves the host.
"""

from __future__ import annotations

import email.utils
import hashlib
import http.client
import json
import os
import re
import shutil
import time
import urllib.error
import urllib.request
import urllib.robotparser
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pymupdf

from finstage.config import require
from finstage.corpus.manifest import Item, ManifestError, check_hosts, expand, load_manifest

STORE_MARKER = ".finstage-store"
RETRY_STATUS = {408, 429, 500, 502, 503, 504}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class FetchConfig:
    """``fetch:`` in params.yaml."""

    allowed_hosts: list[str] = field(default_factory=list)  # http(s) hosts fetch may contact
    user_agent: str = "finstage-fetch/0.1 (research crawler; contact: set fetch.user_agent)"
    timeout_s: float = 30.0
    retries: int = 3  # extra attempts after a 5xx/429/timeout/connection error
    backoff_s: float = 2.0  # first retry waits this, then doubles
    max_backoff_s: float = 120.0  # cap on one wait, Retry-After included
    delay_s: float = 2.0  # minimum gap between two requests to one host
    max_bytes: int = 200_000_000  # larger files are quarantined (local) or abandoned (download)
    max_pages: int = 2000
    allow_owner_password: bool = False  # accept PDFs that open without a password but carry one
    auth_env: dict[str, str] = field(
        default_factory=dict
    )  # host -> env var with an Authorization value

    def check(self, where: str) -> None:
        for i, host in enumerate(self.allowed_hosts):
            require(
                bool(host) and "/" not in host and ":" not in host and host == host.strip().lower(),
                f"{where}.allowed_hosts[{i}]",
                "must be a lower-case host name such as www.fsa.go.jp "
                f"(no scheme, port or path), got {host!r}",
            )
        require(
            bool(self.user_agent.strip()),
            f"{where}.user_agent",
            "must not be empty: say who crawls and how to reach you",
        )
        require(self.timeout_s > 0, f"{where}.timeout_s", f"must be > 0, got {self.timeout_s}")
        require(
            0 <= self.retries <= 20,
            f"{where}.retries",
            f"must be between 0 and 20, got {self.retries}",
        )
        require(self.backoff_s >= 0, f"{where}.backoff_s", f"must be >= 0, got {self.backoff_s}")
        require(
            self.max_backoff_s >= self.backoff_s,
            f"{where}.max_backoff_s",
            f"must be >= {where}.backoff_s ({self.backoff_s}), got {self.max_backoff_s}",
        )
        require(self.delay_s >= 0, f"{where}.delay_s", f"must be >= 0, got {self.delay_s}")
        require(
            self.max_bytes >= 1024,
            f"{where}.max_bytes",
            f"must be at least 1024, got {self.max_bytes}",
        )
        require(
            self.max_pages >= 1, f"{where}.max_pages", f"must be at least 1, got {self.max_pages}"
        )
        for host, var in self.auth_env.items():
            require(
                host in self.allowed_hosts,
                f"{where}.auth_env.{host}",
                f"names a host that is not in {where}.allowed_hosts",
            )
            require(
                bool(_ENV_NAME.match(var)),
                f"{where}.auth_env.{host}",
                "must be the NAME of an environment variable "
                f"(the secret stays out of params), got {var!r}",
            )


class FetchError(RuntimeError):
    """The run cannot proceed (a misconfiguration, not a bad file); the message says the fix."""


class FetchFailure(Exception):
    """One source could not be fetched; recorded in the index, never fatal."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------------------------
# validation


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


# ---------------------------------------------------------------------------------------------
# HTTP


class _RedirectGuard(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to allowed hosts, and never carry credentials to another host."""

    def __init__(self, allowed_hosts: list[str]):
        self.allowed = {h.lower() for h in allowed_hosts}

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102
        host = (urlsplit(newurl).hostname or "").lower()
        if host not in self.allowed:
            raise FetchFailure(
                f"{req.full_url} redirects to {newurl}, "
                f"whose host {host!r} is not in fetch.allowed_hosts"
            )
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and host != (urlsplit(req.full_url).hostname or "").lower():
            new.headers.pop("Authorization", None)
            new.unredirected_hdrs.pop("Authorization", None)
        return new


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class HttpClient:
    """Polite GETs: robots.txt, per-host delay, retries with backoff, byte limit, allowed hosts."""

    def __init__(
        self,
        cfg: FetchConfig,
        auth: dict[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.cfg = cfg
        self.auth = auth or {}
        self.sleep, self.clock = sleep, clock
        self.opener = urllib.request.build_opener(_RedirectGuard(cfg.allowed_hosts))
        self.robots: dict[str, urllib.robotparser.RobotFileParser] = {}
        self.robots_text: dict[str, str | None] = {}
        self.robots_error: dict[str, str] = {}
        self.last_request: dict[str, float] = {}
        self.requests = 0

    def get(self, url: str) -> tuple[bytes, dict[str, Any]]:
        """The body of ``url`` and its HTTP metadata; raises `FetchFailure`."""
        parts = urlsplit(url)
        netloc = parts.netloc.lower()
        robots = self._robots(parts.scheme, netloc)
        if netloc in self.robots_error:
            raise FetchFailure(
                f"robots.txt of {netloc} could not be read ({self.robots_error[netloc]}); "
                f"not fetching {url}"
            )
        if not robots.can_fetch(self.cfg.user_agent, url):
            raise FetchFailure(f"robots.txt of {netloc} disallows {url} for this user agent")
        return self._request(url, self.cfg.max_bytes, self._delay(netloc))

    def _delay(self, netloc: str) -> float:
        delay = self.cfg.delay_s
        robots = self.robots.get(netloc)
        if robots is not None:
            crawl = robots.crawl_delay(self.cfg.user_agent)
            rate = robots.request_rate(self.cfg.user_agent)
            if crawl:
                delay = max(delay, float(crawl))
            if rate and rate.requests:
                delay = max(delay, rate.seconds / rate.requests)
        return delay

    def _robots(self, scheme: str, netloc: str) -> urllib.robotparser.RobotFileParser:
        if netloc in self.robots:
            return self.robots[netloc]
        parser = urllib.robotparser.RobotFileParser()
        text = None
        try:
            body, _ = self._request(f"{scheme}://{netloc}/robots.txt", 1_000_000, self.cfg.delay_s)
            text = body.decode("utf-8", errors="replace")
            parser.parse(text.splitlines())
        except FetchFailure as err:
            if err.code in (401, 403):
                parser.disallow_all = True  # the convention urllib.robotparser follows
            elif err.code is not None and 400 <= err.code < 500:
                parser.allow_all = True  # no robots.txt: everything is allowed
            else:
                self.robots_error[netloc] = str(err)
                parser.disallow_all = True
        self.robots[netloc] = parser
        self.robots_text[netloc] = text
        return parser

    def _request(self, url: str, limit: int, delay: float) -> tuple[bytes, dict[str, Any]]:
        netloc = urlsplit(url).netloc.lower()
        host = (urlsplit(url).hostname or "").lower()
        headers = {"User-Agent": self.cfg.user_agent}
        if host in self.auth:
            headers["Authorization"] = self.auth[host]
        attempts = self.cfg.retries + 1
        for attempt in range(attempts):
            last = self.last_request.get(netloc)
            if last is not None and self.clock() - last < delay:
                self.sleep(delay - (self.clock() - last))
            self.last_request[netloc] = self.clock()
            self.requests += 1
            wait: float | None = None
            try:
                request = urllib.request.Request(url, headers=headers)
                with self.opener.open(request, timeout=self.cfg.timeout_s) as response:
                    length = response.headers.get("Content-Length")
                    if length and length.isdigit() and int(length) > limit:
                        raise FetchFailure(
                            f"{url} is {length} bytes, over the limit of {limit} (fetch.max_bytes)"
                        )
                    chunks, size = [], 0
                    while chunk := response.read(1 << 16):
                        size += len(chunk)
                        if size > limit:
                            raise FetchFailure(
                                f"{url} is over the limit of {limit} bytes (fetch.max_bytes)"
                            )
                        chunks.append(chunk)
                    meta = {
                        "final_url": response.geturl(),
                        "http_status": response.status,
                        "content_type": response.headers.get("Content-Type"),
                        "etag": response.headers.get("ETag"),
                        "last_modified": response.headers.get("Last-Modified"),
                    }
                    return b"".join(chunks), meta
            except FetchFailure:
                raise
            except urllib.error.HTTPError as err:
                err.close()
                if err.code not in RETRY_STATUS or attempt == attempts - 1:
                    raise FetchFailure(
                        f"HTTP {err.code} for {url} after {attempt + 1} attempt(s)", err.code
                    ) from None
                wait = _retry_after(err.headers.get("Retry-After") if err.headers else None)
                failure = f"HTTP {err.code}"
            except (
                urllib.error.URLError,
                TimeoutError,
                ConnectionError,
                http.client.HTTPException,
                OSError,
            ) as err:
                reason = getattr(err, "reason", err)
                if attempt == attempts - 1:
                    raise FetchFailure(
                        f"{url} failed after {attempt + 1} attempt(s): {reason}"
                    ) from None
                failure = str(reason)
            backoff = self.cfg.backoff_s * (2**attempt)
            pause = min(self.cfg.max_backoff_s, max(backoff, wait or 0.0))
            print(
                f"fetch: {failure} for {url}; "
                f"retry {attempt + 1}/{self.cfg.retries} in {pause:.1f}s"
            )
            self.sleep(pause)
        raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------
# store


def _prepare_store(store: Path) -> None:
    """Start from an empty store; refuse to wipe a folder that is not a store."""
    if store.exists() and any(store.iterdir()):
        if not (store / STORE_MARKER).exists():
            raise FetchError(
                f"{store} is not empty and is not a finstage store (no {STORE_MARKER}); "
                f"refusing to overwrite it: pass a new or empty folder as --out"
            )
        shutil.rmtree(store)
    store.mkdir(parents=True, exist_ok=True)
    (store / STORE_MARKER).write_text(
        "content-addressed PDF store written by finstage.corpus.fetch\n"
    )


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


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


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(
    manifest: Path,
    store: Path,
    cfg: FetchConfig,
    base_dir: Path | None = None,
    progress: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Fetch every source of ``manifest`` into ``store``; returns the report (also written)."""
    from tqdm import tqdm

    manifest, store = Path(manifest), Path(store)
    sources = load_manifest(manifest)
    check_hosts(sources, cfg.allowed_hosts, str(manifest))
    items = expand(sources, base_dir, str(manifest))
    client = HttpClient(cfg, _auth_headers(cfg, {s.host for s in sources if s.host}), sleep=sleep)
    _prepare_store(store)

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
            rows.append(_row(None, "failed", str(err), None, None, None, info))
            continue
        if sha in by_sha:
            by_sha[sha]["sources"].append(info)
            duplicates += 1
            continue
        if data is None:  # a local file over max_bytes: quarantined without reading it in
            reason, pages = (
                f"too large: {size} bytes exceeds fetch.max_bytes ({cfg.max_bytes})",
                None,
            )
        else:
            reason, pages = validate_pdf(data, cfg)
        rel = f"objects/{sha[:2]}/{sha}.pdf" if reason is None else f"quarantine/{sha}.pdf"
        if data is None:
            (store / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(item.path, store / rel)
        else:
            _write_atomic(store / rel, data)
        row = _row(sha, "ok" if reason is None else "quarantined", reason, size, pages, rel, info)
        by_sha[sha] = row
        rows.append(row)

    for netloc, text in sorted(client.robots_text.items()):
        if text is not None:
            _write_atomic(
                store / "robots" / f"{netloc.replace(':', '_')}.txt", text.encode("utf-8")
            )
    with (store / "index.jsonl.tmp").open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    (store / "index.jsonl.tmp").replace(store / "index.jsonl")

    status = Counter(row["status"] for row in rows)
    report = {
        "sources": len(sources),
        "files": len(items),
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
        "http_requests": client.requests,
    }
    (store / "fetch_report.json").write_text(
        json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return report


def _read(
    item: Item, client: HttpClient, cfg: FetchConfig, info: dict[str, Any]
) -> tuple[str, bytes | None, int]:
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


def _row(sha, status, reason, size, pages, rel, info) -> dict[str, Any]:
    return {
        "sha256": sha,
        "status": status,
        "reason": reason,
        "bytes": size,
        "pages": pages,
        "path": rel,
        "source": info["source"],
        "license": info["license"],
        "org": info["org"],
        "sources": [info],
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


def read_index(store: Path, status: str | None = "ok") -> list[dict[str, Any]]:
    """Rows of ``<store>/index.jsonl`` (only those with ``status``; all when None), in order."""
    path = Path(store) / "index.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run `dvc repro fetch` first")
    with path.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [r for r in rows if status is None or r["status"] == status]


__all__ = [
    "FetchConfig",
    "FetchError",
    "FetchFailure",
    "HttpClient",
    "ManifestError",
    "fetch",
    "format_report",
    "read_index",
    "validate_pdf",
]
