"""The Scrapy settings of a fetch crawl, from ``fetch:`` params (each checked in Scrapy 2.19's
own source: default_settings.py and the middleware that reads it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from finstage.corpus.fetchconfig import FetchConfig

MIDDLEWARES = "finstage.corpus.crawl.middlewares"
RETRY_STATUS = [408, 429, 500, 502, 503, 504]
MAX_REDIRECTS = 5
MAX_THROTTLE_DELAY_S = 60.0


def scrapy_settings(cfg: FetchConfig, jobdir: Path, log_level: str) -> dict[str, Any]:
    return {
        "USER_AGENT": cfg.user_agent,
        "ROBOTSTXT_OBEY": True,
        "COOKIES_ENABLED": False,  # also keeps tldextract's public-suffix lookup from running
        "TELNETCONSOLE_ENABLED": False,
        "DOWNLOAD_VERIFY_CERTIFICATES": True,  # Scrapy's default trusts any certificate
        "HTTPCACHE_ENABLED": False,  # bodies live once, in the crawl cache (cache.py says why)
        "JOBDIR": str(jobdir),
        "LOG_LEVEL": log_level,
        # one connection per host; a floor between two requests, AutoThrottle above it
        "CONCURRENT_REQUESTS": 16,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 1,
        "DOWNLOAD_DELAY": cfg.delay_s,
        "DOWNLOAD_DELAY_JITTER": 0,  # a random jitter would go below the floor
        "AUTOTHROTTLE_ENABLED": True,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": cfg.autothrottle_target,
        "AUTOTHROTTLE_START_DELAY": cfg.delay_s,
        "AUTOTHROTTLE_MAX_DELAY": max(MAX_THROTTLE_DELAY_S, cfg.delay_s),
        # bounds: one attempt's whole response, its size (Content-Length or streamed)
        "DOWNLOAD_TIMEOUT": cfg.timeout_s,
        "DOWNLOAD_MAXSIZE": cfg.max_bytes,
        "DOWNLOAD_WARNSIZE": 0,
        "REDIRECT_MAX_TIMES": MAX_REDIRECTS,
        "RETRY_TIMES": cfg.retries,
        "RETRY_HTTP_CODES": RETRY_STATUS,
        "DEPTH_LIMIT": 0,  # each seed's own depth is applied by the spider
        "DOWNLOADER_MIDDLEWARES": {
            "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
            "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
            f"{MIDDLEWARES}.AllowedHosts": 10,
            f"{MIDDLEWARES}.PoliteRobots": 100,
            f"{MIDDLEWARES}.Backoff": 550,
            f"{MIDDLEWARES}.OriginAuth": 990,
        },
        "FINSTAGE_ALLOWED_HOSTS": list(cfg.allowed_hosts),
        "FINSTAGE_BACKOFF_S": cfg.backoff_s,
        "FINSTAGE_MAX_BACKOFF_S": cfg.max_backoff_s,
        "FINSTAGE_DEADLINE_S": cfg.deadline_s,
        "FINSTAGE_AUTH_ENV": dict(cfg.auth_env),  # variable names; OriginAuth reads the values
    }
