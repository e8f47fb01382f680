"""Time ``load_config`` (what ``config.validate`` and ``plan`` run first) in this process.

Usage: PYTHONPATH=src .venv/bin/python benchmarks/config_validate.py [--config FILE] [--repeat 20]

Prints the first call (catalogues and schemas read from disk) and the median and slowest
of the repeated calls, for a valid deployment file (default: the example) and, when
``--broken`` names one, a file with mistakes (its problems are counted, not printed).
Nothing is written.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from pwbcluster.config import ConfigError, load_config


def _once(path: Path) -> tuple[float, int]:
    start = time.perf_counter()
    try:
        load_config(path)
        problems = 0
    except ConfigError as exc:
        problems = len(exc.problems)
    return time.perf_counter() - start, problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/example.yaml", type=Path)
    parser.add_argument("--broken", type=Path, help="a deployment file with mistakes")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    for label, path in (("valid", args.config), ("broken", args.broken)):
        if path is None:
            continue
        first, problems = _once(path)
        times = [_once(path)[0] for _ in range(args.repeat)]
        print(
            f"{label:6} {path}: first {first * 1000:.0f} ms, median "
            f"{statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms "
            f"over {args.repeat}; {problems} problem(s)"
        )


if __name__ == "__main__":
    main()
