"""Origins and the host allowlist check, shared by the params check and the crawler.

An origin (scheme, host, port) is what robots.txt and an ``Authorization`` value are bound to.
`check_url` is the one rule every request the crawler sends must pass — each redirect hop
included — so it lives apart from both the params (which name origins) and Scrapy (which only
calls it).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORT = {"http": 80, "https": 443}


class RefusedUrl(ValueError):
    """A URL that may not be requested; the message says why."""


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


def check_url(url: str, allowed_hosts: Collection[str]) -> Origin:
    """The origin ``url`` goes to, or `RefusedUrl` saying why it may not be requested.

    The host must be *exactly* one of ``allowed_hosts``: a trailing dot, an IDN look-alike, an
    integer or IPv6 form of an address, userinfo or percent-encoding never pass."""
    if not url.isascii() or any(c.isspace() or c == "\\" or ord(c) < 32 for c in url):
        raise RefusedUrl(f"{url!r}: not a plain ASCII URL")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise RefusedUrl(f"{url!r}: not a valid URL ({err})") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORT:
        raise RefusedUrl(f"{url!r}: scheme {parts.scheme!r} is not http or https")
    if "@" in parts.netloc:
        raise RefusedUrl(f"{url!r}: credentials in the URL (userinfo) are not allowed")
    if "%" in parts.netloc:
        raise RefusedUrl(f"{url!r}: percent-encoding in the host is not allowed")
    host = parts.hostname or ""
    if host not in {h.lower() for h in allowed_hosts}:
        raise RefusedUrl(f"{url!r}: host {host!r} is not in fetch.allowed_hosts")
    return Origin(scheme, host, port or DEFAULT_PORT[scheme])
