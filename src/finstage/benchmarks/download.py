"""Downloading URL benchmark sources: what the ``sources`` stage runs, and nothing else does.

A URL in params is data from elsewhere, so each download is held to `evaluate.downloads`: only
`allowed_hosts` are contacted, the first request and every redirect hop alike (redirects are
followed by hand, so no hop escapes the check); no read may wait longer than `read_timeout_s`
and the whole transfer must end within `total_timeout_s`, so a server dripping one byte at a
time cannot hold the run; the body is streamed to disk in small blocks and cut at `max_bytes`,
so memory stays bounded whatever the server sends; and the bytes must match the source's
required sha256 before the file takes its final name. The copies land in a DVC output that
`decontam` and `evaluate` read (`transport.load_rows`), so both see the same pinned bytes.

Not `finstage.corpus.crawl`: that is the fetch stage's Scrapy crawler (robots.txt, per-host
politeness, retries, a child process) and a stage package, which shared components must not import.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import shutil
import socket
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finstage.benchmarks.transport import (
    SourceError,
    SourceSpec,
    mismatch,
    url_file_name,
)
from finstage.config import require

MAX_REDIRECTS = 5
BLOCK = 1 << 16
USER_AGENT = "finstage-sources/0.1"
KEY = "evaluate.downloads"


@dataclass
class DownloadConfig:
    """`evaluate.downloads`: the only hosts URL sources may be fetched from, and the limits."""

    allowed_hosts: list[str]  # host names, e.g. raw.githubusercontent.com; redirects included
    max_bytes: int  # one file's body; a longer one fails the stage
    read_timeout_s: float  # the longest wait for any one read (connect included)
    total_timeout_s: float  # the whole download, redirects included

    def check(self, where: str) -> None:
        require(self.max_bytes >= 1, f"{where}.max_bytes", "must be >= 1")
        require(self.read_timeout_s > 0, f"{where}.read_timeout_s", "must be > 0 seconds")
        require(self.total_timeout_s > 0, f"{where}.total_timeout_s", "must be > 0 seconds")
        for i, host in enumerate(self.allowed_hosts):
            require(
                bool(host) and "/" not in host and ":" not in host and host == host.lower(),
                f"{where}.allowed_hosts[{i}]",
                f"must be a lowercase host name without scheme or port, got {host!r}",
            )


def check_hosts(specs: Mapping[str, SourceSpec], cfg: DownloadConfig) -> None:
    """Every URL source's host is allowed: checked for all before the first request."""
    for name, spec in specs.items():
        if spec.url:
            _allowed(spec.url, cfg, f"evaluate.sources.{name}: {spec.url}")


def download_sources(
    specs: Mapping[str, SourceSpec], cfg: DownloadConfig, out: Path
) -> dict[str, Any]:
    """Download every URL source into ``out/<name>/<file>``; write and return the manifest.

    `out` (a folder this wrote before, or none) is emptied first, so it holds exactly the
    current params' downloads (path and hub sources are not copied: with none of them URLs, it
    holds only an empty manifest).
    """
    for name, spec in specs.items():
        spec.check(f"evaluate.sources.{name}")
    check_hosts(specs, cfg)
    if out.exists() and any(out.iterdir()):
        if not (out / "manifest.json").is_file():  # never empty a folder this did not write
            raise SourceError(f"{out}: not empty and has no manifest.json; pass a downloads folder")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {}
    for name, spec in specs.items():
        if not spec.url:
            continue
        rel = f"{name}/{url_file_name(spec.url)}"
        size = download(spec.url, spec.sha256 or "", out / rel, cfg)
        manifest[name] = {"url": spec.url, "sha256": spec.sha256, "file": rel, "bytes": size}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def download(url: str, sha256: str, target: Path, cfg: DownloadConfig) -> int:
    """Stream `url` to `target` within `cfg`, checked against `sha256`; returns its size.

    Nothing is left at `target` (or beside it) when any check fails.
    """
    deadline = time.monotonic() + cfg.total_timeout_s
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        digest, size = _fetch(url, partial, cfg, deadline)
        mismatch(digest, sha256, url)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
        if not any(target.parent.iterdir()):
            target.parent.rmdir()
    return size


