"""Render the ``pcluster build-image`` configuration for the custom AMI.

The one build component is the generated wrapper ``entry.sh`` under the scripts prefix
(see ``pwbcluster.stages.image.bundle``), which runs ``image/install-image.sh`` with its env file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pwbcluster.config.model import Deployment, ImageModel, coerce
from pwbcluster.contracts import NetworkOutputs
from pwbcluster.pcluster.amis import FINGERPRINT_TAG
from pwbcluster.stages.image.bundle import ENTRY_SCRIPT, ENTRY_WRAPPER

__all__ = ["ENTRY_SCRIPT", "ENTRY_WRAPPER", "image_id", "render_image_config"]


def image_id(image: ImageModel | Mapping[str, Any], fingerprint: str) -> str:
    """The pcluster image id (and AMI name): the configured name plus the fingerprint."""
    return f"{coerce(ImageModel, image).name}-{fingerprint[:12]}"


def render_image_config(
    model: Deployment,
    network: NetworkOutputs,
    scripts_prefix: str,
    fingerprint: str,
    parent_image: str,
    tags: dict[str, str],
) -> dict[str, Any]:
    image = model.image
    base = f"s3://{network.bucket_name}/{scripts_prefix.rstrip('/')}"
    all_tags = dict(tags)
    all_tags[FINGERPRINT_TAG] = fingerprint
    build: dict[str, Any] = {
        "InstanceType": image.build_instance_type,
        "ParentImage": parent_image,
        "SubnetId": network.public_subnet_ids[0],
    }
    if network.image_build_security_group_id:
        # pcluster requires SecurityGroupIds whenever SubnetId is set
        build["SecurityGroupIds"] = [network.image_build_security_group_id]
    return {
        "Region": model.deployment.region,
        "Image": {
            "Name": image_id(image, fingerprint),
            "RootVolume": {"Size": image.root_volume_gb, "Encrypted": True},
            "Tags": [{"Key": k, "Value": v} for k, v in sorted(all_tags.items())],
        },
        "Build": {
            **build,
            "Iam": {"AdditionalIamPolicies": [{"Policy": network.image_build_policy_arn}]},
            "Components": [
                {"Type": "script", "Value": f"{base}/{ENTRY_WRAPPER}"},
            ],
            "UpdateOsPackages": {"Enabled": True},
            "Imds": {"ImdsSupport": "v2.0"},
        },
        "DevSettings": {"TerminateInstanceOnFailure": True},
    }
