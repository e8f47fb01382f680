"""Time `invoke plan` re-plans after one-line edits, optionally against an older tree.

Usage: .venv/bin/python benchmarks/plan.py [--runs 3] [--baseline GIT_REV] [--rebuild-env]
                                           [--bytecode]

Copies config/example.yaml to a temporary directory (deployment name "planbench", so
build/example/ is left alone), then, per run and per tree, one after another:

- cold: build/planbench/ removed first and no warm pcluster worker running (an empty
  PWBCLUSTER_WORKER_DIR; the plan starts one, which the figures after it in the run use);
  the ParallelCluster environment is present (the tree's .venvs/), it is not rebuilt;
- cold, new environment (only with --rebuild-env): build/planbench/ removed, no warm
  worker, and the ParallelCluster environment built anew in a temporary
  PWBCLUSTER_VENVS_DIR;
- warm, unchanged: the same config again;
- Workbench edit: cluster.workbench.license_server changed (Workbench files only);
- queue edit: the first queue's max_count changed (pcluster puts it in the config it
  uploads: validation and synthesis again, every template the same bytes);
- queue type edit: the first queue's instance type changed (its compute fleet template and
  the root change: their lint is redone too);
- image edit: image.root_volume_gb changed.

Each edit differs from the one before it (run r writes value r), so every timed plan
follows a real change. With --baseline REV a temporary git worktree of REV runs the same
sequence in the same invocation, its runs interleaved with this tree's. Prints the median
wall-clock seconds (and min/max) of each figure for each tree; asserts nothing.

Python's bytecode: the environment's PYTHONDONTWRITEBYTECODE is kept as it is and printed
(with it set, every start-up compiles the imported modules again); --bytecode instead
lets Python cache bytecode in a temporary PYTHONPYCACHEPREFIX (warmed by one untimed
plan), as on a developer's machine, without writing into either tree.
"""

from __future__ import annotations

import argparse
import copy
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

from pwbcluster.pcluster import warm

ROOT = Path(__file__).resolve().parents[1]
NAME = "planbench"
SCENARIOS = ["cold", "cold, new environment", "warm, unchanged", "Workbench edit",
             "queue edit", "queue type edit", "image edit"]  # fmt: skip
# x86_64 types, as the image is: run r uses TYPES[r % 3], each differing from the last.
TYPES = ["t3.2xlarge", "m5.xlarge", "c5.2xlarge"]


def load_yaml(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text())


def write_yaml(path: Path, data: Any) -> None:
    yaml = YAML()
    yaml.default_flow_style = False
    with path.open("w") as handle:
        yaml.dump(data, handle)


