"""``invoke cluster.*``: the ParallelCluster cluster running Workbench on its login nodes."""

from __future__ import annotations

from invoke import Collection, Context
from rich.console import Console

from pwbcluster import contracts
from pwbcluster.config import Config, load_config
from pwbcluster.errors import ToolkitError
from pwbcluster.pipeline import orchestrate
from pwbcluster.pipeline.state import State
from pwbcluster.stages.cluster import stage as cluster_stage
from pwbcluster.tasks.common import CONFIG_HELP, require_config, task, wired

SANDBOX_HELP = "the sandbox rehearsal (local moto server) instead of AWS"


def _config(c: Context, config: str | None) -> Config:
    path = config or c.config.get("pwbcluster", {}).get("config")
    return load_config(require_config(path))


def _mode(sandbox_flag: bool) -> str:
    return "sandbox" if sandbox_flag else "real"


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
    out = orchestrate.recorded(cfg, mode, "cluster")
    if out is None:
        console.print(f"cluster: not created ({mode}); run `invoke cluster.up`")
        return
    if mode == "real":
        from pwbcluster.aws import pcluster_cluster

        info = pcluster_cluster.describe(out.cluster_name, out.region)
        state = info.get("clusterStatus", "UNKNOWN") if info else "DOES NOT EXIST"
        fleet = info.get("computeFleetStatus", "") if info else ""
        console.print(f"cluster {out.cluster_name} ({out.region}): {state} {fleet}".rstrip())
    else:
        console.print(f"cluster {out.cluster_name} ({out.region}): done (sandbox, simulated)")
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
    if "cluster" not in state.stages:
        console.print(f"cluster: nothing recorded ({mode}); nothing to delete")
        return
    out = orchestrate.recorded(cfg, mode, "cluster")
    name = out.cluster_name if out else cluster_stage.cluster_name(cfg)
    console.print(f"Plan: delete cluster '{name}' ({mode}) and its files in the scripts bucket.")
    if dry_run:
        return
    if not yes and input(f"Type the cluster name ({name}) to confirm: ").strip() != name:
        raise ToolkitError("not confirmed; nothing deleted")
    orchestrate.down(cfg, mode, console, {"cluster"})
    if mode == "real":
        from pwbcluster.aws import pcluster_cluster

        if pcluster_cluster.describe(name, cfg.region) is not None:
            raise ToolkitError(f"cluster {name} still exists after delete")
    console.print(f"cluster {name}: deleted")


ns = Collection(up, status, down)
