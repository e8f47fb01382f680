"""``invoke up``/``down``/``status``: run the stage graph, resume, tear down, report."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from pwbcluster import contracts
from pwbcluster.aws.account import AwsAccount
from pwbcluster.config import Config
from pwbcluster.contracts.account import Account
from pwbcluster.contracts.stage import StageContext, Upstream
from pwbcluster.errors import ToolkitError
from pwbcluster.pipeline.lock import deployment_lock, held_by
from pwbcluster.pipeline.registry import stage_specs
from pwbcluster.pipeline.runner import (
    Runner,
    StageEvent,
    critical_path,
    fingerprint,
    unknown_stages,
)
from pwbcluster.pipeline.state import State
from pwbcluster.sandbox import server as sandbox_server
from pwbcluster.sandbox.account import SandboxAccount
from pwbcluster.sandbox.inventory import listing

log = logging.getLogger(__name__)


def state_path(config: Config) -> Path:
    return config.build_dir / "state.json"


@contextlib.contextmanager
def run_log(config: Config, command: str) -> Iterator[Path]:
    """Keep this run's log lines in build/<deployment>/logs/ (searched by the canary)."""
    logs = config.build_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    path = logs / f"{command}-{time.strftime('%Y%m%dT%H%M%S')}.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        handler.close()


MODES = ("real", "sandbox")


def _on_event(console: Console) -> Callable[[StageEvent], None]:
    def on_event(event: StageEvent) -> None:
        style = {"failed": "red", "done": "green", "skipped": "cyan", "stopping": "yellow"}.get(
            event.kind, "bold"
        )
        took = f" ({event.seconds:.1f} s)" if event.seconds else ""
        detail = f": {event.detail}" if event.detail else ""
        log.info("stage %s %s%s%s", event.stage, event.kind, took, detail)
        console.print(
            f"[{style}]{event.stage}: {event.kind}{took}[/{style}]{detail}", highlight=False
        )

    return on_event


def runner(config: Config, account: Account, mode: str, console: Console) -> Runner:
    """The one runner: every task that creates, reads or removes a stage goes through it."""
    state = State.load(state_path(config), mode)

    def make_context(upstream: Mapping[str, Any]) -> StageContext:
        return StageContext(config, Upstream(**dict(upstream)), account, console)

    return Runner(stage_specs(), state, make_context, _on_event(console))


@contextlib.contextmanager
def account(config: Config, mode: str, console: Console, start_server: bool) -> Iterator[Account]:
    """The account a run deploys into: the user's AWS account, or the sandbox's moto server.

    Raises ``NoSandbox`` when the sandbox is asked for and none runs (``start_server`` off).
    """
    if mode not in MODES:
        raise ToolkitError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    if mode == "real":
        deployment = config.model.deployment
        yield AwsAccount(
            config.region,
            deployment.pulumi_backend,
            console=console,
            pulumi_secrets_provider=deployment.pulumi_secrets_provider,
        )
        return
    server = (
        sandbox_server.start(config.build_dir)
        if start_server
        else sandbox_server.running(config.build_dir)
    )
    if server is None:
        raise NoSandbox(config)
    with sandbox_server.aws_environment(server, config.region):
        yield SandboxAccount(server, config.region, config.build_dir)


class NoSandbox(ToolkitError):
    def __init__(self, config: Config) -> None:
        super().__init__(
            f"no sandbox is running for deployment '{config.name}': "
            "start one with `invoke up --sandbox`"
        )


def real_blockers(config: Config) -> list[str]:
    """What a deployment file must say before a real ``up`` (the sandbox and a plan go on
    without it, and say what they assumed)."""
    out = []
    where = config.deployment_file
    if where.is_absolute() and where.is_relative_to(config.root):
        where = where.relative_to(config.root)
    if config.model.cluster.login_nodes.allowed_cidr is None:
        out.append(
            f"cluster.login_nodes.allowed_cidr is not set: say in {where} "
            "who may reach ssh and Workbench (your network's range, e.g. 203.0.113.0/24; "
            "write 0.0.0.0/0 to open them to the whole internet)"
        )
    return out


