"""``invoke lab.up|down|status``: the deployment's services in network namespaces, here.

``lab.up`` (root) makes the bridge pwblab0 and namespaces on 10.78.8.0/24, starts moto
there (the AWS stand-in) and runs the sandbox pipeline against it into
build/<deployment>/lab/, then stands up a Samba AD DC, its TLS front on 636 with the
services stage's certificate, PostgreSQL with TLS and Workbench's role, and a directory
per file system. With ``--nodes`` it then boots the head, two login and two compute nodes
(pwbcluster.lab.nodes) running the project's node scripts, and makes two directory users
and one outside the allowed groups with pwb-users. ``lab.down`` removes everything the
lab's ledger (/run/pwbcluster-lab/pwblab.json) lists, also after a crash or a failed up.
"""

from __future__ import annotations

import time

from invoke import Collection, Context
from rich.console import Console

from pwbcluster.errors import ToolkitError
from pwbcluster.tasks.common import CONFIG_HELP, require_config, task, wired

NOT_YET = "Nodes are not booted (`invoke lab.up --nodes` boots head, login and compute nodes)."


@task(
    help={
        "config": CONFIG_HELP,
        "nodes": "also boot the head, two login and two compute nodes and make lab users",
    }
)
@wired
def up(c: Context, config: str | None = None, nodes: bool = False) -> None:
    """Stand up the deployment's services in network namespaces on this machine (root).

    Idempotent: a second run keeps what runs and redoes what is missing."""
    from pwbcluster.config import load_config
    from pwbcluster.lab import nodes as lab_nodes
    from pwbcluster.lab import services

    reason = services.unavailable_reason()
    if reason:
        raise ToolkitError(reason)
    cfg = load_config(require_config(config or c.config.get("pwbcluster", {}).get("config")))
    console = Console()

    def progress(line: str) -> None:
        console.print(f"lab: {line}", highlight=False)

    lab = services.Lab(cfg, progress=progress)
    started = time.perf_counter()
    try:
        lab.up()
    except ToolkitError as exc:
        raise ToolkitError(f"{exc} (what was made is in the ledger: `invoke lab.down`)") from exc
    if nodes:
        from pwbcluster.lab import users

        try:
            records = lab_nodes.Cluster(lab).up(progress)
            made = users.make(lab)
        except ToolkitError as exc:
            raise ToolkitError(
                f"{exc} (what was made is in the ledger: `invoke lab.down`)"
            ) from exc
        for record in records:
            progress(f"node {record.node}: booted in {record.seconds:.1f} s")
        progress(
            f"users (pwb-users): {', '.join(made.allowed)}; outside the allowed groups: "
            f"{', '.join(made.outsiders)} (passwords in {users.store(lab)})"
        )
    console.print(f"lab: up in {time.perf_counter() - started:.1f} s", highlight=False)
    _print_status(console, lab_nodes.status())
    if not nodes:
        console.print(NOT_YET, highlight=False)


@task(help={"config": "ignored (the lab's ledger says what to remove); accepted like the others"})
@wired
def down(c: Context, config: str | None = None) -> None:
    """Remove everything the lab made (namespaces, bridge, processes, files) (root)."""
    from pwbcluster.lab import services

    console = Console()
    started = time.perf_counter()
    removed, left = services.down()
    took = time.perf_counter() - started
    console.print(f"lab: removed {len(removed)} object(s) in {took:.1f} s", highlight=False)
    for line in removed:
        console.print(f"  {line}", highlight=False)
    if left:
        raise ToolkitError(f"still present after lab.down: {', '.join(left)}")
    console.print("lab: remaining: nothing")


@task(help={"config": "ignored (one lab per machine); accepted like the others"})
@wired
def status(c: Context, config: str | None = None) -> None:
    """Show what the lab runs and where (exits 1 when a recorded process has stopped)."""
    from pwbcluster.lab import nodes as lab_nodes

    console = Console()
    doc = lab_nodes.status()
    _print_status(console, doc)
    stopped = [name for name, state in doc["processes"].items() if state != "running"]
    if stopped:
        raise ToolkitError(f"lab process(es) not running: {', '.join(stopped)}")


def _print_status(console: Console, doc: dict) -> None:
    meta = doc["meta"]
    if not meta and not doc["present"]:
        console.print("lab: nothing is up")
        return
    console.print(f"lab of deployment: {meta.get('deployment', '?')}", highlight=False)
    for name, state in doc["processes"].items():
        console.print(f"  {name}: {state}", highlight=False)
    for key in ("aws_endpoint", "ldap_uri", "bind_user_dn", "ldap_ca", "rds_ca", "aws_ca"):
        if meta.get(key):
            console.print(f"  {key}: {meta[key]}", highlight=False)
    db = meta.get("db")
    if db:
        console.print(
            f"  database: {db['host']}:{db['port']}/{db['name']} as {db['username']} "
            "(sslmode=verify-full with rds_ca)",
            highlight=False,
        )
    for name, fs in (meta.get("shared") or {}).items():
        console.print(
            f"  shared {name} ({fs['type']}, {fs['mount']}): {fs['path']} ({fs['standin']})",
            highlight=False,
        )
    if meta.get("hosts"):
        console.print(
            "  names (in /etc/netns/pwblab-*/hosts):\n    "
            + "\n    ".join(meta["hosts"].strip().splitlines()),
            highlight=False,
        )
    for name, state in (doc.get("nodes") or {}).items():
        console.print(f"  node {name}: {state}", highlight=False)
    console.print(
        "  stand-ins: moto for AWS APIs, a TLS proxy for the LDAPS load balancer, a lab "
        "CA for Amazon's RDS CA, plain directories for EFS/FSx",
        highlight=False,
    )


ns = Collection(up, down, status)
