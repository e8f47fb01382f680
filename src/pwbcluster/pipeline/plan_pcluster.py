"""The ``pcluster`` step of ``invoke plan``: validate, synthesise and lint, offline.

1. the pcluster venv exists and the patches in patches/ are applied;
2. pcluster's schema and validators on the rendered cluster and build-image configs
   (under moto, with stand-ins for the planned ids), every error traced back to the
   deployment key that caused it (``file:line key.path: message``);
3. the CloudFormation pcluster would deploy (cluster, nested stacks, build-image) into
   ``build/<deployment>/cloudformation/``;
4. cfn-lint on those templates: 0 errors or the plan fails.

When the inputs (rendered configs, patches, worker code, pcluster version) are the
same as last time and the templates are still there, steps 2-4 are not repeated.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pwbcluster.contracts.stage import Upstream
from pwbcluster.errors import PclusterError
from pwbcluster.pcluster import lint, offline
from pwbcluster.pcluster.patch import ensure_patched, find_patches
from pwbcluster.pcluster.venv import REQUIREMENTS
from pwbcluster.stages.cluster.stage import flow_lines

if TYPE_CHECKING:
    from pwbcluster.pipeline.plan_context import PlanContext

log = logging.getLogger(__name__)

OUT_DIR = "cloudformation"
CACHE_FILE = ".offline-inputs.json"
ENV_NO_CACHE = "PWBCLUSTER_PCLUSTER_NO_CACHE"
RENDERED_FILE = {"cluster": "cluster-config.yaml", "image": "image-config.yaml"}


def deployment_key(ctx: PlanContext, kind: str, path: Sequence[str | int]) -> str | None:
    if ctx.cluster is None or ctx.cluster.locate is None:
        return None
    return ctx.cluster.locate(kind, path)


def describe_failure(ctx: PlanContext, result: offline.JobResult, failure: offline.Failure) -> str:
    """``file:line key.path: message`` where the key is known, else the rendered location."""
    kind = result.job.kind
    rendered = ctx.build_dir.relative_to(ctx.config.root) / RENDERED_FILE[kind]
    where = f"{rendered} {offline.format_rendered_path(failure.path or ())}"
    key = deployment_key(ctx, kind, failure.path or ())
    tag = f"[pcluster {failure.validator}]"
    if key:
        return f"{key}: {failure.message} {tag} (rendered: {where})"
    return f"{where}: {failure.message} {tag}"


def _inputs_key(jobs: Sequence[offline.Job]) -> str:
    digest = hashlib.sha256()
    digest.update("\n".join(REQUIREMENTS).encode())
    digest.update(json.dumps([job.request() for job in jobs], sort_keys=True).encode())
    for source in [*sorted(offline.WORKER_DIR.glob("*.py")), Path(lint.__file__)]:
        digest.update(source.read_bytes())
    for patch in find_patches():
        digest.update(patch.path.read_bytes())
    return digest.hexdigest()


def _cached(out_dir: Path, key: str) -> dict[str, Any] | None:
    if os.environ.get(ENV_NO_CACHE):
        return None
    try:
        cache = json.loads((out_dir / CACHE_FILE).read_text())
    except (OSError, ValueError):
        return None
    if cache.get("key") != key or not all(Path(f).is_file() for f in cache.get("files", [])):
        return None
    return dict(cache)


def _timed(ctx: PlanContext, name: str, started: float) -> None:
    elapsed = time.perf_counter() - started
    ctx.timings[f"pcluster.{name}"] = elapsed
    log.info("pcluster %s: %.1f s", name, elapsed)


def pcluster_step(ctx: PlanContext) -> None:
    """Validate both rendered configs with pcluster, synthesise, cfn-lint (see module doc),
    then prove the deployment's flows on the synthesised security groups."""
    _synthesise(ctx)
    prove_flows(ctx)


