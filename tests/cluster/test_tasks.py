"""``invoke cluster.*`` as a person runs them: help, status and down from the state file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INVOKE = [sys.executable, "-m", "invoke", "--search-root", str(ROOT)]


def invoke(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_EC2_METADATA_DISABLED": "true", "COLUMNS": "200"}
    return subprocess.run(
        [*INVOKE, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def write_state(project: Path, mode: str) -> None:
    build = project / "build" / "example"
    build.mkdir(parents=True, exist_ok=True)
    outputs = {
        "cluster_name": "example",
        "region": "eu-west-1",
        "workbench_url": "http://example-login.sandbox.invalid:8787",
        "login_load_balancer_dns": "example-login.sandbox.invalid",
        "scripts_prefix": "cluster/",
        "simulated": True,
    }
    state = {
        "version": 1,
        "mode": mode,
        "stages": {"cluster": {"status": "done", "fingerprint": "x", "outputs": outputs}},
    }
    (build / "state.json").write_text(json.dumps(state))


def test_every_cluster_task_has_help_for_every_flag() -> None:
    for name in ("cluster.up", "cluster.status", "cluster.down"):
        result = invoke("--help", name)
        assert result.returncode == 0, result.stderr
        options = [ln for ln in result.stdout.splitlines() if ln.strip().startswith("-")]
        assert options and all(len(ln.split(None, 1)) == 2 for ln in options), result.stdout


def test_status_and_dry_run_down_read_the_state(project: Path) -> None:
    config = str(project / "config" / "example.yaml")
    write_state(project, "sandbox")
    status = invoke("cluster.status", "--config", config, "--sandbox")
    assert status.returncode == 0, status.stderr
    assert "http://example-login.sandbox.invalid:8787" in status.stdout
    down = invoke("cluster.down", "--config", config, "--sandbox", "--dry-run")
    assert down.returncode == 0, down.stderr
    assert "Plan: delete cluster 'example' (sandbox)" in down.stdout
    assert json.loads((project / "build" / "example" / "state.json").read_text())["stages"]


def test_down_without_confirmation_deletes_nothing(project: Path) -> None:
    config = str(project / "config" / "example.yaml")
    write_state(project, "sandbox")
    result = subprocess.run(
        [*INVOKE, "cluster.down", "--config", config, "--sandbox"],
        cwd=ROOT,
        input="wrong-name\n",
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 1
    assert "not confirmed" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
