"""The training chain, read from params: which checkpoints exist, in what order, from what.

The recipe is data, not code: `train.<stage>.init` names the checkpoint a stage starts from,
`train.<stage>.data` its mixture, and `report.phases` lists every checkpoint in report order
with its phase label. dvc.yaml expands its stages from the same keys, so a user adds a phase
(a P4, an RL stage) by editing params.yaml alone, and validation, the report and the tests all
see the same chain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from finstage.config import PARAMS_FILE, ParamsError, check_names

BASE = "p0"  # written by the `base` stage; every chain starts here


@dataclass(frozen=True)
class Checkpoint:
    name: str
    label: str
    init: str | None  # None for the base checkpoint
    data: str | None


def checkpoints(params: Mapping[str, Any]) -> list[Checkpoint]:
    """Every checkpoint in report order; raises ParamsError naming the key that breaks the chain.

    Names come first: dvc.yaml puts them into shell commands, so no other message may hide a
    name that is not plain (a bad `init` would otherwise be reported only as out of order).
    """
    check_names(params)
    phases = _phases(params)
    train = params.get("train") or {}
    mixtures = params.get("mix") or {}
    unlabelled = [stage for stage in train if stage not in phases]
    if unlabelled:
        raise ParamsError(
            f"{PARAMS_FILE}: training stage(s) {unlabelled} have no phase label; add "
            f"'report.phases.{unlabelled[0]}: <label>' so the stage is evaluated and reported"
        )
    order = list(phases)
    if order[0] != BASE:
        raise ParamsError(f"{PARAMS_FILE}: 'report.phases' must start with the base '{BASE}'")
    chain = [Checkpoint(BASE, phases[BASE], None, None)]
    for position, name in enumerate(order[1:], start=1):
        if name not in train:
            raise ParamsError(
                f"{PARAMS_FILE}: 'report.phases.{name}' names no stage under 'train'; "
                f"add 'train.{name}' or remove the phase"
            )
        init, data = train[name].get("init"), train[name].get("data")
        if init not in order[:position]:
            raise ParamsError(
                f"{PARAMS_FILE}: 'train.{name}.init' is {init!r}; it must name a checkpoint "
                f"listed before '{name}' in 'report.phases': {order[:position]}"
            )
        if data not in mixtures:
            raise ParamsError(
                f"{PARAMS_FILE}: 'train.{name}.data' is {data!r}; it must name a mixture "
                f"under 'mix': {sorted(mixtures)}"
            )
        chain.append(Checkpoint(name, phases[name], init, data))
    labels = [c.label for c in chain]
    if len(set(labels)) != len(labels):
        raise ParamsError(f"{PARAMS_FILE}: 'report.phases' labels must be unique: {labels}")
    return chain


def training_stages(params: Mapping[str, Any]) -> list[str]:
    """Training stage names in chain order (every checkpoint but the base)."""
    return [c.name for c in checkpoints(params)[1:]]


def _phases(params: Mapping[str, Any]) -> dict[str, str]:
    phases = (params.get("report") or {}).get("phases")
    if not isinstance(phases, Mapping) or not phases:
        raise ParamsError(
            f"{PARAMS_FILE}: 'report.phases' must map every checkpoint to its phase label, "
            f"starting with '{BASE}: P0'"
        )
    return dict(phases)


@dataclass
class ReportConfig:
    """`report`: the checkpoints to evaluate and report, in order, with their phase labels."""

    phases: dict[str, str]
