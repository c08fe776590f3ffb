"""Fetch reruns do only what is new: DVC deletes the store before every run, so the cache outside
it must spare unchanged local files from being read, re-checked or copied, while the store it
rebuilds is byte-for-byte the one a cold run writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import finstage.corpus.fetch as fetch_module
from finstage.corpus.fetch import fetch
from finstage.corpus.fetchcache import FetchCache

from . import hostile_pdfs as hostile
from .test_fetch import fetch_config, write_manifest

REMEMBER_LOCAL, INSPECT_PDF = FetchCache.remember_local, fetch_module.inspect_pdf


class Killed(BaseException):
    """What the spy raises to stop a run the way a kill does: nothing after it runs."""


class Spy:
    """Counts the files fetch reads (hashes) and the contents it inspects with MuPDF."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_after: int | None = None) -> None:
        self.read: list[str] = []
        self.inspected = 0
        self.fail_after = fail_after
        remember, inspect = REMEMBER_LOCAL, INSPECT_PDF

        def remember_local(cache, real_path, info, sha):
            self.read.append(Path(real_path).name)
            return remember(cache, real_path, info, sha)

        def inspect_pdf(data, limits):
            if self.fail_after is not None and self.inspected >= self.fail_after:
                raise Killed  # the run is killed here
            self.inspected += 1
            return inspect(data, limits)

        monkeypatch.setattr(FetchCache, "remember_local", remember_local)
        monkeypatch.setattr(fetch_module, "inspect_pdf", inspect_pdf)


def store_bytes(store: Path) -> dict[str, bytes]:
    return {str(p.relative_to(store)): p.read_bytes() for p in store.rglob("*") if p.is_file()}


@pytest.fixture
def folder(tmp_path):
    pdfs = tmp_path / "pdfs"
    pdfs.mkdir()
    for i in range(5):
        (pdfs / f"doc-{i}.pdf").write_bytes(hostile.pdf(1, seed=i))
    (pdfs / "broken.pdf").write_bytes(hostile.html_as_pdf())
    manifest = write_manifest(tmp_path / "m.yaml", [{"path": "pdfs"}])
    return tmp_path, manifest, fetch_config(cache_dir=str(tmp_path / "cache"))


def run(base: Path, manifest: Path, cfg, name: str) -> Path:
    fetch(manifest, base / name, cfg, base_dir=base, progress=False)
    return base / name


def test_unchanged_files_are_not_read_checked_or_copied_again(folder, monkeypatch):
    base, manifest, cfg = folder
    first = Spy(monkeypatch)
    cold = run(base, manifest, cfg, "s1")
    assert len(first.read) == 6 and first.inspected == 6

    again = Spy(monkeypatch)
    warm = run(base, manifest, cfg, "s2")
    assert again.read == [] and again.inspected == 0
    assert store_bytes(warm) == store_bytes(cold)
    cache = FetchCache(base / "cache", cfg)
    for obj in (warm / "objects").rglob("*.pdf"):  # a link to the cached copy, not a new copy
        assert obj.stat().st_ino == cache.object_path(obj.stem).stat().st_ino
    # the quarantined content was not kept: only the five good ones are cached
    assert len(list((base / "cache" / "objects").rglob("*.pdf"))) == 5


def test_a_new_or_changed_file_is_the_only_one_read(folder, monkeypatch):
    base, manifest, cfg = folder
    run(base, manifest, cfg, "s1")
    (base / "pdfs" / "doc-9.pdf").write_bytes(hostile.pdf(1, seed=9))
    changed = base / "pdfs" / "doc-2.pdf"
    changed.write_bytes(hostile.pdf(2, seed=22))
    spy = Spy(monkeypatch)
    warm = run(base, manifest, cfg, "s2")
    assert sorted(spy.read) == ["doc-2.pdf", "doc-9.pdf"] and spy.inspected == 2

    cold_cfg = fetch_config(cache_dir=str(base / "cold-cache"))
    cold = run(base, manifest, cold_cfg, "s3")
    assert store_bytes(warm) == store_bytes(cold)  # the cache never shows in the output


def test_a_killed_run_resumes_without_redoing_finished_files(folder, monkeypatch):
    base, manifest, cfg = folder
    killed = Spy(monkeypatch, fail_after=3)
    with pytest.raises(Killed):
        run(base, manifest, cfg, "s1")
    assert killed.inspected == 3
    resumed = Spy(monkeypatch)
    store = run(base, manifest, cfg, "s1")
    assert resumed.inspected == 3  # only the three the killed run never decided
    cold = run(base, manifest, fetch_config(cache_dir=str(base / "cold")), "s2")
    assert store_bytes(store) == store_bytes(cold)


def test_a_limit_change_re_decides_from_the_source(folder, monkeypatch):
    """Verdicts are keyed by the limits that made them: lowering max_pages re-checks every file,
    reading the quarantined one's bytes from its source again (the cache kept none)."""
    base, manifest, cfg = folder
    run(base, manifest, cfg, "s1")
    spy = Spy(monkeypatch)
    store = run(base, manifest, fetch_config(cache_dir=cfg.cache_dir, max_pages=7), "s2")
    assert spy.inspected == 6 and spy.read == ["broken.pdf"]
    assert os.path.exists(store / "index.jsonl")
