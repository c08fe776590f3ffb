"""The trajectory report as markdown: the main table with deltas vs P0 and significance flags,
the harness breakdown as pfnet's leaderboard shows it, and the checkpoint advice."""

from __future__ import annotations

from finstage.benchmarks.registry import HARNESS, HARNESS_AVERAGE
from finstage.report.recommend import recommend, recommendation_text
from finstage.report.trajectory import Row, benchmark_label, coverage, window_counts

NOT_SIGNIFICANT = "†"


def markdown(
    rows: list[Row],
    metrics: dict[str, dict],
    phases: dict[str, str],
    protocol: dict[str, float] | None = None,
) -> str:
    """The report for `phases` (checkpoint -> label, in order; the first is the baseline),
    scored under `protocol` (the metrics files' protocol block)."""
    lines = ["# Trajectory", "", protocol_text(protocol), ""]
    lines += [*_main_table(rows, metrics, phases), "", *_legend(), ""]
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


def _main_table(rows: list[Row], metrics: dict[str, dict], phases: dict[str, str]) -> list[str]:
    labels = list(phases.values())
    lines = [
        "| benchmark · score | n | " + " | ".join(labels) + " | best |",
        "|---|---:|" + "---:|" * len(labels) + "---|",
    ]
    for i, row in enumerate(rows):
        cells = [_cell(row, p) for p in labels]
        best = ", ".join(row.best) or "— (flat)"
        lines.append(f"| {row.label} | {row.n} | " + " | ".join(cells) + f" | {best} |")
        last_of_benchmark = i + 1 == len(rows) or rows[i + 1].benchmark != row.benchmark
        if last_of_benchmark:
            lines += _coverage_row(row.benchmark, coverage(metrics, phases, row.benchmark))
            for key, what in WINDOW_ROWS.items():
                counts = window_counts(metrics, phases, row.benchmark, key)
                lines += _count_row(row.benchmark, what, counts)
    return lines


WINDOW_ROWS = {
    "n_truncated": "prompts cut to fit the window",
    "n_unscorable": "items too long to score",
}


def protocol_text(protocol: dict[str, float] | None) -> str:
    """One sentence saying how every prompt was built, so numbers are compared like with like."""
    if protocol is None:
        return "Protocol: not recorded in these metrics files."
    window = f"a {int(protocol['max_length'])}-token window"
    if protocol["chat_template"]:
        how = "each prompt as one user turn of the checkpoint's own chat template"
    else:
        how = "raw prompts without a chat template (pfnet's leaderboard protocol)"
    return (
        f"Protocol: {how}, in {window}; a longer prompt is cut from the left (its start) and "
        "counted in the rows on cut prompts."
    )


def _count_row(benchmark: str, what: str, values: dict[str, int]) -> list[str]:
    if not any(values.values()):
        return []
    cells = " | ".join(str(v) for v in values.values())
    return [f"| {benchmark_label(benchmark)} · {what} | | {cells} | |"]


def _cell(row: Row, phase: str) -> str:
    """A flat row shows bare values: a zero change with a flag would only add noise."""
    value = row.cells[phase].value
    text = f"{value:.3f}"
    if not row.best:
        return text
    changed = phase != row.baseline
    if changed:
        text += f" ({value - row.cells[row.baseline].value:+.3f})"
    if phase in row.best:
        text = f"**{text}**"
    if changed and not row.significant(phase):
        text += NOT_SIGNIFICANT
    return text


def _coverage_row(benchmark: str, values: dict[str, float]) -> list[str]:
    if all(v >= 1 for v in values.values()):
        return []
    name = benchmark_label(benchmark)
    cells = " | ".join(f"{v:.3f}" for v in values.values())
    return [f"| {name} · coverage (answers parsed) | | {cells} | |"]


def _legend() -> list[str]:
    return [
        "Cells are `value (change vs P0)`, scores as fractions; ↓ marks lower-is-better rows. "
        "**Bold**: best phase per row (all of them on a tie). — (flat): every phase scored the "
        "same, so no phase is best. n: items scored per checkpoint. Coverage rows: share of "
        "answers that could be parsed, shown when below 1 in some phase. Cut-prompt rows: items "
        "whose prompt lost its start to fit the window; too-long rows: items that could not fit "
        "at all (scored as a wrong or empty answer); each shown when nonzero in some phase.",
        "",
        f"{NOT_SIGNIFICANT} not significant: the phase's 95% bootstrap interval contains the P0 "
        "value, so the change from P0 may be noise.",
    ]


def _harness_table(rows: list[Row]) -> list[str]:
    """pfnet's leaderboard breakdown, ×100 as the harness reports it."""
    by_key = {(r.benchmark, r.score): r for r in rows}
    harness = [(b.name, b.scores[0]) for b in HARNESS]
    entries = [(b, by_key[(b, s)]) for b, s in harness if (b, s) in by_key]
    average = (HARNESS_AVERAGE.name, HARNESS_AVERAGE.scores[0])
    if average in by_key:
        entries.append(("average", by_key[average]))
    if not entries:
        return []
    phases = list(entries[0][1].cells)
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
