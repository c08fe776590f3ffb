"""Render documents in worker processes that the stage can kill, so that no page costs more than
``render.page_timeout_s``.

MuPDF cannot be interrupted from Python: a page of forms drawing forms, or an image that inflates
to gigabytes, holds its thread until it is done. A separate process can be killed, though. Each
worker renders one document at a time and reports every page as it finishes it (the events of
`finstage.pages.render.iter_document`); the supervisor gives each page ``page_timeout_s`` from the
previous event. When a page outlasts it, or the worker dies (a crash, the OOM killer), the worker
is killed, the page is recorded as failed, and a fresh worker goes on with the next page of the same
document; after ``render.max_page_timeouts`` such pages the rest of the document is skipped.
Documents are handed out in index order and their results come back in that order, so the output
does not depend on the number of workers or on which of them was killed.

Workers are started with ``spawn``: forking a parent that already runs Arrow's threads is unsafe.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnContext
from pathlib import Path
from typing import Any

from finstage.pages.render import RenderConfig, failure_record, iter_document
from finstage.pagestore import Page

# a worker that has not taken its first document after this long is broken (not a slow page)
STARTUP_S = 300.0


class WorkerError(RuntimeError):
    """A worker process could not start: the environment is broken, not the input."""


def serve(conn: Connection, cfg: RenderConfig) -> None:
    """A worker's loop: take (path, sha256, first page, page limit) jobs until None, report events.

    PyMuPDF imports its optional layout analyser (``pymupdf.layout``, which loads an ONNX model)
    whenever that package is installed: half a second of every worker's start, and again after
    every killed page, for a feature rendering never calls. Marking it absent in this process
    makes PyMuPDF's import skip it."""
    sys.modules.setdefault("pymupdf.layout", None)
    import pymupdf

    pymupdf.TOOLS.mupdf_display_errors(False)  # failures are recorded in the report instead
    while (job := conn.recv()) is not None:
        path, sha256, start, limit = job
        conn.send(("start",))
        for event in iter_document(Path(path), sha256, cfg, start, limit):
            conn.send(event)
        conn.send(("done",))
        pymupdf.TOOLS.mupdf_warnings(reset=True)


@dataclass
class _Job:
    position: int
    path: str
    sha256: str
    limit: int | None  # pages of the document to render (fetch caps long ones)
    pages: list[Page] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    next_index: int = 0  # the page the worker is on
    page_count: int | None = None  # None until the file opened
    started: bool = False  # the worker took the job
    killed: int = 0  # pages whose worker was killed or died


class _Worker:
    def __init__(self, context: SpawnContext, cfg: RenderConfig) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=serve, args=(child, cfg), daemon=True)
        self.process.start()
        child.close()  # so that the worker's death reads as end of file here
        self.job: _Job | None = None
        self.deadline = float("inf")

    def assign(self, job: _Job) -> None:
        job.started = False
        self.job = job
        self.deadline = time.monotonic() + STARTUP_S
        self.conn.send((job.path, job.sha256, job.next_index, job.limit))

    def stop(self, kill: bool) -> None:
        if not kill and self.process.is_alive():
            try:
                self.conn.send(None)
                self.process.join(timeout=10)
            except OSError:
                pass
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.conn.close()


