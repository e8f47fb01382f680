"""The lab's one-line answers to a person's mistakes (no root, missing packages, a bad
ledger, no --config), checked without standing anything up."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pwbcluster.errors import ToolkitError
from pwbcluster.lab import samba, services
from pwbcluster.lab.network import Ledger, Net

ROOT = Path(__file__).resolve().parents[2]


def test_not_root_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    reason = services.unavailable_reason()
    assert reason is not None and "needs root" in reason and "sudo" in reason


def test_missing_binaries_name_their_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    real = shutil.which
    gone = {"samba", "psql", "kinit"}
    monkeypatch.setattr(shutil, "which", lambda name: None if name in gone else real(name))
    monkeypatch.setattr(services, "postgres_bin", lambda: None)
    reason = services.unavailable_reason()
    assert reason is not None
    for hint in (
        "samba (apt-get install samba)",
        "kinit (apt-get install krb5-user)",
        "psql (apt-get install postgresql-client)",
        "initdb/pg_ctl (apt-get install postgresql)",
    ):
        assert hint in reason
    assert "samba (apt-get install samba)" in samba.missing_tools()


def test_a_damaged_ledger_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "ledger.json"
    path.write_text("{not json")
    with pytest.raises(ToolkitError, match="is not a lab ledger"):
        Ledger(Net("pwblabt", "pwblabt0", "10.78.8.192/26"), path=path)


def test_lab_up_without_config_is_one_line() -> None:
    if services.unavailable_reason() is not None:
        pytest.skip(f"lab.up stops at its first check here: {services.unavailable_reason()}")
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "--search-root", str(ROOT), "lab.up"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: --config is required (for example --config config/example.yaml)"
    )


def test_down_not_root_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(ToolkitError, match=r"needs root.*sudo"):
        services.down()
