"""``invoke plan``: the pipeline with planned upstream values; it creates nothing.

Every stage's ``plan`` runs against the plan account (``sandbox.plan.PlanAccount``: no
AWS call, no server): the network and services stages give placeholders (well-formed
values containing ``planned``/``PLANNED``), the image and cluster stages render exactly
what ``invoke up`` would use, with the same code, and hand it to the account. Then the
pcluster step checks it with ParallelCluster's own code, and the diagram and cost steps
draw and price it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from pwbcluster import contracts, netpaths
from pwbcluster.config import Config
from pwbcluster.contracts import PROJECT
from pwbcluster.contracts.stage import StageContext, Upstream
from pwbcluster.estimate.resources import Item, bill_of_materials
from pwbcluster.pcluster import offline
from pwbcluster.pipeline.plan_cache import (
    ENV_NO_CACHE,
    StepCache,
    code_digest,
    digest,
    note_reused,
    versions,
)
from pwbcluster.pipeline.plan_context import PlanContext, PlanStep
from pwbcluster.pipeline.plan_estimate import cost_step, diagram_step
from pwbcluster.pipeline.plan_pcluster import pcluster_step, setup_pcluster
from pwbcluster.pipeline.registry import stage_specs
from pwbcluster.pipeline.runner import Runner, critical_path
from pwbcluster.pipeline.state import State
from pwbcluster.sandbox.fakes import OfflineMocks
from pwbcluster.sandbox.mockrun import run_with_mocks
from pwbcluster.sandbox.plan import PlanAccount
from pwbcluster.stages.image.stage import planned_outputs as planned_image_outputs
from pwbcluster.stages.network import stage as network_stage
from pwbcluster.stages.network.args import network_args
from pwbcluster.stages.services import stage as services_stage
from pwbcluster.stages.services.args import services_args
from pwbcluster.stages.stack_outputs import to_contract

log = logging.getLogger(__name__)


def planned_context(config: Config) -> PlanContext:
    """Planned upstream values, as the stages' own ``plan`` gives them (nothing rendered).

    The plan works in build/<deployment>/plan/ (``Config.for_plan``): its files hold
    placeholders, and must not replace what a sandbox or real run rendered.
    """
    config = config.for_plan()
    ctx = StageContext(config, Upstream(), PlanAccount(config.region))
    network = network_stage.plan(ctx)
    ctx = StageContext(config, Upstream(network=network), PlanAccount(config.region))
    return PlanContext(
        config=config,
        build_dir=config.build_dir,
        network=network,
        services=services_stage.plan(ctx),
        image=planned_image_outputs(config),
        # The cluster stage uploads node scripts at the bucket root (cluster/...), the
        # prefix the node IAM policies grant; the plan shows the same URIs.
        scripts_prefix="",
    )


def planned_topology(config: Config) -> netpaths.Topology | None:
    """The network the network and services programs declare, under offline mocks, with
    subnets and security groups named by the plan's placeholder ids; None for an existing
    VPC (its routing is unknown here).

    The programs run only when their arguments changed since the last plan (see
    ``plan_cache``): the key is the network program's arguments, then the services
    program's, built from the network outputs the cached run recorded."""
    if config.model.aux.network.vpc_id:
        return None
    tags = config.tags()
    net_args = network_args(config.model, tags)
    tools = (code_digest(), versions("pulumi", "pulumi-aws"), PROJECT)
    net_key = digest("topology", net_args, config.region, config.name, tools)
    cache = StepCache(config.build_dir)
    cached = cache.get("topology", net_key)
    if isinstance(cached, dict):
        network = to_contract(contracts.NetworkOutputs, cached["network_outputs"])
        svc_key = digest(net_key, services_args(config.model, tags, network))
        if cached.get("services_key") == svc_key:
            topology = netpaths.topology_from_json(cached["topology"])
            config_reused(config, "topology")
            return topology
    network_outputs, svc_args, topology = _declared_topology(config, net_args)
    cache.put(
        "topology",
        net_key,
        {
            "network_outputs": network_outputs,
            "services_key": digest(net_key, svc_args),
            "topology": netpaths.topology_to_json(topology),
        },
    )
    return topology


def config_reused(config: Config, step: str) -> None:
    """Note that ``step`` kept its previous result; ``render_step`` hands it to the plan
    (``planned_topology`` has no plan context: tests and callers use it alone)."""
    _REUSED.setdefault(config.build_dir, []).append(step)


_REUSED: dict[Path, list[str]] = {}


