"""What ``invoke users.create`` needs from the jump host, checked under Pulumi mocks.

``pwb-users`` runs on the jump host (through SSM): the host must be allowed to write the
users' password batch, reach the domain controllers on the ports the tool uses, and have
the tool installed. Each assertion names the resource URN it fails on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import os
import re
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from pwbcluster.contracts import JUMP_TOOL_PREFIX
from pwbcluster.contracts.stage import StageContext, Upstream
from pwbcluster.sandbox.mockrun import Registered
from pwbcluster.stages.services import stage as services_stage
from pwbcluster.stages.services.args import ServicesArgs
from pwbcluster.stages.services.toolwheel import build_tool_wheel

from .conftest import Deployed, policy_of


def _jump_policy(d: Deployed) -> Registered:
    (policy,) = [
        p for p in d.of_type("iam/rolePolicy:RolePolicy") if p.name == "example-jump-secrets"
    ]
    return policy


def _allowed(policy: Registered, action: str) -> set[str]:
    """The resources ``policy`` allows ``action`` on (the union over its statements)."""
    found: set[str] = set()
    for statement in policy_of(policy)["Statement"]:
        actions = statement["Action"]
        actions = [actions] if isinstance(actions, str) else actions
        resources = statement["Resource"]
        resources = [resources] if isinstance(resources, str) else resources
        if statement["Effect"] == "Allow" and action in actions:
            found.update(resources)
    return found


@pytest.mark.parametrize("variant", ["default", "managed-ad"])
def test_jump_host_writes_exactly_the_users_password_secret(
    deployments: dict[str, Deployed], variant: str
) -> None:
    d = deployments[variant]
    policy = _jump_policy(d)
    users = d.services.users_password_secret_arn
    # store.py: get_secret_value (load the batch, a re-run completes it), put_secret_value.
    assert _allowed(policy, "secretsmanager:PutSecretValue") == {users}, (
        f"{policy.urn}: PutSecretValue on {_allowed(policy, 'secretsmanager:PutSecretValue')}"
    )
    assert users in _allowed(policy, "secretsmanager:GetSecretValue"), (
        f"{policy.urn}: cannot read {users} back"
    )
    # Only the users secret is writable: the directory's admin and bind passwords are not.
    for arn in (d.services.admin_password_secret_arn, d.services.bind_password_secret_arn):
        assert arn in _allowed(policy, "secretsmanager:GetSecretValue"), f"{policy.urn}: {arn}"
    write_actions = {
        a
        for s in policy_of(policy)["Statement"]
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        if a.startswith("secretsmanager:")
        and not a.startswith(("secretsmanager:Get", "secretsmanager:Describe"))
    }
    assert write_actions == {"secretsmanager:PutSecretValue"}, f"{policy.urn}: {write_actions}"


def _egress_allows(rules: list[dict[str, Any]], protocol: str, port: int, address: str) -> bool:
    ip = ipaddress.ip_address(address)
    for rule in rules:
        proto = str(rule.get("protocol"))
        if proto not in ("-1", "all", protocol):
            continue
        if proto not in ("-1", "all") and not rule["fromPort"] <= port <= rule["toPort"]:
            continue
        if any(ip in ipaddress.ip_network(c) for c in rule.get("cidrBlocks") or []):
            return True
    return False


# pwb-users and the jump host's boot script: Kerberos (kinit, SASL/GSSAPI tickets), LDAP
# (sealed binds, adds), kpasswd (passwords on SimpleAD), DNS (realm join's SRV lookups).
DIRECTORY_PORTS = [
    ("tcp", 88),
    ("udp", 88),
    ("tcp", 389),
    ("tcp", 464),
    ("udp", 464),
    ("tcp", 53),
    ("udp", 53),
]


@pytest.mark.parametrize("variant", ["default", "managed-ad", "no-ldaps", "existing-vpc"])
def test_jump_host_reaches_the_domain_controllers_and_aws_apis(
    deployments: dict[str, Deployed], variant: str
) -> None:
    d = deployments[variant]
    groups = {sg.name: sg for sg in d.of_type("ec2/securityGroup:SecurityGroup")}
    jump = groups["example-jump-sg"]
    (instance,) = d.of_type("ec2/instance:Instance")
    assert instance.inputs["vpcSecurityGroupIds"] == [jump.id], f"{instance.urn}: groups"
    egress = list(jump.inputs.get("egress") or [])
    dcs = d.services.directory_dns_addresses
    assert len(dcs) == 2, dcs
    for dc in dcs:
        for protocol, port in DIRECTORY_PORTS:
            assert _egress_allows(egress, protocol, port, dc), (
                f"{jump.urn}: no egress to the domain controller {dc} on {protocol}/{port}"
            )
    # SSM, S3 (the tool's wheel), Secrets Manager: HTTPS to regional endpoints.
    assert _egress_allows(egress, "tcp", 443, "52.94.0.1"), f"{jump.urn}: no HTTPS egress"
    # The domain controllers' side is Directory Service's own security group (see
    # directory.py): every rule the program adds belongs to a group the program owns.
    directory = d.one("directoryservice/directory:Directory")
    own = {g.id for g in groups.values()}
    for rule in d.of_type("SecurityGroupIngressRule") + d.of_type("SecurityGroupRule"):
        assert rule.inputs.get("securityGroupId") in own, (
            f"{rule.urn}: changes a security group the program does not own"
        )
    vpc = directory.inputs["vpcSettings"]
    assert vpc["vpcId"] == instance_vpc(d, instance), f"{directory.urn}: not in the jump host's VPC"


def instance_vpc(d: Deployed, instance: Registered) -> str:
    """The VPC of the jump host (its security group's VPC: the subnet is in it too)."""
    (sg,) = [
        g
        for g in d.of_type("ec2/securityGroup:SecurityGroup")
        if g.id in instance.inputs["vpcSecurityGroupIds"]
    ]
    return str(sg.inputs["vpcId"])


def _statement_resources(policy: Registered, action: str) -> list[dict[str, Any]]:
    return [
        s
        for s in policy_of(policy)["Statement"]
        if action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    ]


@pytest.mark.parametrize("variant", ["default", "managed-ad", "existing-vpc"])
def test_jump_host_installs_pwb_users_from_the_jump_prefix(
    deployments: dict[str, Deployed], variant: str, tool_wheel: Path
) -> None:
    d = deployments[variant]
    bucket, bucket_arn = d.network.bucket_name, d.network.bucket_arn
    obj = d.one("s3/bucketObjectv2:BucketObjectv2")
    key = f"{JUMP_TOOL_PREFIX}{tool_wheel.name}"
    assert (obj.inputs["bucket"], obj.inputs["key"]) == (bucket, key), f"{obj.urn}: {obj.inputs}"
    assert Path(obj.inputs["source"].path) == tool_wheel.resolve(), f"{obj.urn}: source"
    digest = hashlib.sha256(tool_wheel.read_bytes()).hexdigest()
    assert obj.inputs["sourceHash"] == digest, f"{obj.urn}: a new wheel would not be uploaded"
    (instance,) = d.of_type("ec2/instance:Instance")
    assert obj.urn in instance.dependencies, f"{instance.urn}: may boot before {obj.urn} exists"
    env = _user_data_env(instance.inputs["userData"])
    assert env.get("TOOL_WHEEL_URI") == f"s3://{bucket}/{key}", f"{instance.urn}: {env}"
    pins = env.get("TOOL_REQUIREMENTS", "").split()
    assert sorted(p.split("==")[0] for p in pins) == ["boto3", "ldap3"], f"{instance.urn}: {pins}"
    assert all(re.fullmatch(r"[a-z0-9]+==[0-9][0-9.]*", p) for p in pins), f"{instance.urn}: {pins}"
    # The role reads exactly that prefix: objects under jump/, listing only jump/.
    policy = _jump_policy(d)
    assert _allowed(policy, "s3:GetObject") == {f"{bucket_arn}/{JUMP_TOOL_PREFIX}*"}, policy.urn
    (listing,) = _statement_resources(policy, "s3:ListBucket")
    assert listing["Resource"] == [bucket_arn], f"{policy.urn}: {listing}"
    prefixes = listing["Condition"]["StringLike"]["s3:prefix"]
    assert all(p.startswith(JUMP_TOOL_PREFIX) for p in prefixes), f"{policy.urn}: {prefixes}"
    s3_actions = {
        a
        for s in policy_of(policy)["Statement"]
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        if a.startswith("s3:")
    }
    assert s3_actions == {"s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket"}, policy.urn


def _user_data_env(user_data: str) -> dict[str, str]:
    """The env file the user-data writes (KEY=quoted value lines), parsed back."""
    body = user_data.split("<<'PWBCLUSTER_ENV'\n", 1)[1].split("\nPWBCLUSTER_ENV\n", 1)[0]
    env: dict[str, str] = {}
    for line in body.splitlines():
        key, _, value = line.partition("=")
        (env[key],) = shlex.split(value) or [""]
    return env


def test_the_wheel_is_deterministic_and_pwb_users_starts_from_it(
    tool_wheel: Path, tmp_path: Path
) -> None:
    again = build_tool_wheel(tmp_path / "again")
    assert again.read_bytes() == tool_wheel.read_bytes(), "two builds of one tree differ"
    names = zipfile.ZipFile(tool_wheel).namelist()
    assert "pwbcluster/stages/users/cli.py" in names and "pwbcluster/errors.py" in names, names
    assert "pwbcluster/templates/services/jump-host-user-data.sh" in names, "package data missing"
    assert not [n for n in names if "__pycache__" in n or "/." in n], "stray files in the wheel"
    # What the jump host does: pip install --no-deps <wheel>, then run the console script.
    target = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
         "--disable-pip-version-check", "--target", str(target), str(tool_wheel)],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    env = {**os.environ, "PYTHONPATH": str(target)}
    started = subprocess.run(
        [str(target / "bin" / "pwb-users"), "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert started.returncode == 0, started.stderr
    assert "create" in started.stdout, started.stdout
    imported = subprocess.run(
        [sys.executable, "-c", "import pwbcluster.stages.users.cli as m; print(m.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert imported.stdout.strip().startswith(str(target)), imported.stdout + imported.stderr


def test_the_services_stage_builds_the_wheel_into_the_deployment_build_dir(
    default: Deployed, tmp_path: Path
) -> None:
    config = dataclasses.replace(default.config, root=tmp_path)
    ctx = StageContext(config, Upstream(network=default.network), account=None)  # type: ignore[arg-type]
    args = services_stage.stack_args(ctx)
    assert isinstance(args, ServicesArgs) and args.jump_host is not None
    wheel = Path(str(args.jump_host.tool_wheel))
    assert wheel.parent == Path(config.build_dir) / "jump", wheel
    assert wheel.is_file() and zipfile.is_zipfile(wheel), wheel
