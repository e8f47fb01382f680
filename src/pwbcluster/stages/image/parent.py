"""The parent image of the custom AMI, as the fingerprint records it.

An explicit ``image.parent_ami``, or the official ParallelCluster AMI for the pinned version
and OS (``pwbcluster.pcluster.official``), which the account looks up when it builds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pwbcluster.config.model import ImageModel, coerce
from pwbcluster.pcluster.official import official_name_prefix


def parent_spec(image: ImageModel | Mapping[str, Any], pcluster_version: str) -> str:
    """What the fingerprint records for the parent: known without asking AWS."""
    image = coerce(ImageModel, image)
    if image.parent_ami:
        return image.parent_ami
    return "official:" + official_name_prefix(image.os, pcluster_version)
