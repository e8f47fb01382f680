"""Time `invoke plan` cold (fresh pcluster venv) and warm, and the pcluster step's parts.

Usage: .venv/bin/python benchmarks/pcluster_plan.py [--config config/example.yaml] [--no-cold]

Runs `.venv/bin/invoke plan --config ...` three ways and prints wall-clock seconds:

- cold: a brand-new pcluster venv in a temporary PWBCLUSTER_VENVS_DIR (pip downloads or
  takes wheels from its cache, so "cold" on a machine whose pip cache is warm is faster
  than on a truly new one), template cache off;
- warm: the venv exists, templates synthesised again (PWBCLUSTER_PCLUSTER_NO_CACHE=1);
- warm, unchanged inputs: the venv exists and the pcluster step reuses the templates.

Also prints the per-step timings the plan itself reports (its "Steps:" line). Figures
only; nothing here asserts a time. The plan writes into build/<deployment>/plan/ as usual.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_plan(config: str, env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "invoke"), "plan", "--timings", "--config", config],
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "400", **env},
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(
            f"invoke plan failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    steps = re.findall(r"^Steps: (.*)$", done.stdout, flags=re.MULTILINE)
    return elapsed, steps[-1] if steps else "(no Steps line)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/example.yaml")
    parser.add_argument("--no-cold", action="store_true", help="skip the fresh-venv run")
    args = parser.parse_args()
    rows = []
    if not args.no_cold:
        with tempfile.TemporaryDirectory(prefix="pcluster-venvs-") as venvs:
            env = {"PWBCLUSTER_VENVS_DIR": venvs, "PWBCLUSTER_PCLUSTER_NO_CACHE": "1"}
            rows.append(("cold (new pcluster venv)", *run_plan(args.config, env)))
    rows.append(
        ("warm (templates redone)", *run_plan(args.config, {"PWBCLUSTER_PCLUSTER_NO_CACHE": "1"}))
    )
    rows.append(("warm (inputs unchanged)", *run_plan(args.config, {})))
    for name, seconds, steps in rows:
        print(f"{name:28s} {seconds:6.1f} s   steps: {steps}")


if __name__ == "__main__":
    main()
