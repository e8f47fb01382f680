"""The parent image: the official ParallelCluster AMI for the pinned version and OS.

Looked up the way pcluster itself does (``pcluster list-official-images`` and
``Ec2Client.get_official_image_id``): images owned by ``amazon`` named
``aws-parallelcluster-<version>-<os part>-<arch>*``, the newest one not deprecated.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from pwbcluster.config.model import ImageModel, coerce
from pwbcluster.errors import StageError

log = logging.getLogger(__name__)

OFFICIAL_OWNER = "amazon"
ARCHITECTURE = "x86_64"
# pcluster.constants.OS_TO_IMAGE_NAME_PART_MAP for the OSes the image schema allows.
OS_NAME_PART = {"ubuntu2204": "ubuntu-2204-lts-hvm", "ubuntu2404": "ubuntu-2404-lts-hvm"}


def official_name_prefix(os_name: str, pcluster_version: str, arch: str = ARCHITECTURE) -> str:
    return f"aws-parallelcluster-{pcluster_version}-{OS_NAME_PART[os_name]}-{arch}"


def parent_spec(image: ImageModel, pcluster_version: str) -> str:
    """What the fingerprint records for the parent: known without asking AWS."""
    if image.parent_ami:
        return image.parent_ami
    return "official:" + official_name_prefix(image.os, pcluster_version)


def _deprecated(image: dict[str, Any]) -> bool:
    when = image.get("DeprecationTime")
    if not when:
        return False
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return str(when) <= now


def find_official_parent(
    ec2: Any, os_name: str, pcluster_version: str, owners: tuple[str, ...] = (OFFICIAL_OWNER,)
) -> dict[str, Any]:
    """The official parent image (describe_images record); StageError when there is none."""
    prefix = official_name_prefix(os_name, pcluster_version)
    images = ec2.describe_images(
        Owners=list(owners),
        Filters=[
            {"Name": "name", "Values": [f"{prefix}*"]},
            {"Name": "state", "Values": ["available"]},
        ],
        IncludeDeprecated=True,
    )["Images"]
    if not images:
        raise StageError(
            f"no official ParallelCluster {pcluster_version} image named {prefix}* in this "
            "region: check the region supports this ParallelCluster version, or set "
            "image.parent_ami"
        )
    best = max(images, key=lambda i: (not _deprecated(i), str(i.get("CreationDate", ""))))
    log.info("parent image %s (%s)", best["ImageId"], best.get("Name"))
    return dict(best)


def resolve_parent(ec2: Any, image: ImageModel | Mapping[str, Any], pcluster_version: str) -> str:
    """The parent AMI id: the configured one, else the official one looked up."""
    image = coerce(ImageModel, image)
    if image.parent_ami:
        return image.parent_ami
    return str(find_official_parent(ec2, image.os, pcluster_version)["ImageId"])
