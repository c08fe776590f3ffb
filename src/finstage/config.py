"""Strict parsing of params into typed configs, so bad params fail before any work starts.

Each stage script turns the params DVC declares for it into dataclasses with `parse`. An
unknown key, a missing key or a value of the wrong type raises `ParamsError` naming the
dotted key in params.yaml and what would fix it: a typo in `train.p3_s2.lora.r` must not
silently fall back to a default while the stage runs for an hour.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")
PARAMS_FILE = "params.yaml"
# dvc.yaml puts these names into shell commands (`--name ${key}`, `models/${item.init}`), so a
# name is an identifier or nothing runs: `x$(id)` as a key would be a command
NAME = re.compile(r"[a-z0-9_]+")
NAME_RULE = "[a-z0-9_]+"


class ParamsError(ValueError):
    """Invalid params; the message names the key in params.yaml and the fix."""


def parse(cls: type[T], data: Any, where: str) -> T:
    """Build dataclass `cls` from `data`, checking keys and types recursively."""
    if not isinstance(data, Mapping):
        raise ParamsError(f"{PARAMS_FILE}: '{where}' must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ParamsError(
            f"{PARAMS_FILE}: unknown key(s) {', '.join(f'{where}.{k}' for k in unknown)}; "
            f"allowed: {', '.join(sorted(fields))}"
        )
    values = {}
    for name, field in fields.items():
        key = f"{where}.{name}"
        if name not in data:
            if (
                field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING
            ):
                raise ParamsError(f"{PARAMS_FILE}: missing key '{key}'")
            continue
        values[name] = _coerce(hints[name], data[name], key)
    obj = cls(**values)
    check = getattr(obj, "check", None)
    if check is not None:
        check(where)
    return obj


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, key)
            except ParamsError as err:
                errors.append(str(err))
        raise ParamsError(
            errors[0]
            if len(errors) == 1
            else f"{PARAMS_FILE}: '{key}' = {value!r} fits none of {tp}"
        )
    if origin is typing.Literal:
        if value not in args:
            raise ParamsError(f"{PARAMS_FILE}: '{key}' = {value!r}; choose one of {list(args)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ParamsError(f"{PARAMS_FILE}: '{key}' must be a list, got {value!r}")
        inner = args[0] if args else Any
        return [_coerce(inner, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ParamsError(f"{PARAMS_FILE}: '{key}' must be a mapping, got {value!r}")
        inner = args[1] if args else Any
        return {k: _coerce(inner, v, f"{key}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return parse(tp, value, key)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParamsError(f"{PARAMS_FILE}: '{key}' must be a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"{PARAMS_FILE}: '{key}' must be an integer, got {value!r}")
        return value
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise ParamsError(f"{PARAMS_FILE}: '{key}' must be a {tp.__name__}, got {value!r}")
        return value
    raise TypeError(f"config field type {tp} for '{key}' is not supported by finstage.config")


def require(condition: bool, key: str, message: str) -> None:
    """Range checks inside a config's `check(where)`; `key` is the dotted params key."""
    if not condition:
        raise ParamsError(f"{PARAMS_FILE}: '{key}' {message}")


# what dvc.yaml's `foreach` expands from (dotted path in params) -> the `${item.<field>}`s its
# commands use; tests/test_param_names.py checks dvc.yaml interpolates nothing else
SHELL_NAMES: dict[str, tuple[str, ...]] = {
    "mix": (),
    "train": ("init", "data"),
    "report.phases": (),
}


def check_names(params: Mapping[str, Any]) -> None:
    """Raise ParamsError naming the first key or value dvc.yaml would put into a shell command
    that is not a plain name (see SHELL_NAMES): mixtures, training stages with their `init` and
    `data`, checkpoints. Phase labels only reach `desc` and may be any text.
    """
    named: list[tuple[str, Any]] = []
    for where, fields in SHELL_NAMES.items():
        section: Any = params
        for part in where.split("."):
            section = section.get(part) if isinstance(section, Mapping) else None
        for key, entry in section.items() if isinstance(section, Mapping) else ():
            named.append((f"{where}.{key}", key))
            for field in fields:
                if isinstance(entry, Mapping) and field in entry:
                    named.append((f"{where}.{key}.{field}", entry[field]))
    for key, value in named:
        if not (isinstance(value, str) and NAME.fullmatch(value)):
            raise ParamsError(
                f"{PARAMS_FILE}: '{key}' is {value!r}; stage, checkpoint and mixture names must "
                f"match {NAME_RULE} (dvc.yaml puts them into shell commands)"
            )


def check_stage_name(stage: str) -> None:
    """A DVC stage name is `<stage>` or `<stage>@<name>`, the name a params key (see NAME)."""
    base, at, item = stage.partition("@")
    if not NAME.fullmatch(base) or (at and not NAME.fullmatch(item)):
        raise ParamsError(
            f"stage {stage!r}: a stage name expanded from params must match {NAME_RULE}; "
            f"dvc.yaml put it into a shell command, so check {PARAMS_FILE} before any `dvc repro`"
        )


def stage_params(stage: str | None = None) -> dict[str, Any]:
    """The params that dvc.yaml declares for `stage` (default: the running DVC stage), nothing else.

    Reading through this view is what makes an undeclared read fail loudly (KeyError) instead of
    silently not triggering a rerun when that key changes. Every stage starts here, so this is
    also where a stage refuses to run under a params file whose names are not plain (see
    `check_names`): by then DVC has already run the shell command it built from them, so this
    stops outputs being written under mangled names and says why; `finstage validate` before
    the run (pre-commit, CI) is what keeps the command from being built at all.
    """
    import dvc.api

    name = stage or os.environ.get("DVC_STAGE")
    if not name:
        raise ParamsError("no stage given: run through `dvc repro` or pass --stage NAME")
    check_stage_name(name)
    whole = yaml.safe_load(Path(PARAMS_FILE).read_text()) if Path(PARAMS_FILE).is_file() else None
    if isinstance(whole, Mapping):
        check_names(whole)
    return dvc.api.params_show(stages=[name], deps=False)
