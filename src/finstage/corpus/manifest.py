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
      - urls: data/fsa-reports.txt # a plain list: one http(s) URL a line, `#` starts a comment
      - seed: https://www.fsa.go.jp/news/index.html  # a page the crawler starts from
        allow: ['^https://www[.]fsa[.]go[.]jp/news/']  # optional: regexes a link must match
        deny: ['/edinet/', '/shiken/']               # optional: regexes no link may match
        depth: 2                # optional (default fetch.depth): links followed from the seed

Each entry has exactly one of ``path``, ``url``, ``urls`` or ``seed``; the other keys are
optional and no others are allowed (``allow``/``deny``/``depth`` only with ``seed``,
``recursive`` only with a local ``path``/``url``). Relative paths (and ``urls`` files) are
resolved against the directory fetch runs in (the repository root under ``dvc repro``) and
recorded in the index exactly as written (a directory's files as ``<path>/<name>``), so the
index does not depend on where the repository is checked out.

A ``seed`` is crawled: every link on it that passes ``allow`` (any one of them, if given) and no
``deny`` is followed, on hosts in ``fetch.allowed_hosts`` only, up to ``depth`` links away; a
link whose path ends in ``.pdf`` is downloaded as a source, any other is read as a page to find
more links. A ``urls`` file is read when the manifest is checked, so that its hosts are checked
before anything runs. Both are fetched by `finstage.corpus.crawl`, which describes politeness,
robots.txt, resuming and the cache.

``presets/manifests/agencies.yaml`` is the paper-scale manifest: the finance sub-sites of the
Cabinet Office, the FSA and the MOF, with deny patterns that keep out the pages the evaluation
sets come from; the ``paper`` preset lists their hosts in ``fetch.allowed_hosts`` (README,
real-scale section). It is not part of the default pipeline.

A directory is listed without following links: every ``*.pdf`` name in it becomes an item, link,
FIFO or not, so that fetch can record what it refuses to read instead of silently skipping it,
and a linked subdirectory is never walked into (it could lead anywhere on the machine). The
directory the entry names may itself be a link; that choice is the manifest author's.

Anything wrong with the manifest itself — unknown keys, a missing path or list file, a URL
scheme other than file/http/https, a ``seed`` that is not http(s), a regex that does not
compile, an http(s) URL with userinfo, a non-ASCII or percent-encoded host, or a host outside
``fetch.allowed_hosts`` — raises `ManifestError` naming the manifest file and the entry before
anything is fetched. Problems with the *files* (a corrupt PDF, an HTTP 500) never raise: fetch
records and counts them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import yaml

VERSION = 1
KIND_KEYS = ("path", "url", "urls", "seed")
ENTRY_KEYS = {*KIND_KEYS, "recursive", "license", "org", "allow", "deny", "depth"}
SEED_KEYS = {"allow", "deny", "depth"}
MAX_DEPTH = 10
DEFAULT_KEYS = {"license", "org"}


class ManifestError(ValueError):
    """The manifest is malformed; the message names the file, the entry and the fix."""


@dataclass(frozen=True)
class Source:
    """One manifest entry."""

    entry: int  # position in `sources`
    kind: str  # "path" | "file_url" | "http" | "seed" | "list" (a `urls:` file, see expand_lists)
    location: str  # the path or URL as written
    license: str | None = None
    org: str | None = None
    recursive: bool = False
    allow: tuple[str, ...] = ()  # seed only: regexes, any of which a followed link must match
    deny: tuple[str, ...] = ()  # seed only: regexes no followed link may match
    depth: int | None = None  # seed only: links followed from the seed; None: fetch.depth

    @property
    def host(self) -> str | None:
        if self.kind not in ("http", "seed"):
            return None
        return (urlsplit(self.location).hostname or "").lower()


@dataclass(frozen=True)
class Item:
    """One concrete file to fetch: a local path, or an http(s) URL with its crawl row, and the
    entry it came from."""

    source: Source
    ref: str  # what the index records as `source`
    path: Path | None = None
    url: str | None = None
    root: Path | None = None  # a local file must lie inside this (resolved) folder
    download: dict[str, Any] | None = None  # an http(s) file: its row from the crawl


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
    kinds = [key for key in KIND_KEYS if key in entry]
    if len(kinds) != 1:
        raise ManifestError(
            f"{where}: give exactly one of 'path', 'url', 'urls' or 'seed', got {sorted(entry)}"
        )
    for key in (*KIND_KEYS, "license", "org"):
        if key in entry and not (isinstance(entry[key], str) and entry[key].strip()):
            raise ManifestError(f"{where}.{key} must be a non-empty string, got {entry[key]!r}")
    recursive = entry.get("recursive", False)
    if not isinstance(recursive, bool):
        raise ManifestError(f"{where}.recursive must be true or false, got {recursive!r}")
    if kinds[0] != "seed" and SEED_KEYS & set(entry):
        raise ManifestError(
            f"{where}: {sorted(SEED_KEYS & set(entry))} apply to 'seed' entries only"
        )
    license_, org = (
        entry.get("license", defaults.get("license")),
        entry.get("org", defaults.get("org")),
    )
    if "path" in entry:
        return Source(i, "path", entry["path"], license_, org, recursive)
    if recursive and kinds[0] in ("urls", "seed"):
        raise ManifestError(f"{where}: 'recursive' applies to local directories only")
    if "urls" in entry:
        return Source(i, "list", entry["urls"], license_, org)
    if "seed" in entry:
        _check_http_url(entry["seed"], f"{where}.seed", recursive)
        allow, deny = _patterns(entry, "allow", where), _patterns(entry, "deny", where)
        depth = entry.get("depth")
        if depth is not None and (
            isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= MAX_DEPTH
        ):
            raise ManifestError(f"{where}.depth must be an integer 0..{MAX_DEPTH}, got {depth!r}")
        return Source(i, "seed", entry["seed"], license_, org, False, allow, deny, depth)
    url = entry["url"]
    if urlsplit(url).scheme == "file":
        return Source(i, "file_url", url, license_, org, recursive)
    _check_http_url(url, f"{where}.url", recursive)
    return Source(i, "http", url, license_, org)


def _check_http_url(url: str, where: str, recursive: bool = False) -> None:
    """An http(s) URL fit to request (the host allowlist is `check_hosts`'s)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as err:
        raise ManifestError(f"{where} {url!r} is not a valid URL: {err}") from None
    if parts.scheme not in ("http", "https"):
        what = "file, http or https" if where.endswith(".url") else "http or https"
        raise ManifestError(f"{where} {url!r}: scheme must be {what}")
    if not parts.hostname:
        raise ManifestError(f"{where} {url!r} has no host")
    if "@" in parts.netloc:
        raise ManifestError(
            f"{where} {url!r} carries userinfo; credentials never go in URLs "
            f"(use fetch.auth_env for an Authorization header)"
        )
    if not parts.netloc.isascii() or "%" in parts.netloc or "\\" in url:
        raise ManifestError(
            f"{where} {url!r}: write the host in plain ASCII (punycode for an IDN), "
            f"without percent-encoding or backslashes"
        )
    if recursive:
        raise ManifestError(
            f"{where}: 'recursive' applies to local directories, not to http(s) URLs"
        )


def _patterns(entry: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    """A seed's ``allow``/``deny`` list, every regex compiled once here so a typo fails now."""
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ManifestError(f"{where}.{key} must be a list of regular expressions, got {value!r}")
    for pattern in value:
        try:
            re.compile(pattern)
        except re.error as err:
            raise ManifestError(
                f"{where}.{key}: {pattern!r} is not a valid regex ({err})"
            ) from None
    return tuple(value)


def expand_lists(
    sources: Iterable[Source], base_dir: Path | None = None, name: str = "manifest"
) -> list[Source]:
    """``sources`` with each ``urls:`` entry replaced by one ``url`` source per listed URL (same
    entry number, licence and org), so that every host can be checked before anything runs."""
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    out: list[Source] = []
    for source in sources:
        if source.kind != "list":
            out.append(source)
            continue
        where = f"{name}: sources[{source.entry}].urls"
        path = Path(source.location)
        path = path if path.is_absolute() else base / path
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ManifestError(
                f"{where}: cannot read the URL list {source.location!r} ({err}); fix the path"
            ) from None
        for n, line in enumerate(text.splitlines(), 1):
            url = line.split("#", 1)[0].strip()
            if url:
                _check_http_url(url, f"{where} ({source.location} line {n})")
                out.append(Source(source.entry, "http", url, source.license, source.org))
    return out


def check_hosts(
    sources: Iterable[Source], allowed_hosts: list[str], name: str = "manifest"
) -> None:
    """Every http(s) source and seed must be on a host listed in ``fetch.allowed_hosts``
    (``urls:`` lists are checked once `expand_lists` has read them)."""
    allowed = {h.lower() for h in allowed_hosts}
    for source in sources:
        if source.host is not None and source.host not in allowed:
            key = "seed" if source.kind == "seed" else "url"
            raise ManifestError(
                f"{name}: sources[{source.entry}].{key} {source.location} "
                f"is on host {source.host!r}, "
                f"which is not in fetch.allowed_hosts {sorted(allowed)}; add the host to "
                f"fetch.allowed_hosts in params.yaml if fetching from it is intended"
            )


def expand(
    sources: Iterable[Source], base_dir: Path | None = None, name: str = "manifest"
) -> list[Item]:
    """The local files of every entry, in manifest order (a directory's files sorted by name);
    http(s) URLs and seeds are the crawl's to list."""
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    items: list[Item] = []
    for source in sources:
        where = f"{name}: sources[{source.entry}]"
        if source.kind in ("http", "seed"):
            continue  # the crawl lists these (finstage.corpus.crawl)
        if source.kind == "list":
            raise ManifestError(f"{where}: URL lists are read by expand_lists, before expand")
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
