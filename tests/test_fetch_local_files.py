"""Fetch reads only regular files inside a manifest's source folder, and never copies or quotes a
file it refuses.

The store is a DVC output pushed to remotes, and the report and summary are printed, so a link
in a source folder to ``/proc/self/environ`` (the environment, tokens included) or to any other
readable file must never be followed into them. These tests drive ``fetch`` itself, so they hold
whatever reads the files inside.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from finstage.corpus.fetch import fetch, format_report
from finstage.corpus.generate import corrupt_bytes
from finstage.pdfstore import read_index

from .test_fetch import ROOT, fetch_config, pdf, write_manifest


def all_bytes(folder: Path) -> list[tuple[Path, bytes]]:
    """Every regular file under ``folder`` (links not followed) with its content."""
    return [(p, p.read_bytes()) for p in folder.rglob("*") if p.is_file() and not p.is_symlink()]


def _leaky_folder(base: Path) -> tuple[Path, str]:
    """A source folder holding one good PDF and every kind of entry that must not be read."""
    marker = f"OUTSIDE-{uuid.uuid4().hex}"
    outside = base / "outside"
    outside.mkdir()
    (outside / "private.pdf").write_text(f"%PDF-1.7 {marker}\n%%EOF\n")
    pdfs = base / "data" / "in" / "pdfs"
    pdfs.mkdir(parents=True)
    (pdfs / "a.pdf").write_bytes(pdf(0))
    (pdfs / "env.pdf").symlink_to("/proc/self/environ")
    (pdfs.parent / "named.pdf").symlink_to("/proc/self/environ")
    (pdfs / "outside.pdf").symlink_to(outside / "private.pdf")
    (pdfs / "inner-link.pdf").symlink_to(pdfs / "a.pdf")
    (pdfs / "dangling.pdf").symlink_to(base / "nowhere.pdf")
    os.mkfifo(pdfs / "pipe.pdf")
    (pdfs / "linked-dir").symlink_to(outside, target_is_directory=True)
    return pdfs, marker


def test_links_fifos_and_proc_files_are_skipped_and_leak_nothing(tmp_path):
    """A link in a source folder to /proc/self/environ or to any readable file is never read:
    the secret named by fetch.auth_env (set in the process environment, as a user would) appears
    in no stored file and in no line the stage prints; each refused entry is recorded and
    counted as skipped with its reason."""
    secret = f"Bearer leak-{uuid.uuid4().hex}"
    pdfs, marker = _leaky_folder(tmp_path)
    write_manifest(
        tmp_path / "data" / "sources.yaml",
        [
            {"path": "in/pdfs", "recursive": True},
            {"url": "file:///proc/self/environ"},
            {"path": "in/named.pdf"},
        ],
    )
    script = (
        "import sys, yaml\n"
        "from pathlib import Path\n"
        "from finstage.config import parse\n"
        "from finstage.corpus.fetch import fetch, format_report\n"
        "from finstage.corpus.fetchconfig import FetchConfig\n"
        "params = yaml.safe_load(Path('params.yaml').read_text())['fetch']\n"
        "params.update(allowed_hosts=['127.0.0.1'], auth_env={'127.0.0.1': 'LEAK_TOKEN'})\n"
        "cfg = parse(FetchConfig, params, 'fetch')\n"
        "base = Path(sys.argv[1])\n"
        "report = fetch(base / 'sources.yaml', base / 'store', cfg, base_dir=base,"
        " progress=False)\n"
        "print(format_report(report, base / 'store'))\n"
    )
    env = {**os.environ, "LEAK_TOKEN": secret}  # in the initial environment: /proc/self/environ
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "data")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for text in (done.stdout, done.stderr):
        assert secret not in text and marker not in text
    for path, data in all_bytes(tmp_path / "data" / "store"):
        assert secret.encode() not in data and marker.encode() not in data, path

    store = tmp_path / "data" / "store"
    report = json.loads((store / "fetch_report.json").read_text())
    rows = {row["source"]: row for row in read_index(store, statuses=None)}
    assert rows["in/pdfs/a.pdf"]["status"] == "stored"
    skipped = {src: row["reason"] for src, row in rows.items() if row["status"] == "skipped"}
    for name in ("env.pdf", "outside.pdf", "inner-link.pdf", "dangling.pdf"):
        assert skipped[f"in/pdfs/{name}"].startswith("symlink"), name
    assert skipped["in/pdfs/pipe.pdf"].startswith("not a regular file")
    assert skipped["file:///proc/self/environ"].startswith("pseudo-file")
    assert skipped["in/named.pdf"].startswith("symlink")  # named on its own, too
    for row in rows.values():
        if row["status"] == "skipped":
            assert row["sha256"] is None and row["path"] is None and row["bytes"] is None
    assert report["outcomes"]["skipped"] == len(skipped) == 7
    assert report["outcomes"]["stored"] == 1 and report["outcomes"]["quarantined"] == 0
    assert "7 skipped" in done.stdout and "in/pdfs/outside.pdf" in done.stdout
    assert not any("linked-dir" in src for src in rows)  # a linked folder is not walked into


def test_refused_files_are_recorded_in_quarantine_never_copied(tmp_path):
    """Quarantine keeps a record of a refused file (reason, size, where it came from), not its
    bytes, and no reason quotes the file's content."""
    good = pdf(0)
    html = corrupt_bytes("not_pdf", good)
    truncated = corrupt_bytes("truncated", good)[:300]  # too little left for MuPDF to rebuild
    (tmp_path / "pdfs").mkdir()
    (tmp_path / "pdfs" / "error-page.pdf").write_bytes(html)
    (tmp_path / "pdfs" / "truncated.pdf").write_bytes(truncated)
    (tmp_path / "pdfs" / "big.pdf").write_bytes(b"%PDF-1.7\n" + b"0" * 5000 + b"\n%%EOF\n")
    manifest = write_manifest(tmp_path / "m.yaml", [{"path": "pdfs", "org": "x"}])
    store = tmp_path / "store"
    report = fetch(manifest, store, fetch_config(max_bytes=4096), base_dir=tmp_path, progress=False)

    assert report["outcomes"]["quarantined"] == 3
    rows = read_index(store, statuses=["quarantined"])
    for row in rows:
        assert row["path"] == f"quarantine/{row['sha256']}.json"
        record = json.loads((store / row["path"]).read_text())
        assert record["reason"] == row["reason"] and record["bytes"] == row["bytes"]
        assert record["sources"][0]["source"] == row["source"] and record["sources"][0]["org"]
        assert "starts with" not in row["reason"]
    for _, data in all_bytes(store):
        assert html[:64] not in data and truncated[:64] not in data and b"0" * 200 not in data
    assert "<!DOCTYPE" not in format_report(report, store)