def up(
    config: Config,
    mode: str,
    console: Console,
    only: set[str] | None = None,
) -> dict[str, Any]:
    names = {s.name for s in stage_specs()}
    if unknown := set(only or ()) - names:
        # Refused before anything starts (no lock, no sandbox server, no state written).
        raise ToolkitError(unknown_stages(unknown, names))
    if mode == "real":
        blockers = real_blockers(config)
        if blockers:
            raise ToolkitError(
                "not starting a real deployment:\n" + "\n".join(f"- {b}" for b in blockers)
            )
    with (
        deployment_lock(config.build_dir, "up"),
        run_log(config, "up"),
        account(config, mode, console, start_server=True) as target,
    ):
        if target.simulated:
            console.print(
                f"[bold]Sandbox rehearsal[/bold] against the {target.label}: "
                "it checks wiring and configuration, not that AWS accepts them."
            )
        started = time.time()
        outputs = runner(config, target, mode, console).run(only)
        summary(config, mode, console, outputs, time.time() - started, target)
        return outputs


def down(
    config: Config, mode: str, console: Console, only: set[str] | None = None
) -> tuple[list[str], dict[str, int]]:
    """Destroy in reverse order; return (stages removed, what remains in the account)."""
    with deployment_lock(config.build_dir, "down"):
        return _down(config, mode, console, only)


def _down(
    config: Config, mode: str, console: Console, only: set[str] | None
) -> tuple[list[str], dict[str, int]]:
    with run_log(config, "down"):
        try:
            with account(config, mode, console, start_server=False) as target:
                removed = runner(config, target, mode, console).destroy(only)
                remaining = remaining_resources(config, mode) if not only else {}
        except NoSandbox:
            # moto keeps everything in memory: what the state file lists vanished with
            # the server that held it.
            if state_path(config).exists():
                log.warning("no sandbox server is running: its resources are already gone")
                state_path(config).unlink()
            sandbox_server.record_path(config.build_dir).unlink(missing_ok=True)
            return [], {}
    if mode == "sandbox" and not State.load(state_path(config), mode).stages:
        sandbox_server.stop(config.build_dir)
    return removed, remaining


def recorded(config: Config, mode: str, stage: str) -> Any:
    """A stage's recorded outputs (typed), or None when it has none."""
    rec = State.load(state_path(config), mode).stages.get(stage)
    if rec is None or rec.status != "done" or not rec.outputs:
        return None
    return contracts.from_dict(contracts.STAGE_OUTPUT_TYPES[stage], rec.outputs)


def remaining_resources(config: Config, mode: str) -> dict[str, int]:
    if mode != "sandbox":
        return {}  # the real stages report what they could not delete themselves
    import boto3

    from pwbcluster.sandbox.inventory import inventory

    return inventory(boto3.Session(region_name=config.region))


def summary(
    config: Config,
    mode: str,
    console: Console,
    outputs: Mapping[str, Any],
    seconds: float,
    target: Account | None = None,
) -> None:
    console.print(status_table(config))
    path, minutes = critical_path(stage_specs())
    console.print(
        f"Critical path on AWS: {' -> '.join(path)} (about {minutes:.0f} min); "
        f"this run took {seconds:.1f} s."
    )
    if mode == "sandbox":
        remaining = remaining_resources(config, mode)
        left = listing(remaining) or "nothing"
        console.print(f"In the sandbox now: {left}.", highlight=False)
    if target is not None:
        for note in target.notes.lines:
            console.print(f"  {note}", highlight=False)
    cluster = outputs.get("cluster")
    if cluster is not None:
        label = " (simulated)" if getattr(cluster, "simulated", False) else ""
        console.print(f"Workbench URL{label}: [bold]{cluster.workbench_url}[/bold]")


def certificate_warnings(config: Config) -> list[str]:
    """``certificate_expiry`` from the recorded services stage (none recorded: none)."""
    from pwbcluster.stages.services.expiry import expiry_warnings

    path = state_path(config)
    if not path.exists():
        return []
    mode = json.loads(path.read_text(encoding="utf-8")).get("mode", "real")
    services = recorded(config, mode, "services")
    return expiry_warnings(services) if services is not None else []


