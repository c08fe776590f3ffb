"""The source manifest: which PDFs the pipeline reads, from where, and under what licence.

The manifest is the one committed, reviewable list of inputs. Swapping the generated corpus for
real ministry PDFs means editing this file (and ``fetch.allowed_hosts``), not code.

Format (YAML; committed at ``data/sources.yaml``)::

    version: 1                     # required; the only version so far
    defaults:                      # optional; fills license/org of entries that lack them
      license: PDL1.0
      org: 金融庁
    sources:                       # required, non-empty; its order is the order of the index
      - path: data/corpus/pdfs     # a local file, or a directory: every *.pdf in it, by name
        recursive: false           # directories only: include subdirectories (default false)
        license: generated         # optional, free text: PDL1.0, 政府標準利用規約2.0, CC-BY-4.0 …
        org: 財務省                # optional: the publishing organisation
      - url: file:///srv/pdfs/fy2024/budget.pdf        # a local file or directory, absolute
      - url: https://www.fsa.go.jp/news/r6/sonota/x.pdf  # downloaded over HTTP(S); the host must
        license: PDL1.0                                  # be listed in fetch.allowed_hosts
        org: 金融庁

Each entry has exactly one of ``path`` or ``url``; the other keys are optional and no others are
allowed. Relative paths are resolved against the directory fetch runs in (the repository root
under ``dvc repro``) and recorded in the index exactly as written (a directory's files as
``<path>/<name>``), so the index does not depend on where the repository is checked out.

A directory is listed without following links: every ``*.pdf`` name in it becomes an item, link,
FIFO or not, so that fetch can record what it refuses to read instead of silently skipping it,
and a linked subdirectory is never walked into (it could lead anywhere on the machine). The
directory the entry names may itself be a link; that choice is the manifest author's.

Anything wrong with the manifest itself — unknown keys, a missing path, a URL scheme other than
file/http/https, an http(s) URL with userinfo, a non-ASCII or percent-encoded host, or a host
outside ``fetch.allowed_hosts`` — raises `ManifestError` naming the manifest file and the entry
before anything is fetched. Problems with the *files* (a corrupt PDF,
an HTTP 500) never raise: fetch records and counts them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import yaml

VERSION = 1
ENTRY_KEYS = {"path", "url", "recursive", "license", "org"}
DEFAULT_KEYS = {"license", "org"}


class ManifestError(ValueError):
    """The manifest is malformed; the message names the file, the entry and the fix."""


@dataclass(frozen=True)
class Source:
    """One manifest entry."""

    entry: int  # position in `sources`
    kind: str  # "path" | "file_url" | "http"
    location: str  # the path or URL as written
    license: str | None = None
    org: str | None = None
    recursive: bool = False

    @property
    def host(self) -> str | None:
        return (urlsplit(self.location).hostname or "").lower() if self.kind == "http" else None


@dataclass(frozen=True)
class Item:
    """One concrete file to fetch: a local path or an http(s) URL, and the entry it came from."""

    source: Source
    ref: str  # what the index records as `source`
    path: Path | None = None
    url: str | None = None
    root: Path | None = None  # a local file must lie inside this (resolved) folder


def load_manifest(path: Path) -> list[Source]:
    """Parse and check the manifest at ``path``; raises `ManifestError` on any problem."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found; create it (see finstage.corpus.manifest)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ManifestError(f"{path}: not valid YAML: {err}") from None
    return parse_manifest(data, str(path))


def parse_manifest(data: Any, name: str = "manifest") -> list[Source]:
    if not isinstance(data, dict):
        raise ManifestError(
            f"{name}: must be a mapping with 'version' and 'sources', got {type(data).__name__}"
        )
    unknown = sorted(set(data) - {"version", "defaults", "sources"})
    if unknown:
        raise ManifestError(
            f"{name}: unknown top-level key(s) {unknown}; allowed: version, defaults, sources"
        )
    if data.get("version") != VERSION:
        raise ManifestError(f"{name}: 'version' must be {VERSION}, got {data.get('version')!r}")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict) or set(defaults) - DEFAULT_KEYS:
        raise ManifestError(
            f"{name}: 'defaults' may only set {sorted(DEFAULT_KEYS)}, got {defaults!r}"
        )
    for key, value in defaults.items():
        if not isinstance(value, str):
            raise ManifestError(f"{name}: defaults.{key} must be a string, got {value!r}")
    entries = data.get("sources")
    if not isinstance(entries, list) or not entries:
        raise ManifestError(
            f"{name}: 'sources' must be a non-empty list of entries with 'path' or 'url'"
        )
    return [_parse_entry(entry, i, defaults, name) for i, entry in enumerate(entries)]


