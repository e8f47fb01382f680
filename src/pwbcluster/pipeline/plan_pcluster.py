"""The ``pcluster`` step of ``invoke plan``: validate, synthesise and lint, offline.

1. the pcluster venv exists and the patches in patches/ are applied;
2. pcluster's schema and validators on the rendered cluster and build-image configs
   (under moto, with stand-ins for the planned ids), every error traced back to the
   deployment key that caused it (``file:line key.path: message``);
3. the CloudFormation pcluster would deploy (cluster, nested stacks, build-image) into
   ``build/<deployment>/cloudformation/``;
4. cfn-lint on those templates: 0 errors or the plan fails.

Each config's validation and synthesis, and cfn-lint on each config's templates, is
redone only when its own inputs changed (see ``plan_cache``): a queue edit re-synthesises
the cluster and keeps the build-image template; both run in one worker process.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pwbcluster.contracts.stage import Upstream
from pwbcluster.errors import PclusterError
from pwbcluster.pcluster import lint, offline
from pwbcluster.pcluster.patch import ensure_patched, find_patches
from pwbcluster.pcluster.venv import REQUIREMENTS, _requirements_digest
from pwbcluster.pipeline.plan_cache import (
    StepCache,
    code_digest,
    digest,
    files_digest,
    note_reused,
    versions,
)
from pwbcluster.stages.cluster.stage import flow_lines

if TYPE_CHECKING:
    from pwbcluster.pipeline.plan_context import PlanContext

log = logging.getLogger(__name__)

OUT_DIR = "cloudformation"
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


def setup_pcluster() -> None:
    """The pcluster venv, built on first use, with the patches applied, and the warm
    worker started (``make_plan`` runs this in the background while the render step runs)."""
    ensure_patched()
    offline.prewarm()


def _worker_key(region: str, account: str) -> str:
    """What a worker's output depends on besides its job: ParallelCluster and moto at their
    pinned versions, the Python the venv was built from, the patch set, the worker code."""
    patches = [(p.path.name, p.path.read_bytes()) for p in find_patches()]
    return digest("pcluster", REQUIREMENTS, _requirements_digest(), patches, code_digest(),
                  region, account)  # fmt: skip


def _failure_json(failure: offline.Failure) -> dict[str, Any]:
    return {"level": failure.level, "validator": failure.validator, "message": failure.message,
            "path": list(failure.path) if failure.path is not None else None}  # fmt: skip


def _failure_of(raw: dict[str, Any]) -> offline.Failure:
    path = raw.get("path")
    return offline.Failure(raw["level"], raw["validator"], raw["message"],
                           tuple(path) if path is not None else None)  # fmt: skip


def _own_files(out_dir: Path, kind: str) -> list[Path]:
    """The templates one job writes: build-image.json, or every other template."""
    if kind == "image":
        return [out_dir / "build-image.json"]
    keep = {"build-image.json", offline.PLACEHOLDERS_FILE}
    return sorted(p for p in out_dir.glob("*.json") if p.name not in keep)


def _synthesise(ctx: PlanContext) -> None:
    if ctx.cluster is None or ctx.image_config is None:
        raise PclusterError("the pcluster step needs the render step before it")
    out_dir = ctx.build_dir / OUT_DIR
    public = list(ctx.network.public_subnet_ids)
    image_name = str(ctx.image_config.get("Image", {}).get("Name") or f"{ctx.config.name}-image")
    jobs = [
        offline.cluster_job(
            dict(ctx.cluster.config),
            ctx.config.name,
            out_dir=out_dir,
            public_subnets=public,
            clock=offline.PLAN_CLOCK,
        ),
        offline.image_job(ctx.image_config, image_name, out_dir=out_dir, public_subnets=public),
    ]
    # The account of the ARNs in both configs, as one worker for both would take it.
    account = offline.account_of(job.config for job in jobs)
    worker = _worker_key(ctx.config.region, account)
    cache = StepCache(ctx.build_dir)
    keys = {job.kind: digest(worker, job.request()) for job in jobs}
    kept = {job.kind: cache.get(f"pcluster-{job.kind}", keys[job.kind]) for job in jobs}
    missing = [job for job in jobs if not isinstance(kept[job.kind], dict)]

    started = time.perf_counter()
    setup = ctx.extra.pop("pcluster_setup", None)
    if setup is not None:
        setup.result()
    elif missing:
        ensure_patched()
    _timed(ctx, "setup", started)

    fresh: dict[str, offline.JobResult] = {}
    if missing:
        started = time.perf_counter()
        out_dir.mkdir(parents=True, exist_ok=True)
        for job in missing:
            cache.drop(f"pcluster-{job.kind}")
            for stale in _own_files(out_dir, job.kind):
                stale.unlink(missing_ok=True)
        ran = offline.run_jobs(missing, ctx.config.region, account_id=account)
        parts = [
            f"{r.job.kind}: "
            + ", ".join(f"{name} {secs:.1f} s" for name, secs in r.timings.items())
            for r in ran
        ]
        log.info("pcluster worker: %s", "; ".join(parts))
        ctx.notes.append("pcluster worker steps: " + "; ".join(parts))
        offline.raise_for(ran, lambda r, f: describe_failure(ctx, r, f))
        _timed(ctx, "validate+synthesise", started)
        for result in ran:
            fresh[result.job.kind] = result
            cache.put(
                f"pcluster-{result.job.kind}",
                keys[result.job.kind],
                {
                    "files": [str(f) for f in result.files],
                    "failures": [_failure_json(f) for f in result.failures],
                    "placeholders": result.placeholders,
                },
                files=result.files,
            )
    results = []
    for job in jobs:
        if job.kind in fresh:
            results.append(fresh[job.kind])
            continue
        value = kept[job.kind]
        assert isinstance(value, dict)
        note_reused(ctx, f"pcluster {job.kind}")
        results.append(
            offline.JobResult(
                job=job,
                failures=[_failure_of(f) for f in value["failures"]],
                files=[Path(f) for f in value["files"]],
                timings={},
                mapping={},
                placeholders=dict(value["placeholders"]),
            )
        )

    notes = [
        f"pcluster warning: {describe_failure(ctx, r, f)}" for r in results for f in r.warnings
    ]
    files = [f for r in results for f in r.files]
    shown = _write_placeholders(out_dir, results)

    started = time.perf_counter()
    linted = _lint(ctx, cache, results)
    lint.raise_for(linted)
    _timed(ctx, "cfn-lint", started)
    notes.extend(f"cfn-lint warning: {w}" for w in linted.warnings)
    notes.append(linted.summary())
    notes.append(offline.PLAN_CLOCK_NOTE)
    if any(r.placeholders for r in results):
        notes.append(
            f"pcluster: planned ids appear in the templates as fixed stand-in ids; "
            f"{shown.relative_to(ctx.config.root)} says which is which"
        )
    ctx.files.extend([*files, shown])
    ctx.notes.extend(notes)


def _finding_json(finding: lint.Finding) -> dict[str, Any]:
    return {"level": finding.level, "rule": finding.rule, "file": finding.file,
            "line": finding.line, "message": finding.message}  # fmt: skip


def _lint(
    ctx: PlanContext, cache: StepCache, results: Sequence[offline.JobResult]
) -> lint.LintResult:
    """cfn-lint on each template, redone only for a template whose name or bytes (or
    cfn-lint's version) changed: cfn-lint reads each template on its own, and pcluster's
    clock is pinned in a plan, so a queue edit leaves the login nodes' template as it was.
    The templates left to lint run at the same time."""
    tool = (versions("cfn-lint"), code_digest())
    groups = {r.job.kind: list(r.files) for r in results}
    all_files = [path for files in groups.values() for path in files]
    done: dict[Path, lint.LintResult] = {}
    keys: dict[Path, str] = {}
    for path in all_files:
        keys[path] = digest("cfn-lint", tool, files_digest([path]))
        value = cache.get(f"cfn-lint-{path.name}", keys[path])
        if isinstance(value, dict):
            done[path] = lint.LintResult(
                files=[path],
                errors=[lint.Finding(**f) for f in value["errors"]],
                warnings=[lint.Finding(**f) for f in value["warnings"]],
                ignored=Counter(value["ignored"]),
            )
    todo = [path for path in all_files if path not in done]
    for path, result in lint.lint_each(todo).items():
        done[path] = result
        cache.put(
            f"cfn-lint-{path.name}",
            keys[path],
            {
                "errors": [_finding_json(f) for f in result.errors],
                "warnings": [_finding_json(f) for f in result.warnings],
                "ignored": dict(result.ignored),
            },
        )
    for kind, files in groups.items():
        kept = [path for path in files if path not in todo]
        if files and len(kept) == len(files):
            note_reused(ctx, f"cfn-lint {kind}")
        else:
            for path in kept:
                note_reused(ctx, f"cfn-lint {path.name}")
    return lint.merge(all_files, (done[path] for path in all_files))


def _write_placeholders(out_dir: Path, results: Sequence[offline.JobResult]) -> Path:
    """placeholders.json: the id written in the templates -> the planned placeholder."""
    shown: dict[str, str] = {}
    for result in results:
        shown.update(result.placeholders)
    path = out_dir / offline.PLACEHOLDERS_FILE
    path.write_text(json.dumps(dict(sorted(shown.items())), indent=1) + "\n")
    return path


__all__ = ["describe_failure", "pcluster_step"]
