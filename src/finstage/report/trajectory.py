"""Trajectory report: every benchmark score across the phases P0 → P3, anchored to P0.

The recipe's finding is that benchmarks peak at different phases, so the deliverable is the
whole trajectory with the best phase per row marked and a checkpoint recommended per task, not a
final score. Scores come with 95% bootstrap intervals; a change whose interval still contains
the P0 value is flagged rather than reported as a finding, because on the small evaluation sets
of the embedded scale most movements are noise.

Rows are derived from the metrics files, so a new benchmark or score shows up without code
changes; the maps below only give names and an order.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# (label, checkpoint) in reporting order; p1_s1 is shown because it isolates projector alignment.
PHASES = [
    ("P0", "p0"),
    ("P1-S1", "p1_s1"),
    ("P1", "p1_s2"),
    ("P2", "p2_s1"),
    ("P3-1", "p3_s1"),
    ("P3", "p3_s2"),
]
BASELINE = PHASES[0][0]

# Known benchmarks in reporting order with their scores, primary score first. Metrics files are
# written with sorted keys, so file order cannot say which score is primary.
SCORES: dict[str, tuple[str, ...]] = {
    "gsm8k": ("em_strict", "em_flexible"),
    "chabsa": ("harness_f1", "macro_f1", "acc"),
    "cma_basics": ("acc",),
    "cpa_audit": ("acc",),
    "fp2": ("acc",),
    "security_sales_1": ("acc",),
    "finharness": ("avg",),
    "edinet_fraud": ("roc_auc", "gen_roc_auc"),
    "edinet_earnings": ("roc_auc", "gen_roc_auc"),
    "edinet_industry": ("acc",),
    "ocr": ("cer",),
    "vqa": ("em", "anls"),
    "finqa_visual": ("acc", "rouge1", "rouge2", "rougeL", "rationale_sim"),
}
BENCHMARK_LABELS = {
    "gsm8k": "GSM8K",
    "chabsa": "chABSA",
    "cma_basics": "CMA basics",
    "cpa_audit": "CPA audit",
    "fp2": "FP2",
    "security_sales_1": "Securities sales 1",
    "finharness": "Financial harness",
    "edinet_fraud": "EDINET fraud",
    "edinet_earnings": "EDINET earnings",
    "edinet_industry": "EDINET industry",
    "ocr": "OCR",
    "vqa": "VQA",
    "finqa_visual": "Visual FinQA",
}
SCORE_LABELS = {
    "em_strict": "exact match (strict)",
    "em_flexible": "exact match (flexible)",
    "harness_f1": "harness F1 (macro-F1×1.5)",
    "macro_f1": "macro-F1",
    "acc": "accuracy",
    "avg": "average",
    "roc_auc": "ROC-AUC (log-likelihood)",
    "gen_roc_auc": "ROC-AUC (generation)",
    "cer": "character error rate",
    "em": "exact match",
    "anls": "ANLS",
    "rouge1": "ROUGE-1",
    "rouge2": "ROUGE-2",
    "rougeL": "ROUGE-L",
    "rationale_sim": "rationale similarity",
}
LOWER_IS_BETTER = {("ocr", "cer")}
# pfnet japanese-lm-fin-harness leaderboard columns: (benchmark, score) and the average.
HARNESS = [
    ("chabsa", "harness_f1"),
    ("cma_basics", "acc"),
    ("cpa_audit", "acc"),
    ("fp2", "acc"),
    ("security_sales_1", "acc"),
]
HARNESS_AVERAGE = ("finharness", "avg")
BOOKKEEPING = ("n", "n_unparsed", "coverage")
NOT_SIGNIFICANT = "†"


class MetricsError(ValueError):
    """Checkpoint metrics that cannot be compared (missing or mismatched keys)."""


@dataclass(frozen=True)
class Cell:
    value: float
    lo: float
    hi: float

    def contains(self, reference: float) -> bool:
        """The interval rule: a reference inside this 95% interval is not a significant change."""
        return self.lo <= reference <= self.hi


@dataclass
class Row:
    benchmark: str
    score: str
    n: str
    lower_is_better: bool
    primary: bool
    cells: dict[str, Cell]
    best: list[str]  # tied best phases in phase order; empty when the row is flat

    @property
    def label(self) -> str:
        arrow = " ↓" if self.lower_is_better else ""
        name = BENCHMARK_LABELS.get(self.benchmark, self.benchmark)
        return f"{name} · {SCORE_LABELS.get(self.score, self.score)}{arrow}"

    def significant(self, phase: str) -> bool:
        return not self.cells[phase].contains(self.cells[BASELINE].value)


@dataclass
class Recommendation:
    row: Row
    phase: str | None  # None when the row is flat
    tied_with: list[str]
    runner_up: str | None
    beats_runner_up: bool
    beats_p0: bool


# ---------------------------------------------------------------- loading


def load_metrics(metrics_dir: Path) -> dict[str, dict]:
    missing = [c for _, c in PHASES if not (metrics_dir / f"{c}.json").exists()]
    if missing:
        raise FileNotFoundError(
            f"no metrics for {missing} in {metrics_dir}: run `dvc repro` for their evaluate stages"
        )
    metrics = {c: json.loads((metrics_dir / f"{c}.json").read_text()) for _, c in PHASES}
    check_same_keys(metrics, metrics_dir)
    return metrics


def check_same_keys(metrics: dict[str, dict], metrics_dir: Path) -> None:
    """Every checkpoint must report the same keys, or the trajectory compares unlike things."""
    for benchmark in _union(metrics[c] for _, c in PHASES):
        holder = next(c for _, c in PHASES if benchmark in metrics[c])
        for _, ckpt in PHASES:
            if benchmark not in metrics[ckpt]:
                _missing(metrics_dir, ckpt, benchmark, holder)
        for key in _union(metrics[c][benchmark] for _, c in PHASES):
            holder = next(c for _, c in PHASES if key in metrics[c][benchmark])
            for _, ckpt in PHASES:
                if key not in metrics[ckpt][benchmark]:
                    _missing(metrics_dir, ckpt, f"{benchmark}.{key}", holder)
        # keys now agree across checkpoints, so checking P0 checks them all
        p0 = metrics[PHASES[0][1]][benchmark]
        scores = _scores(benchmark, p0)
        for key in ["n", "coverage", *(f"{s}{end}" for s in scores for end in ("_lo", "_hi"))]:
            if key not in p0:
                _missing(metrics_dir, PHASES[0][1], f"{benchmark}.{key}", None)


def _union(dicts: Iterable[dict]) -> list[str]:
    seen: dict[str, None] = {}
    for d in dicts:
        seen.update(dict.fromkeys(d))
    return list(seen)


def _missing(metrics_dir: Path, ckpt: str, key: str, holder: str | None) -> NoReturn:
    where = f" (present in {holder}.json)" if holder else ""
    raise MetricsError(
        f"{metrics_dir / f'{ckpt}.json'} has no key {key!r}{where}: the checkpoints were evaluated "
        "with different protocols; rerun `dvc repro` so every evaluate stage writes the same keys"
    )


def _scores(benchmark: str, entry: dict) -> list[str]:
    """Scores of one benchmark entry: known ones in their order, then any others."""
    present = [
        k
        for k in entry
        if k not in BOOKKEEPING and not (k[-3:] in ("_lo", "_hi") and k[:-3] in entry)
    ]
    known = [s for s in SCORES.get(benchmark, ()) if s in present]
    return known + [s for s in present if s not in known]


# ---------------------------------------------------------------- rows


def trajectory(metrics: dict[str, dict]) -> list[Row]:
    p0 = metrics[PHASES[0][1]]
    known = [b for b in SCORES if b in p0]
    rows = []
    for benchmark in known + [b for b in p0 if b not in known]:
        for i, score in enumerate(_scores(benchmark, p0[benchmark])):
            rows.append(_row(metrics, benchmark, score, primary=i == 0))
    return rows


def _row(metrics: dict[str, dict], benchmark: str, score: str, primary: bool) -> Row:
    cells = {
        phase: Cell(
            metrics[c][benchmark][score],
            metrics[c][benchmark][f"{score}_lo"],
            metrics[c][benchmark][f"{score}_hi"],
        )
        for phase, c in PHASES
    }
    ns = sorted({metrics[c][benchmark]["n"] for _, c in PHASES})
    lower = (benchmark, score) in LOWER_IS_BETTER
    return Row(
        benchmark=benchmark,
        score=score,
        n=str(ns[0]) if len(ns) == 1 else f"{ns[0]}–{ns[-1]}",
        lower_is_better=lower,
        primary=primary,
        cells=cells,
        best=_best({p: c.value for p, c in cells.items()}, lower),
    )


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _best(values: dict[str, float], lower_is_better: bool) -> list[str]:
    """All phases tied at the best value; none for a flat row, where a best would be invented."""
    first = next(iter(values.values()))
    if all(_same(v, first) for v in values.values()):
        return []
    target = (min if lower_is_better else max)(values.values())
    return [p for p, v in values.items() if _same(v, target)]


def coverage(metrics: dict[str, dict], benchmark: str) -> dict[str, float]:
    return {phase: metrics[c][benchmark]["coverage"] for phase, c in PHASES}


# ---------------------------------------------------------------- recommendation


def recommend(rows: list[Row]) -> list[Recommendation]:
    return [_recommend(r) for r in rows if r.primary]


def _recommend(row: Row) -> Recommendation:
    if not row.best:
        return Recommendation(row, None, [], None, False, False)
    phase, tied = row.best[0], row.best[1:]
    best = row.cells[phase]
    others = {p: c.value for p, c in row.cells.items() if p not in row.best}
    pick = min if row.lower_is_better else max
    runner_up = pick(others, key=others.get)  # first in phase order among equals
    return Recommendation(
        row=row,
        phase=phase,
        tied_with=tied,
        runner_up=runner_up,
        beats_runner_up=not tied and not best.contains(others[runner_up]),
        beats_p0=phase != BASELINE and row.significant(phase),
    )


def recommendation_text(rec: Recommendation) -> str:
    row = rec.row
    head = f"- **{row.label}**: "
    if rec.phase is None:
        value = row.cells[BASELINE].value
        return head + f"flat at {value:.3f} in every phase; no checkpoint is better than another."
    cell = row.cells[rec.phase]
    ckpt = dict(PHASES)[rec.phase]
    text = head + (
        f"{rec.phase} (`models/{ckpt}`), {cell.value:.3f} [{cell.lo:.3f}, {cell.hi:.3f}]."
    )
    if rec.tied_with:
        text += f" Tied with {', '.join(rec.tied_with)}; the earliest phase is listed."
    if rec.phase == BASELINE:
        text += " P0 is the untouched baseline: no training stage improved on it."
    elif rec.beats_p0:
        text += f" Significantly better than P0 ({row.cells[BASELINE].value:.3f})."
    else:
        text += (
            f" Not significantly better than P0 ({row.cells[BASELINE].value:.3f}), "
            "which lies inside its interval."
        )
    if not rec.tied_with and rec.runner_up not in (None, BASELINE):
        other = row.cells[rec.runner_up].value
        if rec.beats_runner_up:
            text += f" Significantly better than the runner-up {rec.runner_up} ({other:.3f})."
        else:
            text += (
                f" Not significantly better than the runner-up {rec.runner_up} ({other:.3f}), "
                "which lies inside its interval."
            )
    return text


# ---------------------------------------------------------------- markdown


def markdown(rows: list[Row], metrics: dict[str, dict]) -> str:
    lines = ["# Trajectory", "", *_main_table(rows, metrics), "", *_legend(), ""]
    harness = _harness_table(rows)
    if harness:
        lines += [*harness, ""]
    lines += [
        "## Which checkpoint for which task",
        "",
        "Best phase on each benchmark's primary score, judged by the same interval rule.",
        "",
        *(recommendation_text(r) for r in recommend(rows)),
    ]
    return "\n".join(lines) + "\n"


def _main_table(rows: list[Row], metrics: dict[str, dict]) -> list[str]:
    phases = [p for p, _ in PHASES]
    lines = [
        "| benchmark · score | n | " + " | ".join(phases) + " | best |",
        "|---|---:|" + "---:|" * len(phases) + "---|",
    ]
    for i, row in enumerate(rows):
        cells = [_cell(row, p) for p in phases]
        best = ", ".join(row.best) or "— (flat)"
        lines.append(f"| {row.label} | {row.n} | " + " | ".join(cells) + f" | {best} |")
        last_of_benchmark = i + 1 == len(rows) or rows[i + 1].benchmark != row.benchmark
        if last_of_benchmark:
            lines += _coverage_row(row.benchmark, coverage(metrics, row.benchmark))
    return lines


def _cell(row: Row, phase: str) -> str:
    """A flat row shows bare values: a zero change with a flag would only add noise."""
    value = row.cells[phase].value
    text = f"{value:.3f}"
    if not row.best:
        return text
    changed = phase != BASELINE
    if changed:
        text += f" ({value - row.cells[BASELINE].value:+.3f})"
    if phase in row.best:
        text = f"**{text}**"
    if changed and not row.significant(phase):
        text += NOT_SIGNIFICANT
    return text


def _coverage_row(benchmark: str, values: dict[str, float]) -> list[str]:
    if all(v >= 1 for v in values.values()):
        return []
    name = BENCHMARK_LABELS.get(benchmark, benchmark)
    cells = " | ".join(f"{values[p]:.3f}" for p, _ in PHASES)
    return [f"| {name} · coverage (answers parsed) | | {cells} | |"]


def _legend() -> list[str]:
    return [
        "Cells are `value (change vs P0)`, scores as fractions; ↓ marks lower-is-better rows. "
        "**Bold**: best phase per row (all of them on a tie). — (flat): every phase scored the "
        "same, so no phase is best. n: items scored per checkpoint. Coverage rows: share of "
        "answers that could be parsed, shown when below 1 in some phase.",
        "",
        f"{NOT_SIGNIFICANT} not significant: the phase's 95% bootstrap interval contains the P0 "
        "value, so the change from P0 may be noise.",
    ]


def _harness_table(rows: list[Row]) -> list[str]:
    """pfnet's leaderboard breakdown, ×100 as the harness reports it."""
    by_key = {(r.benchmark, r.score): r for r in rows}
    entries = [(b, by_key[(b, s)]) for b, s in HARNESS if (b, s) in by_key]
    if HARNESS_AVERAGE in by_key:
        entries.append(("average", by_key[HARNESS_AVERAGE]))
    if not entries:
        return []
    phases = [p for p, _ in PHASES]
    lines = [
        "## Japanese financial harness (×100)",
        "",
        "| task | " + " | ".join(phases) + " |",
        "|---|" + "---:|" * len(phases),
    ]
    for name, row in entries:
        cells = [
            f"**{100 * row.cells[p].value:.2f}**"
            if p in row.best
            else f"{100 * row.cells[p].value:.2f}"
            for p in phases
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


# ---------------------------------------------------------------- json and plot


def summary(rows: list[Row]) -> dict:
    """{benchmark: {score: {phase: value}}} plus the recommendation, flat for `dvc metrics show`."""
    out: dict[str, dict] = {}
    for row in rows:
        out.setdefault(row.benchmark, {})[row.score] = {p: c.value for p, c in row.cells.items()}
    out["recommendation"] = {
        rec.row.benchmark: _recommendation_json(rec) for rec in recommend(rows)
    }
    return out


def _recommendation_json(rec: Recommendation) -> dict:
    if rec.phase is None:
        return {"score": rec.row.score, "best": "flat", "checkpoint": ""}
    if rec.tied_with:
        vs_runner_up = "tie"
    else:
        vs_runner_up = "significant" if rec.beats_runner_up else "not significant"
    if rec.phase == BASELINE:
        vs_p0 = "is P0"
    else:
        vs_p0 = "significant" if rec.beats_p0 else "not significant"
    return {
        "score": rec.row.score,
        "best": rec.phase,
        "checkpoint": dict(PHASES)[rec.phase],
        "value": rec.row.cells[rec.phase].value,
        "tied_with": ",".join(rec.tied_with),
        "runner_up": rec.runner_up or "",
        "vs_runner_up": vs_runner_up,
        "vs_p0": vs_p0,
    }


def plot(rows: list[Row], path: Path) -> None:
    """One small panel per primary score, intervals as error bars, P0 as a dashed line."""
    primary = [r for r in rows if r.primary]
    phases = [p for p, _ in PHASES]
    ncols = min(4, len(primary))
    nrows = math.ceil(len(primary) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.6 * nrows), squeeze=False)
    for ax, row in zip(axes.flat, primary, strict=False):
        values = [row.cells[p].value for p in phases]
        below = [max(0.0, row.cells[p].value - row.cells[p].lo) for p in phases]
        above = [max(0.0, row.cells[p].hi - row.cells[p].value) for p in phases]
        ax.errorbar(phases, values, yerr=[below, above], marker="o", capsize=3, lw=1)
        ax.axhline(row.cells[BASELINE].value, color="grey", ls="--", lw=0.8)
        ax.set_title(row.label, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.tick_params(axis="x", rotation=45)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(primary) :]:
        ax.axis("off")
    fig.suptitle("finstage trajectory (95% intervals; dashed: P0)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(metrics_dir: Path, out_md: Path, out_png: Path, out_json: Path) -> list[Row]:
    metrics = load_metrics(metrics_dir)
    rows = trajectory(metrics)
    out_md.write_text(markdown(rows, metrics))
    plot(rows, out_png)
    out_json.write_text(json.dumps(summary(rows), indent=2, ensure_ascii=False) + "\n")
    return rows
