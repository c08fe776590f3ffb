"""The resolved versions of the packages whose code shapes a checkpoint's bytes.

Two checkpoints with the same params and data can still differ when a library changes its
initialisation or serialisation; recording the versions in every card says which one made it.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

PACKAGES = (
    "torch",
    "transformers",
    "peft",
    "bitsandbytes",
    "accelerate",
    "lm-eval",
    "pymupdf",
    "dvc",
)


def package_versions() -> dict[str, str | None]:
    """Package -> installed version (None when it is not installed)."""
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found
