"""Fail the run when an evaluation item overlaps a training mixture.

Every mixture is indexed by character n-grams (Japanese has no word spaces) and every item of
every evaluation set is checked against each index: the text benchmarks from
`evaluate.sources`, and the held-out page records by their gold answers (their prompts share
the training tasks' wording by design). An item sharing more than `decontam.max_share` of its
n-grams with a mixture fails the stage, naming mixture, set and item; evaluation stages depend
on this report, so no score is computed on contaminated data.
"""

import json
from pathlib import Path

import typer

from finstage.config import parse, stage_params
from finstage.evaluate.decontam import DecontamConfig, check
from finstage.evaluate.run import VISUAL, Sources
from finstage.evaluate.sources import TASKS, load_docs
from finstage.records import read_records

ITEM_TEXT = {  # the fields of a normalised doc that carry the item's content
    "gsm8k": ("question",),
    "chabsa": ("sentence",),
    "edinet_fraud": ("context",),
    "edinet_earnings": ("context",),
    "edinet_industry": ("context",),
}


def load_config(params: dict) -> tuple[DecontamConfig, Sources]:
    """The only place this stage reads params (tests call it with the params dvc.yaml declares)."""
    return (
        parse(DecontamConfig, params["decontam"], "decontam"),
        parse(Sources, params["evaluate"]["sources"], "evaluate.sources"),
    )


def record_text(record: dict) -> str:
    return "\n".join(m["content"] for m in record["messages"])


def answers_text(record: dict) -> str:
    return "\n".join(m["content"] for m in record["messages"] if m["role"] == "assistant")


def eval_sets(sources: Sources, visual: Path) -> dict[str, dict[str, str]]:
    sets = {}
    for task in TASKS:
        fields = ITEM_TEXT.get(task, ("prompt",))
        docs = load_docs(task, getattr(sources, task))
        sets[task] = {str(d["id"]): "\n".join(str(d[f]) for f in fields) for d in docs}
    for name in VISUAL:  # page-specific content: the gold answers, not the task's prompt wording
        records = read_records(visual / name)
        sets[f"visual/{name}"] = {r["id"]: answers_text(r) for r in records}
    return sets


def main(
    mix: Path = typer.Option(..., help="Folder of training mixtures (one subfolder each)."),
    visual: Path = typer.Option(..., help="Held-out visual records (one subfolder per task)."),
    report: Path = typer.Option(..., help="JSON report to write (also on failure)."),
    stage: str = typer.Option(
        None, envvar="DVC_STAGE", help="DVC stage whose declared params to read."
    ),
) -> None:
    cfg, sources = load_config(stage_params(stage))
    mixtures = {
        d.name: [record_text(r) for r in read_records(d)]
        for d in sorted(p for p in mix.iterdir() if p.is_dir())
    }
    result = check(mixtures, eval_sets(sources, visual), cfg.n, cfg.max_share)
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n")
    typer.echo(result.summary())
    if not result.ok:
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
