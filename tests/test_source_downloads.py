"""URL benchmark sources: downloaded once by the `sources` stage, safely, into a DVC output.

Every download goes through one streaming client: only `evaluate.downloads.allowed_hosts` are
contacted (every redirect hop included), the body is cut at `max_bytes` with memory bounded,
a slow server hits the per-read or total deadline, and the bytes must match the source's
required `sha256`. `decontam` and `evaluate` then read the downloaded copy, never the network.
All servers are loopback.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import importlib.util
import json
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dvc.repo import Repo
from typer.testing import CliRunner

from finstage.benchmarks import transport
from finstage.benchmarks.download import DownloadConfig, download, download_sources
from finstage.benchmarks.registry import BENCHMARKS
from finstage.benchmarks.transport import SourceError, SourceSpec
from finstage.cli import app
from finstage.config import ParamsError, parse
from finstage.params import validate

from .conftest import ROOT, repo_params

RAW = ROOT / "tests" / "fixtures" / "raw"
BY_NAME = {b.name: b for b in BENCHMARKS}
FP2 = (RAW / "fp2" / "data.json").read_bytes()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Site:
    """What the loopback server serves, and which paths it was asked for."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {"/fp2/data.json": FP2}
        self.redirects: dict[str, str] = {}
        self.hits: Counter[str] = Counter()


def handler_for(site: Site) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            site.hits[self.path] += 1
            if self.path in site.redirects:
                self.send_response(302)
                self.send_header("Location", site.redirects[self.path])
                self.end_headers()
            elif self.path == "/endless":  # no Content-Length: only the cap stops it
                self.send_response(200)
                self.end_headers()
                block = b"x" * 65536
                try:
                    for _ in range(100_000):
                        self.wfile.write(block)
                except (BrokenPipeError, ConnectionResetError):
                    pass
            elif self.path == "/declared-huge":
                self.send_response(200)
                self.send_header("Content-Length", str(10**12))
                self.end_headers()
            elif self.path == "/drip":  # one byte at a time, each well within a read deadline
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                try:
                    for _ in range(100_000):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(0.05)
                except (BrokenPipeError, ConnectionResetError):
                    pass
            elif self.path == "/stall":  # a few bytes, then silence
                self.send_response(200)
                self.send_header("Content-Length", "100")
                self.end_headers()
                self.wfile.write(b"x" * 10)
                self.wfile.flush()
                time.sleep(3)
            elif self.path in site.files:
                body = site.files[self.path]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_error(404)

    return Handler


@contextlib.contextmanager
def serve(site: Site) -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_for(site))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture()
def site() -> Site:
    return Site()


@pytest.fixture()
def server(site: Site) -> Iterator[str]:
    with serve(site) as url:
        yield url


def policy(**changes) -> DownloadConfig:
    raw = {
        "allowed_hosts": ["127.0.0.1"],
        "max_bytes": 1 << 20,
        "read_timeout_s": 5.0,
        "total_timeout_s": 20.0,
        **changes,
    }
    return parse(DownloadConfig, raw, "evaluate.downloads")


def test_a_pinned_download_lands_whole_and_verified(tmp_path, server):
    target = tmp_path / "fp2" / "data.json"
    assert download(f"{server}/fp2/data.json", sha(FP2), target, policy()) == len(FP2)
    assert target.read_bytes() == FP2


def test_an_endless_body_is_cut_at_the_cap_with_memory_bounded(tmp_path, server):
    target = tmp_path / "endless" / "data.json"
    tracemalloc.start()
    try:
        with pytest.raises(SourceError, match=r"/endless: over the limit of 1048576 bytes"):
            download(f"{server}/endless", "0" * 64, target, policy())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak  # streamed to disk in small blocks, never held whole
    assert not target.parent.exists() or not any(target.parent.iterdir())  # nothing half-written


def test_a_declared_oversized_body_is_refused_before_reading(tmp_path, server):
    with pytest.raises(SourceError, match=r"declares 1000000000000 bytes.*evaluate\.downloads"):
        download(f"{server}/declared-huge", "0" * 64, tmp_path / "x.json", policy())


def test_a_slow_drip_hits_the_total_deadline(tmp_path, server):
    start = time.monotonic()
    with pytest.raises(SourceError, match=r"/drip: not finished within the total deadline of 1"):
        download(f"{server}/drip", "0" * 64, tmp_path / "drip", policy(total_timeout_s=1.0))
    assert time.monotonic() - start < 4.0


