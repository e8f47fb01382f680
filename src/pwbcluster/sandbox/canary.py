"""The secret canary: no secret value may appear anywhere but Secrets Manager.

Every secret value in the (sandbox) account's Secrets Manager is searched for in the
build directory (rendered configs, CloudFormation, Workbench files, state, logs), in
every S3 object, in CloudFormation templates held by the account, in EC2 user-data and
launch templates, and in the CustomActions Args of the rendered cluster config. For a
JSON secret each string leaf is searched too; base64 forms are searched as well, since
user-data and some tools encode. A finding names where, never the value.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MIN_LENGTH = 8  # shorter values (ports, "true") would match by coincidence


@dataclass(frozen=True)
class Finding:
    secret_name: str
    where: str


@dataclass
class AuditReport:
    secrets: int
    needles: int
    places: int
    findings: list[Finding]

    @property
    def clean(self) -> bool:
        return not self.findings


def secret_needles(secretsmanager: Any) -> tuple[int, dict[bytes, str]]:
    """(number of secrets, {needle bytes: secret name}) for every secret value."""
    needles: dict[bytes, str] = {}
    count = 0
    for page in secretsmanager.get_paginator("list_secrets").paginate():
        for entry in page.get("SecretList", []):
            try:
                value = secretsmanager.get_secret_value(SecretId=entry["ARN"])
            except secretsmanager.exceptions.ResourceNotFoundException:
                continue  # no value stored yet
            count += 1
            text = value.get("SecretString")
            if text is None and "SecretBinary" in value:
                text = bytes(value["SecretBinary"]).decode("utf-8", "replace")
            for candidate in _candidates(text or ""):
                for form in _forms(candidate):
                    needles[form] = entry["Name"]
    return count, needles


def _candidates(text: str) -> Iterator[str]:
    yield text
    try:
        parsed = json.loads(text)
    except ValueError:
        return
    stack = [parsed]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str):
            yield node


def _forms(value: str) -> Iterator[bytes]:
    if len(value) < MIN_LENGTH:
        return
    raw = value.encode()
    yield raw
    # A PEM body is stored with line breaks; search its lines too.
    if "-----BEGIN" in value:
        for line in value.splitlines():
            if len(line) >= 40 and not line.startswith("-----"):
                yield line.encode()
    yield base64.b64encode(raw)


def search(blob: bytes, needles: dict[bytes, str]) -> set[str]:
    return {name for needle, name in needles.items() if needle in blob}


def _files(root: Path) -> Iterator[tuple[str, bytes]]:
    if not root.exists():
        return
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name != "sandbox.json":
            try:
                yield str(path), path.read_bytes()
            except OSError:
                continue


def _s3_objects(s3: Any) -> Iterator[tuple[str, bytes]]:
    for bucket in s3.list_buckets().get("Buckets", []):
        name = bucket["Name"]
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
            for version in page.get("Versions", []):
                body = s3.get_object(
                    Bucket=name, Key=version["Key"], VersionId=version["VersionId"]
                )["Body"].read()
                yield f"s3://{name}/{version['Key']} ({version['VersionId']})", body


def _cloudformation(cfn: Any) -> Iterator[tuple[str, bytes]]:
    for page in cfn.get_paginator("list_stacks").paginate():
        for stack in page.get("StackSummaries", []):
            if stack.get("StackStatus") == "DELETE_COMPLETE":
                continue
            body = cfn.get_template(StackName=stack["StackId"]).get("TemplateBody", "")
            text = body if isinstance(body, str) else json.dumps(body)
            yield f"cloudformation stack {stack['StackName']}", text.encode()


def _user_data(ec2: Any) -> Iterator[tuple[str, bytes]]:
    for page in ec2.get_paginator("describe_instances").paginate():
        for reservation in page.get("Reservations", []):
            for instance in reservation.get("Instances", []):
                attr = ec2.describe_instance_attribute(
                    InstanceId=instance["InstanceId"], Attribute="userData"
                )
                encoded = (attr.get("UserData") or {}).get("Value")
                if encoded:
                    yield (
                        f"user-data of {instance['InstanceId']}",
                        base64.b64decode(encoded) + b"\n" + encoded.encode(),
                    )
    for page in ec2.get_paginator("describe_launch_templates").paginate():
        for template in page.get("LaunchTemplates", []):
            versions = ec2.describe_launch_template_versions(
                LaunchTemplateId=template["LaunchTemplateId"]
            )
            for version in versions.get("LaunchTemplateVersions", []):
                encoded = version.get("LaunchTemplateData", {}).get("UserData")
                if encoded:
                    yield (
                        f"launch template {template['LaunchTemplateName']}",
                        base64.b64decode(encoded) + b"\n" + encoded.encode(),
                    )


def _custom_action_args(build_dir: Path) -> Iterator[tuple[str, bytes]]:
    from ruamel.yaml import YAML

    path = build_dir / "cluster-config.yaml"
    if not path.exists():
        return
    config = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    stack: list[Any] = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "Args" and isinstance(value, list):
                    yield "CustomActions Args", json.dumps(value).encode()
                stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)


def audit(
    session: Any, build_dir: Path, extra_places: Iterable[tuple[str, bytes]] = ()
) -> AuditReport:
    """Search every place a secret must never be; ``session`` is a boto3 Session."""
    count, needles = secret_needles(session.client("secretsmanager"))
    places = 0
    findings: list[Finding] = []
    sources: list[Iterable[tuple[str, bytes]]] = [
        _files(build_dir),
        _custom_action_args(build_dir),
        _s3_objects(session.client("s3")),
        _cloudformation(session.client("cloudformation")),
        _user_data(session.client("ec2")),
        extra_places,
    ]
    for source in sources:
        for where, blob in source:
            places += 1
            for name in sorted(search(blob, needles)):
                findings.append(Finding(name, where))
    return AuditReport(secrets=count, needles=len(needles), places=places, findings=findings)
