"""aux.*: the auxiliary services (network and services stages) on their own.

Wiring only: each task loads the deployment, calls one function of
``pwbcluster.pipeline.aux_tasks`` (which goes through the one pipeline and its state
file) and lets ``wired`` turn the toolkit's errors into a clean message.
"""

from __future__ import annotations

import json

from invoke import Collection, Context
from rich.console import Console

from pwbcluster import contracts
from pwbcluster.config import Config, load_config
from pwbcluster.tasks.common import CONFIG_HELP, ask, require_config, task, wired

PART_HELP = "network or services (repeatable); default: both, in dependency order"
SANDBOX_HELP = "the sandbox rehearsal (local moto server) instead of AWS"


def _config(c: Context, config: str | None) -> Config:
    path = config or c.config.get("pwbcluster", {}).get("config")
    return load_config(require_config(path))


def _mode(sandbox: bool) -> str:
    return "sandbox" if sandbox else "real"


@task(help={"config": CONFIG_HELP, "part": PART_HELP}, iterable=["part"])
@wired
def preview(c: Context, config: str | None = None, part: list[str] | None = None) -> None:
    """Show what `aux.up` would create or change (pulumi preview; changes nothing)."""
    from pwbcluster.pipeline import aux_tasks

    aux_tasks.preview(_config(c, config), Console(), part)


@task(help={"config": CONFIG_HELP, "part": PART_HELP, "sandbox": SANDBOX_HELP}, iterable=["part"])
@wired
def up(
    c: Context, config: str | None = None, part: list[str] | None = None, sandbox: bool = False
) -> None:
    """Create or update the network and services stages; print their contracts."""
    from pwbcluster.pipeline import aux_tasks

    results = aux_tasks.up(_config(c, config), _mode(sandbox), Console(), part)
    Console().print_json(json.dumps({k: contracts.to_dict(v) for k, v in results.items()}))


@task(
    help={
        "config": CONFIG_HELP,
        "part": PART_HELP,
        "sandbox": SANDBOX_HELP,
        "yes": "do not ask for confirmation",
    },
    iterable=["part"],
)
@wired
def down(
    c: Context,
    config: str | None = None,
    part: list[str] | None = None,
    sandbox: bool = False,
    yes: bool = False,
) -> None:
    """Destroy the services stage, then the network stage (asks first unless --yes)."""
    from pwbcluster.pipeline import aux_tasks

    def confirm(question: str) -> bool:
        return ask(question, yes, "destroying")

    removed = aux_tasks.down(_config(c, config), _mode(sandbox), Console(), confirm, part)
    Console().print(f"destroyed: {', '.join(removed) or 'nothing recorded'}")


@task(help={"config": CONFIG_HELP, "part": PART_HELP, "sandbox": SANDBOX_HELP}, iterable=["part"])
@wired
def outputs(
    c: Context, config: str | None = None, part: list[str] | None = None, sandbox: bool = False
) -> None:
    """Print the recorded contracts (secret ARNs, never secret values)."""
    from pwbcluster.pipeline import aux_tasks

    results = aux_tasks.outputs(_config(c, config), _mode(sandbox), part)
    Console().print_json(json.dumps({k: contracts.to_dict(v) for k, v in results.items()}))


@task(
    name="renew-certs",
    help={
        "config": CONFIG_HELP,
        "sandbox": SANDBOX_HELP,
        "yes": "do not ask for confirmation",
        "dry-run": "show which certificates would be re-issued; change nothing",
    },
)
@wired
def renew_certs(
    c: Context,
    config: str | None = None,
    sandbox: bool = False,
    yes: bool = False,
    dry_run: bool = False,
) -> None:
    """Re-issue the generated LDAPS and Workbench certificates; re-import them into ACM."""

    from pwbcluster.pipeline import aux_tasks

    def confirm(question: str) -> bool:
        return ask(question, yes, "renewing")

    console = Console()
    lines = aux_tasks.renew_certs(_config(c, config), _mode(sandbox), console, confirm, dry_run)
    for line in lines:
        console.print(f"renewed: {line}", highlight=False)


ns = Collection(preview, up, down, outputs, renew_certs)
ns.configure({"pwbcluster": {"config": None}})
