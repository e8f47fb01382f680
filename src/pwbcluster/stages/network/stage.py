"""The network stage: VPC, subnets, NAT gateway, scripts bucket, image-build policy.

A Pulumi stack of its own (``<deployment>-network``) whose program is
``stages.network.program``; the account runs it (the Automation API for AWS, mocks that
create in moto for the sandbox). Returns the typed contract ``NetworkOutputs``.
"""

from __future__ import annotations

from typing import Any

from pwbcluster.contracts import PROJECT, NetworkOutputs, planned_network, stack_name
from pwbcluster.contracts.account import StackRequest
from pwbcluster.contracts.stage import StageContext, StageSpec, section_inputs
from pwbcluster.stages.network.args import network_args
from pwbcluster.stages.network.program import network_program
from pwbcluster.stages.stack_outputs import to_contract

PART = "network"


def inputs(ctx: StageContext) -> Any:
    return section_inputs(ctx, "aux.network")


def request(ctx: StageContext) -> StackRequest:
    config = ctx.config

    def program() -> dict[str, Any]:
        return network_program(network_args(config.data, config.tags()))

    return StackRequest(PART, PROJECT, stack_name(config.name, PART), program)


def run(ctx: StageContext) -> NetworkOutputs:
    values = ctx.account.stack_up(request(ctx))
    return to_contract(NetworkOutputs, values, simulated=ctx.account.simulated)


def destroy(ctx: StageContext, outputs: NetworkOutputs | None) -> None:
    ctx.account.stack_destroy(request(ctx))


def plan(ctx: StageContext) -> NetworkOutputs:
    return planned_network(ctx.config.region, ctx.config.name)


SPEC = StageSpec(
    name=PART,
    needs=(),
    run=run,
    inputs=inputs,
    destroy=destroy,
    plan=plan,
    minutes=4.0,
    description="VPC, subnets, NAT gateway, scripts bucket, image-build policy",
)
