"""Find what the image stage may have left for a deployment when it has no outputs.

The runner destroys failed stages too, and a stage that failed part-way recorded no
outputs: no AMI id, no prefix. Everything the stage creates is findable without them:

- AMIs (built, or sandbox stand-ins) carry the deployment's ``Deployment`` tag and the
  fingerprint tag (``Config.tags()`` plus ``amis.FINGERPRINT_TAG``);
- a pcluster build that has no AMI yet has the id ``image_id(image, fingerprint)``;
- uploads live under content-addressed ``image/<16 hex>/`` prefixes of the scripts
  bucket, whose name the network stage recorded in ``build/<deployment>/state.json``
  (or, failing that, the bucket that carries the deployment's ``Deployment`` tag).

Every function here is safe to call again after a partial clean-up.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from pwbcluster.pcluster.amis import DEPLOYMENT_TAG, FINGERPRINT_TAG
from pwbcluster.stages.image.bundle import delete_prefix

log = logging.getLogger(__name__)

PREFIX_RE = re.compile(r"^image/[0-9a-f]{16}/$")
MISSING_BUCKET_CODES = ("NoSuchBucket", "404", "NotFound")


def deployment_images(ec2: Any, deployment: str) -> list[dict[str, Any]]:
    """Our images tagged for this deployment that carry a fingerprint (any state)."""
    images = ec2.describe_images(
        Owners=["self"],
        Filters=[
            {"Name": f"tag:{DEPLOYMENT_TAG}", "Values": [deployment]},
            {"Name": "tag-key", "Values": [FINGERPRINT_TAG]},
        ],
    )["Images"]
    return [dict(i) for i in images if i.get("State") != "deregistered"]


def tagged_buckets(s3: Any, deployment: str) -> list[str]:
    """Buckets that carry this deployment's ``Deployment`` tag."""
    found = []
    for bucket in s3.list_buckets().get("Buckets", []):
        name = bucket["Name"]
        try:
            tags = s3.get_bucket_tagging(Bucket=name).get("TagSet", [])
        except s3.exceptions.ClientError:  # untagged, gone, or not ours to read
            continue
        if any(t["Key"] == DEPLOYMENT_TAG and t["Value"] == deployment for t in tags):
            found.append(name)
    return found


def image_prefixes(s3: Any, bucket: str) -> list[str]:
    """The content-addressed ``image/<16 hex>/`` prefixes present in the bucket."""
    prefixes: list[str] = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix="image/", Delimiter="/"):
        for entry in page.get("CommonPrefixes", []):
            if PREFIX_RE.match(entry["Prefix"]):
                prefixes.append(entry["Prefix"])
    return prefixes


def remove_uploads(s3: Any, bucket: str) -> int:
    """Delete every image upload in the bucket; 0 when the bucket is already gone."""
    deleted = 0
    try:
        for prefix in image_prefixes(s3, bucket):
            deleted += delete_prefix(s3, bucket, prefix)
    except s3.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in MISSING_BUCKET_CODES:
            log.info("bucket %s is already gone", bucket)
            return 0
        raise
    log.info("removed %d uploaded object(s) under image/ in %s", deleted, bucket)
    return deleted
