"""Wait until the jump host has joined the directory and created the bind user.

Pulumi is done when the instance runs, but the bind user exists only once the jump host's
first-boot script finishes (a few minutes later). The cluster binds with that user, so
the real services stage waits for the script's marker file, asked through SSM Run
Command (the jump host has no inbound port). Bounded: it gives up with a message that
says where to look.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from pwbcluster.errors import StageError

log = logging.getLogger(__name__)

DONE_MARKER = "/var/lib/pwbcluster/jump-host.done"
FINAL = {"Success", "Failed", "Cancelled", "TimedOut", "Cancelling"}


def wait_for_jump_host(
    ssm: Any,
    instance_id: str,
    timeout: float = 1200.0,
    interval: float = 20.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Poll until the jump host's marker exists; return the number of checks made."""
    deadline = clock() + timeout
    checks = 0
    while True:
        checks += 1
        if _marker_present(ssm, instance_id, sleep):
            log.info("jump host %s has joined the directory", instance_id)
            return checks
        if clock() >= deadline:
            raise StageError(
                f"the jump host {instance_id} has not finished joining the directory after "
                f"{timeout / 60:.0f} min. Look at /var/log/pwbcluster-jump-host.log on it "
                f"(`aws ssm start-session --target {instance_id}`), then run the same "
                "command again."
            )
        sleep(interval)


def _marker_present(ssm: Any, instance_id: str, sleep: Callable[[float], None]) -> bool:
    try:
        command = ssm.send_command(
            InstanceIds=[instance_id],
            DocumentName="AWS-RunShellScript",
            Parameters={"commands": [f"test -f {DONE_MARKER}"]},
            TimeoutSeconds=60,
        )
    except ssm.exceptions.InvalidInstanceId:
        return False  # the SSM agent has not registered yet
    command_id = command["Command"]["CommandId"]
    for _ in range(12):
        sleep(5)
        try:
            result = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
        except ssm.exceptions.InvocationDoesNotExist:
            continue
        if result["Status"] in FINAL:
            return bool(result["Status"] == "Success")
    return False
