"""`finstage`: helpers around the DVC pipeline (validate params, switch presets)."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

from finstage.config import ParamsError
from finstage.params import load_yaml, preset_path, validate

app = typer.Typer(
    help="finstage: staged VLM adaptation to Japanese finance (stages run with `dvc repro`)."
)


@app.command("validate")
def validate_cmd(
    path: Path = typer.Argument(Path("params.yaml"), help="Params file to check."),
) -> None:
    """Check every section and the training chain of a params file before any work starts."""
    try:
        validate(load_yaml(path))
    except ParamsError as err:
        typer.echo(f"invalid: {err}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{path}: valid")


@app.command("preset")
def preset_cmd(
    name: str = typer.Argument(
        ..., help="Preset name, a file under presets/ (e.g. 'paper', 'embedded')."
    ),
    params: Path = typer.Option(Path("params.yaml"), help="Params file to overwrite."),
) -> None:
    """Switch the pipeline to a preset: validate it, then copy it over params.yaml."""
    try:
        source = preset_path(name)
        validate(load_yaml(source))
    except ParamsError as err:
        typer.echo(f"invalid preset: {err}", err=True)
        raise typer.Exit(2) from None
    shutil.copyfile(source, params)
    typer.echo(f"params.yaml <- presets/{name}.yaml (run `dvc repro` or `dvc exp run` next)")


if __name__ == "__main__":
    app()
