"""Typed arguments of the network stage's Pulumi components, from the deployment config.

Pure Python (no Pulumi import): the stage, the sandbox and the tests build them from the
``aux.network`` section, and the components take nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pwbcluster.config.model import Deployment, coerce


@dataclass(frozen=True)
class NetworkArgs:
    """The VPC (created or existing), the scripts bucket and the image-build policy."""

    deployment: str
    region: str
    tags: Mapping[str, str]
    cidr: str = "10.20.0.0/16"
    availability_zones: int = 2
    nat_gateway: bool = True
    # An existing VPC: when set, nothing network-wise is created, only looked up.
    vpc_id: str | None = None
    public_subnet_ids: tuple[str, ...] = ()
    private_subnet_ids: tuple[str, ...] = ()


def network_args(model: Deployment | Mapping[str, Any], tags: Mapping[str, str]) -> NetworkArgs:
    """NetworkArgs from the model (``config.model``): ``aux.network`` and the deployment."""
    model = coerce(Deployment, model)
    net = model.aux.network
    return NetworkArgs(
        deployment=model.deployment.name,
        region=model.deployment.region,
        tags=dict(tags),
        cidr=net.cidr,
        availability_zones=net.availability_zones,
        nat_gateway=net.nat_gateway,
        vpc_id=net.vpc_id or None,
        public_subnet_ids=net.public_subnet_ids,
        private_subnet_ids=net.private_subnet_ids,
    )