def test_a_stalled_read_hits_the_read_deadline(tmp_path, server):
    start = time.monotonic()
    with pytest.raises(SourceError, match=r"/stall: no data for 0\.5 s"):
        download(f"{server}/stall", "0" * 64, tmp_path / "stall", policy(read_timeout_s=0.5))
    assert time.monotonic() - start < 2.5


def test_a_redirect_to_a_host_not_allowed_is_refused(tmp_path, site, server):
    other = Site()
    with serve(other) as elsewhere:
        site.redirects["/moved"] = elsewhere.replace("127.0.0.1", "localhost") + "/fp2/data.json"
        refused = (
            r"redirects to http://localhost:\d+/fp2/data\.json, "
            r"whose host 'localhost' is not in evaluate\.downloads\.allowed_hosts"
        )
        with pytest.raises(SourceError, match=refused):
            download(f"{server}/moved", sha(FP2), tmp_path / "data.json", policy())
    assert other.hits == Counter()  # never contacted
    site.redirects["/moved-home"] = "/fp2/data.json"  # an allowed hop is followed
    assert download(f"{server}/moved-home", sha(FP2), tmp_path / "d.json", policy()) == len(FP2)


def test_a_host_not_allowed_is_never_contacted(tmp_path, site, server):
    with pytest.raises(SourceError, match=r"host '127\.0\.0\.1' is not in .*allowed_hosts"):
        download(f"{server}/fp2/data.json", sha(FP2), tmp_path / "d.json", policy(allowed_hosts=[]))
    assert site.hits == Counter()


def test_a_sha256_mismatch_fails_and_keeps_nothing(tmp_path, server):
    target = tmp_path / "fp2" / "data.json"
    with pytest.raises(
        SourceError, match=f"sha256 {sha(FP2)} does not match the pinned {'a' * 64}"
    ):
        download(f"{server}/fp2/data.json", "a" * 64, target, policy())
    assert not target.exists()


def test_a_url_without_sha256_is_rejected_at_validation():
    with pytest.raises(ParamsError, match=r"evaluate\.sources\.fp2\.sha256.*curl -sL .* sha256sum"):
        parse(SourceSpec, {"url": "https://example.org/data.json"}, "evaluate.sources.fp2")
    params = repo_params()
    params["evaluate"]["sources"]["fp2"] = {"url": "https://example.org/data.json"}
    with pytest.raises(ParamsError, match=r"evaluate\.sources\.fp2\.sha256"):
        validate(params)


def test_finstage_validate_names_the_unpinned_url(tmp_path):
    params = repo_params()
    params["evaluate"]["sources"]["fp2"] = {"url": "https://example.org/data.json"}
    target = tmp_path / "params.yaml"
    target.write_text(yaml.safe_dump(params, allow_unicode=True))
    result = CliRunner().invoke(app, ["validate", str(target)])
    assert result.exit_code == 2 and "evaluate.sources.fp2.sha256" in result.output


def test_downloads_params_are_checked():
    for raw, key in (
        ({"max_bytes": 0}, "max_bytes"),
        ({"read_timeout_s": 0.0}, "read_timeout_s"),
        ({"total_timeout_s": 0.0}, "total_timeout_s"),
        ({"allowed_hosts": ["https://example.org"]}, "allowed_hosts"),
    ):
        with pytest.raises(ParamsError, match=rf"evaluate\.downloads\.{key}"):
            policy(**raw)


# ---------------------------------------------------------------- the `sources` stage


