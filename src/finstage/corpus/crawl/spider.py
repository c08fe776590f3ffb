"""The spider: seeds are crawled by their own allow/deny rules and depth, listed URLs are
downloaded as they are, and every PDF's outcome is kept for the result rows.

A link is a PDF when its path ends in ``.pdf``; any other link under a seed's rules is a page
read only for its links. What a PDF was found on is kept per URL (the smallest manifest entry,
then the smallest (page, anchor) pair), so two runs that find the same links report the same
``source_page`` whatever order the pages were answered in.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urldefrag, urlsplit

from scrapy import Request, signals
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.linkextractors import IGNORED_EXTENSIONS, LinkExtractor
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.spiders import CrawlSpider, Rule
from scrapy.utils.url import url_has_any_extension
from twisted.python.failure import Failure

from finstage.corpus.crawl import PROGRESS
from finstage.corpus.crawl.cache import UrlCache
from finstage.corpus.manifest import Source
from finstage.corpus.origin import RefusedUrl, check_url

# links never read as pages (spreadsheets, archives, images, media): Scrapy's own list, which
# the extractor is told to skip (it also holds .pdf), applied here to everything but PDFs
NOT_PAGES = {f".{ext}" for ext in IGNORED_EXTENSIONS if ext != "pdf"}


def is_pdf(url: str) -> bool:
    return urlsplit(url).path.lower().endswith(".pdf")


class PdfSpider(CrawlSpider):
    name = "finstage-fetch"

    def __init__(
        self,
        sources: list[Source],
        allowed_hosts: list[str],
        default_depth: int,
        cache: UrlCache,
        **kwargs: Any,
    ):
        self.sources = sources
        self.allowed_hosts_exact = allowed_hosts
        self.default_depth = default_depth
        self.cache = cache
        self.rules = [
            Rule(
                # deny_extensions=[]: Scrapy's default skips .pdf links, the very ones we want
                LinkExtractor(allow=s.allow, deny=s.deny, deny_extensions=[]),
                callback=self._page_done,
                errback=self._page_failed,
                follow=True,
                process_request=self._for_seed(i),
            )
            for i, s in enumerate(sources)
            if s.kind == "seed"
        ]
        super().__init__(**kwargs)

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> PdfSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider._reached, signal=signals.request_reached_downloader)
        return spider

    # state: saved in JOBDIR by Scrapy's SpiderState on a graceful stop, so a resumed crawl
    # still reports what the stopped one found and downloaded
    @property
    def in_flight(self) -> dict[str, dict[str, Any]]:
        """Requests handed to the downloader and not answered yet (key: `_key`) -> their meta.
        A graceful stop drops these (the queue on disk holds only those not started), so a
        resumed crawl sends them again."""
        return self.state.setdefault("in_flight", {})

    @property
    def found(self) -> dict[str, list[Any]]:
        """PDF URL -> [entry, source_page, anchor] (the smallest seen)."""
        return self.state.setdefault("found", {})

    @property
    def outcomes(self) -> dict[str, dict[str, Any]]:
        """PDF URL -> its cache record plus ``tries``, or ``failure`` and ``tries``."""
        return self.state.setdefault("outcomes", {})

    async def start(self) -> AsyncIterator[Request]:
        for key, meta in list(self.in_flight.items()):  # left by a stopped crawl
            yield self._again(key, meta)
        for i, source in enumerate(self.sources):
            if source.kind == "seed":
                meta = {"seed": i, "depth": 0}
                yield Request(source.location, meta=meta, errback=self._seed_failed)
            else:
                self._found(source.location, source.entry, None, None)
                request = self._pdf_request(source.location)
                if request is not None:
                    yield request

    def _again(self, key: str, meta: dict[str, Any]) -> Request:
        if "pdf" in meta:
            return Request(
                key,
                callback=self.parse_pdf,
                errback=self.pdf_failed,
                headers=self.cache.conditional_headers(key),
                meta={**meta, "handle_httpstatus_list": [304]},
                dont_filter=True,
            )
        if "rule" in meta:  # a page found under a seed
            return Request(
                key, callback=self._callback, errback=self._errback, meta=meta, dont_filter=True
            )
        return Request(key, meta=meta, errback=self._seed_failed, dont_filter=True)

    def _reached(self, request: Request, spider: Any) -> None:
        if not request.meta.get("dont_obey_robotstxt"):  # robots.txt is the middleware's
            meta = {
                k: request.meta[k] for k in ("pdf", "seed", "rule", "depth") if k in request.meta
            }
            self.in_flight[_key(request)] = meta

    def _landed(self, request: Request) -> None:
        self.in_flight.pop(_key(request), None)

    def parse_start_url(self, response: Response, **kwargs: Any) -> Any:
        self._landed(response.request)
        return ()

    def _page_done(self, response: Response) -> Any:
        self._landed(response.request)
        return ()

    def _page_failed(self, failure: Failure) -> None:
        self._landed(failure.request)  # type: ignore[attr-defined]
        self.logger.warning("page %s failed: %s", failure.request.url, describe(failure))  # type: ignore[attr-defined]

    def _for_seed(self, i: int) -> Any:
        """The rule's filter: only links found under seed ``i``, on an allowed host, within
        its depth; a PDF link becomes a download, any other a page to read."""
        seed = self.sources[i]
        depth_limit = self.default_depth if seed.depth is None else seed.depth

        def process(request: Request, response: Response) -> Request | None:
            if response.meta.get("seed") != i:
                return None
            url = urldefrag(request.url)[0]
            depth = response.meta.get("depth", 0) + 1
            try:
                check_url(url, self.allowed_hosts_exact)
            except RefusedUrl:
                return None  # another site's link: out of the crawl, not a failure
            if depth > depth_limit:
                return None
            anchor = (request.meta.get("link_text") or "").strip() or None
            if is_pdf(url):
                self._found(url, seed.entry, response.url, anchor)
                return self._pdf_request(url)
            if url_has_any_extension(url, NOT_PAGES):
                return None
            return request.replace(url=url, meta={**request.meta, "seed": i})

        return process

    def _found(self, url: str, entry: int, page: str | None, anchor: str | None) -> None:
        key = [entry, page or "", anchor or ""]
        old = self.found.get(url)
        if old is None or key < [old[0], old[1] or "", old[2] or ""]:
            self.found[url] = [entry, page, anchor]

    def _pdf_request(self, url: str) -> Request | None:
        """The download of ``url``, once per crawl. Deduplicated here, not by Scrapy's filter
        (``dont_filter``, which its redirects inherit): a redirect to a URL that was also
        requested directly must still be followed, or its row would get no answer."""
        requested = self.state.setdefault("requested", set())
        if url in requested:
            return None
        requested.add(url)
        return Request(
            url,
            callback=self.parse_pdf,
            errback=self.pdf_failed,
            headers=self.cache.conditional_headers(url),
            meta={"pdf": url, "handle_httpstatus_list": [304]},
            dont_filter=True,
        )

    def parse_pdf(self, response: Response) -> None:
        self._landed(response.request)
        url = response.meta["pdf"]
        tries = response.meta.get("retry_times", 0) + 1
        if response.status == 304:
            record = self.cache.record(url)
            if record is None:  # the cached body went missing since the request was made
                self._done(url, {"failure": "HTTP 304 but no cached body", "tries": tries})
                return
        else:
            headers = response.headers
            record = self.cache.store(
                url,
                response.body,
                {
                    "final_url": response.url,
                    "status": response.status,
                    "etag": _header(headers, b"ETag"),
                    "last_modified": _header(headers, b"Last-Modified"),
                    "content_type": _header(headers, b"Content-Type"),
                },
            )
        self._done(url, {**record, "tries": tries})

    def pdf_failed(self, failure: Failure) -> None:
        request = failure.request  # type: ignore[attr-defined]
        self._landed(request)
        self._done(
            request.meta["pdf"],
            {"failure": describe(failure), "tries": request.meta.get("retry_times", 0) + 1},
        )

    def _seed_failed(self, failure: Failure) -> None:
        request = failure.request  # type: ignore[attr-defined]
        self._landed(request)
        self.logger.warning("seed page %s failed: %s", request.url, describe(failure))
        self.state.setdefault("seed_failures", {})[_key(request)] = describe(failure)

    def _done(self, url: str, outcome: dict[str, Any]) -> None:
        self.outcomes[url] = outcome
        print(PROGRESS, flush=True, file=sys.stdout)


def _key(request: Request) -> str:
    """A request's identity across retries and redirects: the PDF URL or the first hop."""
    return request.meta.get("pdf") or (request.meta.get("redirect_urls") or [request.url])[0]


def describe(failure: Failure) -> str:
    """A failure as the reason fetch records: short, and never quoting a body."""
    err = failure.value
    if isinstance(err, HttpError):
        return f"HTTP {err.response.status} for {err.response.url}"
    if isinstance(err, IgnoreRequest):
        reason = str(err) or "ignored"
        if "robots.txt" in reason:
            return f"robots.txt disallows {failure.request.url} for this user agent"  # type: ignore[attr-defined]
        return reason
    name = type(err).__name__
    if "Timeout" in name:
        return f"timeout: no complete response within fetch.timeout_s ({name})"
    if "Cancelled" in name:
        return f"too large: over fetch.max_bytes, abandoned while downloading ({err})"
    return f"{name}: {err}"


def _header(headers: Any, name: bytes) -> str | None:
    value = headers.get(name)
    return value.decode("latin-1") if value is not None else None
