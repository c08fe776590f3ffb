"""What fetch remembers between runs, outside DVC's outputs, so a rerun redoes only what is new.

DVC deletes a stage's outputs before running it, so the store itself cannot carry anything from
one run to the next. At paper scale that would mean copying and re-validating tens of thousands
of files for a one-line manifest change. This cache (``fetch.cache_dir``, by default under the
git-ignored ``.finstage/``) keeps:

- ``objects/<sha[:2]>/<sha>.pdf``: one copy of each usable content; the store's object is a hard
  link to it (a copy where the filesystem cannot link), so an unchanged file is never copied again;
- ``local.json``: for each local file read, its identity (device, inode, size, modification and
  change times) and the sha256 it had, so an unchanged file is not even read;
- ``verdicts/<sha>-<limits>.json``: the `Inspection` of a content under the limits that decided
  it, so an unchanged file is not re-opened by MuPDF either.

Nothing here is trusted blindly: render re-hashes every object it reads. A content that was
quarantined is not kept (its verdict is); if a later limit change needs its bytes again, they are
read from the source.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from finstage.corpus.crawl.cache import write_atomic
from finstage.corpus.pdfcheck import Inspection, Limits

# bump when `inspect_pdf` would decide differently on the same bytes and limits
CHECK_VERSION = "1"


def file_identity(info: os.stat_result) -> list[int]:
    """What must stay equal for a local file to count as unchanged without reading it."""
    return [info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns]


class FetchCache:
    """The persistent side of fetch: content by hash, local file identities, verdicts."""

    def __init__(self, root: Path, limits: Limits) -> None:
        self.root = Path(root)
        key = json.dumps(
            [CHECK_VERSION, limits.max_bytes, limits.max_pages, limits.allow_owner_password]
        )
        self.limits_key = hashlib.sha256(key.encode()).hexdigest()[:16]
        self._local: dict[str, dict[str, Any]] = self._read_json(self.root / "local.json") or {}

    def object_path(self, sha256: str) -> Path:
        return self.root / "objects" / sha256[:2] / f"{sha256}.pdf"

    def known_local(self, real_path: str, info: os.stat_result) -> str | None:
        """The sha256 of an unchanged local file whose content is still cached, or None."""
        entry = self._local.get(real_path)
        if entry is None or entry["identity"] != file_identity(info):
            return None
        sha, verdict = entry["sha256"], self.verdict(entry["sha256"])
        refused = verdict is not None and verdict.status == "quarantined"
        return sha if refused or self.object_path(sha).is_file() else None

    def remember_local(self, real_path: str, info: os.stat_result, sha256: str) -> None:
        self._local[real_path] = {"identity": file_identity(info), "sha256": sha256}

    def put(self, sha256: str, data: bytes) -> Path:
        path = self.object_path(sha256)
        if not path.is_file():
            write_atomic(path, data)
        return path

    def drop(self, sha256: str) -> None:
        """Forget a content's bytes (a quarantined one is never kept); its verdict stays."""
        self.object_path(sha256).unlink(missing_ok=True)

    def verdict(self, sha256: str) -> Inspection | None:
        data = self._read_json(self._verdict_path(sha256))
        return Inspection(**data) if data else None

    def save_verdict(self, sha256: str, inspection: Inspection) -> None:
        text = json.dumps(dataclasses.asdict(inspection), ensure_ascii=False)
        write_atomic(self._verdict_path(sha256), text.encode("utf-8"))

    def save(self) -> None:
        """Write the local identities (after the run: an interrupted run only loses those)."""
        text = json.dumps(self._local, ensure_ascii=False, sort_keys=True)
        write_atomic(self.root / "local.json", text.encode("utf-8"))

    def _verdict_path(self, sha256: str) -> Path:
        return self.root / "verdicts" / f"{sha256}-{self.limits_key}.json"

    @staticmethod
    def _read_json(path: Path) -> Any:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # absent or torn: start over for that entry
            return None


def link_or_copy(source: Path, target: Path) -> None:
    """Put ``source``'s bytes at ``target``: a hard link when the filesystem allows, else a copy
    (through a temporary name, so an interrupted run never leaves half a file)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    tmp.replace(target)
