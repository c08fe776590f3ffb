"""Fetch over HTTP(S) must not leak credentials, nor fetch what it was not allowed to.

Each test drives the fetch stage's public behaviour (``fetch`` and the store it writes) against
loopback servers the test starts, so the tests stay valid whatever HTTP client fetch uses
inside (a later one may be Scrapy). What they pin down:

- ``Authorization`` goes only to the exact https origin it is configured for: never over plain
  http, never to another port or host a redirect names;
- every hop of a redirect passes the host allowlist and that host's robots.txt;
- a download has a time limit for the whole response (a drip-feeding server cannot hold it),
  and a byte limit while streaming.

The crawl runs in a child process, which trusts the test's certificate through
``SSL_CERT_FILE`` (OpenSSL's default verify paths), as it would a corporate CA.
"""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from finstage.corpus.fetch import fetch
from finstage.corpus.manifest import ManifestError
from finstage.pdfstore import read_index

from .test_fetch import fetch_config, pdf, write_manifest

Route = Callable[[http.server.BaseHTTPRequestHandler], None]


# ---------------------------------------------------------------------------------------------
# loopback servers (http and https)


def make_tls(folder: Path) -> tuple[ssl.SSLContext, Path]:
    """The server context for a self-signed certificate for 127.0.0.1 and localhost, and the
    certificate's file for a client to trust."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "finstage test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    return server, cert_file


class Server:
    """A loopback server (plain or TLS) whose routes each test sets; it records every request's
    host, path and Authorization header."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.routes: dict[str, Route | bytes] = {}
        self.robots: dict[str, str] = {}  # Host name -> robots.txt; absent: allow all
        self.hits: Counter[tuple[str, str]] = Counter()
        self.auth: list[tuple[str, str | None]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
                server.hits[(host, self.path)] += 1
                server.auth.append((self.path, self.headers.get("Authorization")))
                if self.path == "/robots.txt":
                    if host not in server.robots:
                        return self.send_error(404)
                    return self.body(server.robots[host].encode(), "text/plain")
                route = server.routes.get(self.path)
                if route is None:
                    return self.send_error(404)
                if isinstance(route, bytes):
                    return self.body(route, "application/pdf")
                return route(self)

            def body(self, data: bytes, content_type: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.scheme = "https" if tls else "http"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def tokens(self) -> list[str]:
        return [value for _, value in self.auth if value is not None]


def redirect(location: str) -> Route:
    def route(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return route


@pytest.fixture
def servers(tmp_path, monkeypatch) -> Iterator[tuple[Server, Server, Server]]:
    """(https A, https B, plain http C); the crawl child trusts A's and B's certificate."""
    server_tls, cert_file = make_tls(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    started = [Server(server_tls), Server(server_tls), Server()]
    yield tuple(started)
    for s in started:
        s.close()


def http_config(**changes):
    base = dict(
        allowed_hosts=["127.0.0.1"],
        timeout_s=5.0,
        deadline_s=30.0,
        retries=0,
        backoff_s=0.0,
        max_backoff_s=0.0,
        delay_s=0.0,
        max_bytes=30_000,
        cache_dir="cache",  # under the base_dir each test passes: its tmp_path
    )
    return fetch_config(**{**base, **changes})


def run_fetch(tmp_path: Path, urls: list[str], cfg) -> tuple[dict, dict[str, dict]]:
    manifest = write_manifest(tmp_path / "m.yaml", [{"url": u} for u in urls])
    store = tmp_path / "store"
    report = fetch(manifest, store, cfg, base_dir=tmp_path, progress=False)
    return report, {row["source"]: row for row in read_index(store, statuses=None)}


# ---------------------------------------------------------------------------------------------
# Authorization


def test_token_goes_only_to_its_https_origin(servers, tmp_path, monkeypatch):
    """Configured for https://127.0.0.1:<A>, the token reaches A and nothing a redirect from A
    names: not plain http on another port (C), not https on another port (B), not another host
    name on A itself."""
    a, b, c = servers
    monkeypatch.setenv("FINSTAGE_TEST_TOKEN", "Bearer s3cret")
    a.routes = {
        "/auth.pdf": pdf(1),
        "/to-http.pdf": redirect(c.url("/x.pdf")),
        "/to-port.pdf": redirect(b.url("/x.pdf")),
        "/to-host.pdf": redirect(a.url("/x.pdf", host="localhost")),
        "/x.pdf": pdf(2),
    }
    b.routes = c.routes = {"/x.pdf": pdf(2)}
    cfg = http_config(
        allowed_hosts=["127.0.0.1", "localhost"],
        auth_env={f"https://127.0.0.1:{a.port}": "FINSTAGE_TEST_TOKEN"},
    )
    paths = ["/auth.pdf", "/to-http.pdf", "/to-port.pdf", "/to-host.pdf"]
    report, rows = run_fetch(tmp_path, [a.url(p) for p in paths], cfg)

    assert rows[a.url("/auth.pdf")]["status"] == "stored"
    assert ("/auth.pdf", "Bearer s3cret") in a.auth  # the token does reach its origin
    assert c.hits[("127.0.0.1", "/x.pdf")] == 1 and c.tokens() == []
    assert b.hits[("127.0.0.1", "/x.pdf")] == 1 and b.tokens() == []
    assert a.hits[("localhost", "/x.pdf")] == 1
    sent = [p for p, v in a.auth if v is not None and p != "/robots.txt"]
    assert sent == paths  # the first hops only (on A), never /x.pdf (on localhost)


def test_host_key_means_https_port_443_and_plain_http_never_carries_the_token(
    servers, tmp_path, monkeypatch
):
    """A bare host key (the old form) names https://host:443 only: a plain-http URL on that host,
    and a redirect from https to plain http, never carry the token."""
    a, _, c = servers
    monkeypatch.setenv("FINSTAGE_TEST_TOKEN", "Bearer s3cret")
    c.routes = {"/x.pdf": pdf(2)}
    a.routes = {"/to-http.pdf": redirect(c.url("/x.pdf"))}
    cfg = http_config(auth_env={"127.0.0.1": "FINSTAGE_TEST_TOKEN"})
    report, rows = run_fetch(tmp_path, [c.url("/x.pdf"), a.url("/to-http.pdf")], cfg)
    assert c.hits[("127.0.0.1", "/x.pdf")] == 2 and report["outcomes"]["failed"] == 0
    assert c.tokens() == [] and a.tokens() == []


def test_plain_http_origin_cannot_be_given_a_token():
    """An auth_env key naming an http:// origin is a params error, not a silent cleartext send."""
    from finstage.config import ParamsError

    with pytest.raises(ParamsError, match=r"fetch.auth_env.*plain http"):
        http_config(auth_env={"http://127.0.0.1:8080": "FINSTAGE_TEST_TOKEN"})


# ---------------------------------------------------------------------------------------------
# redirects: allowlist and robots.txt on every hop


def test_redirect_into_a_robots_disallowed_path_is_refused(servers, tmp_path):
    """robots.txt is checked for the redirect target, on its own host too: the disallowed file is
    never requested, and the refusal is recorded."""
    _, _, c = servers
    c.robots = {
        "127.0.0.1": "User-agent: *\nDisallow: /private/\n",
        "localhost": "User-agent: *\nDisallow: /other/\n",
    }
    c.routes = {
        "/go.pdf": redirect("/private/secret.pdf"),
        "/go-other.pdf": redirect(c.url("/other/secret.pdf", host="localhost")),
        "/private/secret.pdf": pdf(3),
        "/other/secret.pdf": pdf(3),
    }
    cfg = http_config(allowed_hosts=["127.0.0.1", "localhost"])
    report, rows = run_fetch(tmp_path, [c.url("/go.pdf"), c.url("/go-other.pdf")], cfg)

    assert report["outcomes"]["failed"] == 2
    for path in ("/go.pdf", "/go-other.pdf"):
        assert "robots.txt" in rows[c.url(path)]["reason"]
    assert c.hits[("127.0.0.1", "/private/secret.pdf")] == 0
    assert c.hits[("localhost", "/other/secret.pdf")] == 0
    assert c.hits[("localhost", "/robots.txt")] == 1  # the second host's robots.txt was read


REDIRECT_TRICKS = [
    "http://localhost@127.0.0.1:{port}/docs/a.pdf",  # userinfo
    "http://127.0.0.1.:{port}/docs/a.pdf",  # trailing dot
    "http://2130706433:{port}/docs/a.pdf",  # the same address as an integer
    "http://[::ffff:127.0.0.1]:{port}/docs/a.pdf",  # IPv4-mapped IPv6 literal
    "http://127%2e0%2e0%2e1:{port}/docs/a.pdf",  # percent-encoded dots
    "file:///etc/passwd",
]


def test_redirect_tricks_do_not_pass_the_allowlist(servers, tmp_path):
    """One crawl, one redirect per trick: each fails, and the file it aims at is never read."""
    _, _, c = servers
    c.routes = {
        f"/go{i}.pdf": redirect(t.format(port=c.port)) for i, t in enumerate(REDIRECT_TRICKS)
    }
    c.routes["/docs/a.pdf"] = pdf(0)
    urls = [c.url(f"/go{i}.pdf") for i in range(len(REDIRECT_TRICKS))]
    report, rows = run_fetch(tmp_path, urls, http_config())
    assert report["outcomes"]["failed"] == len(urls)
    assert all(rows[u]["status"] == "failed" for u in urls)
    assert sum(n for (_, path), n in c.hits.items() if path == "/docs/a.pdf") == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost@127.0.0.1:{port}/docs/a.pdf",
        "http://127.0.0.1.:{port}/docs/a.pdf",
        "http://2130706433:{port}/docs/a.pdf",
        "http://0x7f.0.0.1:{port}/docs/a.pdf",
        "http://[::ffff:127.0.0.1]:{port}/docs/a.pdf",
        "http://127%2e0%2e0%2e1:{port}/docs/a.pdf",
        "http://１２７.０.０.１:{port}/docs/a.pdf",  # fullwidth digits (IDNA maps them)
        "file://127.0.0.1/docs/a.pdf",
    ],
)
def test_manifest_url_tricks_fail_before_any_request(servers, tmp_path, url):
    _, _, c = servers
    c.routes = {"/docs/a.pdf": pdf(0)}
    manifest = write_manifest(tmp_path / "m.yaml", [{"url": url.format(port=c.port)}])
    with pytest.raises(ManifestError):
        fetch(manifest, tmp_path / "store", http_config(), progress=False)
    assert sum(c.hits.values()) == 0


def test_too_many_redirects_fail(servers, tmp_path):
    _, _, c = servers
    c.routes = {"/loop.pdf": redirect("/loop.pdf")}
    report, rows = run_fetch(tmp_path, [c.url("/loop.pdf")], http_config())
    assert report["outcomes"]["failed"] == 1 and "redirect" in rows[c.url("/loop.pdf")]["reason"]
    assert c.hits[("127.0.0.1", "/loop.pdf")] <= 11


# ---------------------------------------------------------------------------------------------
# deadline and byte limit


def drip(interval: float, total: int, chunked: bool = False) -> Route:
    """A body sent one byte every ``interval`` seconds (or endless chunks as fast as possible)."""

    def route(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/pdf")
        if chunked:
            handler.send_header("Transfer-Encoding", "chunked")
        else:
            handler.send_header("Content-Length", str(total))
        handler.end_headers()
        try:
            for _ in range(total):
                if chunked:
                    handler.wfile.write(b"4000\r\n" + b"0" * 0x4000 + b"\r\n")
                else:
                    handler.wfile.write(b"%")
                    handler.wfile.flush()
                    time.sleep(interval)
        except OSError:
            pass  # the client hung up, as it should

    return route


def test_slow_drip_download_is_cut_off_at_the_deadline(servers, tmp_path):
    """A server sending a byte every 0.1 s for 20 s: each attempt is cut at timeout_s (1 s, the
    whole response), one retry starts within deadline_s (1.5 s), none after it."""
    _, _, c = servers
    c.routes = {"/slow.pdf": drip(0.1, 200)}
    start = time.monotonic()
    report, rows = run_fetch(
        tmp_path, [c.url("/slow.pdf")], http_config(timeout_s=1.0, deadline_s=1.5, retries=2)
    )
    elapsed = time.monotonic() - start
    assert report["outcomes"]["failed"] == 1 and "timeout" in rows[c.url("/slow.pdf")]["reason"]
    assert elapsed < 8.0  # 20 s of drip; two attempts plus the crawl's start-up
    assert c.hits[("127.0.0.1", "/slow.pdf")] == 2  # the third try would start past the deadline


def test_max_bytes_is_enforced_while_streaming(servers, tmp_path):
    """An endless chunked body (no Content-Length) is abandoned once it passes fetch.max_bytes."""
    _, _, c = servers
    c.routes = {"/endless.pdf": drip(0.0, 10_000, chunked=True)}
    start = time.monotonic()
    report, rows = run_fetch(tmp_path, [c.url("/endless.pdf")], http_config(max_bytes=100_000))
    assert "max_bytes" in rows[c.url("/endless.pdf")]["reason"]
    assert time.monotonic() - start < 10.0