def _parse_entry(entry: Any, i: int, defaults: dict[str, str], name: str) -> Source:
    where = f"{name}: sources[{i}]"
    if not isinstance(entry, dict):
        raise ManifestError(f"{where}: must be a mapping with 'path' or 'url', got {entry!r}")
    unknown = sorted(set(entry) - ENTRY_KEYS)
    if unknown:
        raise ManifestError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(ENTRY_KEYS)}")
    if ("path" in entry) == ("url" in entry):
        raise ManifestError(f"{where}: give exactly one of 'path' or 'url', got {sorted(entry)}")
    for key in ("path", "url", "license", "org"):
        if key in entry and not (isinstance(entry[key], str) and entry[key].strip()):
            raise ManifestError(f"{where}.{key} must be a non-empty string, got {entry[key]!r}")
    recursive = entry.get("recursive", False)
    if not isinstance(recursive, bool):
        raise ManifestError(f"{where}.recursive must be true or false, got {recursive!r}")
    license_, org = (
        entry.get("license", defaults.get("license")),
        entry.get("org", defaults.get("org")),
    )
    if "path" in entry:
        return Source(i, "path", entry["path"], license_, org, recursive)
    url = entry["url"]
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as err:
        raise ManifestError(f"{where}.url {url!r} is not a valid URL: {err}") from None
    if parts.scheme == "file":
        return Source(i, "file_url", url, license_, org, recursive)
    if parts.scheme in ("http", "https"):
        if not parts.hostname:
            raise ManifestError(f"{where}.url {url!r} has no host")
        if "@" in parts.netloc:
            raise ManifestError(
                f"{where}.url {url!r} carries userinfo; credentials never go in URLs "
                f"(use fetch.auth_env for an Authorization header)"
            )
        if not parts.netloc.isascii() or "%" in parts.netloc or "\\" in url:
            raise ManifestError(
                f"{where}.url {url!r}: write the host in plain ASCII (punycode for an IDN), "
                f"without percent-encoding or backslashes"
            )
        if recursive:
            raise ManifestError(
                f"{where}: 'recursive' applies to local directories, not to http(s) URLs"
            )
        return Source(i, "http", url, license_, org)
    raise ManifestError(f"{where}.url {url!r}: scheme must be file, http or https")


def check_hosts(
    sources: Iterable[Source], allowed_hosts: list[str], name: str = "manifest"
) -> None:
    """Every http(s) source must be on a host listed in ``fetch.allowed_hosts``."""
    allowed = {h.lower() for h in allowed_hosts}
    for source in sources:
        if source.kind == "http" and source.host not in allowed:
            raise ManifestError(
                f"{name}: sources[{source.entry}].url {source.location} "
                f"is on host {source.host!r}, "
                f"which is not in fetch.allowed_hosts {sorted(allowed)}; add the host to "
                f"fetch.allowed_hosts in params.yaml if fetching from it is intended"
            )


def expand(
    sources: Iterable[Source], base_dir: Path | None = None, name: str = "manifest"
) -> list[Item]:
    """The concrete files of every entry, in manifest order (a directory's files sorted by name)."""
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    items: list[Item] = []
    for source in sources:
        where = f"{name}: sources[{source.entry}]"
        if source.kind == "http":
            items.append(Item(source, source.location, url=source.location))
            continue
        if source.kind == "file_url":
            parts = urlsplit(source.location)
            if parts.netloc not in ("", "localhost"):
                raise ManifestError(
                    f"{where}.url {source.location}: file:// URLs must be local (file:///abs/path)"
                )
            local = Path(url2pathname(parts.path))
        else:
            local = Path(source.location)
            local = local if local.is_absolute() else base / local
        if local.is_dir():
            root = Path(os.path.realpath(local))
            for rel in sorted(_pdf_names(local, source.recursive)):
                ref = f"{source.location.rstrip('/')}/{rel}"
                items.append(Item(source, ref, path=local / rel, root=root))
        elif os.path.lexists(local):  # a file, or a link or special file fetch will refuse
            root = Path(os.path.realpath(local.parent))
            items.append(Item(source, source.location, path=local, root=root))
        else:
            raise ManifestError(
                f"{where}: {source.location!r} does not exist (resolved to {local}); fix the path, "
                f"or run the stage that creates it first"
            )
    return items


def _pdf_names(folder: Path, recursive: bool, prefix: str = "") -> Iterator[str]:
    """Relative posix paths of every ``*.pdf`` entry that is not a real directory (links and
    special files included, for fetch to refuse by name), descending only into real
    subdirectories."""
    with os.scandir(folder) as entries:
        for entry in entries:
            rel = f"{prefix}{entry.name}"
            if entry.is_dir(follow_symlinks=False):
                if recursive:
                    yield from _pdf_names(Path(entry.path), recursive, f"{rel}/")
            elif Path(entry.name).suffix.lower() == ".pdf":
                yield rel
