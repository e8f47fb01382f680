"""The users stage: directory users, created and verified (see ``stages.users.engine``).

``pwb-users`` runs on the jump host through SSM Run Command (no ssh, no public IP); the
administrator password is read there from Secrets Manager. Where the account has no
directory to talk to (the sandbox's directory is a moto record), the stage records that it
skipped and why rather than pretending: the tool itself is proven against a real Samba AD
DC in tests/users.
"""

from __future__ import annotations

import logging
from typing import Any

from pwbcluster.contracts import UsersOutputs
from pwbcluster.contracts.account import DIRECTORY
from pwbcluster.contracts.stage import StageContext, StageSpec, section_inputs
from pwbcluster.stages.users.run import run_users, skipped_users

log = logging.getLogger(__name__)


def inputs(ctx: StageContext) -> Any:
    return section_inputs(ctx, "aux.users")


def run(ctx: StageContext) -> UsersOutputs:
    services = ctx.upstream.require("services")
    users_cfg = ctx.config.model.aux.users
    reason = ctx.account.cannot(DIRECTORY)
    if reason:
        log.info("users: skipped: %s", reason)
        return skipped_users(services, users_cfg, reason)
    return run_users(services, users_cfg, ctx.config.region, ssm_client=ctx.account.client("ssm"))


def destroy(ctx: StageContext, outputs: UsersOutputs | None) -> None:
    # The users live in the directory and their passwords in the users secret; the
    # services stage deletes both, so there is nothing of this stage's own to remove.
    log.info("users: removed with the directory by the services stage")


def plan(ctx: StageContext) -> UsersOutputs:
    services = ctx.upstream.require("services")
    return skipped_users(
        services, ctx.config.model.aux.users, "a plan creates no users (invoke up does)"
    )


SPEC = StageSpec(
    name="users",
    needs=("services", "cluster"),
    run=run,
    inputs=inputs,
    destroy=destroy,
    plan=plan,
    minutes=2.0,
    description="directory users, verified",
)
