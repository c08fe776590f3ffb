"""`finstage validate` and `--help` must not pay for the model stack.

Validation reads every section's config dataclass; the modules defining them import torch,
lm-eval, PEFT, bitsandbytes and transformers only inside the functions that build or score a
model. One module-level import of any of them brings back a 10-second `finstage validate`, so
this checks, in a fresh interpreter, that none is loaded by importing the CLI or by validating.
"""

from __future__ import annotations

import json
import subprocess
import sys

from .conftest import ROOT

HEAVY = ("torch", "lm_eval", "peft", "bitsandbytes", "transformers")


def loaded_after(code: str) -> list[str]:
    """Which of HEAVY a fresh interpreter has in sys.modules after running `code`."""
    probe = (
        f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_cli_loads_no_model_library():
    assert loaded_after("import finstage.cli") == []


def test_validating_params_loads_no_model_library():
    code = (
        "from typer.testing import CliRunner\n"
        "from finstage.cli import app\n"
        "result = CliRunner().invoke(app, ['validate', 'params.yaml'])\n"
        "assert result.exit_code == 0, result.output\n"
        "assert 'valid' in result.output\n"
    )
    assert loaded_after(code) == []


def test_the_probe_sees_a_heavy_import():
    """The check above could pass vacuously if the probe never saw anything: it must see this."""
    assert loaded_after("import finstage.model.assemble as a\na.torch_dtype('float32')") == [
        "torch"
    ]
