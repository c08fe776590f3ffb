"""Items/s of our lm-eval adapter (FinstageLM) against lm-eval's stock HFLM, same checkpoint.

FinstageLM re-implements request batching and scoring that lm-eval's HFLM already provides, so
we owe evidence that owning that code costs no speed. Both LMs wrap the same model instance and
tokenizer and run the same task configs through `lm_eval.simple_evaluate` with the same batch
size and limit; each (task, LM) pair is warmed up once, then the two LMs are timed alternately
`--repeats` times (medians; the ratio pairs back-to-back runs).

The prompts are token-identical: FinstageLM (with `chat_template=True`, the default protocol)
renders the user turn of the checkpoint's chat template itself, so it runs with
`apply_chat_template=False`, and HFLM runs with
`apply_chat_template=True`. Because lm-eval then drops the target delimiter for HFLM, the bench
tasks use an empty delimiter and no `description` (lm-eval would make it a system turn for HFLM
and prepend it to the user text for us). The table's `agree` column checks the result: the share
of items where both LMs pick the same choice (multiple choice) or generate the same text.

    python bench/eval.py                        # tiny P0 built in a temp dir (seconds)
    python bench/eval.py --checkpoint models/p0 # a checkpoint from `dvc repro`
"""

from __future__ import annotations

import json
import logging
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import lm_eval
import torch
import typer
import yaml
from lm_eval.api.model import LM
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager
from transformers import AutoTokenizer, LlavaForConditionalGeneration

from finstage.config import parse
from finstage.evaluate.lm import FinstageLM
from finstage.model.assemble import ModelConfig, build_p0
from finstage.model.tokenizer import train_tokenizer

OURS, STOCK = "FinstageLM", "HFLM"
MC_TASK, GEN_TASK = "chabsa_like_mc", "chabsa_like_gen"
PROMPT = (
    "以下のセンテンスにおける、ターゲットのセンチメントをpositiveかnegativeで答えてください。\n"
    "センテンス: {{sentence}}\nターゲット: {{target}}\n回答:"
)
SUBJECTS = ["売上高", "営業利益", "経常利益", "受注高", "当期純利益", "販売数量", "海外売上"]
POSITIVE = ["前年同期比で増加しました", "大幅に改善しました", "過去最高となりました"]
NEGATIVE = ["前年同期比で減少しました", "大幅に悪化しました", "計画を下回りました"]
SEED = 1234


@dataclass
class Run:
    """One (task, LM) pair: timings of every repeat and what the last repeat answered."""

    task: str
    lm: str
    chat_template: str
    items: int
    walls: list[float]  # whole simple_evaluate call: what the pipeline pays
    in_lm: list[float]  # inside the LM's request methods: what the adapter controls
    outputs: list[Any]  # per item: log-likelihood per choice (multiple choice) or the text
    metrics: dict[str, float]

    @property
    def seconds(self) -> float:
        return statistics.median(self.walls)

    @property
    def items_per_s(self) -> float:
        return self.items / self.seconds


# ---------------------------------------------------------------- inputs


def write_items(path: Path, n: int, seed: int = SEED) -> Path:
    """chabsa-shaped items (sentence, target, polarity), balanced between the two polarities."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        polarity = "positive" if i % 2 == 0 else "negative"
        subject = rng.choice(SUBJECTS)
        verb = rng.choice(POSITIVE if polarity == "positive" else NEGATIVE)
        sentence = f"当連結会計年度の{subject}は{rng.randint(1, 9999):,}百万円となり、{verb}。"
        rows.append({"sentence": sentence, "target": subject, "polarity": polarity})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def build_tiny_checkpoint(out: Path, corpus: list[str]) -> Path:
    """P0 with the embedded default's shapes (params.yaml `model`), so the bench needs neither a
    hub nor `dvc repro`."""
    raw = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    cfg = parse(ModelConfig, raw["model"], "model")
    tokenizer = train_tokenizer(corpus, cfg.tokenizer.vocab_size)
    build_p0(cfg, tokenizer).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _base_task(name: str, data: Path) -> dict[str, Any]:
    return {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data.resolve())}},
        "test_split": "test",
        "doc_to_text": PROMPT,
        "metadata": {"version": 1.0},
    }


def mc_task(data: Path) -> dict[str, Any]:
    """chabsa's log-likelihood protocol; empty delimiter so both LMs score the same tokens."""
    return _base_task(MC_TASK, data) | {
        "output_type": "multiple_choice",
        "doc_to_choice": ["positive", "negative"],
        "doc_to_target": "{{polarity}}",
        "target_delimiter": "",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
    }


