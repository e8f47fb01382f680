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
    """An AMI in moto that carries what a real one would: x86_64, a root volume of the
    build's size, the description, the tags. It is imaged from an instance of one of moto's
    Linux AMIs (moto keeps no architecture on a registered image, and ParallelCluster's
    instance-type/AMI validator reads it)."""
    base = _linux_x86_image(ec2)
    instance = ec2.run_instances(
        ImageId=base["ImageId"],
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        BlockDeviceMappings=[
            {
                "DeviceName": base.get("RootDeviceName") or ROOT_DEVICE,
                "Ebs": {"VolumeSize": size_gb},
            }
        ],
    )["Instances"][0]["InstanceId"]
    try:
        ami = ec2.create_image(InstanceId=instance, Name=name, Description=description)["ImageId"]
    finally:
        ec2.terminate_instances(InstanceIds=[instance])
    all_tags = {**tags, SIMULATED_TAG: "true"}
    ec2.create_tags(Resources=[ami], Tags=[{"Key": k, "Value": v} for k, v in all_tags.items()])
    return str(ami)


def _linux_x86_image(ec2: Any) -> dict[str, Any]:
    images = ec2.describe_images(
        Owners=["amazon"], Filters=[{"Name": "architecture", "Values": ["x86_64"]}]
    )["Images"]
    linux = [i for i in images if "windows" not in str(i.get("Name", "")).lower()]
    if not linux:
        raise StageError("the sandbox's moto has no x86_64 Linux AMI to image a stand-in from")
    return dict(sorted(linux, key=lambda i: str(i["ImageId"]))[0])


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
            # What the official images' descriptions start with: pcluster's validators
            # read it (the NVIDIA OpenRM rule).
            f"AWS ParallelCluster AMI for {os_name} (sandbox stand-in, simulated)",
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
