"""The trajectory plot shows what moves: varying scores and coverages, flat scores named."""

from __future__ import annotations

from pathlib import Path

from finstage.report.plot import panels, plot
from finstage.report.trajectory import Cell, Row

PHASES = ("P0", "P1", "P2")


def row(benchmark: str, values: tuple[float, ...], best: list[str], primary: bool = True) -> Row:
    cells = {p: Cell(p, v, v - 0.1, v + 0.2) for p, v in zip(PHASES, values, strict=True)}
    return Row(benchmark, "acc", "40", False, primary, cells, best)


ROWS = [
    row("gsm8k", (0.0, 0.0, 0.0), []),
    row("vqa", (0.0, 0.3, 0.1), ["P1"], primary=False),
    row("chabsa", (0.5, 0.5, 0.5), []),
]
COVERAGE = {
    "gsm8k": {"P0": 0.9, "P1": 0.1, "P2": 0.85},
    "chabsa": dict.fromkeys(PHASES, 1.0),
}


def test_only_moving_scores_and_coverages_get_panels():
    shown, flat = panels(ROWS, COVERAGE)
    assert [p.title for p in shown] == ["VQA · accuracy", "GSM8K · coverage (answers parsed)"]
    assert flat == ["GSM8K · accuracy", "chABSA · accuracy"]
    vqa, gsm8k = shown
    assert vqa.below["P1"] == 0.1 and abs(vqa.above["P1"] - 0.2) < 1e-9
    assert gsm8k.values == COVERAGE["gsm8k"] and set(gsm8k.below.values()) == {0.0}


def test_plot_writes_a_png_even_when_everything_is_flat(tmp_path: Path):
    for rows, coverage in ((ROWS, COVERAGE), ([ROWS[0]], {})):
        path = tmp_path / f"plot{len(rows)}.png"
        plot(rows, coverage, path)
        assert path.read_bytes()[:4] == b"\x89PNG"
