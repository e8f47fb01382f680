"""config.*: validate the configuration, keep the generated reference in sync."""

from __future__ import annotations

from invoke import Collection, Context, task
from rich.console import Console

from pwbcluster.config import load_config
from pwbcluster.tasks.common import CONFIG_HELP, require_config, wired


@task(
    help={
        "config": CONFIG_HELP,
        "skip_check": "switch off a named semantic check (repeatable)",
        "strict": "treat warnings as errors",
    },
    iterable=["skip_check"],
)
@wired
def validate(
    c: Context, config: str | None = None, skip_check: list[str] | None = None, strict: bool = False
) -> None:
    """Check a deployment and the stage files: every problem with file, line and key."""
    cfg = load_config(require_config(config), skip_checks=tuple(skip_check or ()), strict=strict)
    console = Console()
    for warning in cfg.warnings:
        console.print(f"[yellow]{warning}[/yellow]", highlight=False)
    console.print(f"{cfg.deployment_file}: valid (deployment '{cfg.name}', {cfg.region})")


@task
@wired
def checks(c: Context) -> None:
    """List the named semantic checks and their levels."""
    from pwbcluster.config.checks import REGISTRY

    for item in sorted(REGISTRY.values(), key=lambda k: k.name):
        print(f"{item.name:26} {item.level.value:8} {item.summary}")


@task(help={"check": "fail if docs/configuration.md is out of date instead of writing it"})
@wired
def docs(c: Context, check: bool = False) -> None:
    """Regenerate docs/configuration.md (the configuration reference) from the schemas."""
    from pwbcluster.config.reference import write_reference

    write_reference(check=check)


ns = Collection(validate, checks, docs)
