"""What ``invoke users.create`` needs from the jump host, checked under Pulumi mocks.

``pwb-users`` runs on the jump host (through SSM): the host must be allowed to write the
users' password batch, reach the domain controllers on the ports the tool uses, and have
the tool installed. Each assertion names the resource URN it fails on.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from pwbcluster.aux.mockrun import Registered

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
