"""The services stage: directory + TLS front, databases, secrets, IAM, key pair, jump host.

A Pulumi stack of its own (`<deployment>-services`); see ``pwbcluster.stages.stack`` for the
real (Automation API) and sandbox (same program, mocks creating resources in moto)
adapters. Returns the typed contract ``ServicesOutputs``.
"""

from __future__ import annotations

from typing import Any

from pwbcluster.pipeline.registry import section_inputs
from pwbcluster.pipeline.runner import StageContext


def inputs(ctx: StageContext) -> Any:
    return section_inputs(
        ctx,
        "aux.directory",
        "aux.databases",
        "aux.jump_host",
        "cluster.workbench.license_secret_arn",
    )


def run(ctx: StageContext) -> Any:
    from pwbcluster.stages.stack import run_part

    return run_part(ctx, "services")


def destroy(ctx: StageContext, outputs: Any) -> None:
    from pwbcluster.stages.stack import destroy_part

    destroy_part(ctx, "services", outputs)
