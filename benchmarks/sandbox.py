"""Time `invoke up --sandbox` and `invoke down --sandbox` as a person runs them.

Usage: .venv/bin/python benchmarks/sandbox.py [--runs 3] [--stages]

Copies config/example.yaml to a temporary directory with the deployment name "sandboxbench"
(build/example/ is left alone) and, per run, one after another:

- cold up: build/sandboxbench/ removed first (no moto server, no kept results); the
  ParallelCluster environment is present (.venvs/), it is not rebuilt;
- down: `invoke down --sandbox --yes` after that up (the moto server is stopped);
- warm up: `up --sandbox` again on the same build directory, after the down (what a
  person's second try costs: the sandbox's kept per-step results, a new moto server);
- unchanged re-run: `up --sandbox` once more with nothing changed (every stage done);
- down again.

Prints the median wall-clock seconds (and min/max) of each figure over the runs; with
--stages also each stage's median, read from the run's state.json (its started/finished
times). Asserts nothing. The issue's goal for a warm up is <= 45 s on this machine kind.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _bytecode import bytecode_state
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
NAME = "sandboxbench"
FIGURES = ["cold up", "down", "warm up", "unchanged re-run", "down again"]


def invoke(*args: str) -> float:
    argv = [sys.executable, "-m", "invoke", *args]
    started = time.perf_counter()
    done = subprocess.run(
        argv,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"invoke {' '.join(args)} failed ({done.returncode}):\n"
                 f"{done.stdout[-3000:]}{done.stderr[-3000:]}")  # fmt: skip
    return elapsed


def stage_seconds(build: Path) -> dict[str, float]:
    try:
        state: dict[str, Any] = json.loads((build / "state.json").read_text())
    except (OSError, ValueError):
        return {}
    found = {}
    for name, record in state.get("stages", {}).items():
        if isinstance(record.get("started"), (int, float)) and isinstance(
            record.get("finished"), (int, float)
        ):
            found[name] = float(record["finished"]) - float(record["started"])
    return found


def cell(values: list[float]) -> str:
    return f"{statistics.median(values):6.1f} [{min(values):.1f}-{max(values):.1f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each figure (default 3)")
    parser.add_argument("--stages", action="store_true", help="also print each stage's median")
    args = parser.parse_args()
    times: dict[str, list[float]] = {f: [] for f in FIGURES}
    stages: dict[str, dict[str, list[float]]] = {}
    build = ROOT / "build" / NAME
    with tempfile.TemporaryDirectory(prefix="sandboxbench-") as tmp:
        deployment = Path(tmp) / f"{NAME}.yaml"
        data = YAML(typ="safe").load((ROOT / "config" / "example.yaml").read_text())
        data["deployment"]["name"] = NAME
        yaml = YAML()
        yaml.default_flow_style = False
        with deployment.open("w") as handle:
            yaml.dump(data, handle)
        up = ("up", "--sandbox", "--config", str(deployment))
        down = ("down", "--sandbox", "--yes", "--config", str(deployment))
        try:
            for run in range(args.runs):
                shutil.rmtree(build, ignore_errors=True)
                for figure, argv in zip(FIGURES, (up, down, up, up, down), strict=True):
                    times[figure].append(invoke(*argv))
                    if argv is up and figure != "unchanged re-run":
                        for stage, seconds in stage_seconds(build).items():
                            stages.setdefault(figure, {}).setdefault(stage, []).append(seconds)
                print(f"run {run + 1}/{args.runs} done", file=sys.stderr)
        finally:
            subprocess.run([sys.executable, "-m", "invoke", *down], cwd=ROOT,
                           capture_output=True, stdin=subprocess.DEVNULL, check=False)  # fmt: skip
            shutil.rmtree(build, ignore_errors=True)
    print(f"invoke up/down --sandbox, wall-clock seconds, median [min-max] of {args.runs} "
          f"run(s); {os.cpu_count()} CPUs; bytecode: {bytecode_state()}")  # fmt: skip
    for figure in FIGURES:
        print(f"{figure:20s}{cell(times[figure]):>24s}")
    if args.stages:
        for figure, per_stage in stages.items():
            print(f"stages of '{figure}':")
            for stage, values in per_stage.items():
                print(f"  {stage:18s}{cell(values):>24s}")


if __name__ == "__main__":
    main()
