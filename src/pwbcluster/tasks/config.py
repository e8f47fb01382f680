"""config.*: validate the configuration, keep the generated reference in sync."""

from __future__ import annotations

from invoke import Collection, Context
from rich.console import Console

from pwbcluster.config import load_config
from pwbcluster.tasks.common import CONFIG_HELP, require_config, task, wired


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


@task(
    help={
        "versions": "fetch the R, Python, Quarto and Workbench lists from their vendors "
        "(needs the internet) and rewrite src/pwbcluster/config/catalogue/versions.json",
        "instance_types": "rewrite src/pwbcluster/config/catalogue/instance_types.json from the "
        "installed botocore (EC2 types) and pulumi_aws (RDS classes); no network",
    }
)
@wired
def catalogue(c: Context, versions: bool = False, instance_types: bool = False) -> None:
    """Show the offline catalogues the checks use; refresh them with a flag."""
    from pwbcluster.config import catalogue as cat
    from pwbcluster.config.catalogue import refresh

    if instance_types:
        written = refresh.write_instance_types()
        print(
            f"{cat.INSTANCE_TYPES_FILE}: {len(written['ec2'])} EC2 types ({written['ec2_source']})"
        )
        print(f"  {len(written['rds'])} RDS classes ({written['rds_source']})")
        cat.instance_types.cache_clear()
    if versions:
        counts = refresh.refresh_versions()
        for name, (before, after) in counts.items():
            print(f"{name}: {before} -> {after} versions")
        cat.versions.cache_clear()
    types = cat.instance_types()
    print(f"instance types: {len(types.ec2)} EC2 ({types.source}), {len(types.rds)} RDS")
    listed = cat.versions()
    print(f"versions (retrieved {listed.retrieved}):")
    for kind in listed.kinds.values():
        newest = sorted(kind.versions, key=cat.version_key)[-1]
        print(
            f"  {kind.label:16} {len(kind.versions):3} versions, newest {newest}  ({kind.source})"
        )


ns = Collection(validate, checks, docs, catalogue)
