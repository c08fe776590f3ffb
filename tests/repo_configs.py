"""Configs as params.yaml sets them, changed where a test says so.

Params dataclasses have no defaults (every key comes from params.yaml), so a test that needs
"the usual config, but with 3 documents" starts from the repository's params.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from finstage.config import parse

from .conftest import ROOT, repo_params

T = TypeVar("T")


def repo_section(section: str, **changes: Any) -> dict[str, Any]:
    """params.yaml's ``section`` with ``changes``; a change to a nested mapping (``ocr``) is merged
    into it, so ``ocr={"max_chars": 60}`` keeps ``ocr.per_page``."""
    params = repo_params()[section]
    for key, value in changes.items():
        nested = isinstance(value, dict) and isinstance(params.get(key), dict)
        params[key] = {**params[key], **value} if nested else value
    return params


def repo_config(cls: type[T], section: str, **changes: Any) -> T:
    """The parsed (and checked) config of `repo_section`."""
    return parse(cls, repo_section(section, **changes), section)


RAW = ROOT / "tests" / "fixtures" / "raw"


def raw_sources(cpa_xlsx: Path) -> dict[str, dict[str, str]]:
    """`evaluate.sources` pointing every benchmark at its hand-made raw fixture (the CPA workbook
    is written by the test, at `cpa_xlsx`)."""
    return {
        "gsm8k": {"path": str(RAW / "gsm8k" / "test.jsonl")},
        "chabsa": {"path": str(RAW / "chabsa")},
        "cma_basics": {"path": str(RAW / "cma_basics")},
        "cpa_audit": {"path": str(cpa_xlsx)},
        "fp2": {"path": str(RAW / "fp2")},
        "security_sales_1": {"path": str(RAW / "security_sales_1")},
        "edinet_fraud": {"path": str(RAW / "edinet")},
        "edinet_earnings": {"path": str(RAW / "edinet")},
        "edinet_industry": {"path": str(RAW / "edinet"), "split": "train"},
    }
