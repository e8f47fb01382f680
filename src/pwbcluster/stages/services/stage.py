"""The services stage: directory + TLS front, databases, secrets, IAM, key pair, jump host.

A Pulumi stack of its own (``<deployment>-services``) whose program is
``stages.services.program``; the account runs it. After the stack exists the stage waits
until the jump host's first boot has created the directory's read-only bind user (the
cluster binds with it), where the account has a jump host that boots. Returns the typed
contract ``ServicesOutputs``.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import Any

from pwbcluster import netpaths
from pwbcluster.contracts import PROJECT, ServicesOutputs, planned_services, stack_name
from pwbcluster.contracts.account import JUMP_HOST_BOOT, StackRequest
from pwbcluster.contracts.stage import StageContext, StageSpec, section_inputs
from pwbcluster.stages.services.args import ServicesArgs, services_args
from pwbcluster.stages.services.program import SECRET_OUTPUTS, services_program
from pwbcluster.stages.services.readiness import wait_for_jump_host
from pwbcluster.stages.services.toolwheel import build_tool_wheel
from pwbcluster.stages.stack_outputs import to_contract

log = logging.getLogger(__name__)

PART = "services"


def inputs(ctx: StageContext) -> Any:
    return section_inputs(
        ctx,
        "aux.directory",
        "aux.databases",
        "aux.jump_host",
        "cluster.workbench.license_secret_arn",
        "cluster.workbench.port",
        "cluster.workbench.tls_certificate_arn",
        "cluster.workbench.tls",
        "cluster.workbench.hostname",
        "cluster.ha.controllers",
    )


def stack_args(ctx: StageContext) -> ServicesArgs:
    config = ctx.config
    network = ctx.upstream.require("network")
    # The jump host installs pwb-users from this wheel (uploaded by the program).
    wheel = build_tool_wheel(Path(config.build_dir) / "jump")
    return services_args(config.data, config.tags(), network, tool_wheel=str(wheel))


def request(ctx: StageContext, replace_types: tuple[str, ...] = ()) -> StackRequest:
    config = ctx.config

    def program() -> dict[str, Any]:
        return services_program(stack_args(ctx))

    return StackRequest(
        PART,
        PROJECT,
        stack_name(config.name, PART),
        program,
        secret_outputs=SECRET_OUTPUTS,
        replace_types=replace_types,
    )


# The jump host is reached through SSM Session Manager only: its agent calls these
# (docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-prerequisites.html);
# its first boot installs packages (apt, PyPI) besides the aws calls of its user data.
SSM_AGENT = "the SSM agent (Session Manager)"
SSM_NEEDS = ("ec2messages", "ssm", "ssmmessages")
USER_DATA = "jump-host-user-data.sh"


def jump_host_paths(ctx: StageContext, outputs: ServicesOutputs) -> None:
    """The jump host reaches what it calls, or the stage stops before waiting on its boot."""
    network = ctx.upstream.require("network")
    if not outputs.jump_host_instance_id:
        return
    topology = ctx.account.network_topology(network.vpc_id)
    if topology is None:
        ctx.account.notes.add(
            "reachability of the jump host: not proven here (the VPC's routing is unknown)"
        )
        return
    root = Path(str(resources.files("pwbcluster") / "templates" / "services"))
    why = netpaths.script_calls(root, USER_DATA, prefix="templates/services")
    why.update({name: SSM_AGENT for name in SSM_NEEDS if name not in why})
    why["internet"] = f"templates/services/{USER_DATA} (apt, PyPI)"
    groups = (outputs.jump_host_security_group_id,) if outputs.jump_host_security_group_id else ()
    place = netpaths.Placement(
        "jump host", network.private_subnet_ids[0], None, frozenset(why), why, groups
    )
    hops = netpaths.prove(topology, [place])
    for line in netpaths.checked(hops, "the jump host cannot reach what it calls"):
        ctx.account.notes.add(line)


def run(ctx: StageContext, replace_types: tuple[str, ...] = ()) -> ServicesOutputs:
    values = ctx.account.stack_up(request(ctx, replace_types))
    outputs = to_contract(ServicesOutputs, values, simulated=ctx.account.simulated)
    jump_host_paths(ctx, outputs)
    reason = ctx.account.cannot(JUMP_HOST_BOOT)
    if reason:
        log.info("services: not waiting for the jump host's first boot: %s", reason)
    elif outputs.jump_host_instance_id:
        ctx.say("services: waiting for the jump host to create the directory's bind user")
        wait_for_jump_host(ctx.account.client("ssm"), outputs.jump_host_instance_id)
    return outputs


def destroy(ctx: StageContext, outputs: ServicesOutputs | None) -> None:
    ctx.account.stack_destroy(request(ctx))


def plan(ctx: StageContext) -> ServicesOutputs:
    directory = ctx.config.model.aux.directory
    wb = ctx.config.model.cluster.workbench
    outputs = planned_services(
        ctx.config.region,
        ctx.config.name,
        directory.domain,
        directory.ldaps,
        workbench_tls=wb.tls and not wb.tls_certificate_arn,
    )
    jump_host_paths(ctx, outputs)
    return outputs


SPEC = StageSpec(
    name=PART,
    needs=("network",),
    run=run,
    inputs=inputs,
    destroy=destroy,
    plan=plan,
    minutes=25.0,
    description="directory + TLS front, PostgreSQL, secrets, node IAM policies, key pair, jump host",
)
