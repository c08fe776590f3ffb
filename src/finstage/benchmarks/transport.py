"""Where a benchmark's raw data comes from: a local path, a Hugging Face dataset or a URL.

The evaluation protocol must not depend on the route: the stand-ins the ``benchmarks`` stage
writes, the real files copied locally, a hub dataset and the upstream file fetched by URL all
end in the same raw rows, which each benchmark then reads in its own schema.

A URL source must be pinned by sha256. It is never fetched here: the ``sources`` stage
(`finstage.benchmarks.download`) downloads it once into ``DOWNLOADS/<name>/<file>``, a DVC
output that ``decontam`` and every ``evaluate`` depend on, and reading a URL source reads that
copy, checked against the pin. Both stages therefore see the same bytes, and a new pin reruns
them. A local file may be pinned too. A hub dataset is pinned by ``revision`` and never runs a
loading script.
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finstage.config import require

_SHA256 = re.compile(r"[0-9a-f]{64}")
# Where the `sources` stage puts each URL source (`<name>/<file name of the URL>`), relative to
# the repository root like every other path in params; dvc.yaml's `sources` stage writes it.
DOWNLOADS = Path("data/bench_sources")

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
        require(
            not self.url or self.sha256 is not None,
            f"{where}.sha256",
            f"is required for a url source, so a changed upstream file fails the run instead of "
            f"changing the numbers: check the file, then pin it with the output of "
            f"`curl -sL {self.url} | sha256sum`",
        )


@dataclass(frozen=True)
class RawLayout:
    """How one benchmark's raw files look, so every route can hand them to the same reader."""

    read: Callable[[Path], list[Row]]  # one raw file (or, without `folder_files`, a folder too)
    # file names tried, in order, when a path is a folder; None when `read` takes folders itself
    folder_files: Callable[[SourceSpec], list[str]] | None
    hub_config: str | None = None  # the dataset config a hub spec without `config` loads


def load_rows(name: str, spec: SourceSpec, layout: RawLayout) -> list[Row]:
    """Raw rows of benchmark `name` from wherever `spec` points (a URL: its downloaded copy)."""
    spec.check(f"sources.{name}")
    if spec.hub:
        return _hub_rows(spec, layout)
    if spec.url:
        path = downloaded(name, spec.url)
        if not path.is_file():
            raise SourceError(
                f"{spec.url}: not downloaded ({path} is missing); the `sources` stage downloads "
                "every url source: run `dvc repro sources`"
            )
    else:
        path = Path(spec.path)  # type: ignore[arg-type]
    if spec.sha256:
        if not path.is_file():
            raise SourceError(f"{path}: sha256 pins a single file, but this is not a file")
        verify(path, spec.sha256, spec.url or str(path))
    return _path_rows(name, path, spec, layout)


def url_file_name(url: str) -> str:
    """The file name a URL's download is stored under: the last segment of its path."""
    name = Path(urllib.parse.urlparse(url).path).name
    return name if name and name not in (".", "..") else "download"


def downloaded(name: str, url: str) -> Path:
    """Where the `sources` stage keeps benchmark `name`'s copy of `url`."""
    return DOWNLOADS / name / url_file_name(url)


def _hub_rows(spec: SourceSpec, layout: RawLayout) -> list[Row]:
    import datasets

    from finstage.benchmarks import limits

    local = Path(spec.hub or "")
    if local.is_dir() and any(local.glob("*.py")):
        raise SourceError(
            f"{spec.hub}: a dataset with a loading script ({next(local.glob('*.py')).name}); "
            "scripts are never run: point hub at a dataset of data files (parquet, JSON Lines)"
        )
    config = spec.config or layout.hub_config
    kwargs: dict[str, Any] = {"split": spec.split, "trust_remote_code": False}
    if spec.revision:
        kwargs["revision"] = spec.revision
    data = datasets.load_dataset(spec.hub, config, **kwargs)
    where = f"{spec.hub} ({config or 'default'}/{spec.split})"
    limits.check_rows(where, len(data))
    return [(f"{where} row {i}", dict(row)) for i, row in enumerate(data)]


def sha256_of(path: Path) -> str:
    """The file's sha256, read in blocks: a large file is never held whole."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, expected: str, where: str) -> None:
    """Fail unless the file at `path` has the pinned sha256."""
    mismatch(sha256_of(path), expected, where)


def mismatch(actual: str, expected: str, where: str) -> None:
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
