"""One training stage (p1_s1 … p3_s2): train what its plan says, hand off a checkpoint.

The plan (modules, adapter, quantisation, LRs per group, schedule) is `train.<name>` in
params.yaml; `--init` is the previous stage's checkpoint, which is how DVC chains the stages.
With `train.<name>.processes` > 1 the script relaunches itself under `accelerate launch` (DDP:
NCCL on GPUs, gloo on CPUs); a script already started by `accelerate launch` or `torchrun`
(multi-node, FSDP configs) runs as the process it was given.
"""

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from finstage.config import ParamsError, parse, stage_params
from finstage.model.plan import StageConfig

if TYPE_CHECKING:
    from dvclive import Live


def load_config(params: dict, name: str) -> StageConfig:
    """The only place this stage reads params (tests call it with the params dvc.yaml declares)."""
    return parse(StageConfig, params["train"][name], f"train.{name}")


def main(
    name: str = typer.Option(..., help="Training stage name, a key of `train` in params.yaml."),
    init: Path = typer.Option(..., help="Checkpoint this stage starts from."),
    data: Path = typer.Option(..., help="Mixture folder (Parquet records)."),
    pages: Path = typer.Option(..., help="Page store for image records."),
    out: Path = typer.Option(..., help="Checkpoint folder to write."),
    curves: Path = typer.Option(..., help="DVCLive folder for training curves."),
    resume_dir: Path = typer.Option(
        None,
        help="Where resume snapshots live (default .finstage/resume/<name>); kept off DVC outputs.",
    ),
    feature_cache: Path = typer.Option(
        Path(".finstage/features"),
        help="Where frozen vision-tower features are cached; kept off DVC outputs.",
    ),
    stage: str = typer.Option(
        None, envvar="DVC_STAGE", help="DVC stage whose declared params to read."
    ),
) -> None:
    cfg = load_config(stage_params(stage), name)
    if init.name != cfg.init:
        raise ParamsError(
            f"train.{name}.init is {cfg.init!r} but --init is {init}; regenerate dvc.yaml's cmd"
        )
    if cfg.processes > 1 and "LOCAL_RANK" not in os.environ:
        raise typer.Exit(relaunch(cfg.processes))
    from dvclive import Live  # training libraries load only when the stage runs, not for --help

    from finstage.train.stage import run_stage

    live = None
    if os.environ.get("RANK", "0") == "0":  # curves come from the main process only
        live = Live(dir=str(curves), dvcyaml=False, save_dvc_exp=False, report=None)
    with live or contextlib.nullcontext():
        start = time.perf_counter()
        snapshots = resume_dir or Path(".finstage/resume") / name
        log = curve_logger(live) if live else None
        card = run_stage(name, cfg, init, data, pages, out, log, snapshots, feature_cache)
    if card is None:  # not the main process: it wrote nothing
        return
    t = card["training"]
    typer.echo(
        f"{name}: {t['steps']} steps, loss {t['loss_first']:.3f} -> {t['loss_last']:.3f}"
        f" in {time.perf_counter() - start:.1f}s"
    )


def curve_logger(live: "Live") -> Callable[[int, dict[str, float]], None]:
    def log(step: int, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            live.log_metric(key, value, plot=True)
        live.next_step()

    return log


def relaunch(processes: int) -> int:
    """Run this same command as `processes` DDP processes on this machine; their exit code."""
    with socket.socket() as s:  # a free port for the rendezvous, so parallel runs don't clash
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu"]
    options = ["--num_processes", str(processes), "--num_machines", "1"]
    options += ["--mixed_precision", "no", "--dynamo_backend", "no"]
    options += ["--main_process_port", str(port)]
    return subprocess.call([*launcher, *options, *sys.argv])


if __name__ == "__main__":
    # as `typer.run(main)`, plus the module docstring as `--help`: what the stage does
    app = typer.Typer(add_completion=False)
    app.command(help=__doc__)(main)
    app()