def stage_module():
    spec = importlib.util.spec_from_file_location("sources_stage", ROOT / "stages/sources.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_stage(monkeypatch, params: dict, out: Path) -> None:
    module = stage_module()
    monkeypatch.setattr(module, "stage_params", lambda stage: params)
    app_ = __import__("typer").Typer()
    app_.command()(module.main)
    result = CliRunner().invoke(app_, ["--out", str(out), "--stage", "sources"])
    assert result.exit_code == 0, result.output


def stage_params_with(sources: dict, hosts: list[str]) -> dict:
    downloads = {**repo_params()["evaluate"]["downloads"], "allowed_hosts": hosts}
    return {"evaluate": {"sources": sources, "downloads": downloads}}


def test_the_stage_output_is_what_evaluation_reads(tmp_path, monkeypatch, site, server):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "data" / "bench_sources"
    url = f"{server}/fp2/data.json"
    sources = {"fp2": {"url": url, "sha256": sha(FP2)}, "gsm8k": {"path": "x.jsonl"}}
    run_stage(monkeypatch, stage_params_with(sources, ["127.0.0.1"]), out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest == {"fp2": {"url": url, "sha256": sha(FP2), "file": "fp2/data.json",
                                "bytes": len(FP2)}}  # fmt: skip
    assert (out / "fp2" / "data.json").read_bytes() == FP2
    monkeypatch.setattr(transport, "DOWNLOADS", out)
    spec = SourceSpec(url=url, sha256=sha(FP2))
    site.hits.clear()
    docs = BY_NAME["fp2"].load_docs(spec)
    assert docs == BY_NAME["fp2"].load_docs(SourceSpec(path=str(RAW / "fp2" / "data.json")))
    assert site.hits == Counter()  # evaluation reads the stage's copy, never the network
    # upstream changes (a new pin): the stage's output changes, and so does what is read
    changed = json.loads(FP2)
    changed["data"] = changed["data"][:1]
    site.files["/fp2/data.json"] = new = json.dumps(changed, ensure_ascii=False).encode()
    sources["fp2"]["sha256"] = sha(new)
    run_stage(monkeypatch, stage_params_with(sources, ["127.0.0.1"]), out)
    assert (out / "fp2" / "data.json").read_bytes() == new
    assert len(BY_NAME["fp2"].load_docs(SourceSpec(url=url, sha256=sha(new)))) == 1


def test_a_copy_that_does_not_match_its_pin_is_not_read(tmp_path, monkeypatch):
    monkeypatch.setattr(transport, "DOWNLOADS", tmp_path)
    spec = SourceSpec(url="https://example.org/x/data.json", sha256=sha(FP2))
    with pytest.raises(SourceError, match=r"not downloaded.*dvc repro sources"):
        BY_NAME["fp2"].load_docs(spec)
    (tmp_path / "fp2").mkdir()
    (tmp_path / "fp2" / "data.json").write_bytes(FP2 + b"\n")
    with pytest.raises(SourceError, match="does not match the pinned"):
        BY_NAME["fp2"].load_docs(spec)


def test_the_embedded_default_downloads_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "data" / "bench_sources"
    (out / "stale").mkdir(parents=True)  # a previous run's leftovers do not survive
    (out / "manifest.json").write_text('{"stale": {}}')
    evaluate = repo_params()["evaluate"]
    params = {"evaluate": {"sources": evaluate["sources"], "downloads": evaluate["downloads"]}}
    run_stage(monkeypatch, params, out)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"]
    assert json.loads((out / "manifest.json").read_text()) == {}


def test_a_folder_it_did_not_write_is_never_emptied(tmp_path):
    (tmp_path / "keep.txt").write_text("someone's file")
    with pytest.raises(SourceError, match="has no manifest.json"):
        download_sources({"gsm8k": SourceSpec(path="x")}, policy(), tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "someone's file"


def test_download_sources_refuses_every_host_not_allowed_before_any_request(tmp_path, site, server):
    specs = {"fp2": SourceSpec(url=f"{server}/fp2/data.json", sha256=sha(FP2))}
    with pytest.raises(SourceError, match=r"sources\.fp2.*not in evaluate\.downloads"):
        download_sources(specs, policy(allowed_hosts=["raw.githubusercontent.com"]), tmp_path)
    assert site.hits == Counter()


def test_dvc_wires_the_downloads_into_decontam_and_every_evaluation():
    with Repo(str(ROOT)) as repo:
        stages = {s.addressing: s for s in repo.index.stages}
    folder = str(transport.DOWNLOADS)
    sources = stages["sources"]
    assert [str(Path(o.fs_path).relative_to(ROOT)) for o in sources.outs] == [folder]
    assert f"--out {folder}" in sources.cmd
    evaluations = [s for name, s in stages.items() if name.startswith("evaluate@")]
    assert evaluations
    for stage in [stages["decontam"], *evaluations]:
        deps = [str(Path(d.fs_path).relative_to(ROOT)) for d in stage.deps]
        assert folder in deps, stage.addressing
