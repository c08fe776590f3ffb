"""The Scrapy crawl behind fetch, against loopback sites: discovery by a seed's patterns and
depth, robots.txt and its Crawl-delay, retries that wait, failures recorded with their tries,
the host fence on redirects, the byte limit, and reruns that download only what is new."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from finstage.corpus.crawl import CrawlError, crawl
from finstage.corpus.fetch import fetch
from finstage.corpus.manifest import Source
from finstage.pdfstore import read_index

from .crawl_site import Site, page, redirect, status
from .test_fetch import fetch_config, pdf, write_manifest


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    yield s
    s.close()


def config(tmp_path: Path, **changes):
    base = dict(
        allowed_hosts=["127.0.0.1"],
        timeout_s=5.0,
        deadline_s=30.0,
        retries=0,
        backoff_s=0.05,
        max_backoff_s=2.0,
        delay_s=0.0,
        max_bytes=30_000,
        cache_dir=str(tmp_path / "cache"),
    )
    return fetch_config(**{**base, **changes})


def run(tmp_path: Path, sources: list[Source], **changes) -> dict[str, dict]:
    cfg = config(tmp_path, **changes)
    rows = crawl(sources, cfg, Path(cfg.cache_dir), progress=False)
    assert [(r["entry"], r["url"]) for r in rows] == sorted((r["entry"], r["url"]) for r in rows)
    return {r["url"]: r for r in rows}


def seed(url: str, entry: int = 0, **kw) -> Source:
    return Source(entry, "seed", url, "PDL1.0", "金融庁", **kw)


def listed(url: str, entry: int = 0) -> Source:
    return Source(entry, "http", url, "PDL1.0", "財務省")


def test_seed_links_are_followed_by_allow_deny_and_depth(site, tmp_path):
    """depth 2: a PDF on the seed (1) and on a page it links (2) are fetched, one a page
    further (3) is not; a denied link and another site's link are never requested."""
    site.routes = {
        "/fin/index.html": page(
            ("/fin/a.pdf", "予算の概要"),
            ("/fin/sub/list.html", "一覧"),
            ("/fin/shiken/q.pdf", "試験問題"),
            ("/other/b.pdf", "他部局"),
            (site.url("/fin/c.pdf", host="localhost"), "別ホスト"),
        ),
        "/fin/sub/list.html": page(("/fin/sub/b.pdf", "決算"), ("/fin/sub/deeper.html", "more")),
        "/fin/sub/deeper.html": page(("/fin/sub/deep.pdf", "深い")),
        "/fin/a.pdf": pdf(0),
        "/fin/sub/b.pdf": pdf(1),
        "/fin/sub/deep.pdf": pdf(2),
        "/fin/shiken/q.pdf": pdf(3),
        "/other/b.pdf": pdf(4),
    }
    index = site.url("/fin/index.html")
    rows = run(
        tmp_path,
        [
            seed(index, allow=(r"/fin/",), deny=(r"/shiken/",), depth=2),
            listed(site.url("/x.pdf"), 1),
        ],
    )
    assert set(rows) == {site.url(p) for p in ("/fin/a.pdf", "/fin/sub/b.pdf", "/x.pdf")}
    a, b = rows[site.url("/fin/a.pdf")], rows[site.url("/fin/sub/b.pdf")]
    assert (a["source_page"], a["anchor"], a["entry"], a["org"]) == (
        index,
        "予算の概要",
        0,
        "金融庁",
    )
    assert b["source_page"] == site.url("/fin/sub/list.html") and b["anchor"] == "決算"
    assert a["status"] == 200 and a["failure"] is None and Path(a["body"]).read_bytes() == pdf(0)
    assert a["sha256"] == Path(a["body"]).name and a["bytes"] == len(pdf(0))
    assert len(site.gets("/fin/sub/deeper.html")) == 1  # depth 2: read for links, which are at 3
    for never in ("/fin/sub/deep.pdf", "/fin/shiken/q.pdf", "/other/b.pdf"):
        assert site.gets(never) == []
    assert not [h for h in site.hits if h.host == "localhost"]
    missing = rows[site.url("/x.pdf")]  # a listed URL: no page, no anchor, its HTTP failure
    assert missing["source_page"] is None and missing["anchor"] is None and missing["entry"] == 1
    assert missing["failure"].startswith("HTTP 404") and missing["body"] is None