@dataclass(frozen=True)
class DeclaredRuns:
    """The network and services programs as the plan runs them: under offline mocks."""

    network_outputs: dict[str, Any]  # JSON-shaped, as the plan cache keeps them
    network: Any  # contracts.NetworkOutputs
    services_args: Any
    network_run: Any  # MockRun
    services_run: Any  # MockRun

    def registered(self) -> list[Any]:
        return [*self.network_run.registered.values(), *self.services_run.registered.values()]


def declared_runs(config: Config, net_args: Any | None = None) -> DeclaredRuns:
    """Run both programs for ``config`` under the plan's offline mocks (nothing is created,
    no AWS call); the reachability proof and the deployer policy read what they register."""
    from pwbcluster.stages.network.program import network_program
    from pwbcluster.stages.services.program import services_program

    tags = config.tags()
    net_args = net_args if net_args is not None else network_args(config.model, tags)
    mocks = OfflineMocks(config.region)
    net = run_with_mocks(lambda: network_program(net_args), mocks, PROJECT, "plan", preview=True)
    # What the cache keeps and reads back: the same contract either way.
    network_outputs = json.loads(json.dumps(net.outputs))
    network = to_contract(contracts.NetworkOutputs, network_outputs)
    svc_args = services_args(config.model, tags, network)
    # The program's plan-time warnings (no tool wheel in a plan) are not the user's business.
    quiet = logging.getLogger("pwbcluster.stages.services")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        svc = run_with_mocks(
            lambda: services_program(svc_args), mocks, PROJECT, "plan", preview=True
        )
    finally:
        quiet.setLevel(level)
    return DeclaredRuns(network_outputs, network, svc_args, net, svc)


def _declared_topology(
    config: Config, net_args: Any
) -> tuple[dict[str, Any], Any, netpaths.Topology]:
    """Run both programs under mocks: (network outputs, services args, topology)."""
    runs = declared_runs(config, net_args)
    network, svc = runs.network, runs.services_run
    planned = contracts.planned_network(config.region, config.name)
    groups = contracts.PLANNED_GROUPS
    made = svc.outputs
    rename = {
        **{f"{config.name}-public-{i + 1}": s for i, s in enumerate(planned.public_subnet_ids)},
        **{f"{config.name}-private-{i + 1}": s for i, s in enumerate(planned.private_subnet_ids)},
        str(network.image_build_security_group_id): str(planned.image_build_security_group_id),
        str(made["cluster_security_group_id"]): groups["cluster"],
        str(made["workbench_db"]["security_group_id"]): groups["workbench database"],
    }
    if made.get("directory_security_group_id"):
        rename[str(made["directory_security_group_id"])] = groups["directory"]
    if made.get("jump_host_security_group_id"):
        rename[str(made["jump_host_security_group_id"])] = groups["jump host"]
    topology = netpaths.from_registrations(runs.registered(), rename)
    return runs.network_outputs, runs.services_args, topology


def render_step(ctx: PlanContext) -> None:
    """The pipeline itself, in plan mode: every stage's ``plan`` against the plan account.

    The image and cluster stages render exactly what ``invoke up`` would use (the same
    code: fingerprint, build-image config, cluster config, Workbench files, node.env) and
    hand it to the account, which records it for the pcluster step.
    """
    config = ctx.config
    _REUSED.pop(config.build_dir, None)
    topology = planned_topology(config)
    for step in _REUSED.pop(config.build_dir, []):
        note_reused(ctx, step)
    ctx.extra["topology"] = topology
    account = PlanAccount(config.region, topology=lambda vpc_id: topology)

    def make_context(upstream: Any) -> StageContext:
        return StageContext(config, Upstream(**dict(upstream)), account, None)

    # The plan records nothing: the state object is never written.
    state = State(path=config.build_dir / "state.json", mode="plan")
    outputs = Runner(stage_specs(), state, make_context).plan()
    ctx.outputs = outputs
    ctx.network, ctx.services, ctx.image = outputs["network"], outputs["services"], outputs["image"]
    ctx.account = account
    ctx.cluster = account.cluster
    if account.image is not None:
        ctx.image_config = dict(account.image.config)
        ctx.files.append(account.image.config_path)
    if account.cluster is not None:
        ctx.files.append(account.cluster.config_path)
        ctx.notes.extend(f"Warning: {w}" for w in account.cluster.warnings)
    ctx.notes.extend(account.notes.lines)
    workbench = ctx.build_dir / "workbench"
    ctx.files.extend(sorted(p for p in workbench.rglob("*") if p.is_file()))


