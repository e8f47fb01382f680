"""Time the plan's "diagram" and "cost" steps for a deployment (default: the example).

Usage: .venv/bin/python benchmarks/plan_estimate.py [--config config/example.yaml] [--repeat 5]

Prints the median and the slowest of each: drawing the architecture (PNG + SVG through
Graphviz, icons inlined) and building the cost estimate from an empty price cache (every
price unknown: no network, no credentials used). Writes only into a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from pwbcluster.config import load_config
from pwbcluster.estimate.cost import build_estimate
from pwbcluster.estimate.diagram import draw, unavailable_reason
from pwbcluster.estimate.prices import PriceCache, resolve_prices
from pwbcluster.estimate.resources import bill_of_materials
from pwbcluster.pipeline.plan import planned_context
from pwbcluster.stages.cluster.render import render_cluster_config

# The estimate reads the configuration's resources, not its Args: any well-formed digest.


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/example.yaml", help="deployment file")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each step")
    args = parser.parse_args()
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    cfg = load_config(Path(args.config))
    ctx = planned_context(cfg)
    cluster = render_cluster_config(
        cfg.model,
        ctx.network,
        ctx.services,
        ctx.image,
        ctx.scripts_prefix,
        cfg.tags(),
    ).config
    timings: dict[str, list[float]] = {"diagram": [], "cost": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            if unavailable_reason() is None:
                started = time.perf_counter()
                draw(cfg.model, cluster, Path(tmp) / "architecture")
                timings["diagram"].append(time.perf_counter() - started)
            started = time.perf_counter()
            items = bill_of_materials(cfg.model, cluster)
            prices = resolve_prices(
                [i.query for i in items], cfg.region, PriceCache(Path(tmp) / "cache"), None
            )
            estimate = build_estimate(cfg.name, cfg.region, items, prices, "-")
            estimate.to_json()
            estimate.text_lines()
            timings["cost"].append(time.perf_counter() - started)
    for step, values in timings.items():
        if not values:
            print(f"{step}: skipped ({unavailable_reason()})")
            continue
        print(
            f"{step}: median {statistics.median(values) * 1000:.0f} ms, "
            f"slowest {max(values) * 1000:.0f} ms over {len(values)} run(s)"
        )


if __name__ == "__main__":
    main()
