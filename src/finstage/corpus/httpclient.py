"""Polite, fenced HTTP for the fetch stage: approved hosts only, robots.txt, never fast, bounded.

Every request — each hop of a redirect included — is checked before it is sent:

- its URL is plain ASCII http(s), with no userinfo, no percent-encoding or other oddity in the
  host part, and a host that is *exactly* one of ``fetch.allowed_hosts`` (so a trailing dot, an
  IDN look-alike, an integer or IPv6 form of an address, or ``file://`` never passes); the
  connection goes to that very host name and port, never to a re-parsed form of it;
- that origin's robots.txt (read once per origin) allows it for our User-Agent;
- the per-host delay (``fetch.delay_s``, raised by robots.txt ``Crawl-delay``/``Request-rate``)
  has passed.

Redirects are followed here, hop by hop, up to `MAX_REDIRECTS`, so none of that can be skipped
by a ``Location`` header. An ``Authorization`` value is bound to one https origin (scheme, host
and port exactly): it is sent on a hop to that origin and nowhere else, never over plain http.
A download is bounded three ways: ``fetch.timeout_s`` per read, ``fetch.deadline_s`` in total
(redirects and retries included; a watchdog closes the socket, so a server dripping a byte per
second cannot hold it open), and ``fetch.max_bytes`` while streaming.

Nothing here reads finstage params or the store: `HttpClient` takes any object with the
`Policy` attributes, so another component can reuse it as it is.
"""

from __future__ import annotations

import email.utils
import http.client
import socket
import ssl
import threading
import time
import urllib.robotparser
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

RETRY_STATUS = {408, 429, 500, 502, 503, 504}
REDIRECT_STATUS = {301, 302, 303, 307, 308}
MAX_REDIRECTS = 5
ROBOTS_MAX_BYTES = 1_000_000
DEFAULT_PORT = {"http": 80, "https": 443}


