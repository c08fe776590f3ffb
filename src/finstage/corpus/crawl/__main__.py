"""The crawl child: ``python -m finstage.corpus.crawl <cache_dir>/run/spec.json``.

Scrapy's Twisted reactor runs once per process, so each crawl gets a process of its own. Exit
status: 0 finished (``run/rows.json`` written, the job directory removed), 3 stopped gracefully
(SIGINT/SIGTERM: the job directory is kept and the next run resumes it), anything else failed.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from finstage.corpus.crawl import job
from finstage.corpus.crawl.cache import UrlCache
from finstage.corpus.manifest import Source

STOPPED = 3


def offline_public_suffixes() -> None:
    """tldextract, which Scrapy's cookie middleware imports, downloads the public-suffix list on
    first use; cookies are off, and should anything still ask, it gets the bundled snapshot."""
    from scrapy.downloadermiddlewares import cookies
    from tldextract import TLDExtract

    cookies._split_domain = TLDExtract(suffix_list_urls=(), include_psl_private_domains=True)


def main(spec_path: Path) -> int:
    cache_dir = spec_path.parent.parent
    sources, cfg, log_level = job.read_spec(spec_path)
    offline_public_suffixes()
    from scrapy.crawler import CrawlerProcess

    from finstage.corpus.crawl.settings import scrapy_settings
    from finstage.corpus.crawl.spider import PdfSpider

    job.prepare_jobdir(cache_dir)
    shutil.rmtree(job.robots_dir(cache_dir), ignore_errors=True)
    settings = scrapy_settings(cfg, job.jobdir(cache_dir), log_level)
    settings["FINSTAGE_ROBOTS_DIR"] = str(job.robots_dir(cache_dir))
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(PdfSpider)
    cache = UrlCache(cache_dir)
    process.crawl(
        crawler,
        sources=sources,
        allowed_hosts=cfg.allowed_hosts,
        default_depth=cfg.depth,
        cache=cache,
    )
    process.start()
    reason = crawler.stats.get_value("finish_reason")
    if reason != "finished":
        (job.jobdir(cache_dir) / job.PAUSED).touch()
        print(f"crawl stopped ({reason}); run it again to resume", file=sys.stderr)
        return STOPPED
    job.write_rows(cache_dir, result_rows(sources, crawler.spider.state, cache))
    shutil.rmtree(job.jobdir(cache_dir), ignore_errors=True)
    return 0


def result_rows(
    sources: list[Source], state: dict[str, Any], cache: UrlCache
) -> list[dict[str, Any]]:
    """One row per PDF URL found or listed (and per seed page that failed), ordered by manifest
    entry, then URL."""
    by_entry = {s.entry: s for s in sources}
    rows = []
    outcomes = state.get("outcomes", {})
    for url, (entry, page, anchor) in state.get("found", {}).items():
        outcome = outcomes.get(url, {"failure": "no response was recorded", "tries": 0})
        rows.append(_row(url, by_entry[entry], page, anchor, outcome, cache))
    for source in sources:
        failure = state.get("seed_failures", {}).get(source.location)
        if source.kind == "seed" and failure is not None:
            outcome = {"failure": f"seed page: {failure}", "tries": 1}
            rows.append(_row(source.location, source, None, None, outcome, cache))
    return sorted(rows, key=lambda r: (r["entry"], r["url"]))


def _row(
    url: str,
    source: Source,
    page: str | None,
    anchor: str | None,
    outcome: dict[str, Any],
    cache: UrlCache,
) -> dict[str, Any]:
    failed = "failure" in outcome
    return {
        "url": url,
        "source_page": page,
        "anchor": anchor,
        "entry": source.entry,
        "org": source.org,
        "license": source.license,
        "final_url": None if failed else outcome["final_url"],
        "status": None if failed else outcome["status"],
        "etag": None if failed else outcome["etag"],
        "last_modified": None if failed else outcome["last_modified"],
        "content_type": None if failed else outcome["content_type"],
        "retrieved_at": None if failed else outcome["retrieved_at"],
        "sha256": None if failed else outcome["sha256"],
        "bytes": None if failed else outcome["bytes"],
        "body": None if failed else str(cache.body_path(outcome["sha256"]).resolve()),
        "failure": outcome.get("failure"),
        "tries": outcome["tries"],
    }


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