def items_for_config(config: Config) -> list[Item]:
    """The bill of materials of a deployment, rendered by the plan's own pipeline."""
    ctx = planned_context(config)
    render_step(ctx)
    assert ctx.cluster is not None
    return bill_of_materials(config.data, dict(ctx.cluster.config))


STEPS: list[PlanStep] = [
    ("render", render_step),
    ("pcluster", pcluster_step),
    ("diagram", diagram_step),
    ("cost", cost_step),
]


# Steps that need only the render step and may run while the pcluster step waits on its
# worker and cfn-lint (subprocesses): the two cores are both busy.
CONCURRENT = {"diagram"}


def make_plan(config: Config, steps: list[PlanStep] | None = None) -> PlanContext:
    """Run the steps; the pcluster venv is readied during the render step, and the diagram
    drawn during the pcluster step. What each step adds (files, notes) lands in the steps'
    order whatever ran first, so the plan reads the same either way."""
    ctx = planned_context(config)
    ctx.build_dir.mkdir(parents=True, exist_ok=True)
    steps = steps or STEPS
    names = [name for name, _ in steps]
    ahead: dict[str, tuple[PlanContext, Future[float]]] = {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        if "pcluster" in names:
            ctx.extra["pcluster_setup"] = pool.submit(setup_pcluster)
        for index, (name, step) in enumerate(steps):
            if name in ahead:
                sub, future = ahead.pop(name)
                ctx.timings[name] = future.result()
                ctx.files.extend(sub.files)
                ctx.notes.extend(sub.notes)
                ctx.extra.setdefault("reused", []).extend(sub.extra.get("reused", []))
                continue
            if name == "pcluster":
                for later, later_step in steps[index + 1 :]:
                    if later in CONCURRENT:
                        sub = replace(ctx, files=[], notes=[], timings={}, extra={})
                        ahead[later] = (sub, pool.submit(_timed_step, later_step, sub))
            ctx.timings[name] = _timed_step(step, ctx)
    reused = ctx.extra.get("reused", [])
    if reused:
        ctx.notes.append(
            f"inputs unchanged since the last plan, results kept: {', '.join(reused)} "
            f"(set {ENV_NO_CACHE}=1 to redo them)"
        )
    return ctx


def _timed_step(step: Callable[[PlanContext], None], ctx: PlanContext) -> float:
    started = time.perf_counter()
    step(ctx)
    return time.perf_counter() - started


def print_plan(ctx: PlanContext, console: Console, timings: bool = False) -> None:
    specs = stage_specs()
    path, minutes = critical_path(specs)
    table = Table(title=f"Plan for deployment '{ctx.config.name}' in {ctx.config.region}")
    table.add_column("#", justify="right")
    table.add_column("stage")
    table.add_column("after")
    table.add_column("creates")
    table.add_column("typical", justify="right")
    for index, spec in enumerate(specs, start=1):
        marker = " *" if spec.name in path else ""
        table.add_row(
            str(index),
            spec.name + marker,
            ", ".join(spec.needs) or "-",
            spec.description,
            f"{spec.minutes:.0f} min",
        )
    console.print(table)
    console.print(
        f"Critical path (*): {' -> '.join(path)}, about {minutes:.0f} min; "
        "services and image run at the same time."
    )
    for warning in ctx.config.warnings:
        console.print(f"[yellow]{warning}[/yellow]", highlight=False)
    # What this plan could not check as AWS would, each with its reason.
    for line in offline.suppression_lines():
        console.print(line, highlight=False)
    for note in ctx.notes:
        console.print(note, highlight=False)
    console.print(files_summary(ctx), highlight=False)
    if timings:
        timing = ", ".join(f"{k} {v:.1f} s" for k, v in ctx.timings.items())
        console.print(f"Steps: {timing}", highlight=False)


def files_summary(ctx: PlanContext) -> str:
    """Where the plan wrote, in a few lines: files at the top by name, each directory
    below as a count (the Workbench configuration alone is some 25 files)."""
    base = ctx.build_dir
    top: list[str] = []
    below: dict[str, int] = {}
    for file in ctx.files:
        try:
            relative = file.relative_to(base)
        except ValueError:
            top.append(str(file.relative_to(ctx.config.root)))
            continue
        if len(relative.parts) == 1:
            top.append(relative.name)
        else:
            below[relative.parts[0]] = below.get(relative.parts[0], 0) + 1
    parts = top + [f"{name}/ ({count} files)" for name, count in sorted(below.items())]
    where = base.relative_to(ctx.config.root)
    return (
        f"Files written under {where}/ (placeholders where AWS would give values; "
        f"a sandbox or real run renders its own in {where.parent}/): " + ", ".join(parts)
    )
