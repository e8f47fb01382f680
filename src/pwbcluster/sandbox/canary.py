"""The secret canary: no secret value may appear anywhere but Secrets Manager.

Every secret value in the (sandbox) account's Secrets Manager is searched for in the
build directory (rendered configs, CloudFormation, Workbench files, state, logs), in
every S3 object, in CloudFormation templates held by the account, in EC2 user-data and
launch templates, and in the CustomActions Args of the rendered cluster config. For a
JSON secret each string leaf is searched too, and every encoded form a tool might write:
base64 at each of its three alignments (a secret inside a longer encoded text starts at
any byte offset), in the standard and URL-safe alphabets, URL-encoding, hex in either
case; gzip members found in the searched data are decompressed and searched as well. A
finding names where, never the value.

A search with nothing to look for (no secret known) or nowhere to look is not a pass:
``AuditReport.vacuous`` says why, and ``invoke audit.secrets`` fails on it.
"""

from __future__ import annotations

import base64
import json
import logging
import urllib.parse
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MIN_LENGTH = 8  # shorter values (ports, "true") would match by coincidence
GZIP_MAGIC = b"\x1f\x8b\x08"
MAX_INFLATED = 64 * 1024 * 1024  # a gzip member is searched up to this many bytes
# Characters of a base64 text that depend on the bytes before a secret at offset 0, 1, 2.
_LEADING = {0: 0, 1: 2, 2: 3}


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
    def vacuous(self) -> str | None:
        """Why this search proves nothing, or None when it searched something for something."""
        if self.secrets == 0 or self.needles == 0:
            return (
                "no secret value found in Secrets Manager to search for: wrong account, "
                "region or sandbox, or the services stage has not run"
            )
        if self.places == 0:
            return "no place to search: no build directory, S3 object, template or user-data"
        return None

    @property
    def clean(self) -> bool:
        return not self.findings and self.vacuous is None


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
    yield from base64_forms(raw)
    quoted = urllib.parse.quote(value, safe="")
    if quoted != value:
        yield quoted.encode()
        yield urllib.parse.quote_plus(value, safe="").encode()
    yield raw.hex().encode()
    yield raw.hex().upper().encode()


def base64_forms(raw: bytes) -> Iterator[bytes]:
    """The part of base64 text that is the same wherever ``raw`` sits in the encoded data.

    At byte offset 0, 1 or 2 (mod 3) of the plain text, the leading characters also encode
    the bytes before the secret and the trailing partial group the bytes after it; what
    lies between depends on the secret alone. Each core is given in both alphabets.
    """
    for offset, leading in _LEADING.items():
        complete = (offset + len(raw)) // 3 * 4
        core = base64.b64encode(b"\0" * offset + raw)[leading:complete]
        if len(core) >= MIN_LENGTH:
            yield core
            yield core.translate(bytes.maketrans(b"+/", b"-_"))


def inflated(blob: bytes, depth: int = 2) -> Iterator[bytes]:
    """Every gzip member found anywhere in ``blob``, decompressed (nested ones too)."""
    start = blob.find(GZIP_MAGIC)
    while start != -1:
        inflater = zlib.decompressobj(wbits=31)
        try:
            data = inflater.decompress(blob[start:], MAX_INFLATED)
        except zlib.error:
            data = b""
        if data:
            yield data
            if depth > 1:
                yield from inflated(data, depth - 1)
        start = blob.find(GZIP_MAGIC, start + 1)


def search(blob: bytes, needles: dict[bytes, str]) -> set[str]:
    found: set[str] = set()
    for data in (blob, *inflated(blob)):
        found.update(name for needle, name in needles.items() if needle in data)
    return found


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
