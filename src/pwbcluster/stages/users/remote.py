"""Run ``pwb-users`` on the jump host through SSM Run Command (no ssh, no public IP).

The command carries only names, addresses and secret ARNs: the jump host's instance role
reads the administrator password and writes the users' passwords itself, so no secret
value ever appears in the command, its parameters, SSM's history or this machine.
``pwb-users --json`` prints one JSON line; it is read back from the invocation's output.
"""

from __future__ import annotations

import json
import logging
import shlex
import time
from typing import Any

from pwbcluster.contracts import ServicesOutputs
from pwbcluster.errors import ToolkitError
from pwbcluster.stages.users.spec import UserBatch

log = logging.getLogger(__name__)

DOCUMENT = "AWS-RunShellScript"
TERMINAL = {"Success", "Failed", "Cancelled", "TimedOut", "Cancelling"}
TOOL = "pwb-users"


class RemoteError(ToolkitError):
    """The command on the jump host failed or could not be run."""


def tool_argv(
    action: str,
    services: ServicesOutputs,
    batch: UserBatch,
    region: str,
    concurrency: int | None = None,
    flags: tuple[str, ...] = (),
) -> list[str]:
    """The ``pwb-users`` command line the jump host runs (no secret values in it)."""
    if not services.directory_dns_addresses:
        raise RemoteError("the services outputs name no directory address")
    argv = [TOOL, action, "--domain", services.domain_name]
    for addr in services.directory_dns_addresses:
        argv += ["--server", addr]
    argv += [
        "--type",
        services.directory_type,
        # Kerberos-sealed LDAP works on SimpleAD and Managed AD alike and needs no CA.
        "--auth",
        "sasl",
        "--admin-secret-arn",
        services.admin_password_secret_arn,
        "--region",
        region,
        "--count",
        str(batch.count),
        "--prefix",
        batch.prefix,
        "--digits",
        str(batch.digits),
        "--start",
        str(batch.start),
        "--uid-start",
        str(batch.uid_start),
        "--gid-start",
        str(batch.gid_start),
        "--shell",
        batch.shell,
        "--home-base",
        batch.home_base,
        "--users-group",
        batch.users_group,
        "--admins-group",
        batch.admins_group,
    ]
    for admin in batch.admins:
        argv += ["--admin", admin]
    if action != "list":
        argv += ["--password-store", f"secretsmanager:{services.users_password_secret_arn}"]
    if concurrency:
        argv += ["--concurrency", str(concurrency)]
    return [*argv, *flags, "--json"]


def command_parameters(argv: list[str], timeout: int) -> dict[str, list[str]]:
    script = [
        "set -o errexit -o nounset -o pipefail",
        f'command -v {TOOL} >/dev/null || {{ echo \'{{"error": "{TOOL} is not installed on the jump host"}}\'; exit 2; }}',
        " ".join(shlex.quote(a) for a in argv),
    ]
    return {"commands": script, "executionTimeout": [str(timeout)]}


def send(ssm: Any, instance_id: str, argv: list[str], timeout: int) -> str:
    if not instance_id:
        raise RemoteError("no jump host: the services stage recorded no jump_host_instance_id")
    response = ssm.send_command(
        InstanceIds=[instance_id],
        DocumentName=DOCUMENT,
        Comment=f"pwbcluster: {' '.join(argv[:2])}"[:100],
        Parameters=command_parameters(argv, timeout),
        TimeoutSeconds=min(max(timeout, 30), 2592000),
    )
    return str(response["Command"]["CommandId"])


def wait(
    ssm: Any, command_id: str, instance_id: str, timeout: float, poll: float = 3.0
) -> dict[str, Any]:
    """Poll the invocation until it ends (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            inv = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
        except ssm.exceptions.InvocationDoesNotExist:
            inv = {"Status": "Pending"}
        status = inv.get("Status", "")
        if status in TERMINAL:
            return dict(inv)
        if time.monotonic() > deadline:
            raise RemoteError(f"SSM command {command_id} still {status} after {timeout:.0f} s")
        time.sleep(poll)


def parse_report(invocation: dict[str, Any]) -> dict[str, Any]:
    """The JSON line ``pwb-users --json`` printed; a clear error if there is none."""
    status = invocation.get("Status")
    out = str(invocation.get("StandardOutputContent") or "")
    doc: dict[str, Any] | None = None
    for line in reversed(out.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                doc = json.loads(line)
                break
            except ValueError:
                continue
    if doc is None:
        err = str(invocation.get("StandardErrorContent") or "").strip()[-800:]
        raise RemoteError(
            f"pwb-users on the jump host ended {status} without a report: {err or out[-800:]}"
        )
    if "error" in doc:
        raise RemoteError(f"pwb-users on the jump host: {doc['error']}")
    return doc


def run_remote(
    action: str,
    services: ServicesOutputs,
    batch: UserBatch,
    region: str,
    ssm: Any = None,
    timeout: int = 3600,
    concurrency: int | None = None,
    flags: tuple[str, ...] = (),
    poll: float = 3.0,
) -> dict[str, Any]:
    """Run ``pwb-users <action>`` on the jump host and return its report (counts)."""
    batch.check(allow_empty=False)
    if ssm is None:
        import boto3

        ssm = boto3.client("ssm", region_name=region)
    argv = tool_argv(action, services, batch, region, concurrency, flags)
    command_id = send(ssm, services.jump_host_instance_id, argv, timeout)
    log.info(
        "SSM command %s on %s: %s %s", command_id, services.jump_host_instance_id, TOOL, action
    )
    return parse_report(wait(ssm, command_id, services.jump_host_instance_id, timeout + 60, poll))
