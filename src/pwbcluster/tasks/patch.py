"""``invoke patch.apply|check|revert``: the patches in patches/ on the pcluster venv."""

from __future__ import annotations

from invoke import Collection, Context
from rich.console import Console

from pwbcluster.pcluster import patch as pcpatch
from pwbcluster.tasks.common import task, wired

DRY_RUN_HELP = "only say what would change (dry runs of GNU patch), change nothing"


def _print(results: list[pcpatch.PatchResult]) -> None:
    console = Console()
    for result in results:
        console.print(result.describe(), highlight=False)


@task(help={"dry_run": DRY_RUN_HELP})
@wired
def apply(c: Context, dry_run: bool = False) -> None:
    """Apply the ParallelCluster patches (idempotent; refuses another pcluster version)."""
    _print(pcpatch.apply(dry_run=dry_run))


@task
@wired
def check(c: Context) -> None:
    """Say whether each patch is applied; fail when one is not."""
    _print(pcpatch.check())


@task(help={"dry_run": DRY_RUN_HELP})
@wired
def revert(c: Context, dry_run: bool = False) -> None:
    """Revert the patches: the pcluster files come back byte for byte."""
    _print(pcpatch.revert(dry_run=dry_run))


ns = Collection(apply, check, revert)
