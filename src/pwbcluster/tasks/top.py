"""Top-level tasks: plan, up, down, status."""

from __future__ import annotations

import sys

from invoke import Context, task
from rich.console import Console

from pwbcluster.config import Config, load_config
from pwbcluster.errors import ToolkitError
from pwbcluster.pipeline import orchestrate
from pwbcluster.pipeline.lock import deployment_lock
from pwbcluster.pipeline.plan import make_plan, print_plan
from pwbcluster.pipeline.registry import stage_specs
from pwbcluster.pipeline.state import State
from pwbcluster.sandbox.inventory import listing as counted_listing
from pwbcluster.sandbox.inventory import split_kept
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
    # A plan rewrites the rendered files a running up or down reads.
    with deployment_lock(cfg.build_dir, "plan"):
        ctx = make_plan(cfg)
    print_plan(ctx, console)
    for line in orchestrate.certificate_warnings(cfg):
        console.print(f"WARNING {line}", highlight=False)


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


@task(
    help={
        "config": CONFIG_HELP,
        "sandbox": "tear down the sandbox rehearsal (no confirmation: nothing real is at stake)",
        "yes": "remove a real deployment without asking for its name",
        "dry-run": "only show what would be removed",
    }
)
@wired
def down(
    c: Context,
    config: str | None = None,
    sandbox: bool = False,
    yes: bool = False,
    dry_run: bool = False,
) -> None:
    """Remove everything the deployment created, in reverse order: plan, confirm, act, verify.

    A real deployment is removed only once you type its name, or with --yes; without a
    terminal to ask on and without --yes, nothing is removed.
    """
    cfg = _config(c, config)
    console = Console()
    mode = "sandbox" if sandbox else "real"
    recorded = State.load(orchestrate.state_path(cfg), mode).stages
    order = [s.name for s in reversed(stage_specs()) if s.name in recorded]
    where = "the sandbox" if sandbox else f"AWS account (region {cfg.region})"
    if order:
        listing = ", ".join(f"{name} ({recorded[name].status})" for name in order)
        console.print(f"Plan: remove from {where}, in this order: {listing}.", highlight=False)
    else:
        console.print(f"Plan: nothing recorded for '{cfg.name}' in {where}.", highlight=False)
    if dry_run:
        return
    if order and mode == "real" and not yes:
        if not sys.stdin.isatty():
            raise ToolkitError(
                "not removing a real deployment without confirmation: there is no terminal "
                "to ask on; pass --yes to remove it, or --dry-run to see the plan"
            )
        typed = input(f"Type the deployment's name ({cfg.name}) to remove it: ").strip()
        if typed != cfg.name:
            raise ToolkitError("not confirmed; nothing removed")
    removed, counted = orchestrate.down(cfg, mode, console)
    console.print(f"removed: {', '.join(removed) or 'nothing'}")
    remaining, kept = split_kept(counted)
    if kept:
        console.print(
            f"kept on purpose: {counted_listing(kept)}"
            " (aux.databases.workbench.final_snapshot, aux.secrets.recovery_window_days)"
        )
    if remaining:
        left = counted_listing(remaining)
        raise ToolkitError(f"still present after down: {left}")
    console.print("remaining: nothing")


@task(
    help={
        "config": CONFIG_HELP,
        "json": "print the state as JSON (full outputs and errors) instead of a table",
    }
)
@wired
def status(c: Context, config: str | None = None, json: bool = False) -> None:
    """Show each stage's state and outputs; exits 1 when a stage failed or was interrupted."""
    import json as json_module

    cfg = _config(c, config)
    doc = orchestrate.status_rows(cfg)
    if json:
        print(json_module.dumps(doc, indent=2, default=str))
    else:
        Console().print(orchestrate.status_table(cfg, doc))
    if failed := orchestrate.status_failed(doc):
        raise ToolkitError(
            f"stage(s) not finished: {', '.join(failed)}; `invoke up` resumes at the first"
        )


TASKS = [plan, up, down, status]
