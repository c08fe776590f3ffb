"""Build the training mixture of one stage (p1_s1 … p3_s2) from named record sources with the
weights, total size and seed in `mix.<name>`, so each stage's training data is a hashed DVC
output: exact duplicates removed, deterministic sampling (upsampling reported), shuffled."""

from pathlib import Path

import typer

from finstage.config import parse, stage_params
from finstage.mix.build import MixConfig, build_mixture


def load_config(params: dict, name: str) -> MixConfig:
    """The only place this stage reads params (tests call it with the params dvc.yaml declares)."""
    return parse(MixConfig, params["mix"][name], f"mix.{name}")


def main(
    name: str = typer.Option(..., "--name", help="Training stage, a key of `mix` in params.yaml."),
    source_root: list[Path] = typer.Option(
        ..., help="Folders holding one record folder per source name."
    ),
    out: Path = typer.Option(..., help="Mixture folder to write (Parquet records + stats.json)."),
    stage: str = typer.Option(
        None, envvar="DVC_STAGE", help="DVC stage whose declared params to read."
    ),
) -> None:
    cfg = load_config(stage_params(stage), name)
    build_mixture(cfg, source_root, out, name)


if __name__ == "__main__":
    # as `typer.run(main)`, plus the module docstring as `--help`: what the stage does
    app = typer.Typer(add_completion=False)
    app.command(help=__doc__)(main)
    app()
