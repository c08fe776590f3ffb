"""Build the math chain-of-thought corpus for P2: generated Japanese word problems with gold
answers computed in code, solved by a reasoning teacher in the <Problem>/<Thinking>/<Answer>
XML form, and kept only when the boxed answer verifies against the gold (rejections counted),
as the recipe's distillation from a thinking model does at paper scale."""

from pathlib import Path

import typer

from finstage.config import parse, stage_params
from finstage.distill.teacher import DistillConfig, distill


def load_config(params: dict) -> DistillConfig:
    """The only place this stage reads params (tests call it with the params dvc.yaml declares)."""
    return parse(DistillConfig, params["distill"], "distill")


def main(
    out: Path = typer.Option(..., help="Output folder: writes math_cot/, rejected/, stats.json."),
    stage: str = typer.Option(
        None, envvar="DVC_STAGE", help="DVC stage whose declared params to read."
    ),
) -> None:
    cfg = load_config(stage_params(stage))
    result = distill(cfg, out)
    typer.echo(
        f"problems {result.problems}: verified {result.verified}, rejected {result.rejected} "
        f"(teacher slips {result.slipped})"
    )


if __name__ == "__main__":
    # as `typer.run(main)`, plus the module docstring as `--help`: what the stage does
    app = typer.Typer(add_completion=False)
    app.command(help=__doc__)(main)
    app()
