"""The network stage: VPC, subnets, NAT gateway, scripts bucket, image-build policy.

A Pulumi stack of its own (`<deployment>-network`); see ``pwbcluster.stages.stack`` for the
real (Automation API) and sandbox (same program, mocks creating resources in moto)
adapters. Returns the typed contract ``NetworkOutputs``.
"""

from __future__ import annotations

from typing import Any

from pwbcluster.pipeline.registry import section_inputs
from pwbcluster.pipeline.runner import StageContext


def inputs(ctx: StageContext) -> Any:
    return section_inputs(ctx, "aux.network")


def run(ctx: StageContext) -> Any:
    from pwbcluster.stages.stack import run_part

    return run_part(ctx, "network")


def destroy(ctx: StageContext, outputs: Any) -> None:
    from pwbcluster.stages.stack import destroy_part

    destroy_part(ctx, "network", outputs)
