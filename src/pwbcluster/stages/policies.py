"""IAM policy documents that name exact resources: a bucket prefix and secret ARNs.

No ``*`` resource for s3 or secretsmanager, ever: a node reads exactly its scripts prefix
and exactly the secrets it needs. Listing is allowed on the bucket only for that prefix.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pulumi


def scripts_read_statements(bucket_arn: str, prefix: str) -> list[dict[str, Any]]:
    prefix = prefix.strip("/") + "/"
    return [
        {
            "Sid": "ReadScriptsPrefix",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": [f"{bucket_arn}/{prefix}*"],
        },
        {
            "Sid": "ListScriptsPrefix",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [bucket_arn],
            "Condition": {"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}},
        },
    ]


def secrets_read_statement(secret_arns: Sequence[str]) -> dict[str, Any]:
    return {
        "Sid": "ReadOwnSecrets",
        "Effect": "Allow",
        "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
        "Resource": sorted(secret_arns),
    }


def secrets_write_statement(secret_arns: Sequence[str]) -> dict[str, Any]:
    # PutSecretValue only: the writer stores a new version of a secret that exists; it can
    # neither create, delete nor re-key secrets, nor change their policies.
    return {
        "Sid": "WriteOwnSecrets",
        "Effect": "Allow",
        "Action": ["secretsmanager:PutSecretValue"],
        "Resource": sorted(secret_arns),
    }


def node_policy_document(
    bucket_arn: pulumi.Input[str] | None,
    prefix: str | None,
    secret_arns: Sequence[pulumi.Input[str]] = (),
    extra_statements: Sequence[dict[str, Any]] = (),
    writable_secret_arns: Sequence[pulumi.Input[str]] = (),
) -> pulumi.Output[str]:
    """JSON policy: read ``prefix`` of the bucket (if given) and exactly ``secret_arns``.

    ``writable_secret_arns`` may also be written (a new value, nothing else).
    ``extra_statements`` are static statements appended as they are (read-only calls).
    """
    readable = list(secret_arns)

    def render(values: list[Any]) -> str:
        bucket = values[0]
        secrets = values[1 : 1 + len(readable)]
        writable = values[1 + len(readable) :]
        statements: list[dict[str, Any]] = []
        if bucket and prefix:
            statements.extend(scripts_read_statements(bucket, prefix))
        if secrets:
            statements.append(secrets_read_statement(secrets))
        if writable:
            statements.append(secrets_write_statement(writable))
        statements.extend(extra_statements)
        return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)

    return pulumi.Output.all(bucket_arn, *readable, *writable_secret_arns).apply(render)


def tls_only_bucket_policy(bucket_arn: pulumi.Input[str]) -> pulumi.Output[str]:
    """Deny every request to the bucket that does not use TLS 1.2 or newer."""

    def render(arn: str) -> str:
        resources = [arn, f"{arn}/*"]
        doc = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": resources,
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
                {
                    "Sid": "DenyOldTls",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": resources,
                    "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
                },
            ],
        }
        return json.dumps(doc, sort_keys=True)

    return pulumi.Output.from_input(bucket_arn).apply(render)


def assume_role_policy(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                }
            ],
        },
        sort_keys=True,
    )
