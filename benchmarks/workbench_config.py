"""Time the Workbench configuration generator and a login node's boot-time completion.

Usage: .venv/bin/python benchmarks/workbench_config.py [--queues 1 10 50] [--repeat 5]

Prints, for each queue count: files rendered, bytes, and the median seconds to render
and write the tree; then the median seconds for cluster/login-node.sh's file steps on a
prepared shared directory (aws, systemctl, curl and ip stubbed as in the bats suite), a
first run and an unchanged second run. Figures only; nothing here asserts a time.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pwbcluster.stages.cluster.workbench import render_workbench, settings_from, write_tree  # noqa: E402
from tests.cluster.fixtures import example_data, reseal, upstream, write_bucket  # noqa: E402


def render_times(queues: int, repeat: int) -> tuple[int, int, float]:
    data = copy.deepcopy(example_data())
    base = data["cluster"]["queues"][0]
    data["cluster"]["queues"] = [dict(base, name=f"q{i}") for i in range(queues)]
    _, services, _ = upstream()
    settings_from(data, services)  # warm the instance-type catalogue once
    times, files = [], {}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            files = render_workbench(settings_from(data, services), "bench")
            write_tree(files, Path(tmp))
            times.append(time.perf_counter() - started)
    size = sum(len(f.text) for f in files.values())
    return len(files), size, statistics.median(times)


def login_times(repeat: int) -> tuple[float, float]:
    first, second = [], []
    with tempfile.TemporaryDirectory() as tmp:
        world = Path(tmp) / "world"
        write_bucket(world, audit=False, license_key=False, tls=True)
        stubs = Path(tmp) / "bin"
        stubs.mkdir()
        shutil.copy(ROOT / "tests/bats/cluster_fakes/aws", stubs / "aws")
        for name, body in {
            "ip": 'echo "1.1.1.1 via 10.0.0.1 dev eth0 src 10.0.1.15 uid 0"',
            "systemctl": 'f="$STATE/active-${@: -1}"; case "$1" in is-active) [[ -f "$f" ]];; restart) touch "$f";; esac',
            "curl": "exit 0",
            # The head's database-role check, answered as a database whose role is in place
            # (the benchmark times the login node, not PostgreSQL).
            "psql": "cat >/dev/null; echo t",
        }.items():
            (stubs / name).write_text(f"#!/usr/bin/env bash\n{body}\n")
            (stubs / name).chmod(0o755)
        node_env = next(world.rglob("node.env"))
        text = node_env.read_text().replace("HA_CONTROLLERS=true", "HA_CONTROLLERS=false")
        node_env.write_text(
            text.replace(
                "WORKBENCH_SHARED_DIR=/opt/rstudio-shared", f"WORKBENCH_SHARED_DIR={tmp}/shared"
            )
        )
        env_uri = (world / "env-uri").read_text().strip()
        reseal(world)
        args = ["--env-uri", env_uri]
        for i in range(repeat):
            env = {
                **os.environ,
                "PATH": f"{stubs}:{os.environ['PATH']}",
                "BATS_TEST_TMPDIR": tmp,
                "STATE": f"{tmp}/state{i}",
                "FAKE_S3": str(world / "s3"),
                "FAKE_SECRETS": str(world / "secrets"),
                "PWB_HOME": f"{tmp}/pwb{i}",
                "RSTUDIO_ETC": f"{tmp}/etc{i}",
                "ROOT_OWNER": f"{os.getuid()}:{os.getgid()}",
                "HEALTH_TRIES": "1",
            }
            Path(env["STATE"]).mkdir()
            if i == 0:
                subprocess.run(
                    ["bash", str(ROOT / "cluster/head-node.sh"), *args],
                    env=env,
                    check=True,
                    capture_output=True,
                )
            for bucket in (first, second):
                started = time.perf_counter()
                subprocess.run(
                    ["bash", str(ROOT / "cluster/login-node.sh"), *args],
                    env=env,
                    check=True,
                    capture_output=True,
                )
                bucket.append(time.perf_counter() - started)
    return statistics.median(first), statistics.median(second)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queues", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for queues in args.queues:
        count, size, seconds = render_times(queues, args.repeat)
        print(
            f"render+write, {queues:3d} queue(s): {count:4d} files, {size:7d} bytes, {seconds * 1000:7.1f} ms (median of {args.repeat})"
        )
    first, second = login_times(args.repeat)
    print(
        f"login-node.sh, first run: {first:.2f} s; unchanged second run: {second:.2f} s (median of {args.repeat}, stubs)"
    )


if __name__ == "__main__":
    main()
