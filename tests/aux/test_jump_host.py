"""What ``invoke users.create`` needs from the jump host, checked under Pulumi mocks.

``pwb-users`` runs on the jump host (through SSM): the host must be allowed to write the
users' password batch, reach the domain controllers on the ports the tool uses, and have
the tool installed. Each assertion names the resource URN it fails on.
"""

from __future__ import annotations

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
