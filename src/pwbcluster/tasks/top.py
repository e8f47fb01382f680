"""Top-level tasks: plan, up, down, status."""

from __future__ import annotations

from typing import Any

from invoke import Context
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
from pwbcluster.tasks.common import CONFIG_HELP, confirm_name, require_config, task, wired

DEFAULTS = {"pwbcluster": {"config": None}}


def _config(c: Context, config: str | None, skip_check: list[str] | None = None) -> Config:
    path = config or c.config.get("pwbcluster", {}).get("config")
    return load_config(require_config(path), skip_checks=tuple(skip_check or ()))


@task(
    help={
        "config": CONFIG_HELP,
        "skip_check": "switch off a named semantic check (repeatable)",
        "timings": "also print how long each of the plan's own steps took",
    },
    iterable=["skip_check"],
)
@wired
def plan(
    c: Context,
    config: str | None = None,
    skip_check: list[str] | None = None,
    timings: bool = False,
) -> None:
    """Render and validate everything into build/<deployment>/plan/ and print the plan (no AWS)."""
    cfg = _config(c, config, skip_check)
    console = Console()
    # A plan rewrites the rendered files a running up or down reads.
    with deployment_lock(cfg.build_dir, "plan"):
        ctx = make_plan(cfg)
    print_plan(ctx, console, timings=timings)
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
    if order and mode == "real":
        confirm_name(cfg.name, yes, "removing a real deployment", "remove it")
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


@task(
    help={
        "config": CONFIG_HELP,
        "sandbox": "ask the running sandbox server instead of AWS (it has no EC2 quotas: "
        "those show as unknown)",
        "policy": "write the deployer's IAM policy to this FILE "
        "(default: build/<deployment>/deployer-policy.json)",
    }
)
@wired
def preflight(
    c: Context, config: str | None = None, sandbox: bool = False, policy: str | None = None
) -> None:
    """List every missing prerequisite of a real up at once (tools, credentials, region,
    quotas) and write the IAM policy the deployer needs; creates nothing."""
    from pathlib import Path

    from pwbcluster.files import write_text
    from pwbcluster.pipeline import deployer_policy
    from pwbcluster.pipeline import preflight as checks
    from pwbcluster.sandbox import server

    cfg = _config(c, config)
    console = Console()
    findings = checks.local_findings()
    if sandbox:
        running = server.running(cfg.build_dir)
        if running is None:
            raise ToolkitError(
                "no sandbox server is running for this deployment: `invoke up --sandbox` "
                "starts one (preflight starts nothing)"
            )
        with server.aws_environment(running, cfg.region):
            findings += checks.account_findings(cfg.model, _client(cfg.region))
    else:
        findings += checks.account_findings(cfg.model, _client(cfg.region))
    console.print(checks.table(findings, "sandbox" if sandbox else "AWS"))
    document = deployer_policy.policy_document(deployer_policy.registered_types(cfg))
    target = Path(policy) if policy else cfg.build_dir / "deployer-policy.json"
    write_text(target, deployer_policy.render(document))
    console.print(
        f"deployer IAM policy: {target} ({len(document['Statement'][0]['Action'])} actions "
        f"for the Pulumi programs, {len(document['Statement'][1]['Action'])} for the "
        "toolkit); resources are '*': narrow them with a Deployment tag condition if your "
        f"account's rules ask for it. Also needed: {deployer_policy.PCLUSTER_POLICIES}.",
        highlight=False,
    )
    missing = [f.what for f in findings if f.status == checks.MISSING]
    if missing:
        raise ToolkitError(f"{len(missing)} prerequisite(s) missing: {', '.join(missing)}")


def _client(region: str) -> Any:
    import boto3

    def client(service: str) -> Any:
        # A fresh session per call: inside the sandbox's environment, its endpoint is used.
        return boto3.session.Session(region_name=region).client(service)  # type: ignore[call-overload]

    return client


@task(
    help={
        "config": CONFIG_HELP,
        "stage": "forget only this stage's record (repeatable; default: every stage)",
        "yes": "forget without asking for the deployment's name",
        "dry-run": "only show what would be forgotten",
    },
    iterable=["stage"],
)
@wired
def forget(
    c: Context,
    config: str | None = None,
    stage: list[str] | None = None,
    yes: bool = False,
    dry_run: bool = False,
) -> None:
    """Drop the recorded state (build/<deployment>/state.json) without touching any resource.

    For a record that matches nothing any more (an account reset, resources removed by
    hand, a sandbox server that is gone). What it names is not removed: if it still
    exists, `down` will no longer find it, so remove it by hand. Asks for the deployment's
    name unless --yes; without a terminal and without --yes it refuses.
    """
    import json as json_module

    cfg = _config(c, config)
    console = Console()
    path = orchestrate.state_path(cfg)
    if not path.exists():
        console.print(f"nothing recorded for '{cfg.name}' ({path} does not exist)")
        return
    raw = json_module.loads(path.read_text(encoding="utf-8"))
    recorded = raw.get("stages", {})
    wanted = list(stage or recorded)
    unknown = [name for name in wanted if name not in recorded]
    if unknown:
        from pwbcluster.pipeline.runner import unknown_stages

        raise ToolkitError(unknown_stages(set(unknown), recorded))
    mode = raw.get("mode") or "unknown"
    listing = ", ".join(f"{n} ({recorded[n].get('status')})" for n in wanted)
    console.print(
        f"Plan: forget the {mode} record(s) of {listing} in {path}; no resource is touched.",
        highlight=False,
    )
    if dry_run:
        return
    confirm_name(cfg.name, yes, "forgetting", "forget its record")
    with deployment_lock(cfg.build_dir, "forget"):
        state = State.load(path, mode) if mode in ("real", "sandbox") else None
        if state is None:
            path.unlink()
        else:
            for name in wanted:
                state.forget(name)
    console.print(f"forgotten: {', '.join(wanted)}")


TASKS = [plan, up, down, status, preflight, forget]