class FetchFailure(Exception):
    """One source could not be fetched; recorded in the index, never fatal."""

    def __init__(self, message: str, code: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.code = code
        self.retry_after = retry_after


class DeadlineExceeded(FetchFailure):
    """The download ran past its total deadline; retrying would only run past it again."""


class Policy(Protocol):
    """What `HttpClient` needs to know (``FetchConfig`` has these attributes)."""

    allowed_hosts: list[str]
    user_agent: str
    timeout_s: float  # per read (and per connect)
    deadline_s: float  # per download, redirects and retries included
    retries: int
    backoff_s: float
    max_backoff_s: float
    delay_s: float
    max_bytes: int


@dataclass(frozen=True)
class Origin:
    """Where a request goes: the unit robots.txt and credentials are bound to."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def name(self) -> str:
        """A file-name-safe key (``robots/<name>.txt`` in the store)."""
        return f"{self.host.replace(':', '_')}_{self.port}"


@dataclass(frozen=True)
class Target:
    """A checked URL: its origin and the request target (path and query) to send there."""

    url: str
    origin: Origin
    path: str


def parse_origin(key: str) -> Origin:
    """An ``auth_env`` key as the origin it names: ``host`` alone means ``https://host:443``
    (the original form), ``https://host[:port]`` one origin exactly. Raises ValueError."""
    text = key if "://" in key else f"https://{key}"
    parts = urlsplit(text)
    if parts.scheme != "https":
        raise ValueError(
            "must name an https origin: an Authorization value is never sent over plain http"
        )
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValueError("must not carry userinfo")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("must be a host or https://host[:port], with no path")
    try:
        port = parts.port or DEFAULT_PORT["https"]
    except ValueError as err:
        raise ValueError(f"has an invalid port ({err})") from None
    host = parts.hostname or ""
    if not host or not host.isascii():
        raise ValueError("must name an ASCII host")
    return Origin("https", host, port)


def check_url(url: str, allowed_hosts: Collection[str]) -> Target:
    """``url`` as a `Target`, or `FetchFailure` saying why it may not be requested."""
    if not url.isascii() or any(c.isspace() or c == "\\" or ord(c) < 32 for c in url):
        raise FetchFailure(f"{url!r}: not a plain ASCII URL")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise FetchFailure(f"{url!r}: not a valid URL ({err})") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORT:
        raise FetchFailure(f"{url!r}: scheme {parts.scheme!r} is not http or https")
    if "@" in parts.netloc:
        raise FetchFailure(f"{url!r}: credentials in the URL (userinfo) are not allowed")
    if "%" in parts.netloc:
        raise FetchFailure(f"{url!r}: percent-encoding in the host is not allowed")
    host = parts.hostname or ""
    if host not in {h.lower() for h in allowed_hosts}:
        raise FetchFailure(f"{url!r}: host {host!r} is not in fetch.allowed_hosts")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(url.split("#", 1)[0], Origin(scheme, host, port or DEFAULT_PORT[scheme]), path)


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


class _Deadline:
    """The end of one download's time; waits we impose ourselves for politeness extend it."""

    def __init__(self, clock: Callable[[], float], seconds: float, what: str):
        self.clock, self.seconds, self.what = clock, seconds, what
        self.end = clock() + seconds

    def remaining(self) -> float:
        return self.end - self.clock()

    def extend(self, seconds: float) -> None:
        self.end += seconds

    def failure(self) -> DeadlineExceeded:
        return DeadlineExceeded(
            f"{self.what} took longer than the deadline of {self.seconds:g}s "
            f"(fetch.deadline_s); abandoned"
        )


@dataclass
class _Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes | None  # None for a redirect


class HttpClient:
    """Polite GETs: allowed hosts, robots.txt and per-host delay on every hop, retries with
    backoff, total deadline, byte limit, origin-bound credentials."""

    def __init__(
        self,
        policy: Policy,
        auth: Mapping[Origin, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        ssl_context: ssl.SSLContext | None = None,
    ):
        """``auth`` maps an https origin to its Authorization value (http origins are ignored);
        ``ssl_context`` replaces the system trust store (tests pass one for a loopback cert)."""
        self.policy = policy
        self.allowed = frozenset(h.lower() for h in policy.allowed_hosts)
        self.auth = {o: v for o, v in (auth or {}).items() if o.scheme == "https"}
        self.sleep, self.clock = sleep, clock
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.robots: dict[Origin, urllib.robotparser.RobotFileParser] = {}
        self.robots_text: dict[str, str | None] = {}  # Origin.name -> robots.txt as read
        self.robots_error: dict[Origin, str] = {}
        self.last_request: dict[str, float] = {}  # per host
        self.requests = 0

    def get(self, url: str) -> tuple[bytes, dict[str, Any]]:
        """The body of ``url`` and its HTTP metadata; raises `FetchFailure`."""
        deadline = _Deadline(self.clock, self.policy.deadline_s, url)
        body, target, status, headers = self._follow(url, self.policy.max_bytes, deadline, True)
        return body, {
            "final_url": target.url,
            "http_status": status,
            "content_type": headers.get("Content-Type"),
            "etag": headers.get("ETag"),
            "last_modified": headers.get("Last-Modified"),
        }

    def _follow(
        self, url: str, limit: int, deadline: _Deadline, robots: bool
    ) -> tuple[bytes, Target, int, http.client.HTTPMessage]:
        """GET ``url``, following redirects hop by hop, every hop checked."""
        current = url
        for hop in range(MAX_REDIRECTS + 1):
            try:
                target = check_url(current, self.allowed)
            except FetchFailure as err:
                message = f"{url} redirects to {current}: {err}" if hop else str(err)
                raise FetchFailure(message) from None
            if robots:
                self._check_robots(target, url if hop else None)
            response = self._with_retries(target, limit, deadline)
            if response.body is not None:
                return response.body, target, response.status, response.headers
            location = response.headers.get("Location")
            if not location:
                raise FetchFailure(f"HTTP {response.status} for {current} without a Location")
            current = urljoin(target.url, location.strip())
        raise FetchFailure(f"{url}: more than {MAX_REDIRECTS} redirects; not followed")

    def _check_robots(self, target: Target, redirected_from: str | None) -> None:
        parser = self._robots(target.origin)
        via = f" (redirected from {redirected_from})" if redirected_from else ""
        if target.origin in self.robots_error:
            raise FetchFailure(
                f"robots.txt of {target.origin} could not be read "
                f"({self.robots_error[target.origin]}); not fetching {target.url}{via}"
            )
        if not parser.can_fetch(self.policy.user_agent, target.url):
            raise FetchFailure(
                f"robots.txt of {target.origin} disallows {target.url} for this user agent{via}"
            )

    def _robots(self, origin: Origin) -> urllib.robotparser.RobotFileParser:
        if origin in self.robots:
            return self.robots[origin]
        parser = urllib.robotparser.RobotFileParser()
        text = None
        url = f"{origin}/robots.txt"
        try:
            deadline = _Deadline(self.clock, self.policy.deadline_s, url)
            body, *_ = self._follow(url, ROBOTS_MAX_BYTES, deadline, robots=False)
            text = body.decode("utf-8", errors="replace")
            parser.parse(text.splitlines())
        except FetchFailure as err:
            if err.code in (401, 403):
                parser.disallow_all = True  # the convention urllib.robotparser follows
            elif err.code is not None and 400 <= err.code < 500:
                parser.allow_all = True  # no robots.txt: everything is allowed
            else:
                self.robots_error[origin] = str(err)
                parser.disallow_all = True
        self.robots[origin] = parser
        self.robots_text[origin.name] = text
        return parser

    def _delay(self, origin: Origin) -> float:
        delay = self.policy.delay_s
        robots = self.robots.get(origin)
        if robots is not None:
            crawl = robots.crawl_delay(self.policy.user_agent)
            rate = robots.request_rate(self.policy.user_agent)
            if crawl:
                delay = max(delay, float(crawl))
            if rate and rate.requests:
                delay = max(delay, rate.seconds / rate.requests)
        return delay

    def _with_retries(self, target: Target, limit: int, deadline: _Deadline) -> _Response:
        attempts = self.policy.retries + 1
        for attempt in range(attempts):
            host = target.origin.host
            last, delay = self.last_request.get(host), self._delay(target.origin)
            if last is not None and self.clock() - last < delay:
                wait = delay - (self.clock() - last)
                self.sleep(wait)
                deadline.extend(wait)  # our own politeness is not the server's slowness
            self.last_request[host] = self.clock()
            self.requests += 1
            try:
                return self._exchange(target, limit, deadline)
            except DeadlineExceeded:
                raise
            except FetchFailure as err:
                if err.code is None:  # a refusal of ours (size, status): asking again won't help
                    raise
                if err.code not in RETRY_STATUS or attempt == attempts - 1:
                    raise FetchFailure(
                        f"{err} after {attempt + 1} attempt(s)", err.code, err.retry_after
                    ) from None
                failure, wait_for = str(err), err.retry_after
            except (OSError, http.client.HTTPException) as err:
                if attempt == attempts - 1:
                    raise FetchFailure(
                        f"{target.url} failed after {attempt + 1} attempt(s): {err}"
                    ) from None
                failure, wait_for = f"{type(err).__name__}: {err}", None
            backoff = self.policy.backoff_s * (2**attempt)
            pause = min(self.policy.max_backoff_s, max(backoff, wait_for or 0.0))
            if pause >= deadline.remaining():
                raise deadline.failure()
            print(
                f"fetch: {failure} for {target.url}; "
                f"retry {attempt + 1}/{self.policy.retries} in {pause:.1f}s"
            )
            self.sleep(pause)
        raise AssertionError("unreachable")

    def _exchange(self, target: Target, limit: int, deadline: _Deadline) -> _Response:
        """One request and its response, within the deadline; raises `FetchFailure` (with the
        status code for an HTTP error), `OSError` or `http.client.HTTPException`."""
        remaining = deadline.remaining()
        if remaining <= 0:
            raise deadline.failure()
        origin = target.origin
        timeout = min(self.policy.timeout_s, remaining)
        conn: http.client.HTTPConnection
        if origin.scheme == "https":
            conn = http.client.HTTPSConnection(
                origin.host, origin.port, timeout=timeout, context=self.ssl_context
            )
        else:
            conn = http.client.HTTPConnection(origin.host, origin.port, timeout=timeout)
        expired, sockets = threading.Event(), []
        watchdog = threading.Timer(remaining, _abort, (sockets, expired))
        watchdog.daemon = True
        watchdog.start()
        try:
            conn.connect()
            # held here: http.client drops conn.sock once the response owns the stream
            sockets.append(conn.sock)
            if expired.is_set():  # the watchdog fired before it could see the socket
                raise deadline.failure()
            headers = {"User-Agent": self.policy.user_agent}
            if origin in self.auth:  # https only, this exact origin only
                headers["Authorization"] = self.auth[origin]
            conn.request("GET", target.path, headers=headers)
            response = conn.getresponse()
            if response.status in REDIRECT_STATUS:
                return _Response(response.status, response.headers, None)
            if response.status >= 400:
                raise FetchFailure(
                    f"HTTP {response.status} for {target.url}",
                    response.status,
                    _retry_after(response.headers.get("Retry-After")),
                )
            if response.status != 200:
                raise FetchFailure(f"HTTP {response.status} for {target.url}: not a file")
            return _Response(200, response.headers, _read_body(response, target.url, limit))
        except (OSError, http.client.HTTPException):
            if expired.is_set():
                raise deadline.failure() from None
            raise
        finally:
            watchdog.cancel()
            conn.close()
            if expired.is_set():
                raise deadline.failure()


def _read_body(response: http.client.HTTPResponse, url: str, limit: int) -> bytes:
    """The body, read one system call at a time so the byte limit holds while streaming."""
    length = response.headers.get("Content-Length")
    if length and length.strip().isdigit() and int(length) > limit:
        raise FetchFailure(f"{url} is {length} bytes, over the limit of {limit} (fetch.max_bytes)")
    chunks, size = [], 0
    while chunk := response.read1(1 << 16):
        size += len(chunk)
        if size > limit:
            raise FetchFailure(f"{url} is over the limit of {limit} bytes (fetch.max_bytes)")
        chunks.append(chunk)
    if response.length:  # the server closed early: fewer bytes than Content-Length
        raise http.client.IncompleteRead(b"".join(chunks), response.length)
    return b"".join(chunks)


def _abort(sockets: list[socket.socket], expired: threading.Event) -> None:
    """The watchdog: shut the socket down under a blocked read (the deadline has passed).
    The plain-socket shutdown, even for TLS: it only wakes the reader, which then fails."""
    expired.set()
    for sock in sockets:
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass
