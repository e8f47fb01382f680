"""Time the image stage's offline steps: fingerprint, prepare (render + bundle), dry run.

    .venv/bin/python benchmarks/image_stage.py [config/example.yaml]

Prints the figures; asserts nothing (timings depend on the machine).
"""

from __future__ import annotations

import io
import statistics
import sys
import time
from pathlib import Path

from rich.console import Console

from pwbcluster.config import load_config
from pwbcluster.contracts import planned_network
from pwbcluster.pipeline import image_tasks as commands
from pwbcluster.stages.image import service


def timed(label: str, fn: object, runs: int) -> None:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append((time.perf_counter() - started) * 1000)
    print(
        f"{label:<28} median {statistics.median(samples):7.2f} ms  max {max(samples):7.2f} ms  ({runs} runs)"
    )


def main() -> None:
    config = load_config(Path(sys.argv[1] if len(sys.argv) > 1 else "config/example.yaml"))
    network = planned_network(config.region, config.name)
    quiet = Console(file=io.StringIO(), width=200)
    timed("fingerprint", lambda: service.fingerprint_for(config), 50)
    timed("prepare (render + bundle)", lambda: service.prepare(config, network, "ami-0"), 20)
    timed("image.build --dry-run body", lambda: commands.dry_run(config, quiet), 10)


if __name__ == "__main__":
    main()