def gen_task(data: Path, max_gen_toks: int) -> dict[str, Any]:
    return _base_task(GEN_TASK, data) | {
        "output_type": "generate_until",
        "doc_to_target": "{{polarity}}",
        "generation_kwargs": {"until": ["\n"], "max_gen_toks": max_gen_toks, "do_sample": False},
        "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}],
    }


# ---------------------------------------------------------------- running


class Contender:
    """One LM under test with its chat-template setting and a clock on its request methods."""

    def __init__(self, name: str, lm: LM, chat: bool):
        self.name, self.lm, self.chat = name, lm, chat
        self.clock = 0.0
        for method in ("loglikelihood", "generate_until"):
            setattr(lm, method, self._timed(getattr(lm, method)))

    def _timed(self, method: Callable) -> Callable:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.clock += time.perf_counter() - start

        return wrapper

    def evaluate(self, task: dict[str, Any], limit: int | None) -> tuple[float, float, dict]:
        """(wall seconds, seconds inside the LM, simple_evaluate output) of one run."""
        self.clock = 0.0
        start = time.perf_counter()
        out = lm_eval.simple_evaluate(
            model=self.lm,
            tasks=[task],
            task_manager=TaskManager(include_defaults=False),
            num_fewshot=0,
            limit=limit,
            bootstrap_iters=0,
            log_samples=True,
            apply_chat_template=self.chat,
            random_seed=SEED,
            numpy_random_seed=SEED,
            torch_random_seed=SEED,
            fewshot_random_seed=SEED,
        )
        return time.perf_counter() - start, self.clock, out


def contenders(checkpoint: Path, batch_size: int, max_length: int) -> list[Contender]:
    """Both LMs around one model instance and tokenizer, so only the adapter code differs."""
    model = LlavaForConditionalGeneration.from_pretrained(checkpoint).eval()
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    # AutoModelForCausalLM does not map a Llava checkpoint path, so HFLM gets the instance; it
    # then picks its causal backend and calls the instance's forward/generate directly.
    stock = HFLM(
        pretrained=model,
        tokenizer=tokenizer,
        batch_size=batch_size,
        max_length=max_length,
        device=str(model.device),
    )
    ours = FinstageLM(
        model, tokenizer, batch_size, max_length, chat_template=True, device=model.device
    )
    return [Contender(OURS, ours, chat=False), Contender(STOCK, stock, chat=True)]


def _outputs(out: dict[str, Any], task: str) -> list[Any]:
    samples = sorted(out["samples"][task], key=lambda s: s["doc_id"])
    if task == MC_TASK:  # filtered_resps: one (log-likelihood, is_greedy) per choice
        return [[ll for ll, _ in s["filtered_resps"]] for s in samples]
    return [s["filtered_resps"][0] for s in samples]


def answers(run: Run) -> list[Any]:
    """What each item was answered: the chosen index (multiple choice) or the generated text."""
    if run.task == MC_TASK:
        return [max(range(len(lls)), key=lls.__getitem__) for lls in run.outputs]
    return run.outputs


def _run(c: Contender, task: str, timings: list[tuple[float, float, dict]]) -> Run:
    out = timings[-1][2]
    return Run(
        task=task,
        lm=c.name,
        chat_template="lm-eval applies it" if c.chat else "adapter applies it",
        items=out["n-samples"][task]["effective"],
        walls=[wall for wall, _, _ in timings],
        in_lm=[lm for _, lm, _ in timings],
        outputs=_outputs(out, task),
        metrics={
            k.split(",")[0]: v
            for k, v in out["results"][task].items()
            if k.endswith(",none") and "_stderr" not in k
        },
    )


