"""Time the cluster lab's services: each one's coming up, an unchanged re-run, and down.

Usage (root): PYTHONPATH=src .venv/bin/python benchmarks/lab.py [--runs 3]

Per run, in this process (what `invoke lab.up` / `lab.down` call): a cold ``Lab.up`` for
the deployment "labbench" (nothing of the lab present: no moto, no Samba database, no
PostgreSQL cluster; the ParallelCluster environment in .venvs/ is present), then ``up``
again with nothing changed, then ``down``. Prints the median seconds (and min/max) of
each service step, of the whole up, of the re-run and of down. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _bytecode import bytecode_state

from pwbcluster.config import load_config
from pwbcluster.lab import services
from pwbcluster.lab.network import LAB, leftovers

NAME = "labbench"


def cell(values: list[float]) -> str:
    return f"{statistics.median(values):6.1f} [{min(values):.1f}-{max(values):.1f}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    reason = services.unavailable_reason()
    if reason:
        sys.exit(f"benchmarks/lab.py: {reason}")
    if LAB.ledger_path.exists():
        sys.exit("benchmarks/lab.py: a lab is up on this machine: `invoke lab.down` first")
    tmp = Path(tempfile.mkdtemp(prefix="labbench-"))
    config = tmp / f"{NAME}.yaml"
    config.write_text(
        f"deployment:\n  name: {NAME}\n  region: eu-west-1\n  owner_email: bench@example.com\n"
    )
    cfg = load_config(config)
    figures: dict[str, list[float]] = {}
    for run in range(args.runs):
        try:
            started = time.perf_counter()
            steps = services.Lab(cfg).up()
            figures.setdefault("whole up", []).append(time.perf_counter() - started)
            for name, seconds in steps.items():
                figures.setdefault(name, []).append(seconds)
            started = time.perf_counter()
            services.Lab(cfg).up()
            figures.setdefault("unchanged re-run", []).append(time.perf_counter() - started)
        finally:
            started = time.perf_counter()
            _, left = services.down()
            figures.setdefault("down", []).append(time.perf_counter() - started)
        if left or leftovers(LAB):
            sys.exit(f"benchmarks/lab.py: still present after down: {left or leftovers(LAB)}")
        print(f"run {run + 1}/{args.runs} done", file=sys.stderr, flush=True)
    build = cfg.root / "build" / NAME
    if build.is_dir() and not any(build.iterdir()):
        build.rmdir()
    print(f"cluster lab services, {args.runs} run(s), median [min-max] seconds")
    print(f"  cpus: {os.cpu_count()}; venvs: {bytecode_state()}")
    for name, values in figures.items():
        print(f"  {name:18} {cell(values)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
