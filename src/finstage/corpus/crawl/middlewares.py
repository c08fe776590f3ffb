"""Scrapy downloader middlewares: the fence and the manners Scrapy does not have on its own.

Order matters (Scrapy calls ``process_request`` in ascending priority, ``process_response`` and
``process_exception`` in descending; see `finstage.corpus.crawl.settings`):

- `AllowedHosts` (first): a request — robots.txt, a retry, every redirect hop, which Scrapy
  schedules as a new request — to a host outside ``fetch.allowed_hosts`` is dropped before any
  other middleware could contact that host (RobotsTxtMiddleware would fetch its robots.txt).
- `PoliteRobots` (Scrapy's RobotsTxtMiddleware, extended): every request waiting for an
  origin's robots.txt gets its parser (in 2.19 all but the first get None and pass unchecked);
  an unreadable robots.txt (5xx, 401/403, no answer) disallows the whole origin instead of
  allowing it; the robots.txt text is
  kept for the store; and the ``Crawl-delay`` of our user agent holds requests
  to that host apart, which Scrapy itself never applies (2.19: the middleware only asks
  ``allowed()``). It also waits out a retry's backoff (``not_before``).
- `Backoff` (Scrapy's RetryMiddleware, extended): a retry waits ``backoff_s`` doubling up to
  ``max_backoff_s``, or what ``Retry-After`` asks on a 429/503, and none starts past
  ``deadline_s``; Scrapy's own retries are immediate.
- `OriginAuth` (last before the wire): the ``Authorization`` value goes on a request to its one
  https origin only and is taken off again as soon as the response (or error) comes back, so no
  retry or redirect copy carries it and the resumable job on disk never holds it.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import time
from pathlib import Path
from typing import Any

from scrapy import Request
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.response import response_status_message
from twisted.internet.defer import Deferred

from finstage.corpus.origin import Origin, RefusedUrl, check_url, parse_origin

DISALLOW_ALL = b"User-agent: *\nDisallow: /\n"


class AllowedHosts:
    """Refuse every request whose URL fails `check_url` (exact host match)."""

    def __init__(self, allowed_hosts: list[str]):
        self.allowed = frozenset(allowed_hosts)

    @classmethod
    def from_crawler(cls, crawler: Any) -> AllowedHosts:
        return cls(crawler.settings.getlist("FINSTAGE_ALLOWED_HOSTS"))

    def process_request(self, request: Request) -> None:
        request.meta.setdefault("first_try", time.time())
        try:
            check_url(request.url, self.allowed)
        except RefusedUrl as err:
            hops = request.meta.get("redirect_urls") or []
            via = f" (redirected from {hops[0]})" if hops else ""
            raise IgnoreRequest(f"refused: {err}{via}") from None


class PoliteRobots(RobotsTxtMiddleware):
    """RobotsTxtMiddleware plus a strict reading of failures, the kept text, and Crawl-delay."""

    def __init__(self, crawler: Any):
        super().__init__(crawler)
        self.user_agent: str = crawler.settings["USER_AGENT"]
        self.folder = Path(crawler.settings["FINSTAGE_ROBOTS_DIR"])  # robots.txt as read
        self.host_delay: dict[str, float] = {}  # netloc -> seconds between two requests
        self.next_slot: dict[str, float] = {}  # netloc -> earliest start of the next request

    async def process_request(self, request: Request, spider: Any = None) -> None:
        await super().process_request(request)
        netloc = urlparse_cached(request).netloc
        wait = request.meta.get("not_before", 0.0) - time.time()
        delay = self.host_delay.get(netloc, 0.0)
        if delay:
            now = time.monotonic()
            start = max(now + max(wait, 0.0), self.next_slot.get(netloc, 0.0))
            self.next_slot[netloc] = start + delay  # reserved before awaiting: no two share it
            wait = start - now
        if wait > 0:
            await asyncio.sleep(wait)

    async def robot_parser(self, request: Request) -> Any:
        """The origin's parser. Scrapy 2.19 has every request that waits for robots.txt await
        one Deferred via ``asFuture``, whose callback returns None: only the first waiter gets
        the parser, the others None, which the base class reads as "allow everything". The
        parser is stored before the Deferred fires, so it is taken from there."""
        parser = await super().robot_parser(request)
        stored = self._parsers.get(urlparse_cached(request).netloc)
        return parser if parser is not None or isinstance(stored, Deferred) else stored

    async def _parse_robots(self, response: Response, netloc: str, request: Request) -> None:
        # 2.19's hook between the download of robots.txt and its parser (read in its source)
        if response.status in (401, 403) or response.status >= 500:
            response = response.replace(body=DISALLOW_ALL)  # unreadable: ask nothing of it
        elif response.status >= 400:
            response = response.replace(body=b"")  # no robots.txt: everything is allowed
        else:
            origin = check_url(response.url, [urlparse_cached(response).hostname or ""])
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / f"{origin.name}.txt").write_text(response.text, encoding="utf-8")
        await super()._parse_robots(response, netloc, request)
        parser = self._parsers[netloc]
        if parser is not None:  # RobotParser.crawl_delay: Scrapy parses it, never applies it
            self.host_delay[netloc] = float(parser.crawl_delay(self.user_agent) or 0.0)

    def _robots_error(self, exc: Exception, netloc: str) -> None:
        # Scrapy's version hands the waiting requests None (allow everything) when robots.txt
        # cannot be fetched; we hand them a parser that allows nothing instead
        parser = self._parserimpl.from_crawler(self.crawler, DISALLOW_ALL)
        waiting = self._parsers[netloc]
        self._parsers[netloc] = parser
        if isinstance(waiting, Deferred):
            waiting.callback(parser)


class Backoff(RetryMiddleware):
    """RetryMiddleware whose retries wait: exponential backoff, Retry-After, a total deadline."""

    def __init__(self, settings: Any):
        super().__init__(settings)
        self.backoff = settings.getfloat("FINSTAGE_BACKOFF_S")
        self.max_backoff = settings.getfloat("FINSTAGE_MAX_BACKOFF_S")
        self.deadline = settings.getfloat("FINSTAGE_DEADLINE_S")

    def process_response(
        self, request: Request, response: Response, spider: Any = None
    ) -> Request | Response:
        if request.meta.get("dont_retry") or response.status not in self.retry_http_codes:
            return response
        retry_after = _retry_after(response.headers.get(b"Retry-After"))
        return self._later(request, response_status_message(response.status), retry_after) or (
            response
        )

    def process_exception(
        self, request: Request, exception: Exception, spider: Any = None
    ) -> Request | None:
        if request.meta.get("dont_retry") or not isinstance(exception, self.exceptions_to_retry):
            return None
        return self._later(request, exception, None)

    def _later(self, request: Request, reason: Any, retry_after: float | None) -> Request | None:
        attempt = request.meta.get("retry_times", 0)
        pause = min(self.max_backoff, max(self.backoff * 2**attempt, retry_after or 0.0))
        if time.time() + pause > request.meta.get("first_try", time.time()) + self.deadline:
            return None  # past fetch.deadline_s: give up with this answer
        retry = self._retry(request, reason)
        if retry is not None:
            retry.meta["not_before"] = time.time() + pause
        return retry


class OriginAuth:
    """Put the Authorization value on requests to its https origin, and only for the exchange."""

    def __init__(self, auth: dict[Origin, str]):
        self.auth = {origin: value for origin, value in auth.items() if origin.scheme == "https"}

    @classmethod
    def from_crawler(cls, crawler: Any) -> OriginAuth:
        """Values from the environment: the settings (and the spec file) hold variable names."""
        names = crawler.settings.getdict("FINSTAGE_AUTH_ENV")
        values = {key: os.environ.get(var) for key, var in names.items()}
        return cls({parse_origin(key): value for key, value in values.items() if value})

    def process_request(self, request: Request) -> None:
        request.headers.pop(b"Authorization", None)
        parts = urlparse_cached(request)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        value = self.auth.get(Origin(parts.scheme, parts.hostname or "", port))
        if value is not None:
            request.headers[b"Authorization"] = value

    def process_response(self, request: Request, response: Response) -> Response:
        request.headers.pop(b"Authorization", None)
        return response

    def process_exception(self, request: Request, exception: Exception) -> None:
        request.headers.pop(b"Authorization", None)


def _retry_after(value: bytes | None) -> float | None:
    """Seconds a Retry-After header asks for (a number or an HTTP date), if it is readable."""
    if not value:
        return None
    text = value.decode("latin-1").strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
