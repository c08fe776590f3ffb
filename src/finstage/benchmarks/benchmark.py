"""What every benchmark family provides, so evaluation, decontamination, the report and the
stand-in writer can iterate one registry instead of each keeping its own list of tasks."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Protocol

from finstage.benchmarks.lmeval import Doc, Scorer, TextTask
from finstage.benchmarks.standin import StandIns
from finstage.benchmarks.transport import SourceSpec


class TaskSettings(Protocol):
    """The `evaluate` params that shape benchmark items and tasks (met by `EvalConfig`)."""

    gsm8k_max_gen_toks: int
    edinet_max_gen_toks: int
    edinet_sheet_chars: int | None


@dataclass(frozen=True, kw_only=True)
class Block:
    """One block of `metrics/eval/<ckpt>.json`, as the trajectory report names and orders it."""

    name: str
    label: str
    scores: tuple[str, ...]  # primary first: metrics files sort their keys, so they cannot say
    lower_is_better: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Benchmark(Block, ABC):
    """A text benchmark: its stand-in, its raw schema, its lm-eval tasks and its overlap text."""

    stand_in_params: str  # dotted key under `benchmarks:` in params.yaml: the stand-in's sizes
    harness: bool = False  # one of pfnet's japanese-lm-fin-harness tasks, averaged together

    @abstractmethod
    def write_stand_in(self, sizes: Any, out: StandIns) -> None:
        """Write a generated stand-in in the raw schema, at `sizes`, and its manifest entry."""

    @abstractmethod
    def load_docs(self, spec: SourceSpec, settings: TaskSettings | None = None) -> list[Doc]:
        """Normalised docs from the raw data at `spec`; `settings` None reads them whole."""

    @abstractmethod
    def text_tasks(self, docs: list[Doc], settings: TaskSettings) -> list[TextTask]:
        """The lm-eval tasks that score `docs` into this benchmark's metrics block."""

    @abstractmethod
    def scorers(self) -> dict[str, Scorer]:
        """lm-eval task name -> its scorer, for each task `text_tasks` builds: what rescoring the
        logged predictions needs, without the docs."""

    @abstractmethod
    def item_text(self, doc: Doc) -> str:
        """The content of one item, which the overlap check looks for in training mixtures."""
