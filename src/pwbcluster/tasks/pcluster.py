"""``invoke pcluster.*``: ParallelCluster in its own pinned virtual environment."""

from __future__ import annotations

import subprocess

from invoke import Collection, Context
from rich.console import Console

from pwbcluster.pcluster import patch as pcpatch
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


ns = Collection(setup)
