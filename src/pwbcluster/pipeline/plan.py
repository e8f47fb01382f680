"""``invoke plan``: the pipeline with planned upstream values; it creates nothing.

Every stage's ``plan`` runs against the plan account (``sandbox.plan.PlanAccount``: no
AWS call, no server): the network and services stages give placeholders (well-formed
values containing ``planned``/``PLANNED``), the image and cluster stages render exactly
what ``invoke up`` would use, with the same code, and hand it to the account. Then the
pcluster step checks it with ParallelCluster's own code, and the diagram and cost steps
draw and price it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from pwbcluster import contracts, netpaths
from pwbcluster.config import Config
from pwbcluster.contracts import PROJECT
from pwbcluster.contracts.stage import StageContext, Upstream
from pwbcluster.estimate.resources import Item, bill_of_materials
from pwbcluster.pcluster import offline
from pwbcluster.pipeline.plan_context import PlanContext, PlanStep
from pwbcluster.pipeline.plan_estimate import cost_step, diagram_step
from pwbcluster.pipeline.plan_pcluster import pcluster_step
from pwbcluster.pipeline.registry import stage_specs
from pwbcluster.pipeline.runner import Runner, critical_path
from pwbcluster.pipeline.state import State
from pwbcluster.sandbox.fakes import OfflineMocks
from pwbcluster.sandbox.mockrun import run_with_mocks
from pwbcluster.sandbox.plan import PlanAccount
from pwbcluster.stages.image.stage import planned_outputs as planned_image_outputs
from pwbcluster.stages.network import stage as network_stage
from pwbcluster.stages.network.args import network_args
from pwbcluster.stages.network.program import network_program
from pwbcluster.stages.services import stage as services_stage
from pwbcluster.stages.services.args import services_args
from pwbcluster.stages.services.program import services_program
from pwbcluster.stages.stack_outputs import to_contract

log = logging.getLogger(__name__)


def planned_context(config: Config) -> PlanContext:
    """Planned upstream values, as the stages' own ``plan`` gives them (nothing rendered)."""
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
    VPC (its routing is unknown here)."""
    if config.model.aux.network.vpc_id:
        return None
    tags = config.tags()
    mocks = OfflineMocks(config.region)
    net_args = network_args(config.model, tags)
    net = run_with_mocks(lambda: network_program(net_args), mocks, PROJECT, "plan", preview=True)
    network = to_contract(contracts.NetworkOutputs, net.outputs)
    svc_args = services_args(config.model, tags, network)
    # Only the groups are read here: the program's warnings (no tool wheel in a plan) are
    # not the user's business.
    quiet = logging.getLogger("pwbcluster.stages.services")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        svc = run_with_mocks(
            lambda: services_program(svc_args), mocks, PROJECT, "plan", preview=True
        )
    finally:
        quiet.setLevel(level)
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
    registered = [*net.registered.values(), *svc.registered.values()]
    return netpaths.from_registrations(registered, rename)


def render_step(ctx: PlanContext) -> None:
    """The pipeline itself, in plan mode: every stage's ``plan`` against the plan account.

    The image and cluster stages render exactly what ``invoke up`` would use (the same
    code: fingerprint, build-image config, cluster config, Workbench files, node.env) and
    hand it to the account, which records it for the pcluster step.
    """
    config = ctx.config
    topology = planned_topology(config)
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


def make_plan(config: Config, steps: list[PlanStep] | None = None) -> PlanContext:
    ctx = planned_context(config)
    ctx.build_dir.mkdir(parents=True, exist_ok=True)
    for name, step in steps or STEPS:
        started = time.perf_counter()
        step(ctx)
        ctx.timings[name] = time.perf_counter() - started
    return ctx


def print_plan(ctx: PlanContext, console: Console) -> None:
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
    console.print("Files written:")
    for file in ctx.files:
        console.print(f"  {file.relative_to(ctx.config.root)}", highlight=False)
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in ctx.timings.items())
    console.print(f"Steps: {timing}", highlight=False)
