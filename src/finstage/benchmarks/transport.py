"""Where a benchmark's raw data comes from: a local path, a Hugging Face dataset or a URL.

The evaluation protocol must not depend on the route: the stand-ins the ``benchmarks`` stage
writes, the real files copied locally, a hub dataset and the upstream file fetched by URL all
end in the same raw rows, which each benchmark then reads in its own schema. A URL, or a local
file, may be pinned by sha256, so a silently changed upstream file fails the run instead of
changing the numbers.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finstage.config import require

_SHA256 = re.compile(r"[0-9a-f]{64}")

Row = tuple[str, dict[str, Any]]  # (where it came from, for errors; the raw row)


class SourceError(ValueError):
    """A benchmark source that cannot be read; the message names the file or field and the fix."""


@dataclass
class SourceSpec:
    """Where one benchmark's raw data lives: exactly one of a local path, a hub id or a URL."""

    path: str | None = None
    hub: str | None = None
    config: str | None = None
    split: str = "test"
    revision: str | None = None
    url: str | None = None
    sha256: str | None = None

    def check(self, where: str) -> None:
        given = [k for k in ("path", "hub", "url") if getattr(self, k)]
        require(
            len(given) == 1,
            where,
            f"must set exactly one of path, hub or url, got {given or 'none'}",
        )
        require(bool(self.split), f"{where}.split", "must be a non-empty split name")
        require(
            self.revision is None or bool(self.hub),
            f"{where}.revision",
            "pins a hub dataset; set it only together with hub",
        )
        require(
            self.url is None or self.url.startswith(("http://", "https://")),
            f"{where}.url",
            f"must be an http(s) URL, got {self.url!r}",
        )
        require(
            self.sha256 is None or (not self.hub and bool(_SHA256.fullmatch(self.sha256))),
            f"{where}.sha256",
            "must be 64 lowercase hex digits and pins a url or a file path, not a hub dataset",
        )


@dataclass(frozen=True)
class RawLayout:
    """How one benchmark's raw files look, so every route can hand them to the same reader."""

    read: Callable[[Path], list[Row]]  # one raw file (or, without `folder_files`, a folder too)
    # file names tried, in order, when a path is a folder; None when `read` takes folders itself
    folder_files: Callable[[SourceSpec], list[str]] | None
    hub_config: str | None = None  # the dataset config a hub spec without `config` loads


def load_rows(name: str, spec: SourceSpec, layout: RawLayout) -> list[Row]:
    """Raw rows of benchmark `name` from wherever `spec` points."""
    spec.check(f"sources.{name}")
    if spec.hub:
        return _hub_rows(spec, layout)
    if spec.url:
        return _url_rows(name, spec, layout)
    path = Path(spec.path)  # type: ignore[arg-type]
    if spec.sha256:
        if not path.is_file():
            raise SourceError(f"{path}: sha256 pins a single file, but this is not a file")
        _verify(path.read_bytes(), spec.sha256, str(path))
    return _path_rows(name, path, spec, layout)


def _hub_rows(spec: SourceSpec, layout: RawLayout) -> list[Row]:
    import datasets

    config = spec.config or layout.hub_config
    kwargs: dict[str, Any] = {"split": spec.split}
    if spec.revision:
        kwargs["revision"] = spec.revision
    data = datasets.load_dataset(spec.hub, config, **kwargs)
    where = f"{spec.hub} ({config or 'default'}/{spec.split})"
    return [(f"{where} row {i}", dict(row)) for i, row in enumerate(data)]


def _url_rows(name: str, spec: SourceSpec, layout: RawLayout) -> list[Row]:
    url = spec.url or ""
    with urllib.request.urlopen(url, timeout=120) as response:  # noqa: S310 (http(s) checked)
        payload = response.read()
    if spec.sha256:
        _verify(payload, spec.sha256, url)
    else:  # the first download tells the user the pin; a later upstream change then fails loudly
        warnings.warn(
            f"{url} is not pinned: set evaluate.sources.{name}.sha256 to "
            f"{hashlib.sha256(payload).hexdigest()} so a changed upstream file fails the run",
            stacklevel=2,
        )
    file_name = Path(urllib.parse.urlparse(url).path).name or "download"
    with tempfile.TemporaryDirectory(prefix="finstage-source-") as tmp:
        path = Path(tmp) / file_name
        path.write_bytes(payload)
        return _path_rows(name, path, spec, layout)


def _verify(payload: bytes, expected: str, where: str) -> None:
    actual = hashlib.sha256(payload).hexdigest()
    if actual != expected:
        raise SourceError(
            f"{where}: sha256 {actual} does not match the pinned {expected}; the file changed "
            "upstream or the pin is wrong: check the file, then update sha256"
        )


def _path_rows(name: str, path: Path, spec: SourceSpec, layout: RawLayout) -> list[Row]:
    if not path.exists():
        raise SourceError(f"{path}: not found; point sources.{name}.path at the raw data")
    if path.is_dir() and layout.folder_files is not None:
        path = _in_folder(path, layout.folder_files(spec))
    return layout.read(path)


def _in_folder(folder: Path, names: list[str]) -> Path:
    """The raw file inside a folder, laid out as upstream (or as the benchmarks stage writes)."""
    for file_name in names:
        if (folder / file_name).is_file():
            return folder / file_name
    raise SourceError(
        f"{folder}: a folder without {' or '.join(names)}; point path at the raw file itself"
    )
