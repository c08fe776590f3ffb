"""``fetch:`` in params.yaml: which hosts may be contacted, how politely, and what a usable PDF is.

Its own module because both the crawler (in its own process) and the fetch orchestration read it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from finstage.config import require
from finstage.corpus.manifest import MAX_DEPTH
from finstage.corpus.origin import parse_origin

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class FetchConfig:
    """``fetch:`` in params.yaml."""

    allowed_hosts: list[str]  # http(s) hosts fetch may contact
    user_agent: str
    timeout_s: float  # one attempt, whole response (Scrapy DOWNLOAD_TIMEOUT): a drip cannot hold it
    deadline_s: float  # per URL, retries included: no retry starts after it
    retries: int  # extra attempts after a 5xx/429/timeout/connection error
    backoff_s: float  # first retry waits this, then doubles
    max_backoff_s: float  # cap on one wait, Retry-After included
    delay_s: float  # minimum gap between two requests to one host (robots Crawl-delay raises it)
    autothrottle_target: float  # Scrapy AutoThrottle target concurrency per host (<= 1: polite)
    depth: int  # links followed from a manifest seed that does not set its own depth
    # what reruns reuse, outside DVC's outputs: the crawl's bodies by sha256, per-URL validators
    # and resumable job; local files' identities, cached copies and verdicts (fetchcache)
    cache_dir: str
    max_bytes: int  # larger files are quarantined (local) or abandoned (download)
    max_pages: int  # a longer document is stored and capped to its first max_pages pages
    allow_owner_password: bool  # accept PDFs that open without a password but carry one
    # https origin -> NAME of the env var with its Authorization value; a bare host means
    # https://host:443. The value is sent to that exact origin only, never over plain http.
    auth_env: dict[str, str]

    def check(self, where: str) -> None:
        for i, host in enumerate(self.allowed_hosts):
            require(
                bool(host) and "/" not in host and ":" not in host and host == host.strip().lower(),
                f"{where}.allowed_hosts[{i}]",
                "must be a lower-case host name such as www.fsa.go.jp "
                f"(no scheme, port or path), got {host!r}",
            )
        require(
            bool(self.user_agent.strip()),
            f"{where}.user_agent",
            "must not be empty: say who crawls and how to reach you",
        )
        require(self.timeout_s > 0, f"{where}.timeout_s", f"must be > 0, got {self.timeout_s}")
        require(
            self.deadline_s >= self.timeout_s,
            f"{where}.deadline_s",
            f"must be >= {where}.timeout_s ({self.timeout_s}), got {self.deadline_s}",
        )
        require(
            0 <= self.retries <= 20,
            f"{where}.retries",
            f"must be between 0 and 20, got {self.retries}",
        )
        require(self.backoff_s >= 0, f"{where}.backoff_s", f"must be >= 0, got {self.backoff_s}")
        require(
            self.max_backoff_s >= self.backoff_s,
            f"{where}.max_backoff_s",
            f"must be >= {where}.backoff_s ({self.backoff_s}), got {self.max_backoff_s}",
        )
        require(self.delay_s >= 0, f"{where}.delay_s", f"must be >= 0, got {self.delay_s}")
        require(
            0 < self.autothrottle_target <= 16,
            f"{where}.autothrottle_target",
            f"must be in (0, 16] (1.0: one request in flight per host), "
            f"got {self.autothrottle_target}",
        )
        require(
            isinstance(self.depth, int) and 0 <= self.depth <= MAX_DEPTH,
            f"{where}.depth",
            f"must be an integer 0..{MAX_DEPTH}, got {self.depth!r}",
        )
        require(
            bool(self.cache_dir.strip()),
            f"{where}.cache_dir",
            "must name a folder outside DVC's outputs (e.g. .finstage/fetch) for what reruns reuse",
        )
        require(
            self.max_bytes >= 1024,
            f"{where}.max_bytes",
            f"must be at least 1024, got {self.max_bytes}",
        )
        require(
            self.max_pages >= 1, f"{where}.max_pages", f"must be at least 1, got {self.max_pages}"
        )
        for key, var in self.auth_env.items():
            try:
                host = parse_origin(key).host
            except ValueError as err:
                host = ""
                require(False, f"{where}.auth_env.{key}", str(err))
            require(
                host in self.allowed_hosts,
                f"{where}.auth_env.{key}",
                f"names a host that is not in {where}.allowed_hosts",
            )
            require(
                bool(_ENV_NAME.match(var)),
                f"{where}.auth_env.{key}",
                "must be the NAME of an environment variable "
                f"(the secret stays out of params), got {var!r}",
            )