def test_robots_disallow_and_crawl_delay(site, tmp_path):
    site.robots = "User-agent: *\nDisallow: /private/\nCrawl-delay: 0.3\n"
    site.routes = {"/a.pdf": pdf(0), "/b.pdf": pdf(1), "/private/c.pdf": pdf(2)}
    rows = run(tmp_path, [listed(site.url(p)) for p in ("/a.pdf", "/b.pdf", "/private/c.pdf")])
    assert "robots.txt" in rows[site.url("/private/c.pdf")]["failure"]
    assert site.gets("/private/c.pdf") == []
    starts = sorted(h.at for h in site.hits if h.path in ("/a.pdf", "/b.pdf"))
    assert len(starts) == 2 and starts[1] - starts[0] >= 0.28  # Scrapy alone would not wait


def test_delay_s_is_a_floor_between_two_requests_to_one_host(site, tmp_path):
    """AutoThrottle may slow the crawl down, never below fetch.delay_s (and no random jitter)."""
    site.routes = {f"/{i}.pdf": pdf(i) for i in range(3)}
    run(tmp_path, [listed(site.url(f"/{i}.pdf")) for i in range(3)], delay_s=0.25)
    starts = sorted(h.at for h in site.hits if h.path.endswith(".pdf"))
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert len(gaps) == 2 and min(gaps) >= 0.24


def test_unreadable_robots_allows_nothing(site, tmp_path):
    site.routes = {"/robots.txt": status(503), "/a.pdf": pdf(0)}
    rows = run(tmp_path, [listed(site.url("/a.pdf"))])
    assert "robots.txt" in rows[site.url("/a.pdf")]["failure"] and site.gets("/a.pdf") == []


def test_429_retry_after_is_honoured_then_500_gives_up(site, tmp_path):
    calls = []

    def busy_once(handler) -> None:
        calls.append(1)
        if len(calls) == 1:
            return status(429, {"Retry-After": "1"})(handler)
        return handler.reply(pdf(0), "application/pdf")

    site.routes = {"/busy.pdf": busy_once, "/down.pdf": status(500)}
    rows = run(tmp_path, [listed(site.url("/busy.pdf")), listed(site.url("/down.pdf"))], retries=2)
    busy = site.gets("/busy.pdf")
    assert [h.status for h in busy] == [429, 200] and busy[1].at - busy[0].at >= 0.95
    assert rows[site.url("/busy.pdf")]["tries"] == 2 and rows[site.url("/busy.pdf")]["sha256"]
    down = rows[site.url("/down.pdf")]
    assert down["failure"].startswith("HTTP 500") and down["tries"] == 3
    tries = site.gets("/down.pdf")
    gaps = [b.at - a.at for a, b in zip(tries, tries[1:], strict=False)]
    assert len(gaps) == 2 and gaps[0] >= 0.04 and gaps[1] >= 0.09  # backoff 0.05 s, doubling


