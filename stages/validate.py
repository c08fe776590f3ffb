"""Check the whole params file before any other stage runs; write a marker that never changes.

Every root stage of the pipeline depends on this stage's output, so DVC runs it first: a typo
anywhere in params.yaml stops `dvc repro` here, with one line naming the key, before DVC has
deleted any other stage's outputs. The marker's bytes are the same for every valid params file,
so a params edit reruns this stage (about a second) and only the stages that read the edited key.
"""

from pathlib import Path

import typer

from finstage.config import ParamsError
from finstage.params import load_yaml, validate

MARKER = "params.yaml: valid\n"


def load_config(params: dict) -> None:
    """The only place this stage reads params: all of them, as `finstage validate` does."""
    validate(params)


def main(
    params: Path = typer.Option(Path("params.yaml"), help="Params file to check."),
    out: Path = typer.Option(..., help="Marker file, written only when the params are valid."),
) -> None:
    try:
        load_config(load_yaml(params))
    except ParamsError as err:
        typer.echo(f"invalid: {err}", err=True)
        raise typer.Exit(2) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(MARKER)
    typer.echo(MARKER.strip())


if __name__ == "__main__":
    # as `typer.run(main)`, plus the module docstring as `--help`: what the stage does
    app = typer.Typer(add_completion=False)
    app.command(help=__doc__)(main)
    app()