def compare(
    checkpoint: Path | None,
    workdir: Path,
    items: int,
    batch_size: int = 8,
    limit: int | None = None,
    repeats: int = 3,
    max_gen_toks: int = 8,
    max_length: int = 512,
) -> list[Run]:
    """The bench's core: both LMs on both tasks with the same settings, repeats interleaved."""
    data = write_items(workdir / "items.jsonl", items)
    if checkpoint is None:
        corpus = [json.loads(x)["sentence"] for x in data.read_text().splitlines()]
        checkpoint = build_tiny_checkpoint(workdir / "p0", corpus * 5 + [PROMPT] * 5)
    lms = contenders(checkpoint, batch_size, max_length)
    runs = []
    for task in (mc_task(data), gen_task(data, max_gen_toks)):
        for c in lms:
            c.evaluate(task, limit)  # warm-up: dataset cache, allocator, lazy imports
        timings: dict[str, list] = {c.name: [] for c in lms}
        for _ in range(repeats):
            for c in lms:  # interleaved, so load from other processes hits both alike
                timings[c.name].append(c.evaluate(task, limit))
        runs += [_run(c, task["task"], timings[c.name]) for c in lms]
    return runs


# ---------------------------------------------------------------- report


def ratios(runs: list[Run], in_lm: bool = False) -> dict[str, float]:
    """ours/stock items per second per task (> 1: ours is faster), from whole calls or from the
    time inside the LMs. The median of the ratios of back-to-back repeats, which cancels most
    of the drift in a shared machine's load."""
    by = {(r.task, r.lm): r for r in runs}
    tasks = dict.fromkeys(r.task for r in runs)

    def times(task: str, lm: str) -> list[float]:
        return by[(task, lm)].in_lm if in_lm else by[(task, lm)].walls

    return {
        t: statistics.median(
            stock / ours for ours, stock in zip(times(t, OURS), times(t, STOCK), strict=True)
        )
        for t in tasks
    }


def agreement(runs: list[Run], task: str) -> float:
    by = {r.lm: r for r in runs if r.task == task}
    pairs = list(zip(answers(by[OURS]), answers(by[STOCK]), strict=True))
    return sum(a == b for a, b in pairs) / len(pairs)


def table(runs: list[Run]) -> str:
    call, in_lm = ratios(runs), ratios(runs, in_lm=True)
    lines = [
        "| task | LM | chat template | items | s | in-LM s | items/s | ours/stock | "
        "ours/stock in-LM | agree | metrics |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in runs:
        ours = r.lm == OURS
        metrics = ", ".join(f"{k}={v:.3f}" for k, v in r.metrics.items())
        lines.append(
            f"| {r.task} | {r.lm} | {r.chat_template} | {r.items} | {r.seconds:.3f} | "
            f"{statistics.median(r.in_lm):.3f} | {r.items_per_s:.1f} | "
            f"{f'{call[r.task]:.2f}' if ours else ''} | {f'{in_lm[r.task]:.2f}' if ours else ''} | "
            f"{agreement(runs, r.task):.2f} | {metrics} |"
        )
    return "\n".join(lines)


def main(
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="Checkpoint folder (e.g. models/p0). Default: a tiny P0 in a temp dir."),
    ] = None,
    items: Annotated[int, typer.Option(min=1, help="chabsa-like items to generate.")] = 128,
    limit: Annotated[
        int | None, typer.Option(min=1, help="lm-eval limit (items per task); default all.")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Batch size for both LMs.")] = 8,
    repeats: Annotated[
        int, typer.Option(min=1, help="Timed runs per (task, LM) after one warm-up; median shown.")
    ] = 3,
    max_gen_toks: Annotated[int, typer.Option(min=1, help="Greedy tokens per item.")] = 8,
    max_length: Annotated[int, typer.Option(min=8, help="Context length for both LMs.")] = 512,
    threads: Annotated[
        int | None,
        typer.Option(min=1, help="torch CPU threads; 1 steadies timings on a busy machine."),
    ] = None,
    require: Annotated[
        bool, typer.Option("--require", help="Exit 1 if FinstageLM is slower on any task.")
    ] = False,
) -> None:
    """Compare FinstageLM with lm-eval's HFLM: items/s on a log-likelihood and a generation task.

    Both wrap the same model and tokenizer and see token-identical prompts (`agree`: share of
    items answered alike). `s`: median seconds of the whole simple_evaluate call; `in-LM s`:
    inside the LM's request methods. ours/stock: median ratio of back-to-back repeats (> 1:
    ours is faster); --require checks the whole-call ratio.
    """
    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    if threads is not None:
        torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        runs = compare(
            checkpoint, Path(tmp), items, batch_size, limit, repeats, max_gen_toks, max_length
        )
    typer.echo(table(runs))
    slower = [t for t, r in ratios(runs).items() if r < 1.0]
    if require and slower:
        typer.echo(f"FinstageLM is slower than HFLM on {slower}", err=True)
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
