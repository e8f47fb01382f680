"""Our AMIs in EC2: found, listed and removed by the fingerprint tag they carry."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

FINGERPRINT_TAG = "pwbcluster:image-fingerprint"
PARENT_TAG = "pwbcluster:parent-image"
SIMULATED_TAG = "pwbcluster:simulated"
# How EC2 answers for an AMI id that no longer exists.
GONE_CODES = ("InvalidAMIID.NotFound", "InvalidAMIID.Unavailable")
# Set on every resource by Config.tags().
DEPLOYMENT_TAG = "Deployment"


def tags_of(image: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in image.get("Tags", [])}


def find_by_fingerprint(
    ec2: Any, fingerprint: str, deployment: str | None = None
) -> dict[str, Any] | None:
    """The newest available image of ours carrying this fingerprint, if any.

    With ``deployment``, only images tagged for that deployment count: a deployment's
    ``down`` deletes its image, which must not pull an AMI from under another one.
    """
    filters = [
        {"Name": f"tag:{FINGERPRINT_TAG}", "Values": [fingerprint]},
        {"Name": "state", "Values": ["available"]},
    ]
    if deployment:
        filters.append({"Name": f"tag:{DEPLOYMENT_TAG}", "Values": [deployment]})
    images = ec2.describe_images(Owners=["self"], Filters=filters)["Images"]
    if not images:
        return None
    newest: dict[str, Any] = max(images, key=lambda i: str(i.get("CreationDate", "")))
    return dict(newest)


def list_images(ec2: Any) -> list[dict[str, Any]]:
    """Every image of ours that carries a fingerprint tag, newest first."""
    images = ec2.describe_images(
        Owners=["self"], Filters=[{"Name": "tag-key", "Values": [FINGERPRINT_TAG]}]
    )["Images"]
    return sorted(images, key=lambda i: str(i.get("CreationDate", "")), reverse=True)


def deregister(ec2: Any, ami_id: str) -> list[str]:
    """Deregister the AMI and delete its EBS snapshots; returns the snapshot ids deleted."""
    try:
        found = ec2.describe_images(ImageIds=[ami_id])["Images"]
    except ec2.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in GONE_CODES:
            raise
        found = []
    if not found:
        log.info("image %s is already gone", ami_id)
        return []
    snapshots = [
        m["Ebs"]["SnapshotId"]
        for m in found[0].get("BlockDeviceMappings", [])
        if m.get("Ebs", {}).get("SnapshotId")
    ]
    ec2.deregister_image(ImageId=ami_id)
    for snapshot in snapshots:
        ec2.delete_snapshot(SnapshotId=snapshot)
    log.info("deregistered %s and deleted %d snapshot(s)", ami_id, len(snapshots))
    return snapshots
