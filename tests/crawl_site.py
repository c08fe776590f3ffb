"""A loopback web site for the crawl tests: routes scripted per test, every request logged
(when, method, path, headers, the status sent), PDFs served with an ETag that answers a
matching If-None-Match with 304."""

from __future__ import annotations

import hashlib
import http.server
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

Handler = http.server.BaseHTTPRequestHandler
Route = Callable[[Handler], None]


@dataclass
class Hit:
    at: float
    method: str
    host: str
    path: str
    headers: dict[str, str]
    status: int = 0


def etag(body: bytes) -> str:
    return f'"{hashlib.sha256(body).hexdigest()[:16]}"'


@dataclass
class Site:
    """Routes: path -> PDF bytes, an HTML string, or a callable that answers itself."""

    bind: str = "127.0.0.1"
    routes: dict[str, bytes | str | Route] = field(default_factory=dict)
    robots: str | None = None  # None: 404
    hits: list[Hit] = field(default_factory=list)

    def __post_init__(self) -> None:
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def send_response(self, code: int, message: str | None = None) -> None:
                self.hit.status = code
                super().send_response(code, message)

            def do_GET(self) -> None:  # noqa: N802
                host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
                self.hit = Hit(time.monotonic(), "GET", host, self.path, dict(self.headers))
                site.hits.append(self.hit)
                if self.path == "/robots.txt" and site.robots is not None:
                    return self.reply(site.robots.encode(), "text/plain")
                route = site.routes.get(self.path)
                if route is None:
                    return self.send_error(404)
                if isinstance(route, str):
                    return self.reply(route.encode(), "text/html; charset=utf-8")
                if isinstance(route, bytes):
                    if self.headers.get("If-None-Match") == etag(route):
                        self.send_response(304)
                        self.send_header("ETag", etag(route))
                        self.end_headers()
                        return None
                    return self.reply(route, "application/pdf", etag(route))
                return route(self)

            def reply(self, body: bytes, content_type: str, tag: str | None = None) -> None:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                if tag:
                    self.send_header("ETag", tag)
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer((self.bind, 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def url(self, path: str, host: str | None = None) -> str:
        return f"http://{host or self.bind}:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def gets(self, path: str, status: int | None = None) -> list[Hit]:
        """The GETs of ``path`` (answered with ``status``, if given)."""
        return [h for h in self.hits if h.path == path and status in (None, h.status)]

    def full_gets(self, path: str) -> int:
        """GETs of ``path`` answered with the whole body (200), not a 304."""
        return len(self.gets(path, 200))


def page(*links: tuple[str, str]) -> str:
    """An HTML page with these (href, anchor text) links."""
    body = "".join(f'<li><a href="{href}">{text}</a></li>' for href, text in links)
    return f"<html><body><ul>{body}</ul></body></html>"


def status(code: int, headers: dict[str, str] | None = None) -> Route:
    def route(handler: Handler) -> None:
        handler.send_response(code)
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return route


def redirect(location: str) -> Route:
    return status(302, {"Location": location})