class Tree:
    def __init__(self, label: str, root: Path, work: Path) -> None:
        self.label, self.root, self.work = label, root, work
        self.worker_dirs: list[Path] = []
        self.deployment = work / f"{label}.yaml"
        base = load_yaml(ROOT / "config" / "example.yaml")
        base["deployment"]["name"] = NAME
        self.base = base
        self.queues = load_yaml(root / "cluster" / "cluster.yaml")["queues"]
        self.times: dict[str, list[float]] = {s: [] for s in SCENARIOS}

    def write(self, data: dict[str, Any]) -> None:
        write_yaml(self.deployment, data)

    def plan(self, env: dict[str, str]) -> float:
        argv = [sys.executable, "-m", "invoke", "plan", "--config", str(self.deployment)]
        started = time.perf_counter()
        done = subprocess.run(
            argv,
            cwd=self.root,
            env={**os.environ, "PYTHONPATH": str(self.root / "src"), "COLUMNS": "200", **env},
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"{self.label}: invoke plan failed ({done.returncode}):\n{done.stdout[-3000:]}"
                     f"{done.stderr[-3000:]}")  # fmt: skip
        return elapsed

    def build_dir(self) -> Path:
        return self.root / "build" / NAME

    def sequence(self, run: int, env: dict[str, str], rebuild_env: bool) -> None:
        try:
            self._sequence(run, env, rebuild_env)
        finally:
            for directory in self.worker_dirs:
                warm.stop_all(directory)

    def _workers(self, env: dict[str, str]) -> dict[str, str]:
        """``env`` with an empty directory for the warm pcluster workers: no worker is
        running for the next plan (a tree from before the warm worker ignores it)."""
        directory = Path(tempfile.mkdtemp(prefix="w", dir=self.work))
        directory.chmod(0o700)
        self.worker_dirs.append(directory)
        return {**env, warm.ENV_DIR: str(directory)}

    def _sequence(self, run: int, env: dict[str, str], rebuild_env: bool) -> None:
        data = copy.deepcopy(self.base)
        self.write(data)
        if rebuild_env:
            shutil.rmtree(self.build_dir(), ignore_errors=True)
            with tempfile.TemporaryDirectory(prefix="planbench-venvs-") as venvs:
                seconds = self.plan({**self._workers(env), "PWBCLUSTER_VENVS_DIR": venvs})
                self.times["cold, new environment"].append(seconds)
        shutil.rmtree(self.build_dir(), ignore_errors=True)
        env = self._workers(env)
        self.times["cold"].append(self.plan(env))
        self.times["warm, unchanged"].append(self.plan(env))
        # Workbench only: the rendered cluster config stays the same (user_group, by
        # contrast, is in the cluster's LDAP access filter).
        workbench = data.setdefault("cluster", {}).setdefault("workbench", {})
        workbench.update(license_kind="server", license_server=f"lic{run}.example.com:8989")
        self.write(data)
        self.times["Workbench edit"].append(self.plan(env))
        queues = copy.deepcopy(self.queues)
        queues[0]["max_count"] = int(queues[0]["max_count"]) + 1 + run
        data["cluster"]["queues"] = queues
        self.write(data)
        self.times["queue edit"].append(self.plan(env))
        queues[0]["instance_type"] = TYPES[run % len(TYPES)]
        self.write(data)
        self.times["queue type edit"].append(self.plan(env))
        data.setdefault("image", {})["root_volume_gb"] = 101 + run
        self.write(data)
        self.times["image edit"].append(self.plan(env))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each figure (default 3)")
    parser.add_argument("--baseline", help="a git revision to time side by side")
    parser.add_argument("--rebuild-env", action="store_true",
                        help="also time a cold plan that builds the pcluster environment")  # fmt: skip
    parser.add_argument("--bytecode", action="store_true",
                        help="let Python cache bytecode (in a temporary prefix)")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="planbench-") as tmp:
        work = Path(tmp)
        env: dict[str, str] = {}
        if args.bytecode:
            env = {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(work / "pyc")}
        trees = [Tree("this tree", ROOT, work)]
        baseline_dir = work / "baseline"
        if args.baseline:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q",
                            str(baseline_dir), args.baseline], check=True)  # fmt: skip
            # The same ParallelCluster environment as this tree's (built once).
            (baseline_dir / ".venvs").symlink_to((ROOT / ".venvs").resolve())
            trees.append(Tree(f"baseline {args.baseline}", baseline_dir, work))
        try:
            for tree in trees:
                tree.write(tree.base)
                if args.bytecode:
                    tree.plan(env)  # untimed: fills the bytecode cache
            for run in range(args.runs):
                for tree in trees:
                    tree.sequence(run, env, args.rebuild_env)
                    print(f"run {run + 1}/{args.runs} {tree.label} done", file=sys.stderr)
        finally:
            for tree in trees:
                shutil.rmtree(tree.build_dir(), ignore_errors=True)
            if args.baseline:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                str(baseline_dir)], check=False)  # fmt: skip
    bytecode = "cached (temporary prefix)" if args.bytecode else bytecode_state()
    print(f"invoke plan, wall-clock seconds, median [min-max] of {args.runs} run(s); "
          f"{os.cpu_count()} CPUs; bytecode: {bytecode}")  # fmt: skip
    print(
        "cold: fresh build dir, no warm pcluster worker, ParallelCluster environment present "
        "unless 'new environment'"
    )
    header = f"{'figure':24s}" + "".join(f"{t.label:>28s}" for t in trees)
    print(header)
    for scenario in SCENARIOS:
        if not trees[0].times[scenario]:
            continue
        cells = []
        for tree in trees:
            values = tree.times[scenario]
            cells.append(f"{statistics.median(values):6.1f} [{min(values):.1f}-{max(values):.1f}]")
        print(f"{scenario:24s}" + "".join(f"{c:>28s}" for c in cells))


if __name__ == "__main__":
    main()
