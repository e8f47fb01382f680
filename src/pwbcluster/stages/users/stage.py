"""The users stage: directory users, created and verified (see pwbcluster.stages.users).

Real mode runs ``pwb-users`` on the jump host through SSM (no ssh, no public IP); the
admin password is read there from Secrets Manager. In the sandbox the directory is a
moto record with no LDAP server behind it, so the stage says it skipped and why rather
than pretending: the tool itself is proven against a real Samba AD DC in tests/users.
"""

from __future__ import annotations

import logging
from typing import Any

from pwbcluster.pipeline.registry import section_inputs
from pwbcluster.pipeline.runner import StageContext

log = logging.getLogger(__name__)

SANDBOX_REASON = (
    "the sandbox's directory is a moto record with no LDAP server behind it "
    "(the user tool is proven against a real Samba AD DC in tests/users)"
)


def inputs(ctx: StageContext) -> Any:
    return section_inputs(ctx, "aux.users")


def run(ctx: StageContext) -> Any:
    from pwbcluster.stages.users.run import run_users, skipped_users

    services = ctx.upstream["services"]
    users_cfg = ctx.config.data["aux"]["users"]
    if ctx.mode == "sandbox":
        log.info("users: skipped in the sandbox: %s", SANDBOX_REASON)
        return skipped_users(services, users_cfg, SANDBOX_REASON)
    return run_users(services, users_cfg, ctx.config.region)


def destroy(ctx: StageContext, outputs: Any) -> None:
    # The users live in the directory and their passwords in the users secret; the
    # services stage deletes both, so there is nothing of this stage's own to remove.
    log.info("users: removed with the directory by the services stage")
