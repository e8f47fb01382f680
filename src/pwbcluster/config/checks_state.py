"""``pulumi_state_kms``: a shared Pulumi state has its secrets encrypted with a KMS key.

With an S3 backend several people (or CI) share the state; a passphrase kept in one
person's config directory then either travels by hand or is lost with that machine. A KMS
key gives the same protection with access decided by IAM and logged by CloudTrail
(Pulumi's ``awskms://`` secrets provider).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pwbcluster.config.checks import Finding, check
from pwbcluster.config.problems import Level


@check("pulumi_state_kms", Level.WARNING, "a state in S3 has its secrets encrypted with KMS")
def _state_kms(data: dict[str, Any]) -> Iterator[Finding]:
    deployment = data.get("deployment") or {}
    backend = deployment.get("pulumi_backend") or ""
    provider = deployment.get("pulumi_secrets_provider")
    if backend.startswith("s3://") and provider in (None, "passphrase"):
        yield (
            ("deployment", "pulumi_secrets_provider"),
            f"the state in {backend} is shared, but its secrets are encrypted with a "
            "passphrase kept on this machine only",
            "awskms://alias/NAME?region=REGION (a KMS key the team's roles may use)",
        )
