"""Presets: overlays holding only the params that differ from the embedded default.

A full copy of params.yaml per preset drifts as soon as a key is added; an overlay names only
what it changes and is deep-merged onto params.yaml. The merge follows the params schema: it
descends into sections and per-stage plans (fixed keys), but replaces free-form mappings
(mixture sources, model configs) and one-of specs (a benchmark source is a path *or* a hub id
*or* a URL) whole, so an overlay can never leave a stale alternative behind. params.yaml is
edited in place with its comments kept, as `dvc exp run -S` does.
"""

from __future__ import annotations

import dataclasses
import io
import re
import types
import typing
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedSeq

from finstage.config import ParamsError

PRESETS_DIR = Path(__file__).resolve().parents[2] / "presets"
PRESET_NAME = re.compile(r"[a-z0-9_-]+")  # a name, not a path: presets/NAME.yaml and no other file
ABSENT = object()


def available() -> dict[str, str]:
    """Preset name -> its first comment line (what it is for)."""
    return {p.stem: _summary(p) for p in sorted(PRESETS_DIR.glob("*.yaml"), key=lambda p: p.stem)}


def preset_path(name: str) -> Path:
    """presets/NAME.yaml, and never a file outside presets/ (a `../x` or a link out of it).

    A preset's text is merged into params.yaml, which names what runs; a path given as a name
    must not pull in some other YAML file."""
    if not PRESET_NAME.fullmatch(name):
        raise ParamsError(
            f"preset name {name!r} must match [a-z0-9_-]+ (a file under presets/); "
            f"available: {sorted(available())}"
        )
    path = PRESETS_DIR / f"{name}.yaml"
    if not path.exists():
        raise ParamsError(f"no preset {name!r}; available: {sorted(available())}")
    if not path.resolve().is_relative_to(PRESETS_DIR.resolve()):
        raise ParamsError(f"preset {name!r} links outside presets/ (to {path.resolve()})")
    return path


def apply(params_text: str, overlay_text: str, schema: Mapping[str, Any]) -> str:
    """params.yaml text with the overlay merged in; comments and formatting are kept."""
    rt = _yaml()  # round-trip loader: plain data only, never Python objects
    params, overlay = rt.load(params_text), rt.load(overlay_text)
    if not isinstance(overlay, Mapping):
        raise ParamsError("a preset must be a mapping of params sections")
    for section, value in overlay.items():
        if section not in schema:
            raise ParamsError(f"preset: unknown section {section!r}; known: {sorted(schema)}")
        params[section] = _block_style(merge(params.get(section), value, schema[section]))
    out = io.StringIO()
    rt.dump(params, out)
    return out.getvalue()


def merge(base: Any, overlay: Any, tp: Any) -> Any:
    """`overlay` onto `base` for a value of params type `tp` (see the module docstring)."""
    tp = _strip_optional(tp)
    if not (isinstance(base, MutableMapping) and isinstance(overlay, Mapping)):
        return overlay
    if dataclasses.is_dataclass(tp) and not _one_of(tp):
        hints = typing.get_type_hints(tp)
        for key, value in overlay.items():
            base[key] = merge(base.get(key), value, hints.get(key, Any))
        return base
    if typing.get_origin(tp) is dict and dataclasses.is_dataclass(typing.get_args(tp)[1]):
        for key, value in overlay.items():
            base[key] = merge(base.get(key), value, typing.get_args(tp)[1])
        return base
    return overlay


def diff(before: Any, after: Any) -> list[tuple[str, Any, Any]]:
    """(dotted key, old, new) for every leaf that differs; ABSENT marks a missing side."""
    old, new = _flatten(before), _flatten(after)
    return [
        (key, old.get(key, ABSENT), new.get(key, ABSENT))
        for key in sorted(set(old) | set(new))
        if old.get(key, ABSENT) != new.get(key, ABSENT)
    ]


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _one_of(tp: type) -> bool:
    """A spec whose every key is optional is a choice between alternatives: replace it whole.

    Params dataclasses carry no defaults, except such specs (a benchmark source is a path, a
    hub id or a URL, each with its own optional companions)."""
    return all(
        f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        for f in dataclasses.fields(tp)
    )


def _strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def _summary(path: Path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def _yaml() -> YAML:
    """Round-trip YAML (comments, key order, number formatting kept) in the layout `dvc exp run
    -S` writes: DVC rewrites params.yaml with its own settings on every `-S`, so a file in any
    other layout would come back reformatted, with a diff far larger than the one value set."""
    yaml = YAML()
    yaml.default_flow_style = False
    return yaml


def _block_style(value: Any) -> Any:
    """Lists in block style, as DVC writes them (a preset may spell them `[a, b]`)."""
    if isinstance(value, CommentedSeq):
        value.fa.set_block_style()
    if isinstance(value, Mapping | list):
        for inner in value.values() if isinstance(value, Mapping) else value:
            _block_style(inner)
    return value
