"""Checks of what the shared storage keeps when something fails.

- ``home_durable``: /home is on a file system that is replicated and backed up. FSx for
  Lustre ``SCRATCH_*`` keeps one copy on one file server and takes no backup (pcluster
  3.16.1 ``FsxBackupOptionsValidator`` refuses automatic backups on anything but
  ``PERSISTENT_*``). It stays possible, as an explicit choice.
- ``home_efs_free``: /home on a new EFS is refused before pcluster refuses it: pcluster
  3.16.1 creates at most one new EFS (``MAX_NEW_STORAGE_COUNT`` in ``constants.py``,
  ``NumberOfStorageValidator``), and Workbench's shared storage is that one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pwbcluster.config.checks import Finding, check
from pwbcluster.config.problems import Level, Path


@check("home_durable", Level.WARNING, "/home survives a file-server failure and has backups")
def _home_durable(data: dict[str, Any]) -> Iterator[Finding]:
    home = data["cluster"]["storage"]["home"]
    base: Path = ("cluster", "storage", "home")
    kind = str(home.get("deployment_type") or "")
    if home["type"] == "FsxLustre" and kind.startswith("SCRATCH"):
        yield (
            (*base, "deployment_type"),
            f"{kind} keeps no replica and no backup of /home: a failed file server loses "
            "every user's home directory (projects, installed packages, session state)",
            "PERSISTENT_2 (replicated, daily backups), or this check switched off on purpose",
        )


@check("home_efs_free", Level.ERROR, "/home is not a second new EFS (pcluster creates one)")
def _home_efs(data: dict[str, Any]) -> Iterator[Finding]:
    storage = data["cluster"]["storage"]
    if storage["home"]["type"] == "Efs" and storage["workbench_shared"]["type"] == "Efs":
        yield (
            ("cluster", "storage", "home", "type"),
            "ParallelCluster 3.16.1 creates one new EFS per cluster and Workbench's shared "
            "storage already is it (pcluster would refuse: NumberOfStorageValidator)",
            "FsxLustre with deployment_type PERSISTENT_2",
        )
