"""Fetch: validation and quarantine, dedup, manifest errors, and polite HTTP against 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.server
import importlib.util
import json
import tempfile
import threading
from collections import Counter
from pathlib import Path

import pymupdf
import pytest

from finstage.config import ParamsError
from finstage.corpus.fetch import FetchError, fetch, format_report
from finstage.corpus.fetchconfig import FetchConfig
from finstage.corpus.generate import CorpusConfig, corrupt_bytes, generate_document
from finstage.corpus.manifest import ManifestError, load_manifest
from finstage.pdfstore import StoreError, read_index

from .conftest import repo_params
from .repo_configs import repo_config, repo_section

ROOT = Path(__file__).resolve().parents[1]


def fetch_config(**changes) -> FetchConfig:
    """The repository's fetch params; the cache is a fresh folder unless a test passes one (the
    repository's own, under .finstage/, is never touched by tests)."""
    changes.setdefault("cache_dir", tempfile.mkdtemp(prefix="finstage-fetch-cache-"))
    return repo_config(FetchConfig, "fetch", **changes)


def load_stage(name: str):
    spec = importlib.util.spec_from_file_location(f"stage_{name}", ROOT / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pdf(number: int, pages: int = 1) -> bytes:
    cfg = repo_config(
        CorpusConfig, "corpus", seed=11, layouts=["notice"], min_pages=pages, max_pages=pages
    )
    return generate_document(cfg, number)[1]


def encrypted(user_pw: str | None) -> bytes:
    with pymupdf.open(stream=pdf(0)) as doc:
        return doc.tobytes(
            encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="owner", user_pw=user_pw or ""
        )


def write_manifest(path: Path, sources: list[dict], **top) -> Path:
    import yaml

    path.write_text(yaml.safe_dump({"version": 1, **top, "sources": sources}, allow_unicode=True))
    return path


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------------
# local sources


@pytest.fixture
def local_sources(tmp_path):
    pdfs = tmp_path / "in" / "pdfs"
    pdfs.mkdir(parents=True)
    good = {name: pdf(i) for i, name in enumerate(["a", "b", "c"])}
    for name, data in good.items():
        (pdfs / f"{name}.pdf").write_bytes(data)
    (pdfs / "copy-of-a.pdf").write_bytes(good["a"])
    (pdfs / "truncated.pdf").write_bytes(corrupt_bytes("truncated", good["b"]))
    (pdfs / "error-page.pdf").write_bytes(corrupt_bytes("not_pdf", b""))
    (pdfs / "locked.pdf").write_bytes(encrypted("secret"))
    (pdfs / "restricted.pdf").write_bytes(encrypted(None))
    (pdfs / "empty.pdf").write_bytes(b"")
    (pdfs / "notes.txt").write_text("not listed: only *.pdf files are taken from a directory")
    extra = tmp_path / "in" / "single.pdf"
    extra.write_bytes(good["c"])
    manifest = write_manifest(
        tmp_path / "sources.yaml",
        [
            {"path": "in/pdfs", "license": "generated", "org": "青葉財務局"},
            {"path": "in/single.pdf"},
            {"url": extra.as_uri(), "org": "other"},
        ],
        defaults={"license": "PDL1.0"},
    )
    return tmp_path, manifest, good


def test_local_fetch_stores_quarantines_and_deduplicates(local_sources):
    base, manifest, good = local_sources
    store = base / "store"
    report = fetch(manifest, store, fetch_config(), base_dir=base, progress=False)

    assert report["files"] == 11
    assert report["outcomes"] == {
        "stored": 3,
        "stored-repaired": 1,  # truncated.pdf: MuPDF rebuilds what is left
        "stored-capped": 0,
        "duplicate": 3,  # copy-of-a, single.pdf and its file:// URL
        "quarantined": 4,
        "skipped": 0,
        "failed": 0,
    }
    rows = read_index(store, statuses=None)
    assert len(rows) == report["files"]  # every file has its row
    by_source = {row["source"]: row for row in rows}
    reasons = {Path(r["source"]).name: r["reason"] for r in rows if r["status"] == "quarantined"}
    assert reasons["error-page.pdf"] == "not a PDF: no %PDF- header anywhere in the file"
    assert reasons["empty.pdf"] == "not a PDF: empty file"
    assert reasons["locked.pdf"].startswith("encrypted: needs a password")
    assert (
        reasons["restricted.pdf"].startswith("encrypted")
        and "allow_owner_password" in reasons["restricted.pdf"]
    )
    repaired = by_source["in/pdfs/truncated.pdf"]
    assert repaired["status"] == "stored-repaired" and "repaired" in repaired["flags"]
    assert Counter(report["reasons"]) == Counter(
        {"not a PDF": 2, "encrypted": 2, "repaired": 1, "duplicate of in/pdfs/a.pdf (stored)": 1,
         "duplicate of in/pdfs/c.pdf (stored)": 2}
    )  # fmt: skip

    for name, data in good.items():
        row = by_source[f"in/pdfs/{name}.pdf"]
        assert row["status"] == "stored" and row["sha256"] == sha(data) and row["pages"] == 1
        assert row["pages_kept"] == 1 and row["flags"] == [] and row["reason"] is None
        assert row["path"] == f"objects/{sha(data)[:2]}/{sha(data)}.pdf"
        assert (store / row["path"]).read_bytes() == data
        assert row["license"] == "generated" and row["org"] == "青葉財務局"
    a_sources = [s["source"] for s in by_source["in/pdfs/a.pdf"]["sources"]]
    assert a_sources == ["in/pdfs/a.pdf", "in/pdfs/copy-of-a.pdf"]
    copy = by_source["in/pdfs/copy-of-a.pdf"]
    assert copy["status"] == "duplicate" and copy["duplicate_of"] == sha(good["a"])
    c_sources = by_source["in/pdfs/c.pdf"]["sources"]
    assert [s["source"] for s in c_sources][1:] == [
        "in/single.pdf",
        (base / "in" / "single.pdf").as_uri(),
    ]
    assert c_sources[1]["license"] == "PDL1.0" and c_sources[2]["org"] == "other"
    for row in rows:
        if row["status"] == "quarantined":  # a record of the file, not a copy
            assert row["path"] == f"quarantine/{row['sha256']}.json"
            assert json.loads((store / row["path"]).read_text()) == row
    assert len(list((store / "objects").rglob("*.pdf"))) == 4
    assert [r["source"] for r in rows][:9] == sorted(
        r["source"] for r in rows if r["source"].startswith("in/pdfs")
    )
    assert json.loads((store / "fetch_report.json").read_text()) == report
    summary = format_report(report, store)
    assert (
        "3 stored, 1 stored-repaired, 3 duplicate, 4 quarantined" in summary
        and "truncated.pdf" in summary
    )


def test_fetch_is_deterministic_and_restartable(local_sources):
    base, manifest, _ = local_sources
    fetch(manifest, base / "s1", fetch_config(), base_dir=base, progress=False)
    fetch(manifest, base / "s2", fetch_config(), base_dir=base, progress=False)
    fetch(manifest, base / "s2", fetch_config(), base_dir=base, progress=False)  # over an old store
    for name in ("index.jsonl", "fetch_report.json"):
        assert (base / "s1" / name).read_bytes() == (base / "s2" / name).read_bytes()


def test_oversized_local_file_is_quarantined_without_reading_it(tmp_path):
    (tmp_path / "big.pdf").write_bytes(b"%PDF-1.7\n" + b"0" * 5000 + b"\n%%EOF\n")
    manifest = write_manifest(tmp_path / "m.yaml", [{"path": "big.pdf"}])
    report = fetch(
        manifest,
        tmp_path / "store",
        fetch_config(max_bytes=2048),
        base_dir=tmp_path,
        progress=False,
    )
    assert report["outcomes"]["quarantined"] == 1 and report["reasons"] == {"too large": 1}


def test_refuses_to_wipe_a_folder_that_is_not_a_store(local_sources):
    base, manifest, _ = local_sources
    (base / "precious").mkdir()
    (base / "precious" / "thesis.tex").write_text("do not delete")
    with pytest.raises(StoreError, match="not a finstage store"):
        fetch(manifest, base / "precious", fetch_config(), base_dir=base, progress=False)
    assert (base / "precious" / "thesis.tex").exists()


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        (
            [{"path": "in/pdfs"}, {"path": "x.pdf", "licence": "PDL1.0"}],
            r"sources\[1\]: unknown key\(s\) \['licence'\]",
        ),
        ([{"path": "in/nowhere.pdf"}], r"sources\[0\]: 'in/nowhere.pdf' does not exist"),
        (
            [{"path": "a.pdf", "url": "https://x.go.jp/a.pdf"}],
            r"sources\[0\]: give exactly one of 'path', 'url', 'urls' or 'seed'",
        ),
        (
            [{"url": "ftp://x.go.jp/a.pdf"}],
            r"sources\[0\]\.url 'ftp://x.go.jp/a.pdf': scheme must be",
        ),
        (
            [{"path": "in/pdfs", "recursive": "yes"}],
            r"sources\[0\]\.recursive must be true or false",
        ),
        (["in/pdfs"], r"sources\[0\]: must be a mapping"),
        (
            [{"seed": "https://x.go.jp/", "deny": ["(unclosed"]}],
            r"sources\[0\]\.deny: '\(unclosed' is not a valid regex",
        ),
        ([{"seed": "file:///srv/"}], r"sources\[0\]\.seed 'file:///srv/': scheme must be http"),
        ([{"seed": "https://x.go.jp/", "depth": 99}], r"sources\[0\]\.depth must be"),
        ([{"url": "https://x.go.jp/a.pdf", "depth": 1}], r"\['depth'\] apply to 'seed'"),
        ([{"urls": "in/none.txt"}], r"sources\[0\]\.urls: cannot read the URL list"),
        ([], "'sources' must be a non-empty list"),
    ],
)
def test_malformed_manifest_fails_naming_the_entry(local_sources, sources, message):
    base, _, _ = local_sources
    manifest = write_manifest(base / "bad.yaml", sources)
    with pytest.raises(ManifestError, match=message) as err:
        fetch(manifest, base / "store", fetch_config(), base_dir=base, progress=False)
    assert "bad.yaml" in str(err.value)
    assert not (base / "store").exists()  # nothing was started