def test_timeout_redirect_off_the_allowlist_and_oversized_bodies(site, tmp_path):
    """A response held past timeout_s fails; a redirect to a host not allowed is refused before
    that host is contacted; a body over max_bytes, announced or streamed, is dropped and no
    byte of it is kept anywhere under the cache."""
    other = Site(bind="127.0.0.2")
    other.routes = {"/x.pdf": pdf(1)}
    marker = b"OVERSIZED-BODY-MARKER"

    def slow(handler) -> None:
        time.sleep(1.5)
        handler.reply(pdf(0), "application/pdf")

    def streamed(handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/pdf")
        handler.end_headers()  # no Content-Length: the limit must hold while streaming
        try:
            for _ in range(20):
                handler.wfile.write(marker * 200)
        except OSError:
            pass

    site.routes = {
        "/slow.pdf": slow,
        "/away.pdf": redirect(other.url("/x.pdf")),
        "/big.pdf": b"%PDF-1.7\n" + marker * 2000 + b"\n%%EOF\n",
        "/stream.pdf": streamed,
    }
    try:
        start = time.monotonic()
        rows = run(
            tmp_path,
            [listed(site.url(p)) for p in ("/slow.pdf", "/away.pdf", "/big.pdf", "/stream.pdf")],
            timeout_s=0.5,
        )
        assert time.monotonic() - start < 8
    finally:
        other.close()
    assert rows[site.url("/slow.pdf")]["failure"].startswith("timeout")
    away = rows[site.url("/away.pdf")]["failure"]
    assert "not in fetch.allowed_hosts" in away and "127.0.0.2" in away
    assert other.hits == []  # not even its robots.txt
    for path in ("/big.pdf", "/stream.pdf"):
        assert rows[site.url(path)]["failure"].startswith("too large"), path
    for f in (tmp_path / "cache").rglob("*"):
        assert not f.is_file() or marker not in f.read_bytes(), f


def test_html_served_as_pdf_is_returned_and_quarantined_by_fetch(site, tmp_path):
    site.routes = {"/report.pdf": page(("/x", "ログイン"))}
    manifest = write_manifest(tmp_path / "m.yaml", [{"url": site.url("/report.pdf")}])
    report = fetch(
        manifest, tmp_path / "store", config(tmp_path), base_dir=tmp_path, progress=False
    )
    assert report["outcomes"]["quarantined"] == 1 and report["reasons"] == {"not a PDF": 1}
    (row,) = read_index(tmp_path / "store", statuses=None)
    info = row["sources"][0]
    assert info["content_type"].startswith("text/html") and info["http_status"] == 200
    assert info["url"] == info["final_url"] == site.url("/report.pdf") and info["retrieved_at"]


def slow_pdfs(site: Site, count: int, wait: float = 0.15) -> list[str]:
    """``count`` PDFs linked from /r/index.html, each answered after ``wait`` s (ETag v<i>)."""
    names = [f"/r/{i}.pdf" for i in range(count)]

    def slow_pdf(i: int):
        def route(handler) -> None:
            time.sleep(wait)
            if handler.headers.get("If-None-Match") == f'"v{i}"':
                return status(304, {"ETag": f'"v{i}"'})(handler)
            handler.reply(pdf(i), "application/pdf", f'"v{i}"')

        return route

    site.routes = {"/r/index.html": page(*[(n, n) for n in names])}
    site.routes.update({n: slow_pdf(i) for i, n in enumerate(names)})
    return names


def interrupt(tmp_path: Path, sources: list[Source], sig: int, after: int) -> str:
    """Run a crawl, send its child ``sig`` once ``after`` PDFs are in the cache; the error."""
    cache = tmp_path / "cache"
    failed: list[BaseException] = []

    def first_run() -> None:
        try:
            run(tmp_path, sources)
        except CrawlError as err:
            failed.append(err)

    thread = threading.Thread(target=first_run)
    thread.start()
    deadline = time.monotonic() + 30
    while len(list(cache.glob("urls/*/*.json"))) < after and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(int((cache / "crawl.pid").read_text()), sig)
    thread.join(30)
    assert failed, "the crawl finished before it could be interrupted"
    return str(failed[0])


def test_rerun_after_a_kill_downloads_only_what_is_new(site, tmp_path):
    """SIGKILL the crawl child once some PDFs are in the cache: the rerun asks for those
    conditionally (answered 304, never sent whole again) and downloads only the rest; a third
    run with one more URL in the manifest downloads that one alone."""
    names = slow_pdfs(site, 8)
    sources = [seed(site.url("/r/index.html"), depth=1)]
    cache = tmp_path / "cache"
    assert "killed by signal 9" in interrupt(tmp_path, sources, signal.SIGKILL, 3)
    cached = {n for n in names if _cached(cache, site.url(n))}
    assert 3 <= len(cached) < len(names)
    site.hits.clear()

    rows = run(tmp_path, sources)
    assert len(rows) == len(names) and all(r["failure"] is None for r in rows.values())
    for name in names:  # cached before the kill: only revalidated; the rest: one download
        expected = (0, 1) if name in cached else (1, 0)
        assert (site.full_gets(name), len(site.gets(name, 304))) == expected, name

    site.hits.clear()
    site.routes["/r/new.pdf"] = pdf(20)
    again = run(tmp_path, [*sources, listed(site.url("/r/new.pdf"), 1)])
    assert [p for p in [*names, "/r/new.pdf"] if site.full_gets(p)] == ["/r/new.pdf"]
    assert all(len(site.gets(n, 304)) == 1 for n in names)  # conditional, answered 304
    for url, row in rows.items():  # identical provenance for the unchanged files
        assert again[url] == row
    assert not (cache / "job").exists()  # a finished crawl clears its JOBDIR


def test_graceful_stop_resumes_from_the_jobdir(site, tmp_path):
    """SIGTERM: Scrapy finishes the requests it holds (up to CONCURRENT_REQUESTS, 16), keeps the
    rest in its JOBDIR and stops; the next run resumes it, so the seed page is not read again
    and a PDF answered before the stop is not asked for at all."""
    names = slow_pdfs(site, 24, wait=0.05)
    sources = [seed(site.url("/r/index.html"), depth=1)]
    cache = tmp_path / "cache"
    assert "exited with status 3" in interrupt(tmp_path, sources, signal.SIGTERM, 2)
    assert (cache / "job" / "paused").is_file()
    cached = {n for n in names if _cached(cache, site.url(n))}
    assert 2 <= len(cached) < len(names)
    site.hits.clear()

    rows = run(tmp_path, sources)
    assert len(rows) == len(names) and all(r["failure"] is None for r in rows.values())
    assert site.gets("/r/index.html") == []
    for name in names:
        assert len(site.gets(name)) == (0 if name in cached else 1), name
    assert not (cache / "job").exists()


def test_agencies_preset_manifest_passes_the_paper_hosts_and_denies_exam_pages():
    import re

    import yaml

    from finstage.corpus.manifest import check_hosts, load_manifest

    root = Path(__file__).resolve().parents[1]
    sources = load_manifest(root / "presets" / "manifests" / "agencies.yaml")
    hosts = yaml.safe_load((root / "presets" / "paper.yaml").read_text())["fetch"]
    check_hosts(sources, hosts["allowed_hosts"], "agencies.yaml")
    assert {s.kind for s in sources} == {"seed"}
    for source in sources:
        allowed = [p for p in source.allow if re.search(p, source.location)]
        assert allowed, f"{source.location} is outside its own allow patterns"
        for kept_out in ("/cpaaob/kouninkaikeishi-shiken/a.pdf", "/search/edinet/b.pdf"):
            url = source.location.rsplit("/", 1)[0] + kept_out
            assert any(re.search(p, url) for p in source.deny), url


def _cached(cache: Path, url: str) -> bool:
    import hashlib

    h = hashlib.sha256(url.encode()).hexdigest()
    return (cache / "urls" / h[:2] / f"{h}.json").is_file()


def test_public_suffix_lookups_never_touch_the_network(monkeypatch):
    """Cookies are off, so Scrapy should never ask tldextract; if anything does, the child's
    patched extractor answers from the bundled list, with sockets unusable."""
    import socket

    from scrapy.downloadermiddlewares import cookies

    from finstage.corpus.crawl.__main__ import offline_public_suffixes
    from finstage.corpus.crawl.settings import scrapy_settings

    assert (
        scrapy_settings(config(Path("/unused")), Path("/unused"), "WARNING")["COOKIES_ENABLED"]
        is False
    )
    offline_public_suffixes()

    def no_network(*args, **kwargs):
        raise AssertionError("tldextract tried the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    assert cookies._split_domain.suffix_list_urls == ()
    assert cookies._is_public_domain("go.jp") and not cookies._is_public_domain("www.fsa.go.jp")
