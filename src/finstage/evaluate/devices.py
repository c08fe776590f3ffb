"""Where evaluation runs: `evaluate.device` → a torch device that exists on this machine.

An 8B checkpoint scored on the CPU takes days and looks like a hang, so "auto" takes the best
accelerator present, and an explicit device that is not there fails before the model loads
instead of silently falling back to the CPU.
"""

from __future__ import annotations

import re

import torch

from finstage.config import ParamsError

KEY = "evaluate.device"
_CUDA = re.compile(r"cuda(?::(\d+))?")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(spec: str) -> torch.device:
    """ "auto" (cuda, else mps, else cpu), "cpu", "cuda", "cuda:N" or "mps", checked to exist.

    Raises ParamsError (a ValueError) naming `evaluate.device` for an unknown spelling or a
    device this machine does not have.
    """
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "mps":
        if not _mps_available():
            raise ParamsError(f"{KEY}: 'mps' is not available on this machine; use auto or cpu")
        return torch.device("mps")
    cuda = _CUDA.fullmatch(spec)
    if cuda is None:
        raise ParamsError(
            f"{KEY}: unknown device {spec!r}; use auto, cpu, cuda, cuda:N (N a GPU index) or mps"
        )
    if not torch.cuda.is_available():
        raise ParamsError(f"{KEY}: {spec!r} requested but CUDA is not available; use auto or cpu")
    index = int(cuda.group(1)) if cuda.group(1) is not None else None
    if index is not None and index >= torch.cuda.device_count():
        raise ParamsError(
            f"{KEY}: {spec!r} requested but this machine has {torch.cuda.device_count()} GPU(s)"
        )
    return torch.device(spec)
