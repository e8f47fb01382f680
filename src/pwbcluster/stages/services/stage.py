"""The services stage: directory + TLS front, databases, secrets, IAM, key pair, jump host.

A Pulumi stack of its own (``<deployment>-services``) whose program is
``stages.services.program``; the account runs it. After the stack exists the stage waits
until the jump host's first boot has created the directory's read-only bind user (the
cluster binds with it), where the account has a jump host that boots. Returns the typed
contract ``ServicesOutputs``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

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
    )


def stack_args(ctx: StageContext) -> ServicesArgs:
    config = ctx.config
    network = ctx.upstream.require("network")
    # The jump host installs pwb-users from this wheel (uploaded by the program).
    wheel = build_tool_wheel(Path(config.build_dir) / "jump")
    return services_args(config.data, config.tags(), network, tool_wheel=str(wheel))


def request(ctx: StageContext) -> StackRequest:
    config = ctx.config

    def program() -> dict[str, Any]:
        return services_program(stack_args(ctx))

    return StackRequest(
        PART, PROJECT, stack_name(config.name, PART), program, secret_outputs=SECRET_OUTPUTS
    )


def run(ctx: StageContext) -> ServicesOutputs:
    values = ctx.account.stack_up(request(ctx))
    outputs = to_contract(ServicesOutputs, values, simulated=ctx.account.simulated)
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
    return planned_services(ctx.config.region, ctx.config.name, directory.domain, directory.ldaps)


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
