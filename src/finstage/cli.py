"""`finstage`: helpers around the DVC pipeline (validate params, switch presets, export)."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml

from finstage import presets
from finstage.config import ParamsError
from finstage.evaluate.budgets import stale_budget_warnings
from finstage.params import SECTIONS, load_yaml, validate

BUDGETS_REPORT = Path("metrics", "budgets.json")  # written by the `budgets` stage

app = typer.Typer(
    help="finstage: staged VLM adaptation to Japanese finance (stages run with `dvc repro`)."
)


@app.command("validate")
def validate_cmd(
    path: Path = typer.Argument(Path("params.yaml"), help="Params file to check."),
) -> None:
    """Check every section and the training chain of a params file before any work starts."""
    try:
        params = load_yaml(path)
        validate(params)
    except ParamsError as err:
        typer.echo(f"invalid: {err}", err=True)
        raise typer.Exit(2) from None
    for line in stale_budget_warnings(params["evaluate"], path.parent / BUDGETS_REPORT):
        typer.echo(f"warning: {line}", err=True)
    typer.echo(f"{path}: valid")


@app.command("preset")
def preset_cmd(
    name: str = typer.Argument(
        None,
        help=(
            f"Preset name, one of: {', '.join(presets.available()) or '(none)'} "
            "(presets/NAME.yaml, holding only the keys it changes; --list says what each is). "
            "The embedded default is no preset: it is params.yaml as committed, which "
            "`git checkout params.yaml` restores."
        ),
    ),
    params: Path = typer.Option(Path("params.yaml"), help="Params file to merge the preset into."),
    show_diff: bool = typer.Option(
        False, "--diff", help="Print what the preset would change in --params; write nothing."
    ),
    list_all: bool = typer.Option(False, "--list", help="List the presets and exit."),
) -> None:
    """Merge a preset's overrides into params.yaml (comments kept), after validating the result."""
    if list_all or name is None:
        for preset, summary in presets.available().items():
            typer.echo(f"{preset:12s} {summary}")
        return
    try:
        before = params.read_text()
        after = presets.apply(before, presets.preset_path(name).read_text(), SECTIONS)
        validate(yaml.safe_load(after))
    except ParamsError as err:
        typer.echo(f"invalid preset: {err}", err=True)
        raise typer.Exit(2) from None
    changes = presets.diff(yaml.safe_load(before), yaml.safe_load(after))
    if show_diff:
        for key, old, new in changes:
            typer.echo(f"{key}: {_show(old)} -> {_show(new)}")
        typer.echo(f"{len(changes)} key(s) would change in {params}")
        return
    params.write_text(after)
    typer.echo(
        f"{params} <- presets/{name}.yaml: {len(changes)} key(s) changed "
        "(run `dvc repro` or `dvc exp run` next; `git checkout params.yaml` undoes it)"
    )


@app.command("export-text")
def export_text_cmd(
    checkpoint: Path = typer.Argument(..., help="Checkpoint folder (models/<name>)."),
    out: Path = typer.Argument(..., help="Folder to write the standalone causal LM to."),
) -> None:
    """Write a checkpoint's language model (+ LM head, tokenizer) as a plain causal LM folder.

    lm-eval's `hf` model and `AutoModelForCausalLM` load that folder by path, so text tasks can
    be scored with stock tools on exactly our weights (`lm_eval --model hf --model_args
    pretrained=OUT`).
    """
    from finstage.model.export import export_text_backbone  # torch loads only for this command

    if not (checkpoint / "config.json").is_file():
        typer.echo(f"{checkpoint}: not a checkpoint folder (no config.json)", err=True)
        raise typer.Exit(2)
    typer.echo(f"{export_text_backbone(checkpoint, out)}: causal LM from {checkpoint}")


def _show(value: object) -> str:
    return "(absent)" if value is presets.ABSENT else repr(value)


if __name__ == "__main__":
    app()
