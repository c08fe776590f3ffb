"""The crawl's own cache: each body once by sha256, and per URL the validators that let a rerun
ask "changed since?" instead of downloading again.

Bodies are not kept in Scrapy's HTTPCACHE: at paper scale (tens of thousands of reports, 100+
GB) a second copy would double the disk, and HTTPCACHE keys by request, not by content, so one
PDF linked under two URLs would be kept twice. Every file is written to a temporary name and
renamed, so a crawl killed mid-write leaves either the old file or the new one, never half.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

VALIDATOR_KEYS = (
    "final_url",
    "status",
    "etag",
    "last_modified",
    "content_type",
    "retrieved_at",
    "sha256",
    "bytes",
)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` by renaming a finished temporary file over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class UrlCache:
    """``<root>/bodies/<sha[:2]>/<sha>`` and ``<root>/urls/<h[:2]>/<h>.json`` (h: sha256 of the
    URL), read and written by the crawl child only."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def body_path(self, sha256: str) -> Path:
        return self.root / "bodies" / sha256[:2] / sha256

    def _record_path(self, url: str) -> Path:
        h = hashlib.sha256(url.encode()).hexdigest()
        return self.root / "urls" / h[:2] / f"{h}.json"

    def record(self, url: str) -> dict[str, Any] | None:
        """What was last downloaded for ``url``, if its body is still in the cache."""
        path = self._record_path(url)
        if not path.is_file():
            return None
        record = json.loads(path.read_text(encoding="utf-8"))
        return record if self.body_path(record["sha256"]).is_file() else None

    def conditional_headers(self, url: str) -> dict[str, str]:
        """If-None-Match / If-Modified-Since for a URL with a cached body, else nothing."""
        record = self.record(url)
        if record is None:
            return {}
        headers = {}
        if record["etag"]:
            headers["If-None-Match"] = record["etag"]
        if record["last_modified"]:
            headers["If-Modified-Since"] = record["last_modified"]
        return headers

    def store(self, url: str, body: bytes, meta: dict[str, Any]) -> dict[str, Any]:
        """Keep a downloaded body and its validators. ``retrieved_at`` stays that of the first
        download of these very bytes, so a rerun that gets the same file records the same
        provenance."""
        sha = hashlib.sha256(body).hexdigest()
        if not self.body_path(sha).is_file():
            write_atomic(self.body_path(sha), body)
        previous = self.record(url)
        same = previous is not None and previous["sha256"] == sha
        record = {
            **{key: meta.get(key) for key in VALIDATOR_KEYS},
            "sha256": sha,
            "bytes": len(body),
            "retrieved_at": previous["retrieved_at"] if same else _now(),
        }
        write_atomic(self._record_path(url), json.dumps(record, sort_keys=True).encode())
        return record


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
