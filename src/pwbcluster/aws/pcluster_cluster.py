"""The real cluster stage's ParallelCluster calls: create or update, wait, delete.

Runs the pinned, patched ``pcluster`` CLI (``pwbcluster.pcluster``) with the user's own
AWS credentials. While CloudFormation works, the cluster status is polled and the
stack's new events are printed as they arrive, so a failure shows its reason at once.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from pwbcluster.errors import PclusterError

log = logging.getLogger(__name__)

POLL_SECONDS = 30
CREATE_TIMEOUT_SECONDS = 3 * 3600
CALL_TIMEOUT_SECONDS = 300
DONE = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
FAILED = {"CREATE_FAILED", "UPDATE_FAILED", "ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"}

Runner = Callable[[list[str]], subprocess.CompletedProcess[str]]


def _default_runner(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=CALL_TIMEOUT_SECONDS)


def pcluster(args: list[str], runner: Runner | None = None) -> tuple[int, Any]:
    """Run ``pcluster ARGS``; (exit code, parsed JSON output or the raw text)."""
    from pwbcluster.pcluster.venv import pcluster_cli

    proc = (runner or _default_runner)([*pcluster_cli(), *args])
    text = proc.stdout.strip() or proc.stderr.strip()
    try:
        return proc.returncode, json.loads(text)
    except ValueError:
        return proc.returncode, text


def describe(name: str, region: str, runner: Runner | None = None) -> dict[str, Any] | None:
    code, out = pcluster(["describe-cluster", "-n", name, "-r", region], runner)
    if code == 0 and isinstance(out, dict):
        return out
    if "does not exist" in json.dumps(out):
        return None
    raise PclusterError(f"pcluster describe-cluster {name} failed: {out}")


def login_address(info: dict[str, Any]) -> str:
    for pool in info.get("loginNodes") or []:
        if pool.get("address"):
            return str(pool["address"])
    raise PclusterError("the cluster reports no login-node load balancer address")


def create_or_update(
    name: str,
    region: str,
    config_path: Path,
    runner: Runner | None = None,
    console: Console | None = None,
    poll_seconds: float = POLL_SECONDS,
) -> str:
    """Create the cluster, or update it when it exists; wait; return the login LB address."""
    from pwbcluster.pcluster import patch as pcpatch

    console = console or Console(stderr=True)
    if runner is None:
        pcpatch.ensure_patched()
    existing = describe(name, region, runner)
    verb = "update-cluster" if existing else "create-cluster"
    console.print(f"pcluster {verb} {name} ({region}) from {config_path}", highlight=False)
    code, out = pcluster([verb, "-n", name, "-r", region, "-c", str(config_path)], runner)
    if code != 0:
        raise PclusterError(f"pcluster {verb} {name} was refused:\n{json.dumps(out, indent=2)}")
    info = wait(name, region, runner, console, poll_seconds)
    return login_address(info)


def wait(
    name: str,
    region: str,
    runner: Runner | None,
    console: Console,
    poll_seconds: float = POLL_SECONDS,
    timeout: float = CREATE_TIMEOUT_SECONDS,
    gone_ok: bool = False,
) -> dict[str, Any]:
    """Poll until the cluster settles, printing new stack events; the final description."""
    seen: set[str] = set()
    started = time.monotonic()
    with console.status(f"waiting for cluster {name}") as status:
        while True:
            info = describe(name, region, runner)
            if info is None:
                if gone_ok:
                    return {}
                raise PclusterError(f"cluster {name} disappeared while waiting")
            _stream_events(name, region, runner, console, seen)
            state = str(info.get("clusterStatus", "UNKNOWN"))
            minutes = (time.monotonic() - started) / 60
            status.update(f"cluster {name}: {state} ({minutes:.0f} min)")
            if state in DONE:
                return info
            if state in FAILED or state.endswith("_FAILED"):
                raise PclusterError(
                    f"cluster {name} ended {state}; the events above say why "
                    f"(also: pcluster get-cluster-stack-events -n {name} -r {region})"
                )
            if time.monotonic() - started > timeout:
                raise PclusterError(f"cluster {name} still {state} after {timeout / 60:.0f} min")
            time.sleep(poll_seconds)


def _stream_events(
    name: str, region: str, runner: Runner | None, console: Console, seen: set[str]
) -> None:
    code, out = pcluster(["get-cluster-stack-events", "-n", name, "-r", region], runner)
    if code != 0 or not isinstance(out, dict):
        return
    for event in reversed(out.get("events", [])):
        key = str(event.get("eventId"))
        if key in seen:
            continue
        seen.add(key)
        reason = event.get("resourceStatusReason") or ""
        line = f"{event.get('timestamp', '')} {event.get('logicalResourceId', '')} {event.get('resourceStatus', '')} {reason}"
        log.info("stack event: %s", line)
        console.print(f"  {line.strip()}", highlight=False)


def delete(
    name: str,
    region: str,
    runner: Runner | None = None,
    console: Console | None = None,
    poll_seconds: float = POLL_SECONDS,
) -> None:
    console = console or Console(stderr=True)
    if describe(name, region, runner) is None:
        console.print(f"cluster {name}: already gone", highlight=False)
        return
    code, out = pcluster(["delete-cluster", "-n", name, "-r", region], runner)
    if code != 0:
        raise PclusterError(f"pcluster delete-cluster {name} failed: {out}")
    wait(name, region, runner, console, poll_seconds, gone_ok=True)
    console.print(f"cluster {name}: deleted", highlight=False)