def _allowed(url: str, cfg: DownloadConfig, where: str) -> urllib.parse.SplitResult:
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https"):
        raise SourceError(f"{where}: only http(s) URLs are downloaded")
    if host not in cfg.allowed_hosts:
        raise SourceError(
            f"{where}: host {host!r} is not in {KEY}.allowed_hosts {cfg.allowed_hosts}; "
            "add it there if this source is meant to be fetched from it"
        )
    return parts


def _fetch(url: str, partial: Path, cfg: DownloadConfig, deadline: float) -> tuple[str, int]:
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        parts = _allowed(current, cfg, url)
        conn = _connection(parts, cfg, url, deadline)
        try:
            response, sock = _get(conn, parts, cfg, url, deadline)
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise SourceError(f"{url}: HTTP {response.status} without a Location")
                target = urllib.parse.urljoin(current, location)
                host = (urllib.parse.urlsplit(target).hostname or "").lower()
                if host not in cfg.allowed_hosts:
                    raise SourceError(
                        f"{url} redirects to {target}, whose host {host!r} is not in "
                        f"{KEY}.allowed_hosts {cfg.allowed_hosts}"
                    )
                current = target
                continue
            if response.status != 200:
                raise SourceError(f"{url}: HTTP {response.status} {response.reason}")
            return _stream(response, sock, partial, cfg, url, deadline)
        finally:
            conn.close()
    raise SourceError(f"{url}: more than {MAX_REDIRECTS} redirects")


def _remaining(url: str, cfg: DownloadConfig, deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise SourceError(
            f"{url}: not finished within the total deadline of {cfg.total_timeout_s} s "
            f"({KEY}.total_timeout_s)"
        )
    return left


def _connection(
    parts: urllib.parse.SplitResult, cfg: DownloadConfig, url: str, deadline: float
) -> http.client.HTTPConnection:
    timeout = min(cfg.read_timeout_s, _remaining(url, cfg, deadline))
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    return kind(parts.hostname or "", parts.port, timeout=timeout)  # https verifies certificates


def _get(
    conn: http.client.HTTPConnection,
    parts: urllib.parse.SplitResult,
    cfg: DownloadConfig,
    url: str,
    deadline: float,
) -> tuple[http.client.HTTPResponse, socket.socket | None]:
    """The response, and its socket: http.client drops `conn.sock` when the server will close
    the connection, but the response keeps reading from that socket, whose timeout we set."""
    path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
    try:
        conn.request("GET", path, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
        sock = conn.sock
        return conn.getresponse(), sock
    except TimeoutError as err:
        _remaining(url, cfg, deadline)
        raise SourceError(f"{url}: no response for {cfg.read_timeout_s} s ({err})") from err
    except (OSError, http.client.HTTPException) as err:
        raise SourceError(f"{url}: request failed ({err})") from err


def _stream(
    response: http.client.HTTPResponse,
    sock: socket.socket | None,
    partial: Path,
    cfg: DownloadConfig,
    url: str,
    deadline: float,
) -> tuple[str, int]:
    declared = response.getheader("Content-Length")
    if declared and declared.isdigit() and int(declared) > cfg.max_bytes:
        raise SourceError(
            f"{url}: declares {declared} bytes, over the limit of {cfg.max_bytes} bytes "
            f"({KEY}.max_bytes)"
        )
    digest, size = hashlib.sha256(), 0
    with partial.open("wb") as f:
        while True:
            wait = min(cfg.read_timeout_s, _remaining(url, cfg, deadline))
            if sock is not None:  # each read waits at most what is left of both deadlines
                sock.settimeout(wait)
            try:
                block = response.read1(BLOCK)
            except TimeoutError as err:
                _remaining(url, cfg, deadline)
                raise SourceError(
                    f"{url}: no data for {cfg.read_timeout_s} s ({KEY}.read_timeout_s)"
                ) from err
            except (OSError, http.client.HTTPException) as err:
                raise SourceError(f"{url}: download failed after {size} bytes ({err})") from err
            if not block:
                break
            size += len(block)
            if size > cfg.max_bytes:
                raise SourceError(
                    f"{url}: over the limit of {cfg.max_bytes} bytes ({KEY}.max_bytes)"
                )
            digest.update(block)
            f.write(block)
    if declared and declared.isdigit() and size != int(declared):
        raise SourceError(f"{url}: the body ended after {size} of its {declared} bytes")
    return digest.hexdigest(), size