def status_rows(config: Config) -> dict[str, Any]:
    """Each stage's recorded state, honestly: a stage recorded as running while no run
    holds the deployment's lock was interrupted (Ctrl-C, a killed process)."""
    path = state_path(config)
    doc: dict[str, Any] = {"deployment": config.name, "state_file": str(path), "stages": []}
    holder = held_by(config.build_dir)
    doc["running_now"] = holder
    try:
        server = sandbox_server.running(config.build_dir)
    except ToolkitError as exc:
        doc["sandbox_server"] = f"not answering: {exc}"
    else:
        doc["sandbox_server"] = (
            f"running at {server.endpoint} (pid {server.pid})" if server else None
        )
    if not path.exists():
        doc["mode"] = None
        return doc
    raw = json.loads(path.read_text(encoding="utf-8"))
    doc["mode"] = raw.get("mode")
    for spec in stage_specs():
        rec = raw.get("stages", {}).get(spec.name)
        if rec is None:
            doc["stages"].append({"stage": spec.name, "status": "not run"})
            continue
        status = rec["status"]
        if status == "running" and holder is None:
            status = "interrupted"
        took = rec["finished"] - rec["started"] if rec.get("finished") else None
        doc["stages"].append(
            {
                "stage": spec.name,
                "status": status,
                "seconds": round(took, 1) if took else None,
                "outputs": rec.get("outputs") or {},
                "error": rec.get("error"),
                "drift": _drift(config, spec, rec, raw.get("stages", {}))
                if status == "done"
                else None,
            }
        )
    return doc


def _drift(config: Config, spec: Any, rec: dict[str, Any], stages: dict[str, Any]) -> str:
    """Whether the config (and the shipped files) still give the inputs this stage ran with:
    "unchanged", "changed" (`invoke up` would redo it), or "unknown: why"."""
    upstream: dict[str, Any] = {}
    for need in spec.needs:
        outputs = (stages.get(need) or {}).get("outputs")
        if not outputs:
            return f"unknown: {need} has no recorded outputs"
        upstream[need] = contracts.from_dict(contracts.STAGE_OUTPUT_TYPES[need], outputs)
    try:
        ctx = StageContext(config, Upstream(**upstream), account=None)  # type: ignore[arg-type]
        now = fingerprint(spec, ctx)
    except Exception as exc:  # a status must show, whatever one stage's inputs need
        return f"unknown: {exc}"
    return "unchanged" if now == rec.get("fingerprint") else "changed"


def status_failed(doc: dict[str, Any]) -> list[str]:
    return [s["stage"] for s in doc["stages"] if s["status"] in ("failed", "interrupted")]


def status_table(config: Config, doc: dict[str, Any] | None = None) -> Table:
    doc = doc or status_rows(config)
    path = state_path(config)
    table = Table(title=f"Deployment '{config.name}' ({path.relative_to(config.root)})")
    for column in ("stage", "status", "took", "outputs"):
        table.add_column(column, overflow="fold")
    caption = [f"mode: {doc['mode']}" if doc["mode"] else "nothing deployed yet (no state file)"]
    if doc["running_now"]:
        caption.append(f"running now: {doc['running_now']}")
    if doc["sandbox_server"]:
        caption.append(f"sandbox server: {doc['sandbox_server']}")
    table.caption = "; ".join(caption)
    for row in doc["stages"]:
        if row["status"] == "not run":
            table.add_row(row["stage"], "not run", "", "")
            continue
        shown = (
            _summarise(row["stage"], row["outputs"]) if row["status"] == "done" else row["error"]
        )
        if row["status"] == "interrupted":
            shown = "stopped before it finished (no run holds the lock): `invoke up` resumes it"
        took = f"{row['seconds']:.1f} s" if row["seconds"] else ""
        status = row["status"]
        if row.get("drift") == "changed":
            status = "done, config changed since"
            shown = f"{shown}; `invoke up` redoes it" if shown else "`invoke up` redoes it"
        table.add_row(row["stage"], status, took, shown or "")
    return table


def _summarise(stage: str, outputs: dict[str, Any]) -> str:
    keys = {
        "network": ("vpc_id", "bucket_name"),
        "services": ("directory_id", "ldap_uri"),
        "image": ("ami_id", "fingerprint"),
        "cluster": ("cluster_name", "workbench_url"),
        "users": ("created", "verified", "skipped_reason"),
    }.get(stage, ())
    shown = [f"{k}={outputs.get(k)}" for k in keys if outputs.get(k) is not None]
    if outputs.get("simulated"):
        shown.append("simulated")
    return ", ".join(shown)
