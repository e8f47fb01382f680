"""aux.*: the auxiliary services' Pulumi stacks (network, services) on real AWS.

Wiring only: each task loads the deployment, calls one function of
``pwbcluster.pipeline.aux_tasks`` and lets ``wired`` turn the toolkit's errors (no pulumi CLI,
no AWS credentials, a failed update) into a clean message.
"""

from __future__ import annotations

import json

from invoke import Collection, Context, task
from rich.console import Console

from pwbcluster.config import load_config
from pwbcluster.tasks.common import CONFIG_HELP, require_config, wired

PART_HELP = "network or services (repeatable); default: both, in dependency order"


def _config(c: Context, config: str | None) -> object:
    path = config or c.config.get("pwbcluster", {}).get("config")
    return load_config(require_config(path))


@task(help={"config": CONFIG_HELP, "part": PART_HELP}, iterable=["part"])
@wired
def preview(c: Context, config: str | None = None, part: list[str] | None = None) -> None:
    """Show what `aux.up` would create or change (pulumi preview; changes nothing)."""
    from pwbcluster.pipeline import aux_tasks as manage

    manage.preview(_config(c, config), part)


@task(help={"config": CONFIG_HELP, "part": PART_HELP}, iterable=["part"])
@wired
def up(c: Context, config: str | None = None, part: list[str] | None = None) -> None:
    """Create or update the network and services stacks; print their contracts."""
    from pwbcluster import contracts
    from pwbcluster.pipeline import aux_tasks as manage

    results = manage.up(_config(c, config), part)
    Console().print_json(json.dumps({k: contracts.to_dict(v) for k, v in results.items()}))


@task(
    help={"config": CONFIG_HELP, "part": PART_HELP, "yes": "do not ask for confirmation"},
    iterable=["part"],
)
@wired
def down(
    c: Context, config: str | None = None, part: list[str] | None = None, yes: bool = False
) -> None:
    """Destroy the services stack, then the network stack (asks first unless --yes)."""
    from pwbcluster.pipeline import aux_tasks as manage

    def confirm(question: str) -> bool:
        if yes:
            return True
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")

    manage.down(_config(c, config), confirm, part)
    Console().print("destroyed")


@task(help={"config": CONFIG_HELP, "part": PART_HELP}, iterable=["part"])
@wired
def outputs(c: Context, config: str | None = None, part: list[str] | None = None) -> None:
    """Print the stacks' outputs as the typed contracts (secret ARNs, never secret values)."""
    from pwbcluster import contracts
    from pwbcluster.pipeline import aux_tasks as manage

    results = manage.outputs(_config(c, config), part)
    Console().print_json(json.dumps({k: contracts.to_dict(v) for k, v in results.items()}))


ns = Collection(preview, up, down, outputs)
ns.configure({"pwbcluster": {"config": None}})
