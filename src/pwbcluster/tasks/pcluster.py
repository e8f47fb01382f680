"""``invoke pcluster.*``: ParallelCluster in its own pinned virtual environment."""

from __future__ import annotations

import subprocess

from invoke import Collection, Context
from rich.console import Console

from pwbcluster.pcluster import patch as pcpatch
from pwbcluster.pcluster import warm
from pwbcluster.pcluster.venv import PCLUSTER_VERSION, pcluster_cli
from pwbcluster.tasks.common import task, wired


@task
@wired
def setup(c: Context) -> None:
    """Create .venvs/pcluster-<version>/ (once) and apply the patches in patches/."""
    site_dir = pcpatch.ensure_patched()
    console = Console()
    version = subprocess.run(
        [*pcluster_cli(), "version"], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    console.print(f"ParallelCluster {PCLUSTER_VERSION} ready: {site_dir}", highlight=False)
    console.print(version.strip(), highlight=False)
    for result in pcpatch.check(site_dir):
        console.print(result.describe(), highlight=False)


@task(help={"stop": "stop every warm worker of this user"})
@wired
def workers(c: Context, stop: bool = False) -> None:
    """The warm pcluster workers a plan keeps for the next one (see README, "Re-plans").

    Each exits by itself after PWBCLUSTER_WORKER_IDLE_SECONDS (900) unused;
    PWBCLUSTER_WARM_WORKER=0 makes every plan start a fresh one instead."""
    console = Console()
    directory = warm.socket_dir()
    if stop:
        stopped = warm.stop_all(directory)
        console.print(f"stopped {len(stopped)} warm worker(s) in {directory}", highlight=False)
        return
    sockets = sorted(directory.glob("*.sock"))
    console.print(f"{len(sockets)} warm worker socket(s) in {directory}", highlight=False)
    for sock in sockets:
        console.print(f"  {sock.name}", highlight=False)


ns = Collection(setup, workers)
