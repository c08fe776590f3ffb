"""Polite HTTP for the fetch stage: only approved hosts, only what robots.txt allows, never fast.

``urllib.request`` with a descriptive User-Agent, a timeout, retries with exponential backoff that
honour ``Retry-After``, a per-host delay that also honours robots.txt ``Crawl-delay`` and
``Request-rate``, a byte limit, and only hosts listed in ``fetch.allowed_hosts`` — redirects
included. An ``Authorization`` value, when a host needs one, is dropped if a redirect leaves the
host. Kept apart from the store and the manifest walk so that it can be tested against a loopback
server alone.
"""

from __future__ import annotations

import email.utils
import http.client
import time
import urllib.error
import urllib.request
import urllib.robotparser
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from finstage.corpus.fetchconfig import FetchConfig

RETRY_STATUS = {408, 429, 500, 502, 503, 504}


class FetchFailure(Exception):
    """One source could not be fetched; recorded in the index, never fatal."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


class _RedirectGuard(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to allowed hosts, and never carry credentials to another host."""

    def __init__(self, allowed_hosts: list[str]):
        self.allowed = {h.lower() for h in allowed_hosts}

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102
        host = (urlsplit(newurl).hostname or "").lower()
        if host not in self.allowed:
            raise FetchFailure(
                f"{req.full_url} redirects to {newurl}, "
                f"whose host {host!r} is not in fetch.allowed_hosts"
            )
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and host != (urlsplit(req.full_url).hostname or "").lower():
            new.headers.pop("Authorization", None)
            new.unredirected_hdrs.pop("Authorization", None)
        return new


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class HttpClient:
    """Polite GETs: robots.txt, per-host delay, retries with backoff, byte limit, allowed hosts."""

    def __init__(
        self,
        cfg: FetchConfig,
        auth: dict[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.cfg = cfg
        self.auth = auth or {}
        self.sleep, self.clock = sleep, clock
        self.opener = urllib.request.build_opener(_RedirectGuard(cfg.allowed_hosts))
        self.robots: dict[str, urllib.robotparser.RobotFileParser] = {}
        self.robots_text: dict[str, str | None] = {}
        self.robots_error: dict[str, str] = {}
        self.last_request: dict[str, float] = {}
        self.requests = 0

    def get(self, url: str) -> tuple[bytes, dict[str, Any]]:
        """The body of ``url`` and its HTTP metadata; raises `FetchFailure`."""
        parts = urlsplit(url)
        netloc = parts.netloc.lower()
        robots = self._robots(parts.scheme, netloc)
        if netloc in self.robots_error:
            raise FetchFailure(
                f"robots.txt of {netloc} could not be read ({self.robots_error[netloc]}); "
                f"not fetching {url}"
            )
        if not robots.can_fetch(self.cfg.user_agent, url):
            raise FetchFailure(f"robots.txt of {netloc} disallows {url} for this user agent")
        return self._request(url, self.cfg.max_bytes, self._delay(netloc))

    def _delay(self, netloc: str) -> float:
        delay = self.cfg.delay_s
        robots = self.robots.get(netloc)
        if robots is not None:
            crawl = robots.crawl_delay(self.cfg.user_agent)
            rate = robots.request_rate(self.cfg.user_agent)
            if crawl:
                delay = max(delay, float(crawl))
            if rate and rate.requests:
                delay = max(delay, rate.seconds / rate.requests)
        return delay

    def _robots(self, scheme: str, netloc: str) -> urllib.robotparser.RobotFileParser:
        if netloc in self.robots:
            return self.robots[netloc]
        parser = urllib.robotparser.RobotFileParser()
        text = None
        try:
            body, _ = self._request(f"{scheme}://{netloc}/robots.txt", 1_000_000, self.cfg.delay_s)
            text = body.decode("utf-8", errors="replace")
            parser.parse(text.splitlines())
        except FetchFailure as err:
            if err.code in (401, 403):
                parser.disallow_all = True  # the convention urllib.robotparser follows
            elif err.code is not None and 400 <= err.code < 500:
                parser.allow_all = True  # no robots.txt: everything is allowed
            else:
                self.robots_error[netloc] = str(err)
                parser.disallow_all = True
        self.robots[netloc] = parser
        self.robots_text[netloc] = text
        return parser

    def _request(self, url: str, limit: int, delay: float) -> tuple[bytes, dict[str, Any]]:
        netloc = urlsplit(url).netloc.lower()
        host = (urlsplit(url).hostname or "").lower()
        headers = {"User-Agent": self.cfg.user_agent}
        if host in self.auth:
            headers["Authorization"] = self.auth[host]
        attempts = self.cfg.retries + 1
        for attempt in range(attempts):
            last = self.last_request.get(netloc)
            if last is not None and self.clock() - last < delay:
                self.sleep(delay - (self.clock() - last))
            self.last_request[netloc] = self.clock()
            self.requests += 1
            wait: float | None = None
            try:
                request = urllib.request.Request(url, headers=headers)
                with self.opener.open(request, timeout=self.cfg.timeout_s) as response:
                    length = response.headers.get("Content-Length")
                    if length and length.isdigit() and int(length) > limit:
                        raise FetchFailure(
                            f"{url} is {length} bytes, over the limit of {limit} (fetch.max_bytes)"
                        )
                    chunks, size = [], 0
                    while chunk := response.read(1 << 16):
                        size += len(chunk)
                        if size > limit:
                            raise FetchFailure(
                                f"{url} is over the limit of {limit} bytes (fetch.max_bytes)"
                            )
                        chunks.append(chunk)
                    meta = {
                        "final_url": response.geturl(),
                        "http_status": response.status,
                        "content_type": response.headers.get("Content-Type"),
                        "etag": response.headers.get("ETag"),
                        "last_modified": response.headers.get("Last-Modified"),
                    }
                    return b"".join(chunks), meta
            except FetchFailure:
                raise
            except urllib.error.HTTPError as err:
                err.close()
                if err.code not in RETRY_STATUS or attempt == attempts - 1:
                    raise FetchFailure(
                        f"HTTP {err.code} for {url} after {attempt + 1} attempt(s)", err.code
                    ) from None
                wait = _retry_after(err.headers.get("Retry-After") if err.headers else None)
                failure = f"HTTP {err.code}"
            except (
                urllib.error.URLError,
                TimeoutError,
                ConnectionError,
                http.client.HTTPException,
                OSError,
            ) as err:
                reason = getattr(err, "reason", err)
                if attempt == attempts - 1:
                    raise FetchFailure(
                        f"{url} failed after {attempt + 1} attempt(s): {reason}"
                    ) from None
                failure = str(reason)
            backoff = self.cfg.backoff_s * (2**attempt)
            pause = min(self.cfg.max_backoff_s, max(backoff, wait or 0.0))
            print(
                f"fetch: {failure} for {url}; "
                f"retry {attempt + 1}/{self.cfg.retries} in {pause:.1f}s"
            )
            self.sleep(pause)
        raise AssertionError("unreachable")
