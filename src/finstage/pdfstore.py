"""The content-addressed PDF store: the folder the fetch stage writes and the render stage reads.

Both stages must agree on where a file lies and what an index row says, yet neither may import
the other, so the layout lives here:

- ``objects/<sha[:2]>/<sha>.pdf``: a usable PDF, stored once per content;
- ``quarantine/<sha>.json``: the *record* of a content that failed validation — its index row
  (reason, size, every source that gave it) — never the content itself: the store is a DVC
  output that gets pushed to remotes, and a refused file is by definition one nobody vetted;
- ``robots/<host>_<port>.txt``: each contacted origin's robots.txt, as read;
- ``index.jsonl``: one row per distinct content, per failed download or per skipped local entry,
  in manifest order;
- ``fetch_report.json``: the counts of the run that wrote the store;
- ``.finstage-store``: the marker that lets a rerun wipe the folder safely.

Index row, one per manifest file in manifest order: ``sha256`` (null when failed or skipped),
``status`` (the outcome: ``stored``, ``stored-repaired``, ``stored-capped`` — the three
`USABLE` ones render reads —, ``duplicate`` of content an earlier row holds, ``quarantined``,
``skipped``: a local entry fetch refused to read, a link, a FIFO, a pseudo-file; ``failed``: a
download that did not complete), ``reason`` (null when stored as is; it never quotes the file's
bytes), ``bytes``, ``pages`` (in the file), ``pages_kept`` (the first pages later stages use: fewer
than ``pages`` when capped), ``flags`` (what was noticed and never run: ``repaired``,
``attachments:N``, ``javascript``, ``forms:N``, ``owner-password``, ``junk-before-header``,
``unloadable-pages:N``), ``duplicate_of`` (the sha256 an earlier row stored, for a duplicate),
``path`` (relative to the store: the object, or the quarantine record; null when failed or
skipped), ``source``, ``license``, ``org`` and ``sources`` (for the row that first stored a content:
every source that gave these bytes, each with ``source``, ``entry``, ``license``, ``org`` and, for
downloads, the HTTP provenance: ``url``, ``final_url``, ``source_page`` and ``anchor`` (where a
crawl found the link; null for a listed URL), ``http_status``, ``content_type``, ``etag``,
``last_modified``, ``retrieved_at``).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Collection
from pathlib import Path
from typing import Any, Literal

STORE_MARKER = ".finstage-store"
INDEX = "index.jsonl"
REPORT = "fetch_report.json"
# the marker's text predates this module; it stays as it was so that stores keep their hash
_MARKER_TEXT = "content-addressed PDF store written by finstage.corpus.fetch\n"

Status = Literal[
    "stored", "stored-repaired", "stored-capped", "duplicate", "quarantined", "skipped", "failed"
]
USABLE: tuple[Status, ...] = ("stored", "stored-repaired", "stored-capped")


class StoreError(RuntimeError):
    """The folder cannot be used as a store; the message says the fix."""


def prepare(store: Path) -> None:
    """Start from an empty store; refuse to wipe a folder that is not a store."""
    if store.exists() and any(store.iterdir()):
        if not (store / STORE_MARKER).exists():
            raise StoreError(
                f"{store} is not empty and is not a finstage store (no {STORE_MARKER}); "
                f"refusing to overwrite it: pass a new or empty folder as --out"
            )
        shutil.rmtree(store)
    store.mkdir(parents=True, exist_ok=True)
    (store / STORE_MARKER).write_text(_MARKER_TEXT)


def relative_path(sha256: str, valid: bool) -> str:
    """Where a usable file with this content lies, or where the record of a refused one does,
    relative to the store."""
    return f"objects/{sha256[:2]}/{sha256}.pdf" if valid else f"quarantine/{sha256}.json"


def write_file(path: Path, data: bytes) -> None:
    """Write through a temporary name, so an interrupted run never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def write_quarantine(store: Path, rows: list[dict[str, Any]]) -> None:
    """The record of every quarantined content, at its row's ``path`` (after every source of it
    is known, so the record lists them all)."""
    for row in rows:
        if row["status"] == "quarantined":
            text = json.dumps(row, ensure_ascii=False, indent=2) + "\n"
            write_file(store / row["path"], text.encode("utf-8"))


def write_robots(store: Path, name: str, text: str) -> None:
    write_file(store / "robots" / f"{name.replace(':', '_')}.txt", text.encode("utf-8"))


def index_row(
    sha256: str | None,
    status: Status,
    reason: str | None,
    size: int | None,
    pages: int | None,
    path: str | None,
    source: dict[str, Any],
    pages_kept: int | None = None,
    flags: list[str] | None = None,
    duplicate_of: str | None = None,
) -> dict[str, Any]:
    """An index row for content first seen at ``source`` (later sources are appended)."""
    return {
        "sha256": sha256,
        "status": status,
        "reason": reason,
        "bytes": size,
        "pages": pages,
        "pages_kept": pages_kept,
        "flags": list(flags or []),
        "duplicate_of": duplicate_of,
        "path": path,
        "source": source["source"],
        "license": source["license"],
        "org": source["org"],
        "sources": [source],
    }


def write_index(store: Path, rows: list[dict[str, Any]]) -> None:
    tmp = store / f"{INDEX}.tmp"
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(store / INDEX)


def read_index(store: Path, statuses: Collection[Status] | None = USABLE) -> list[dict[str, Any]]:
    """Rows of the index whose status is in ``statuses`` (all when None), in order."""
    path = Path(store) / INDEX
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run `dvc repro fetch` first")
    with path.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [r for r in rows if statuses is None or r["status"] in statuses]


def write_report(store: Path, report: dict[str, Any]) -> None:
    (store / REPORT).write_text(
        json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
