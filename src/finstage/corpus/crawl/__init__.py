"""Discover and download the manifest's web PDFs with Scrapy, politely, incrementally, resumably.

`crawl` takes the manifest's ``seed`` and ``url`` sources (``urls:`` lists already expanded) and
returns one row per PDF URL, which fetch validates and stores. What the crawl guarantees:

- the fence: every request — robots.txt, retries, each redirect hop — goes only to a host that
  is exactly in ``fetch.allowed_hosts``; a seed's links are followed by its ``allow``/``deny``
  patterns, up to its ``depth``;
- manners: robots.txt obeyed (an unreadable one, 5xx or 401/403, allows nothing) and its
  ``Crawl-delay`` applied to that host; one connection per host, ``fetch.delay_s`` between two
  requests at least, AutoThrottle above that; retries wait ``backoff_s`` doubling to
  ``max_backoff_s`` or what ``Retry-After`` asks; ``timeout_s`` per attempt, ``deadline_s`` per
  URL, ``max_bytes`` per body (an oversized body is dropped from memory; nothing is written);
- incremental: bodies are kept once by sha256 in ``fetch.cache_dir`` with each URL's ETag and
  Last-Modified, and a rerun asks conditionally (If-None-Match / If-Modified-Since): a 304 maps
  back to the cached body with its first ``retrieved_at``, so provenance does not churn;
- resumable: a crawl stopped by Ctrl-C / SIGTERM finishes the requests already handed to the
  downloader (up to 16), saves Scrapy's JOBDIR and the next run picks it up; one killed outright
  (or by a second Ctrl-C) starts its walk again, but every PDF it had downloaded is only
  revalidated (304);
- secrets: an ``Authorization`` value (``fetch.auth_env``) is read from the environment by the
  child, sent to its one https origin only, and never logged or written (not even into JOBDIR).

The crawl runs in a child process (``python -m finstage.corpus.crawl``: Scrapy's reactor cannot
restart within one process); this side shows a progress bar of files finished and reads the
rows back. Scrapy logs warnings only; set ``FINSTAGE_CRAWL_LOG=INFO`` (or DEBUG) to see more.
HTML served under a ``.pdf`` URL is returned like any body: fetch's validator quarantines it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from finstage.corpus.crawl import job
from finstage.corpus.fetchconfig import FetchConfig
from finstage.corpus.manifest import Source

PROGRESS = "finstage-crawl-progress"  # the line the child prints per finished PDF
WEB_KINDS = ("http", "seed")


class CrawlError(RuntimeError):
    """The crawl itself did not finish (not one file's failure); the message says what to do."""


def crawl(
    sources: list[Source], cfg: FetchConfig, cache_dir: Path, progress: bool = True
) -> list[dict[str, Any]]:
    """Rows for every PDF URL the ``http``/``seed`` sources list or lead to, ordered by manifest
    entry, then URL (keys: see `finstage.corpus.crawl.__main__.result_rows`)."""
    from tqdm import tqdm

    cache_dir = Path(cache_dir).resolve()
    web = [s for s in sources if s.kind in WEB_KINDS]
    if not web:
        shutil.rmtree(job.robots_dir(cache_dir), ignore_errors=True)  # none read this run
        return []
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _lock(cache_dir) as pid_file:
        spec = job.write_spec(cache_dir, web, cfg, os.environ.get("FINSTAGE_CRAWL_LOG", "WARNING"))
        job.rows_path(cache_dir).unlink(missing_ok=True)
        env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[3])  # this checkout's finstage, not another
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
        child = subprocess.Popen(
            [sys.executable, "-m", "finstage.corpus.crawl", str(spec)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        pid_file.write(f"{child.pid}\n")
        pid_file.flush()
        try:
            with tqdm(desc="crawl", unit="file", disable=not progress) as bar:
                assert child.stdout is not None
                for line in child.stdout:
                    if line.strip() == PROGRESS:
                        bar.update(1)
                    else:
                        sys.stdout.write(line)
            code = child.wait()
        except KeyboardInterrupt:
            child.wait()  # it got the same SIGINT and saves its job for the next run
            raise
        finally:
            pid_file.truncate(0)
    if code != 0:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        raise CrawlError(
            f"the crawl child {how}; run fetch again: it resumes, and every PDF already in "
            f"{cache_dir} is only revalidated (see the messages above for the cause)"
        )
    return json.loads(job.rows_path(cache_dir).read_text(encoding="utf-8"))


def robots_texts(cache_dir: Path) -> dict[str, str]:
    """Each origin's robots.txt as the last crawl read it (``Origin.name`` -> text)."""
    folder = job.robots_dir(Path(cache_dir).resolve())
    if not folder.is_dir():
        return {}
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.txt"))}


class _lock:
    """``crawl.pid`` held with an exclusive lock while a crawl runs: two crawls sharing one
    cache would corrupt each other's job directory. The file holds the child's pid."""

    def __init__(self, cache_dir: Path):
        self.path = cache_dir / "crawl.pid"

    def __enter__(self) -> Any:
        self.file = self.path.open("a+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.close()
            raise CrawlError(
                f"another crawl is using {self.path.parent} (pid in {self.path}); wait for it "
                f"or give this run another fetch.cache_dir"
            ) from None
        self.file.truncate(0)
        return self.file

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()