def test_manifest_version_and_yaml_errors(tmp_path):
    (tmp_path / "m.yaml").write_text("sources: [{path: x}]\n")
    with pytest.raises(ManifestError, match="'version' must be 1"):
        load_manifest(tmp_path / "m.yaml")
    (tmp_path / "m.yaml").write_text("version: 1\nsources: [{path: x\n")
    with pytest.raises(ManifestError, match="not valid YAML"):
        load_manifest(tmp_path / "m.yaml")
    with pytest.raises(ManifestError, match="manifest not found"):
        load_manifest(tmp_path / "missing.yaml")


# ---------------------------------------------------------------------------------------------
# HTTP on loopback


class Site:
    """A tiny loopback web server whose behaviour each test sets."""

    def __init__(self):
        self.hits: Counter[str] = Counter()
        self.user_agents: list[str] = []
        self.auth_seen: list[str | None] = []
        self.robots: str | None = "User-agent: *\nDisallow: /private/\n"
        self.robots_status = 200
        self.files = {
            "/docs/a.pdf": pdf(0),
            "/docs/a-mirror.pdf": pdf(0),
            "/flaky.pdf": pdf(1),
            "/private/secret.pdf": pdf(2),
            "/big.pdf": b"%PDF-1.7\n" + b"0" * 40_000 + b"\n%%EOF\n",
            "/auth.pdf": pdf(3),
        }
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):  # noqa: N802
                path = self.path
                site.hits[path] += 1
                site.user_agents.append(self.headers.get("User-Agent"))
                if path == "/robots.txt":
                    if site.robots is None or site.robots_status != 200:
                        return self.send_error(
                            site.robots_status if site.robots is not None else 404
                        )
                    return self.reply(site.robots.encode(), "text/plain")
                if path == "/flaky.pdf" and site.hits[path] == 1:
                    return self.send_error(500)
                if path == "/down.pdf":
                    return self.send_error(500)
                if path == "/redirect.pdf":
                    self.send_response(302)
                    self.send_header("Location", f"http://localhost:{site.port}/docs/a.pdf")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                if path == "/auth.pdf":
                    site.auth_seen.append(self.headers.get("Authorization"))
                    if self.headers.get("Authorization") != "Bearer s3cret":
                        return self.send_error(401)
                if path in site.files:
                    return self.reply(site.files[path], "application/pdf")
                return self.send_error(404)

            def reply(self, body: bytes, content_type: str):
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", f'"{sha(body)[:12]}"')
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
def site():
    s = Site()
    s.thread.start()
    yield s
    s.server.shutdown()
    s.server.server_close()


