"""The pinned pcluster venv: reused once made, its CLI runs, a missing Node.js is named."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pwbcluster.errors import MissingDependency
from pwbcluster.pcluster import venv

pytestmark = pytest.mark.pcluster


def test_the_cli_is_the_pinned_version(pcluster_site: Path) -> None:
    done = subprocess.run(
        [*venv.pcluster_cli(), "version"], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(done.stdout) == {"version": venv.PCLUSTER_VERSION}
    assert venv.pcluster_python().is_relative_to(venv.venv_path())


def test_a_second_ensure_reuses_the_venv(pcluster_site: Path) -> None:
    marker = venv.venv_path() / venv.MARKER
    before = marker.stat().st_mtime_ns
    log = venv.venvs_dir() / f"pcluster-{venv.PCLUSTER_VERSION}.log"
    log_before = log.stat().st_mtime_ns if log.exists() else None
    assert venv.ensure_venv() == venv.venv_path()
    # neither rebuilt (the marker would be rewritten) nor pip run (it writes the log)
    assert marker.stat().st_mtime_ns == before
    assert (log.stat().st_mtime_ns if log.exists() else None) == log_before


def test_a_missing_node_is_named_with_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingDependency, match=r"`node` not found.*apt-get install nodejs"):
        venv.ensure_venv()


def test_a_too_old_node_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "node"
    fake.write_text("#!/bin/sh\necho v12.22.0\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingDependency, match="too old"):
        venv.node_version()
