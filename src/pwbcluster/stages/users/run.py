"""Entry points for the orchestrator's ``users`` stage.

- ``run_users``: the real path. ``pwb-users create`` runs on the jump host through SSM;
  returns ``UsersOutputs`` with the counts it reported.
- ``run_users_direct``: the same engine in this process, for a directory this machine
  can reach (the sandbox with a test DC, or an operator on the VPN).
- ``skipped_users``: what the sandbox records when no directory is reachable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pwbcluster.config.model import UsersModel, coerce
from pwbcluster.contracts import ServicesOutputs, UsersOutputs
from pwbcluster.stages.users import engine
from pwbcluster.stages.users import remote as ssm
from pwbcluster.stages.users.directory import Target
from pwbcluster.stages.users.spec import UserBatch
from pwbcluster.stages.users.store import PasswordStore


def batch_for(users_cfg: UsersModel | Mapping[str, Any], count: int | None = None) -> UserBatch:
    return UserBatch.from_config(users_cfg, count=count)


def outputs_from_report(doc: Mapping[str, Any], password_secret_arn: str) -> UsersOutputs:
    return UsersOutputs(
        requested=int(doc.get("requested", 0)),
        created=int(doc.get("created", 0)) + int(doc.get("completed", 0)),
        existing=int(doc.get("existing", 0)) + int(doc.get("foreign", 0)),
        verified=int(doc.get("verified", 0)),
        failed=int(doc.get("failed", 0)) + int(doc.get("verify_failed", 0)),
        password_secret_arn=password_secret_arn,
        extra={
            "seconds": doc.get("seconds", 0.0),
            "foreign": int(doc.get("foreign", 0)),
            "failures": list(doc.get("failures", []))[:20],
        },
    )


def run_users(
    services: ServicesOutputs,
    users_cfg: UsersModel | Mapping[str, Any],
    region: str,
    *,
    ssm_client: Any = None,
    timeout: int = 3600,
    count: int | None = None,
) -> UsersOutputs:
    """Create and verify the users from the jump host (SSM Run Command)."""
    batch = batch_for(users_cfg, count)
    if batch.count == 0:
        return UsersOutputs(
            0, 0, 0, 0, 0, services.users_password_secret_arn, skipped_reason="aux.users.count is 0"
        )
    doc = ssm.run_remote("create", services, batch, region, ssm=ssm_client, timeout=timeout)
    return outputs_from_report(doc, services.users_password_secret_arn)


def target_for(services: ServicesOutputs, servers: tuple[str, ...] | None = None) -> Target:
    managed = services.directory_type == "MicrosoftAD"
    netbios = services.domain_name.split(".")[0].upper()
    base = ",".join(f"DC={p}" for p in services.domain_name.split("."))
    return Target(
        domain=services.domain_name,
        servers=servers or services.directory_dns_addresses,
        admin_user="Admin" if managed else "Administrator",
        users_ou=f"OU=Users,OU={netbios},{base}" if managed else None,
    )


def run_users_direct(
    target: Target,
    users_cfg: UsersModel | Mapping[str, Any],
    admin_password: str,
    store: PasswordStore,
    *,
    password_secret_arn: str = "",
    count: int | None = None,
    concurrency: int = engine.DEFAULT_CONCURRENCY,
) -> UsersOutputs:
    """Create and verify the users from this process against a reachable directory."""
    batch = batch_for(users_cfg, count)
    if batch.count == 0:
        return UsersOutputs(
            0, 0, 0, 0, 0, password_secret_arn, skipped_reason="aux.users.count is 0"
        )
    report = engine.create(target, admin_password, batch, store, concurrency)
    return outputs_from_report(report.as_dict(), password_secret_arn)


def skipped_users(
    services: ServicesOutputs, users_cfg: UsersModel | Mapping[str, Any], reason: str
) -> UsersOutputs:
    """The sandbox has no directory to talk to: say so instead of pretending."""
    return UsersOutputs(
        requested=coerce(UsersModel, users_cfg).count,
        created=0,
        existing=0,
        verified=0,
        failed=0,
        password_secret_arn=services.users_password_secret_arn,
        skipped_reason=reason,
    )