def http_config(tmp_path: Path, **changes) -> FetchConfig:
    base = dict(
        allowed_hosts=["127.0.0.1"],
        timeout_s=5.0,
        retries=2,
        backoff_s=0.01,
        max_backoff_s=0.05,
        delay_s=0.0,
        max_bytes=30_000,
        cache_dir=str(tmp_path / "cache"),
    )
    return fetch_config(**{**base, **changes})


def test_http_fetch_is_polite_and_records_failures(site, tmp_path, monkeypatch):
    monkeypatch.setenv("FINSTAGE_TEST_TOKEN", "Bearer s3cret")
    paths = [
        "/docs/a.pdf",
        "/docs/a-mirror.pdf",
        "/flaky.pdf",
        "/down.pdf",
        "/private/secret.pdf",
        "/big.pdf",
        "/redirect.pdf",
        "/auth.pdf",
        "/missing.pdf",
    ]
    (tmp_path / "list.txt").write_text(
        "# one URL a line\n" + "".join(f"{site.url(p)}\n" for p in paths[1:])
    )
    manifest = write_manifest(
        tmp_path / "m.yaml",
        [{"url": site.url(paths[0]), "license": "PDL1.0"}, {"urls": "list.txt"}],
    )
    cfg = http_config(tmp_path, auth_env={"127.0.0.1": "FINSTAGE_TEST_TOKEN"})
    report = fetch(manifest, tmp_path / "store", cfg, base_dir=tmp_path, progress=False)

    rows = {
        row["source"].split(str(site.port))[1]: row
        for row in read_index(tmp_path / "store", statuses=None)
    }
    assert set(rows) == set(paths)  # the mirror too: a duplicate row
    assert rows["/docs/a-mirror.pdf"]["duplicate_of"] == rows["/docs/a.pdf"]["sha256"]
    assert (
        report["outcomes"]["stored"] == 2
        and report["outcomes"]["duplicate"] == 1
        and report["outcomes"]["failed"] == 6
    )
    assert rows["/docs/a.pdf"]["status"] == "stored"
    assert [s["source"] for s in rows["/docs/a.pdf"]["sources"]] == [
        site.url("/docs/a.pdf"),
        site.url("/docs/a-mirror.pdf"),
    ]
    meta = rows["/docs/a.pdf"]["sources"][0]
    assert meta["content_type"] == "application/pdf" and meta["http_status"] == 200 and meta["etag"]
    assert meta["license"] == "PDL1.0" and rows["/flaky.pdf"]["license"] is None
    # a 500 then a 200 is retried and succeeds
    assert rows["/flaky.pdf"]["status"] == "stored" and site.hits["/flaky.pdf"] == 2
    # a persistent 500 is retried, then recorded as a failure
    assert rows["/down.pdf"]["status"] == "failed" and "HTTP 500" in rows["/down.pdf"]["reason"]
    assert site.hits["/down.pdf"] == cfg.retries + 1
    # robots.txt Disallow is respected: the file is never requested
    assert (
        "robots.txt" in rows["/private/secret.pdf"]["reason"]
        and site.hits["/private/secret.pdf"] == 0
    )
    assert site.hits["/robots.txt"] == 1
    assert (tmp_path / "store" / "robots" / f"127.0.0.1_{site.port}.txt").read_text() == site.robots
    assert "max_bytes" in rows["/big.pdf"]["reason"]
    assert "not in fetch.allowed_hosts" in rows["/redirect.pdf"]["reason"]
    assert (
        "HTTP 404" in rows["/missing.pdf"]["reason"] and site.hits["/missing.pdf"] == 1
    )  # no retry
    # a bare host key means https://host:443: the secret never goes over plain http, and it is
    # written nowhere (test_fetch_security sends it to its https origin)
    assert rows["/auth.pdf"]["status"] == "failed" and "HTTP 401" in rows["/auth.pdf"]["reason"]
    assert site.auth_seen == [None]
    written = "".join(p.read_text(errors="ignore") for p in tmp_path.rglob("*") if p.is_file())
    assert "s3cret" not in written  # not in the store, the crawl cache or its job files
    assert set(site.user_agents) == {cfg.user_agent}