def prove_flows(ctx: PlanContext) -> None:
    """Step 5: every flow between nodes and services has a path through the security
    groups of the programs and of pcluster's templates, or the plan stops naming it."""
    topology = ctx.extra.get("topology")
    assert ctx.cluster is not None
    if topology is None:
        ctx.notes.append(
            "flows: not proven: the VPC's security groups are unknown here (an existing "
            "VPC in a plan)"
        )
        return
    out_dir = ctx.build_dir / OUT_DIR
    rename = json.loads((out_dir / offline.PLACEHOLDERS_FILE).read_text(encoding="utf-8"))
    templates = sorted(out_dir.glob(f"{ctx.config.name}*.json"))
    upstream = Upstream(network=ctx.network, services=ctx.services)
    ctx.notes.extend(
        flow_lines(topology, templates, rename, ctx.config, ctx.cluster.config, upstream)
    )


def _synthesise(ctx: PlanContext) -> None:
    if ctx.cluster is None or ctx.image_config is None:
        raise PclusterError("the pcluster step needs the render step before it")
    started = time.perf_counter()
    ensure_patched()
    _timed(ctx, "setup", started)

    out_dir = ctx.build_dir / OUT_DIR
    public = list(ctx.network.public_subnet_ids)
    image_name = str(ctx.image_config.get("Image", {}).get("Name") or f"{ctx.config.name}-image")
    jobs = [
        offline.cluster_job(
            dict(ctx.cluster.config), ctx.config.name, out_dir=out_dir, public_subnets=public
        ),
        offline.image_job(ctx.image_config, image_name, out_dir=out_dir, public_subnets=public),
    ]
    key = _inputs_key(jobs)
    cache = _cached(out_dir, key)
    if cache is not None:
        ctx.files.extend(Path(f) for f in cache["files"])
        ctx.notes.extend(cache["notes"])
        ctx.notes.append(
            f"pcluster: inputs unchanged since the last plan; kept the templates in "
            f"{out_dir.relative_to(ctx.config.root)} (set {ENV_NO_CACHE}=1 to redo)"
        )
        return

    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("*.json"):
        stale.unlink()
    results = offline.run_jobs(jobs, ctx.config.region)
    parts = [
        f"{r.job.kind}: " + ", ".join(f"{name} {secs:.1f} s" for name, secs in r.timings.items())
        for r in results
    ]
    log.info("pcluster worker: %s", "; ".join(parts))
    ctx.notes.append("pcluster worker steps: " + "; ".join(parts))
    offline.raise_for(results, lambda r, f: describe_failure(ctx, r, f))
    _timed(ctx, "validate+synthesise", started)

    notes = [
        f"pcluster warning: {describe_failure(ctx, r, f)}" for r in results for f in r.warnings
    ]
    files = [f for r in results for f in r.files]
    shown = _write_placeholders(out_dir, results)

    started = time.perf_counter()
    linted = lint.lint(files)
    lint.raise_for(linted)
    _timed(ctx, "cfn-lint", started)
    notes.extend(f"cfn-lint warning: {w}" for w in linted.warnings)
    notes.append(linted.summary())
    if any(r.placeholders for r in results):
        notes.append(
            f"pcluster: planned ids appear in the templates as fixed stand-in ids; "
            f"{shown.relative_to(ctx.config.root)} says which is which"
        )
    all_files = [*files, shown]
    ctx.files.extend(all_files)
    ctx.notes.extend(notes)
    (out_dir / CACHE_FILE).write_text(
        json.dumps({"key": key, "files": [str(f) for f in all_files], "notes": notes}, indent=1)
    )


def _write_placeholders(out_dir: Path, results: Sequence[offline.JobResult]) -> Path:
    """placeholders.json: the id written in the templates -> the planned placeholder."""
    shown: dict[str, str] = {}
    for result in results:
        shown.update(result.placeholders)
    path = out_dir / offline.PLACEHOLDERS_FILE
    path.write_text(json.dumps(dict(sorted(shown.items())), indent=1) + "\n")
    return path


__all__ = ["describe_failure", "pcluster_step"]
