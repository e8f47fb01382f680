"""The ``invoke plan`` steps "diagram" and "cost".

Each step needs the "render" step before it (``ctx.cluster``). A missing dependency
(Graphviz, the ``diagrams`` package) skips the diagram with a one-line note, never a
traceback; a price nobody can supply (no cache entry, no credentials, an API error) makes
that line "unknown" in the estimate, with the reason and the command that fetches it.

Environment: ``PWBCLUSTER_PRICE_CACHE`` names the price cache directory (default
``~/.cache/pwbcluster/prices``); ``PWBCLUSTER_PRICES_OFFLINE=1`` keeps the plan from
calling the Price List API even when credentials are present.
"""

from __future__ import annotations

import json
import logging
import os
from typing import TYPE_CHECKING

from pwbcluster.estimate.cost import Estimate, build_estimate
from pwbcluster.estimate.prices import (
    OFFLINE_ENV,
    PriceCache,
    Snapshot,
    credentials_available,
    default_cache_dir,
    pricing_client,
    resolve_prices,
)
from pwbcluster.estimate.resources import bill_of_materials
from pwbcluster.pipeline.plan_cache import StepCache, code_digest, digest, note_reused, versions

if TYPE_CHECKING:
    from pwbcluster.pipeline.plan_context import PlanContext

log = logging.getLogger(__name__)


def refresh_command(ctx: PlanContext) -> str:
    config = ctx.config
    try:
        path = config.deployment_file.relative_to(config.root)
    except ValueError:
        path = config.deployment_file
    return f"invoke prices.refresh --config {path}"


def diagram_step(ctx: PlanContext) -> None:
    from pwbcluster.estimate.diagram import draw, unavailable_reason

    reason = unavailable_reason()
    if reason:
        ctx.notes.append(f"Diagram skipped: {reason}.")
        return
    if ctx.cluster is None:
        ctx.notes.append("Diagram skipped: the render step did not run.")
        return
    from graphviz import CalledProcessError, ExecutableNotFound

    out_base = ctx.build_dir / "architecture"
    cache = StepCache(ctx.build_dir)
    outputs = [str(out_base.with_suffix(".png")), str(out_base.with_suffix(".svg"))]
    keys: list[str] = []
    kept: list[bool] = []

    def unchanged(source: str) -> bool:
        tools = (versions("diagrams", "graphviz"), _dot_version(), code_digest())
        keys.append(digest("diagram", source, tools))
        kept.append(cache.get("diagram", keys[0], outputs) is not None)
        return kept[0]

    try:
        png, svg = draw(ctx.config.data, dict(ctx.cluster.config), out_base, unchanged)
    except (ExecutableNotFound, CalledProcessError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        ctx.notes.append(f"Diagram skipped: Graphviz failed: {first}")
        log.debug("graphviz failure", exc_info=True)
        return
    if kept[0]:
        note_reused(ctx, "diagram")
    else:
        cache.put("diagram", keys[0], {}, files=[png, svg])
    ctx.files.extend([png, svg])


def _dot_version() -> str:
    """``dot -V`` (Graphviz prints it on stderr), part of the diagram's key."""
    import shutil
    import subprocess

    dot = shutil.which("dot") or "dot"
    run = subprocess.run([dot, "-V"], capture_output=True, text=True, timeout=30, check=False)
    return f"{dot} {run.stdout.strip()} {run.stderr.strip()}"


def estimate_for(ctx: PlanContext, allow_api: bool | None = None) -> Estimate:
    """Price the plan: cache first, the API when allowed and credentials are present."""
    assert ctx.cluster is not None
    items = bill_of_materials(ctx.config.data, dict(ctx.cluster.config))
    if allow_api is None:
        allow_api = os.environ.get(OFFLINE_ENV, "") in ("", "0") and credentials_available()
    prices = resolve_prices(
        [item.query for item in items],
        ctx.config.region,
        PriceCache(default_cache_dir()),
        pricing_client if allow_api else None,
        snapshot=Snapshot.load(),
    )
    return build_estimate(ctx.config.name, ctx.config.region, items, prices, refresh_command(ctx))


def cost_step(ctx: PlanContext) -> None:
    if ctx.cluster is None:
        ctx.notes.append("Cost estimate skipped: the render step did not run.")
        return
    estimate = estimate_for(ctx)
    ctx.write("cost.json", json.dumps(estimate.to_json(), indent=2) + "\n")
    ctx.extra["cost"] = estimate
    ctx.notes.extend(estimate.text_lines())
