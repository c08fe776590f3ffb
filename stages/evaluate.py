"""Score one checkpoint on every benchmark with the same protocol as all the others.

Text benchmarks (GSM8K, the five Japanese financial harness tasks, EDINET-Bench) are read from
`evaluate.sources` in their raw public schemas and run through lm-eval; held-out page images
through our visual evaluator. Metrics carry 95% bootstrap intervals, parse coverage, how many
prompts were cut to fit the window, and the prompt protocol; every score can be recomputed from
the predictions file (`finstage.evaluate.rescore`).
"""

import logging
from pathlib import Path

import typer

from finstage.config import parse, stage_params
from finstage.evaluate.run import (
    PROTOCOL,
    EvalConfig,
    evaluate_checkpoint,
    load_text_tasks,
    write_metrics,
)


def load_config(params: dict) -> EvalConfig:
    """The only place this stage reads params (tests call it with the params dvc.yaml declares)."""
    return parse(EvalConfig, params["evaluate"], "evaluate")


def main(
    checkpoint: Path = typer.Option(..., help="Checkpoint folder (models/<name>)."),
    visual: Path = typer.Option(
        ..., help="Held-out visual records (one subfolder per visual check)."
    ),
    pages: Path = typer.Option(..., help="Page store."),
    metrics: Path = typer.Option(..., help="Metrics JSON to write."),
    predictions: Path = typer.Option(..., help="Predictions JSONL to write."),
    stage: str = typer.Option(
        None, envvar="DVC_STAGE", help="DVC stage whose declared params to read."
    ),
) -> None:
    cfg = load_config(stage_params(stage))
    tasks = load_text_tasks(cfg)  # every source is read before the model loads
    scores, preds = evaluate_checkpoint(checkpoint, tasks, visual, pages, cfg)
    write_metrics(scores, preds, metrics, predictions)
    typer.echo(f"{checkpoint.name} -> {metrics}\n{metrics_table(scores)}")


# keys of a block that describe its items rather than score them
COUNTS = {"n", "coverage", "n_unparsed", "n_truncated", "n_unscorable"}


def primary_score(block: dict) -> str:
    """The block's first score: the one it is ranked by (blocks list their scores primary first)."""
    return next(k for k in block if k not in COUNTS and not k.endswith(("_lo", "_hi")))


def metrics_table(scores: dict[str, dict]) -> str:
    """One line per benchmark block: primary score, its 95% interval, n, coverage, cut prompts.

    A reader of the stage log sees at once which scores are noise (wide interval, small n) and
    which are parse failures (low coverage) or truncation, without opening the metrics file.
    """
    rows = [("block", "score", "value", "95% CI", "n", "coverage", "cut")]
    for name, block in sorted(scores.items()):
        if name == PROTOCOL:
            continue
        key = primary_score(block)
        lo, hi = block.get(f"{key}_lo"), block.get(f"{key}_hi")
        rows.append(
            (
                name,
                key,
                _num(block[key]),
                "-" if lo is None or hi is None else f"[{_num(lo)}, {_num(hi)}]",
                str(block.get("n", "-")),
                _num(block.get("coverage")),
                str(block.get("n_truncated", 0)),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(_line(row, widths) for row in rows)


def _line(row: tuple[str, ...], widths: list[int]) -> str:
    """Names left-aligned, numbers right-aligned, so the columns read down."""
    cells = zip(row, widths, strict=True)
    return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(cells)).rstrip()


def _num(value: float | int | None) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    for name in ("lm-eval", "lm_eval"):  # its per-task INFO lines bury the table below
        logging.getLogger(name).setLevel(logging.WARNING)
    # as `typer.run(main)`, plus the module docstring as `--help`: what the stage does
    app = typer.Typer(add_completion=False)
    app.command(help=__doc__)(main)
    app()