class _Supervisor:
    def __init__(self, tasks: list[tuple[str, str, int | None]], cfg: RenderConfig) -> None:
        self.cfg = cfg
        self.context = multiprocessing.get_context("spawn")
        self.pending = deque(_Job(k, *task) for k, task in enumerate(tasks))
        self.finished: dict[int, _Job] = {}
        self.workers: list[_Worker] = []

    def start(self) -> None:
        count = min(self.cfg.workers, len(self.pending))
        self.workers = [_Worker(self.context, self.cfg) for _ in range(count)]

    def step(self) -> None:
        """Hand out documents, then handle whatever the workers said or failed to say in time."""
        for k, worker in enumerate(self.workers):
            if worker.job is None and self.pending:
                if not worker.process.is_alive():  # died while idle (the OOM killer, say)
                    worker.stop(kill=True)
                    worker = self.workers[k] = _Worker(self.context, self.cfg)
                worker.assign(self.pending.popleft())
        busy = [w for w in self.workers if w.job is not None]
        timeout = max(0.0, min(w.deadline for w in busy) - time.monotonic())
        ready = wait([w.conn for w in busy], timeout)
        for worker in busy:
            if worker.conn in ready:
                self._read(worker)
        now = time.monotonic()
        for worker in busy:
            if worker.job is not None and now >= worker.deadline:
                self._lost(worker, f"timed out after {self.cfg.page_timeout_s:g} s")

    def _read(self, worker: _Worker) -> None:
        job = worker.job
        assert job is not None
        while worker.job is not None and worker.conn.poll():
            try:
                event = worker.conn.recv()
            except (EOFError, OSError):
                worker.process.join(timeout=5)
                return self._lost(worker, f"worker died (exit code {worker.process.exitcode})")
            worker.deadline = time.monotonic() + self.cfg.page_timeout_s
            if event[0] == "start":
                job.started = True
            elif event[0] == "open":
                job.page_count = event[1]
            elif event[0] == "page":
                _, index, page, failure = event
                job.next_index = index + 1
                if page is not None:
                    job.pages.append(page)
                else:
                    job.failures.append(failure)
            elif event[0] == "fail":
                job.failures.append(event[1])
            elif event[0] == "done":
                self._finish(worker)
        return None

    def _finish(self, worker: _Worker) -> None:
        assert worker.job is not None
        self.finished[worker.job.position] = worker.job
        worker.job, worker.deadline = None, float("inf")

    def _lost(self, worker: _Worker, reason: str) -> None:
        """The worker overran its deadline or died: kill it, record the page it was on, and let
        a fresh worker go on with the next page."""
        job = worker.job
        assert job is not None
        worker.stop(kill=True)
        worker.job, worker.deadline = None, float("inf")
        if not job.started:
            raise WorkerError(f"render worker did not start: {reason}")
        self.workers[self.workers.index(worker)] = _Worker(self.context, self.cfg)
        if job.page_count is None:
            job.failures.append(failure_record(job.sha256, None, f"cannot open: {reason}"))
        else:
            job.failures.append(failure_record(job.sha256, job.next_index, reason))
            job.next_index += 1
            job.killed += 1
            rest = f"pages {job.next_index}-{job.page_count - 1}"
            if job.next_index < job.page_count and job.killed >= self.cfg.max_page_timeouts:
                why = f"abandoned after {job.killed} killed page(s): {rest} not rendered"
                job.failures.append(failure_record(job.sha256, None, why))
            elif job.next_index < job.page_count:
                self.pending.appendleft(job)
                return
        self.finished[job.position] = job

    def pause(self, seconds: float) -> None:
        """The caller held the results for ``seconds`` (writing a shard, say): a worker blocked on
        sending its page meanwhile was not slow, so its deadline moves on by as much."""
        for worker in self.workers:
            worker.deadline += seconds

    def close(self) -> None:
        for worker in self.workers:
            worker.stop(kill=worker.job is not None)
        self.workers = []


def render_documents(
    tasks: list[tuple[str, str, int | None]], cfg: RenderConfig
) -> Iterator[tuple[list[Page], list[dict[str, Any]]]]:
    """(pages, failures) of each ``(path, sha256, page limit)`` task, in task order, rendered by
    ``cfg.workers`` killable processes with ``cfg.page_timeout_s`` per page."""
    supervisor = _Supervisor(tasks, cfg)
    try:
        supervisor.start()
        for position in range(len(tasks)):
            while position not in supervisor.finished:
                supervisor.step()
            job = supervisor.finished.pop(position)
            held = time.monotonic()
            yield job.pages, job.failures
            supervisor.pause(time.monotonic() - held)
    finally:
        supervisor.close()
