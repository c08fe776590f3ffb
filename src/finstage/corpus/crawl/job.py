"""What the parent hands the crawl child, and where the child leaves its answer.

Both sides of the process boundary read this one layout, under ``cache_dir``:

- ``run/spec.json``: the sources, the ``fetch:`` params and the log level (names of secret
  variables only: the child reads their values from its environment);
- ``run/rows.json``: the result rows, written by the child once the crawl has finished;
- ``run/robots/<origin>.txt``: each robots.txt as read this run;
- ``job/``: Scrapy's JOBDIR (see `prepare_jobdir`);
- ``crawl.pid``: the child's process id while it runs (and the lock against a second crawl).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from finstage.corpus.fetchconfig import FetchConfig
from finstage.corpus.manifest import Source

PAUSED = "paused"  # in job/: Scrapy stopped gracefully and saved its state


def run_dir(cache_dir: Path) -> Path:
    return cache_dir / "run"


def jobdir(cache_dir: Path) -> Path:
    return cache_dir / "job"


def write_spec(cache_dir: Path, sources: list[Source], cfg: FetchConfig, log_level: str) -> Path:
    path = run_dir(cache_dir) / "spec.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    spec = {
        "sources": [asdict(s) for s in sources],
        "cfg": asdict(cfg),
        "log_level": log_level,
    }
    path.write_text(json.dumps(spec, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def read_spec(path: Path) -> tuple[list[Source], FetchConfig, str]:
    spec = json.loads(Path(path).read_text(encoding="utf-8"))
    sources = [
        Source(**{**s, "allow": tuple(s["allow"]), "deny": tuple(s["deny"])})
        for s in spec["sources"]
    ]
    return sources, FetchConfig(**spec["cfg"]), spec["log_level"]


def prepare_jobdir(cache_dir: Path) -> bool:
    """Keep ``job/`` only if Scrapy saved it on a graceful stop; True when resuming.

    Scrapy writes its queue's index and the spider state only when it closes, and its
    seen-requests file is buffered: after a SIGKILL or a crash the directory would resume
    with requests marked seen that are in no queue, and their PDFs would be silently missed.
    Such a directory is discarded; the URL cache still makes the rerun cheap (a PDF already
    downloaded is asked for conditionally and answered 304)."""
    job = jobdir(cache_dir)
    resuming = (job / PAUSED).is_file()
    if not resuming and job.exists():
        shutil.rmtree(job)
    (job / PAUSED).unlink(missing_ok=True)
    job.mkdir(parents=True, exist_ok=True)
    return resuming


def rows_path(cache_dir: Path) -> Path:
    return run_dir(cache_dir) / "rows.json"


def write_rows(cache_dir: Path, rows: list[dict[str, Any]]) -> None:
    rows_path(cache_dir).write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")


def robots_dir(cache_dir: Path) -> Path:
    return run_dir(cache_dir) / "robots"
