"""Top-level tasks: plan, up, down, status."""

from __future__ import annotations

from invoke import Context, task
from rich.console import Console

from pwbcluster.config import Config, load_config
from pwbcluster.errors import ToolkitError
from pwbcluster.pipeline import orchestrate
from pwbcluster.pipeline.plan import make_plan, print_plan
from pwbcluster.tasks.common import CONFIG_HELP, require_config, wired

DEFAULTS = {"pwbcluster": {"config": None}}


def _config(c: Context, config: str | None, skip_check: list[str] | None = None) -> Config:
    path = config or c.config.get("pwbcluster", {}).get("config")
    return load_config(require_config(path), skip_checks=tuple(skip_check or ()))


@task(
    help={
        "config": CONFIG_HELP,
        "skip_check": "switch off a named semantic check (repeatable)",
    },
    iterable=["skip_check"],
)
@wired
def plan(c: Context, config: str | None = None, skip_check: list[str] | None = None) -> None:
    """Render and validate everything into build/<deployment>/ and print the plan (no AWS)."""
    cfg = _config(c, config, skip_check)
    console = Console()
    ctx = make_plan(cfg)
    print_plan(ctx, console)


@task(
    help={
        "config": CONFIG_HELP,
        "sandbox": "rehearse against a local moto server instead of AWS",
        "stage": "run only this stage and what it needs (repeatable)",
    },
    iterable=["stage"],
)
@wired
def up(
    c: Context, config: str | None = None, sandbox: bool = False, stage: list[str] | None = None
) -> None:
    """Create or update the deployment, stage by stage; re-run to resume after a failure."""
    cfg = _config(c, config)
    console = Console()
    orchestrate.up(cfg, "sandbox" if sandbox else "real", console, set(stage or ()) or None)


@task(help={"config": CONFIG_HELP, "sandbox": "tear down the sandbox rehearsal"})
@wired
def down(c: Context, config: str | None = None, sandbox: bool = False) -> None:
    """Remove everything the deployment created, in reverse order."""
    cfg = _config(c, config)
    console = Console()
    removed, remaining = orchestrate.down(cfg, "sandbox" if sandbox else "real", console)
    console.print(f"removed: {', '.join(removed) or 'nothing'}")
    if remaining:
        left = ", ".join(f"{n} {kind}" for kind, n in sorted(remaining.items()))
        raise ToolkitError(f"still present after down: {left}")
    console.print("remaining: nothing")


@task(help={"config": CONFIG_HELP})
@wired
def status(c: Context, config: str | None = None) -> None:
    """Show each stage's state and outputs from build/<deployment>/state.json."""
    cfg = _config(c, config)
    Console().print(orchestrate.status_table(cfg))


TASKS = [plan, up, down, status]
