"""Checks of what AWS and ParallelCluster will accept, known before any AWS call.

- ``region_known``: the region is one AWS has (botocore's own endpoint data, offline), with
  a "did you mean"; ParallelCluster's own ``RegionValidator`` then runs in ``invoke plan``.
- ``gpu_driver_supported``: ParallelCluster 3.16 refuses GPU instance types that the
  open-source NVIDIA driver of its AMIs cannot drive (``InstanceTypeBaseAMICompatible
  Validator`` in ``pcluster/validators/ec2_validators.py``, with the families of
  ``NVIDIA_OPENRM_UNSUPPORTED_INSTANCE_TYPES`` in ``pcluster/constants.py``: Turing or
  newer only), on any AMI whose description says "AWS ParallelCluster AMI", which is what
  ``pcluster build-image`` writes on the custom image.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from functools import cache
from typing import Any

from pwbcluster.config.checks import Finding, check, family
from pwbcluster.config.inputs import InvalidInput
from pwbcluster.config.problems import Level

# pcluster 3.16.1 constants.NVIDIA_OPENRM_UNSUPPORTED_INSTANCE_TYPES (Kepler, Maxwell,
# Volta): no OpenRM driver for them.
OPENRM_UNSUPPORTED_FAMILIES = ("p2", "p3", "p3dn", "g2", "g3", "g3s")
PARTITIONS = ("aws", "aws-us-gov", "aws-cn")


@cache
def known_regions() -> tuple[str, ...]:
    import boto3

    session = boto3.session.Session()
    found: set[str] = set()
    for partition in PARTITIONS:
        found.update(session.get_available_regions("ec2", partition_name=partition))
    return tuple(sorted(found))


@check("region_known", Level.ERROR, "the region is one AWS has")
def _region(data: dict[str, Any]) -> Iterator[Finding]:
    region = str(data["deployment"]["region"])
    regions = known_regions()
    if region not in regions:
        close = difflib.get_close_matches(region, regions, n=3, cutoff=0.6)
        # A swap of two letters (us-esat-1) keeps the letters: prefer that candidate.
        close.sort(key=lambda c: sorted(c) != sorted(region))
        expected = f"'{close[0]}'" if close else "one of " + ", ".join(regions)
        yield (("deployment", "region"), f"'{region}' is not an AWS region", expected)


@check(
    "gpu_driver_supported",
    Level.ERROR,
    "GPU queues use a type ParallelCluster's NVIDIA driver supports (Turing or newer)",
)
def _gpu_driver(data: dict[str, Any]) -> Iterator[Finding]:
    for i, queue in enumerate(data["cluster"]["queues"]):
        try:
            kind = str(queue["instance_type"])
        except InvalidInput:
            continue
        if family(kind) in OPENRM_UNSUPPORTED_FAMILIES:
            yield (
                ("cluster", "queues", i, "instance_type"),
                f"{kind}: ParallelCluster 3.16 refuses it on its AMIs (the open-source NVIDIA "
                "driver needs a Turing or newer GPU)",
                "a Turing or newer type such as g4dn.xlarge (T4), g5.xlarge (A10G) or "
                "g6.xlarge (L4)",
            )
