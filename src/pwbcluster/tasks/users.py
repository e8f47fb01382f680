"""``invoke users.create|delete|list``: run ``pwb-users`` on the jump host through SSM.

The directory, the jump host and the secret ARNs come from the services stage's recorded
outputs (``build/<deployment>/state.json``); the batch from ``aux.users``. The
administrator password is read on the jump host from Secrets Manager: it is never a flag.
"""

from __future__ import annotations

import json
from typing import Any

from invoke import Collection, Context
from rich.console import Console

from pwbcluster.errors import StageError, ToolkitError
from pwbcluster.tasks.common import CONFIG_HELP, require_config, task, wired

HELP = {
    "config": CONFIG_HELP,
    "count": "number of users (default: aux.users.count)",
    "prefix": "user name prefix (default: aux.users.prefix)",
    "concurrency": "parallel directory sessions on the jump host",
    "timeout": "seconds to wait for the jump host",
    "dry_run": "print the command the jump host would run; send nothing",
}


def _services(cfg: Any) -> Any:
    from pwbcluster.pipeline import orchestrate

    services = orchestrate.recorded(cfg, "real", "services")
    if services is None:
        raise StageError(
            f"no finished services stage in {orchestrate.state_path(cfg)}: run `invoke up` first"
        )
    return services


def _run(
    c: Context,
    action: str,
    config: str | None,
    count: int | None,
    prefix: str | None,
    concurrency: int | None,
    timeout: int,
    dry_run: bool,
    flags: tuple[str, ...] = (),
) -> dict[str, Any]:
    from pwbcluster.config import load_config
    from pwbcluster.stages.users import remote as ssm
    from pwbcluster.stages.users.spec import UserBatch

    cfg = load_config(require_config(config))
    # Integer flags arrive parsed and >= 0 (pwbcluster.tasks.common.ToolkitTask).
    if concurrency == 0 or timeout == 0:
        raise ToolkitError("--concurrency and --timeout must be 1 or more")
    batch = UserBatch.from_config(cfg.model.aux.users, count=count, prefix=prefix)
    batch.check()
    services = _services(cfg)
    console = Console()
    if dry_run:
        argv = ssm.tool_argv(action, services, batch, cfg.region, concurrency, flags)
        params = ssm.command_parameters(argv, timeout)
        console.print(
            f"would send to {services.jump_host_instance_id} ({ssm.DOCUMENT}):", highlight=False
        )
        console.print(json.dumps(params, indent=2), highlight=False, markup=False)
        return {}
    doc = ssm.run_remote(
        action, services, batch, cfg.region, timeout=timeout, concurrency=concurrency, flags=flags
    )
    shown = {k: v for k, v in doc.items() if isinstance(v, int) and v}
    console.print(
        f"users.{action}: "
        + ", ".join(f"{k} {v}" for k, v in shown.items())
        + f" in {doc.get('seconds', 0)} s",
        highlight=False,
    )
    for name, why in doc.get("failures", [])[:20]:
        console.print(f"  {name}: {why}", highlight=False, markup=False)
    if doc.get("failed") or doc.get("verify_failed"):
        raise StageError(
            f"users.{action}: {doc.get('failed', 0)} failed, {doc.get('verify_failed', 0)} not verified"
        )
    return doc


@task(
    help={
        **HELP,
        "update": "also refresh POSIX attributes of existing users",
        "verify_existing": "also log in the users that already existed (one directory write each)",
    }
)
@wired
def create(
    c: Context,
    config: str | None = None,
    count: int | None = None,
    prefix: str | None = None,
    concurrency: int | None = None,
    timeout: int = 3600,
    update: bool = False,
    verify_existing: bool = False,
    dry_run: bool = False,
) -> None:
    """Create (idempotently) the directory users on the jump host and verify the new ones."""
    _run(
        c,
        "create",
        config,
        count,
        prefix,
        concurrency,
        timeout,
        dry_run,
        (*(("--update",) if update else ()), *(("--verify-existing",) if verify_existing else ())),
    )


@task(help={**HELP, "force": "also delete matching users the tool did not make"})
@wired
def delete(
    c: Context,
    config: str | None = None,
    count: int | None = None,
    prefix: str | None = None,
    concurrency: int | None = None,
    timeout: int = 3600,
    force: bool = False,
    dry_run: bool = False,
) -> None:
    """Delete the directory users the tool made."""
    _run(
        c,
        "delete",
        config,
        count,
        prefix,
        concurrency,
        timeout,
        dry_run,
        ("--force",) if force else (),
    )


@task(help=HELP, name="list")
@wired
def list_(
    c: Context,
    config: str | None = None,
    count: int | None = None,
    prefix: str | None = None,
    concurrency: int | None = None,
    timeout: int = 600,
    dry_run: bool = False,
) -> None:
    """Count the directory users (managed by the tool, foreign, absent)."""
    _run(c, "list", config, count, prefix, concurrency, timeout, dry_run)


@task(help=HELP)
@wired
def verify(
    c: Context,
    config: str | None = None,
    count: int | None = None,
    prefix: str | None = None,
    concurrency: int | None = None,
    timeout: int = 3600,
    dry_run: bool = False,
) -> None:
    """Log every user in with its stored password (on the jump host)."""
    _run(c, "verify", config, count, prefix, concurrency, timeout, dry_run)


ns = Collection(create, delete, list_, verify)
