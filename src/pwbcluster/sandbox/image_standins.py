"""Sandbox stand-ins in moto's EC2: the parent image and the "built" image.

Both are labelled (``pwbcluster:simulated=true`` and a description saying so): they
carry no software. They exist so that every later stage gets a real moto AMI id.
"""

from __future__ import annotations

from typing import Any

from pwbcluster.errors import StageError
from pwbcluster.pcluster.amis import SIMULATED_TAG, deregister
from pwbcluster.pcluster.official import find_official_parent, official_name_prefix

ROOT_DEVICE = "/dev/sda1"
PARENT_SUFFIX = "-sandbox-standin"


def register_standin(
    ec2: Any, name: str, description: str, tags: dict[str, str], size_gb: int = 35
) -> str:
    snapshot = _snapshot(ec2, size_gb)
    ami = ec2.register_image(
        Name=name,
        Description=description,
        Architecture="x86_64",
        RootDeviceName=ROOT_DEVICE,
        VirtualizationType="hvm",
        BlockDeviceMappings=[
            {"DeviceName": ROOT_DEVICE, "Ebs": {"SnapshotId": snapshot, "VolumeSize": size_gb}}
        ],
    )["ImageId"]
    all_tags = {**tags, SIMULATED_TAG: "true"}
    ec2.create_tags(Resources=[ami], Tags=[{"Key": k, "Value": v} for k, v in all_tags.items()])
    return str(ami)


def _snapshot(ec2: Any, size_gb: int) -> str:
    zone = ec2.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]
    volume = ec2.create_volume(AvailabilityZone=zone, Size=size_gb)["VolumeId"]
    snapshot = ec2.create_snapshot(VolumeId=volume, Description="pwbcluster sandbox stand-in")
    ec2.delete_volume(VolumeId=volume)
    return str(snapshot["SnapshotId"])


def sandbox_parent(ec2: Any, os_name: str, pcluster_version: str) -> str:
    """The official parent as moto knows it, registering a labelled stand-in once."""
    try:
        return str(
            find_official_parent(ec2, os_name, pcluster_version, owners=("amazon", "self"))[
                "ImageId"
            ]
        )
    except StageError:  # moto has no ParallelCluster images: stand one in
        name = official_name_prefix(os_name, pcluster_version) + PARENT_SUFFIX
        return register_standin(
            ec2,
            name,
            "Sandbox stand-in for the official ParallelCluster image (simulated)",
            {"parallelcluster:version": pcluster_version},
        )


def remove_parent_standins(ec2: Any) -> list[str]:
    """Deregister the stand-in parents this module registered (sandbox teardown)."""
    images = ec2.describe_images(
        Owners=["self"], Filters=[{"Name": f"tag:{SIMULATED_TAG}", "Values": ["true"]}]
    )["Images"]
    removed = []
    for image in images:
        if str(image.get("Name", "")).endswith(PARENT_SUFFIX):
            deregister(ec2, image["ImageId"])
            removed.append(str(image["ImageId"]))
    return removed
