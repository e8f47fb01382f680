"""The plan draws and prices; `invoke prices.refresh` explains itself without
credentials (run as a person runs it, in a subprocess). No AWS credentials anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from pwbcluster.config import load_config
from pwbcluster.estimate import diagram
from pwbcluster.pipeline.plan import STEPS, make_plan, print_plan

ROOT = Path(__file__).resolve().parents[2]
INVOKE = [sys.executable, "-m", "invoke", "--search-root", str(ROOT)]


def invoke(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "100"}
    return subprocess.run(
        [*INVOKE, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300, check=False
    )


def test_plan_writes_the_diagram_and_the_estimate(full_project: Path) -> None:
    """The plan with this issue's steps (ParallelCluster's own validation is tested, and
    timed, with its step), printed as `invoke plan` prints it."""
    cfg = load_config(full_project / "config" / "example.yaml")
    ctx = make_plan(cfg, steps=[s for s in STEPS if s[0] in ("render", "diagram", "cost")])
    console = Console(record=True, width=100)
    print_plan(ctx, console)
    out = console.export_text()
    build = full_project / "build" / "example" / "plan"
    doc = json.loads((build / "cost.json").read_text())
    assert doc["deployment"] == "example" and doc["region"] == "eu-west-1"
    assert {"queue all", "queue gpu", "head node", "login nodes"} <= {
        ln["resource"] for ln in doc["lines"]
    }
    assert "Cost estimate" in out and "invoke prices.refresh --config config/example.yaml" in out
    # Every validator the plan switches off is listed with its reason, none hidden.
    from pwbcluster.pcluster.offline import SUPPRESSED_VALIDATORS

    flat = " ".join(out.split())
    for name, why in SUPPRESSED_VALIDATORS.items():
        assert f"suppressed: pcluster {name}: {' '.join(why.split())}" in flat, name
    if diagram.unavailable_reason() is None:
        assert (build / "architecture.png").stat().st_size > 10_000
        assert (build / "architecture.svg").is_file()
        assert "Files written under build/example/plan/" in flat and "architecture.svg" in flat
    else:
        assert "Diagram skipped:" in out


def test_refresh_has_help_for_every_flag(tmp_path: Path) -> None:
    result = invoke("--help", "prices.refresh", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    options = [ln for ln in result.stdout.splitlines() if ln.strip().startswith("-")]
    assert len(options) == 4
    assert all(len(ln.split(None, 1)) == 2 for ln in options), options


def test_refresh_without_credentials_is_a_clean_error(full_project: Path) -> None:
    result = invoke("prices.refresh", "--config", "config/example.yaml", cwd=full_project)
    assert result.returncode == 1
    assert "no AWS credentials found" in result.stderr and "Traceback" not in result.stderr