def test_disallowed_host_is_rejected_before_any_request(site, tmp_path):
    url = site.url("/docs/a.pdf", host="localhost")
    (tmp_path / "list.txt").write_text(f"{site.url('/docs/a.pdf')}\n{url}  # the second host\n")
    for entry in ({"url": url}, {"urls": "list.txt"}, {"seed": url}):
        manifest = write_manifest(tmp_path / "m.yaml", [{"url": site.url("/docs/a.pdf")}, entry])
        with pytest.raises(ManifestError, match="fetch.allowed_hosts") as err:
            fetch(manifest, tmp_path / "store", http_config(tmp_path), tmp_path, progress=False)
        assert url in str(err.value) and "sources[1]" in str(err.value)
    assert sum(site.hits.values()) == 0


def test_missing_robots_allows_everything(site, tmp_path):
    site.robots = None  # 404
    manifest = write_manifest(tmp_path / "m.yaml", [{"url": site.url("/private/secret.pdf")}])
    report = fetch(manifest, tmp_path / "store", http_config(tmp_path), tmp_path, progress=False)
    assert report["outcomes"]["stored"] == 1


def test_missing_auth_variable_is_a_clear_error(site, tmp_path, monkeypatch):
    monkeypatch.delenv("FINSTAGE_TEST_TOKEN", raising=False)
    manifest = write_manifest(tmp_path / "m.yaml", [{"url": site.url("/auth.pdf")}])
    with pytest.raises(FetchError, match="FINSTAGE_TEST_TOKEN"):
        fetch(
            manifest,
            tmp_path / "store",
            http_config(tmp_path, auth_env={"127.0.0.1": "FINSTAGE_TEST_TOKEN"}),
            progress=False,
        )
    assert sum(site.hits.values()) == 0


