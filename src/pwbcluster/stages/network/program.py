"""The network stage's Pulumi program: VPC (created or existing) and the scripts bucket.

It only builds components from its Args and returns its outputs under the names of
``NetworkOutputs``; the account adapter runs it (Automation API, or mocks).
"""

from __future__ import annotations

from typing import Any

from pwbcluster.stages.network.args import NetworkArgs
from pwbcluster.stages.network.component import Network, ScriptsBucket, ScriptsBucketArgs


def network_program(args: NetworkArgs) -> dict[str, Any]:
    network = Network(args.deployment, args)
    bucket = ScriptsBucket(
        f"{args.deployment}-scripts",
        ScriptsBucketArgs(deployment=args.deployment, tags=dict(args.tags)),
    )
    return {
        "vpc_id": network.vpc_id,
        "vpc_cidr": network.vpc_cidr,
        "public_subnet_ids": network.public_subnet_ids,
        "private_subnet_ids": network.private_subnet_ids,
        "availability_zones": network.availability_zones,
        "bucket_name": bucket.bucket_name,
        "bucket_arn": bucket.bucket_arn,
        "image_build_policy_arn": bucket.image_build_policy_arn,
        "image_build_security_group_id": network.image_build_security_group_id,
        "nat_gateway_ids": network.nat_gateway_ids,
        "nat_public_ips": network.nat_public_ips,
    }
