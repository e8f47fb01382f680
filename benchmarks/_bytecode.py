"""What the benchmarks print about Python's bytecode (it changes start-up times by seconds)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bytecode_state() -> str:
    """Whether the venvs hold compiled bytecode (bin/setup and the pcluster venv write it at
    install time) and whether Python may write more at run time."""
    import importlib.util

    import invoke as invoke_package  # the toolkit venv's

    def compiled(source: Path) -> str:
        return "yes" if Path(importlib.util.cache_from_source(str(source))).is_file() else "no"

    toolkit = compiled(Path(invoke_package.__file__))
    pcluster = sorted((ROOT / ".venvs").glob("pcluster-*/lib/python*/site-packages/pcluster"))
    in_pcluster = compiled(pcluster[0] / "__init__.py") if pcluster else "no venv"
    writes = "not written at run time (PYTHONDONTWRITEBYTECODE set)" if os.environ.get(
        "PYTHONDONTWRITEBYTECODE") else "written at run time"  # fmt: skip
    return f"installed compiled: toolkit venv {toolkit}, pcluster venv {in_pcluster}; {writes}"
