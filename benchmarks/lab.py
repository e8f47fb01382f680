"""Time the cluster lab: its services, its nodes' boot, users, a job's round trip, down.

Usage (root): PYTHONPATH=src .venv/bin/python benchmarks/lab.py [--runs 3] [--no-nodes]

Per run, in this process (what `invoke lab.up` / `lab.down` call): a cold ``Lab.up`` for
the deployment "labbench" (nothing of the lab present: no moto, no Samba database, no
PostgreSQL cluster; the ParallelCluster environment in .venvs/ is present), then ``up``
again with nothing changed; then (unless --no-nodes) the five nodes' boot
(``nodes.Cluster.up``: head first, then login and compute nodes in parallel, so the
per-node times of those four overlap), the users made by pwb-users and resolved with
``getent passwd`` on every node, one job's round trip (``sbatch`` as a directory user on
a login node until its output is readable there: the job ran on a compute node and wrote
to the shared /home), the nodes' scripts run a second time; then ``down``. Prints the
median seconds (and min/max) of each. Asserts nothing.
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
from pwbcluster.lab import jobs, nodes, services, users
from pwbcluster.lab.network import LAB, leftovers

NAME = "labbench"


def cell(values: list[float]) -> str:
    return f"{statistics.median(values):6.1f} [{min(values):.1f}-{max(values):.1f}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-nodes", action="store_true", help="time the services only")
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
    resolved: list[str] = []
    for run in range(args.runs):
        try:
            started = time.perf_counter()
            steps = services.Lab(cfg).up()
            figures.setdefault("whole up", []).append(time.perf_counter() - started)
            for name, seconds in steps.items():
                figures.setdefault(name, []).append(seconds)
            started = time.perf_counter()
            lab = services.Lab(cfg)
            lab.up()
            figures.setdefault("unchanged re-run", []).append(time.perf_counter() - started)
            if not args.no_nodes:
                time_nodes(lab, figures, resolved)
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
        print(f"  {name:26} {cell(values)}")
    if resolved:
        print(f"  users resolved on every node (last run): {resolved[-1]}")
    return 0


def time_nodes(lab: services.Lab, figures: dict[str, list[float]], resolved: list[str]) -> None:
    started = time.perf_counter()
    cluster = nodes.Cluster(lab)
    records = cluster.up()
    figures.setdefault("nodes: all booted", []).append(time.perf_counter() - started)
    for record in records:
        figures.setdefault(f"  boot {record.node}", []).append(record.seconds)
    started = time.perf_counter()
    made = users.make(lab)
    figures.setdefault("users: pwb-users (3)", []).append(time.perf_counter() - started)
    started = time.perf_counter()
    names = made.allowed + made.outsiders
    found = [
        user
        for user in names
        if all(users.getent(node, user).returncode == 0 for node in cluster.nodes.values())
    ]
    figures.setdefault("users: getent x5 nodes", []).append(time.perf_counter() - started)
    resolved.append(f"{len(found)}/{len(names)} ({', '.join(found)})")
    user = made.allowed[0]
    started = time.perf_counter()
    result = jobs.submit(cluster, "ln1", user, made.passwords[user])
    figures.setdefault("job: session+round trip", []).append(time.perf_counter() - started)
    figures.setdefault("job: sbatch to output", []).append(result.seconds)
    started = time.perf_counter()
    cluster.rerun()
    figures.setdefault("nodes: scripts re-run", []).append(time.perf_counter() - started)


if __name__ == "__main__":
    sys.exit(main())