# ---------------------------------------------------------------------------------------------
# params


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"allowed_hosts": ["https://www.fsa.go.jp/"]}, r"fetch.allowed_hosts\[0\]"),
        ({"retries": -1}, "fetch.retries"),
        ({"timeout_s": 0}, "fetch.timeout_s"),
        ({"max_bytes": 10}, "fetch.max_bytes"),
        ({"max_backoff_s": 1.0}, "fetch.max_backoff_s"),
        ({"user_agent": " "}, "fetch.user_agent"),
        ({"auth_env": {"www.fsa.go.jp": "TOKEN"}}, r"fetch.auth_env.www.fsa.go.jp"),
        (
            {"allowed_hosts": ["www.fsa.go.jp"], "auth_env": {"www.fsa.go.jp": "Bearer abc"}},
            "fetch.auth_env",
        ),
        ({"allow_owner_password": "yes"}, "fetch.allow_owner_password"),
        ({"autothrottle_target": 0}, "fetch.autothrottle_target"),
        ({"depth": 11}, "fetch.depth"),
        ({"cache_dir": " "}, "fetch.cache_dir"),
        ({"alowed_hosts": []}, "fetch.alowed_hosts"),
    ],
)
def test_invalid_params_name_the_key(change, key):
    with pytest.raises(ParamsError, match=key):
        load_stage("fetch").load_config({"fetch": repo_section("fetch", **change)})


def test_repository_params_parse_and_contact_no_host():
    cfg = load_stage("fetch").load_config(repo_params())
    assert (
        cfg == fetch_config(cache_dir=".finstage/fetch")
        and cfg.allowed_hosts == []
        and cfg.auth_env == {}
    )
