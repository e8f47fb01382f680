"""``invoke cluster.*``: the ParallelCluster cluster running Workbench on its login nodes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from invoke import Collection, Context, task
from rich.console import Console

from pwbcluster import contracts
from pwbcluster.config import Config, load_config
from pwbcluster.errors import ToolkitError
from pwbcluster.pipeline import orchestrate
from pwbcluster.pipeline.runner import StageContext
from pwbcluster.pipeline.state import State
from pwbcluster.sandbox import server as sandbox
from pwbcluster.stages.cluster import stage as cluster_stage
from pwbcluster.tasks.common import CONFIG_HELP, require_config, wired

SANDBOX_HELP = "the sandbox rehearsal (local moto server) instead of AWS"


def _config(c: Context, config: str | None) -> Config:
    path = config or c.config.get("pwbcluster", {}).get("config")
    return load_config(require_config(path))


def _mode(sandbox_flag: bool) -> str:
    return "sandbox" if sandbox_flag else "real"


@contextlib.contextmanager
def _environment(cfg: Config, mode: str) -> Iterator[dict[str, Any]]:
    if mode != "sandbox":
        yield {}
        return
    server = sandbox.running(cfg.build_dir)
    if server is None:
        yield {}
        return
    with sandbox.aws_environment(server, cfg.region):
        yield {"aws_endpoint_url": server.endpoint}


@task(help={"config": CONFIG_HELP, "sandbox": SANDBOX_HELP})
@wired
def up(c: Context, config: str | None = None, sandbox: bool = False) -> None:
    """Create the cluster, or update it when it exists (upstream stages run first if needed)."""
    cfg = _config(c, config)
    console = Console()
    outputs = orchestrate.up(cfg, _mode(sandbox), console, {"cluster"})
    result: contracts.ClusterOutputs = outputs["cluster"]
    label = " (simulated)" if result.simulated else ""
    console.print(f"Workbench{label}: {result.workbench_url}", highlight=False)


@task(help={"config": CONFIG_HELP, "sandbox": SANDBOX_HELP})
@wired
def status(c: Context, config: str | None = None, sandbox: bool = False) -> None:
    """Show the cluster's state and the Workbench URL."""
    cfg = _config(c, config)
    mode = _mode(sandbox)
    console = Console()
    rec = State.load(orchestrate.state_path(cfg), mode).stages.get("cluster")
    if rec is None or not rec.outputs:
        console.print(f"cluster: not created ({mode}); run `invoke cluster.up`")
        return
    out = contracts.from_dict(contracts.ClusterOutputs, rec.outputs)
    if mode == "real":
        from pwbcluster.aws import pcluster_cluster as cluster_pcluster

        info = cluster_pcluster.describe(out.cluster_name, out.region)
        state = info.get("clusterStatus", "UNKNOWN") if info else "DOES NOT EXIST"
        fleet = info.get("computeFleetStatus", "") if info else ""
        console.print(f"cluster {out.cluster_name} ({out.region}): {state} {fleet}".rstrip())
    else:
        console.print(
            f"cluster {out.cluster_name} ({out.region}): {rec.status} (sandbox, simulated)"
        )
    console.print(f"Workbench: {out.workbench_url}", highlight=False)


@task(
    help={
        "config": CONFIG_HELP,
        "sandbox": SANDBOX_HELP,
        "yes": "do not ask for confirmation",
        "dry_run": "say what would be deleted and stop",
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
    """Delete the cluster (and its uploaded node files); other stages stay."""
    cfg = _config(c, config)
    mode = _mode(sandbox)
    console = Console()
    state = State.load(orchestrate.state_path(cfg), mode)
    rec = state.stages.get("cluster")
    if rec is None:
        console.print(f"cluster: nothing recorded ({mode}); nothing to delete")
        return
    out = contracts.from_dict(contracts.ClusterOutputs, rec.outputs) if rec.outputs else None
    name = out.cluster_name if out else cluster_stage.cluster_name(cfg)
    console.print(f"Plan: delete cluster '{name}' ({mode}) and its files in the scripts bucket.")
    if dry_run:
        return
    if not yes and input(f"Type the cluster name ({name}) to confirm: ").strip() != name:
        raise ToolkitError("not confirmed; nothing deleted")
    with _environment(cfg, mode) as extra:
        ctx = StageContext(cfg, {}, mode, False, extra)
        cluster_stage.destroy(ctx, out)
    state.forget("cluster")
    if mode == "real":
        from pwbcluster.aws import pcluster_cluster as cluster_pcluster

        if cluster_pcluster.describe(name, cfg.region) is not None:
            raise ToolkitError(f"cluster {name} still exists after delete")
    console.print(f"cluster {name}: deleted")


ns = Collection(up, status, down)
