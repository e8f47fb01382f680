"""Semantic checks: what a schema cannot say, each with a name and a level.

A check is a function registered with ``@check(name, level, summary)`` that yields
``(path, message, expected)`` findings. Any check can be switched off by name in the
deployment file (``deployment.disable_checks``) or with ``--skip-check NAME``.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from pwbcluster.config.inputs import InvalidInput, guarded, skipped_if_invalid
from pwbcluster.config.problems import Level, Origin, Path, Problem, format_path
from pwbcluster.errors import ToolkitError


class Checked(Protocol):
    """What the checks read of a loaded configuration (``pwbcluster.config.Config``)."""

    data: dict[str, Any]

    def where(self, path: Path) -> Origin: ...


Finding = tuple[Path, str, str | None]
CheckFn = Callable[[dict[str, Any]], Iterator[Finding]]


@dataclass(frozen=True)
class Check:
    name: str
    level: Level
    summary: str
    fn: CheckFn


REGISTRY: dict[str, Check] = {}

# Families whose instances carry NVIDIA (or other) accelerators ParallelCluster can schedule.
GPU_FAMILIES = frozenset(
    {
        "p2",
        "p3",
        "p3dn",
        "p4d",
        "p4de",
        "p5",
        "p5e",
        "p5en",
        "p6",
        "g3",
        "g3s",
        "g4dn",
        "g4ad",
        "g5",
        "g5g",
        "g6",
        "g6e",
        "g6f",
        "gr6",
        "gr6f",
        "g7e",
    }
)
# Ports the cluster already uses; Workbench must not collide with them.
RESERVED_PORTS = {
    22: "ssh",
    443: "HTTPS on the load balancer",
    988: "FSx for Lustre",
    2049: "NFS/EFS",
    5432: "PostgreSQL",
    6817: "slurmctld",
    6818: "slurmd",
    6819: "slurmdbd",
    **{p: "slurmctld (ParallelCluster)" for p in range(6820, 6830)},
}
EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")


def check(name: str, level: Level, summary: str) -> Callable[[CheckFn], CheckFn]:
    def register(fn: CheckFn) -> CheckFn:
        REGISTRY[name] = Check(name, level, summary, fn)
        return fn

    return register


@dataclass
class CheckRun:
    """What the checks found, and which could not look at everything they read."""

    problems: list[Problem] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def run_checks(
    config: Checked, skip: tuple[str, ...] = (), refused: frozenset[Path] = frozenset()
) -> CheckRun:
    """Run every check not switched off; ``refused`` are the key paths the schema refused.

    A check that reads a refused value stops there (``InvalidInput``), and its name goes
    to ``skipped``; what it found before that, and every other check, still counts.
    """
    run = CheckRun()
    seen: set[Path] = set()
    data = guarded(config.data, refused, seen=seen)
    try:
        disabled = list(data["deployment"].get("disable_checks") or [])
    except InvalidInput:
        disabled = []
    for index, name in enumerate(disabled):
        if name not in REGISTRY:
            path: Path = ("deployment", "disable_checks", index)
            close = difflib.get_close_matches(name, REGISTRY, n=1)
            expected: str | None = (
                f"'{close[0]}'" if close else "one of " + ", ".join(sorted(REGISTRY))
            )
            run.problems.append(
                Problem(config.where(path), path, f"no check named '{name}'", expected)
            )
    for name in skip:
        if name not in REGISTRY:
            close = difflib.get_close_matches(name, REGISTRY, n=1)
            hint = f"did you mean '{close[0]}'?" if close else "`invoke config.checks` lists them"
            raise ToolkitError(f"--skip-check: no check named '{name}' ({hint})")
    off = set(disabled) | set(skip)
    for item in REGISTRY.values():
        if item.name in off:
            continue
        seen.clear()
        try:
            for path, message, expected in item.fn(data):
                run.problems.append(
                    Problem(config.where(path), path, message, expected, item.level, item.name)
                )
        except InvalidInput:
            pass  # the rest of this check reads a refused value; `seen` names it
        if seen:
            paths = ", ".join(sorted(format_path(p) for p in seen))
            run.skipped.append(f"{item.name} ({paths})")
    return run


def family(instance_type: str) -> str:
    return instance_type.split(".", 1)[0]


@check("queue_min_le_max", Level.ERROR, "a queue's min_count is not above its max_count")
def _queue_min_le_max(data: dict[str, Any]) -> Iterator[Finding]:
    for i, q in enumerate(data["cluster"]["queues"]):
        with skipped_if_invalid():
            if q["max_count"] == 0:
                yield (
                    ("cluster", "queues", i, "max_count"),
                    "max_count 0 makes an empty queue",
                    "at least 1",
                )
            if q["min_count"] > q["max_count"]:
                yield (
                    ("cluster", "queues", i, "min_count"),
                    f"min_count {q['min_count']} is above max_count {q['max_count']}",
                    f"a value from 0 to {q['max_count']}",
                )


@check("queue_names_unique", Level.ERROR, "queue names are unique and valid Slurm partitions")
def _queue_names(data: dict[str, Any]) -> Iterator[Finding]:
    seen: dict[str, int] = {}
    for i, q in enumerate(data["cluster"]["queues"]):
        with skipped_if_invalid():
            name = q["name"]
            if name in seen:
                yield (
                    ("cluster", "queues", i, "name"),
                    f"queue '{name}' is already defined at queues[{seen[name]}]",
                    "a unique name",
                )
            seen.setdefault(name, i)
            if name.lower() == "default":
                yield (
                    ("cluster", "queues", i, "name"),
                    "'default' is a Slurm keyword (PartitionName=DEFAULT)",
                    "another name",
                )


@check("gpu_queue_instance", Level.ERROR, "a GPU queue uses a GPU instance family, and back")
def _gpu_queue(data: dict[str, Any]) -> Iterator[Finding]:
    for i, q in enumerate(data["cluster"]["queues"]):
        with skipped_if_invalid():
            fam = family(q["instance_type"])
            if q.get("gpu") and fam not in GPU_FAMILIES:
                yield (
                    ("cluster", "queues", i, "instance_type"),
                    f"queue '{q['name']}' is a GPU queue but {q['instance_type']} has no GPU",
                    "a GPU family such as " + ", ".join(sorted(GPU_FAMILIES)[:6]),
                )
            if not q.get("gpu") and fam in GPU_FAMILIES:
                yield (
                    ("cluster", "queues", i, "instance_type"),
                    f"{q['instance_type']} has GPUs but queue '{q['name']}' is not marked gpu",
                    "gpu: true on this queue",
                )


@check("gpu_stack_in_image", Level.WARNING, "GPU queues run on an image with the GPU stack")
def _gpu_stack(data: dict[str, Any]) -> Iterator[Finding]:
    if data["image"]["gpu"]["enabled"]:
        return
    for i, q in enumerate(data["cluster"]["queues"]):
        with skipped_if_invalid():
            if q.get("gpu"):
                yield (
                    ("cluster", "queues", i, "gpu"),
                    f"GPU queue '{q['name']}' but image.gpu.enabled is false: no CUDA/cuDNN",
                    "image.gpu.enabled: true",
                )


@check("default_versions_listed", Level.ERROR, "the default R and Python are in their lists")
def _defaults(data: dict[str, Any]) -> Iterator[Finding]:
    for lang in ("r", "python"):
        with skipped_if_invalid():
            spec = data["image"][lang]
            versions = list(spec["versions"])
            if spec["default"] not in versions:
                yield (
                    ("image", lang, "default"),
                    f"default {spec['default']} is not among versions {versions}",
                    "one of " + ", ".join(versions),
                )


@check("login_nodes_ha", Level.WARNING, "two or more login nodes, so Workbench survives one")
def _login_ha(data: dict[str, Any]) -> Iterator[Finding]:
    count = data["cluster"]["login_nodes"]["count"]
    if count < 2:
        yield (
            ("cluster", "login_nodes", "count"),
            f"{count} login node: Workbench stops when it does",
            "2 or more for high availability",
        )


@check("ha_controllers", Level.WARNING, "controller HA has backups and a sane timeout")
def _ha(data: dict[str, Any]) -> Iterator[Finding]:
    ha = data["cluster"]["ha"]
    if ha["controllers"] and ha["slurmctld_timeout"] < 5:
        yield (
            ("cluster", "ha", "slurmctld_timeout"),
            f"{ha['slurmctld_timeout']} s lets a short network pause trigger a takeover",
            "5 s or more",
        )


@check("fsx_capacity", Level.ERROR, "FSx for Lustre capacity fits its deployment type")
def _fsx(data: dict[str, Any]) -> Iterator[Finding]:
    home = data["cluster"]["storage"]["home"]
    base: Path = ("cluster", "storage", "home")
    if home["type"] != "FsxLustre":
        for key in ("capacity_gb", "deployment_type"):
            if key in home:
                yield (
                    (*base, key),
                    f"{key} applies to FsxLustre only, not {home['type']}",
                    "the key removed",
                )
        return
    missing = [k for k in ("capacity_gb", "deployment_type") if k not in home]
    for key in missing:
        yield (base, f"FsxLustre needs {key}", f"{key} under storage.home")
    if missing:
        return
    size, kind = home["capacity_gb"], home["deployment_type"]
    step = 3600 if kind == "SCRATCH_1" else 2400
    valid = size in (1200, 2400) or size % step == 0
    if not valid:
        yield (
            (*base, "capacity_gb"),
            f"{size} GB is not a valid {kind} capacity",
            f"1200, 2400 or a multiple of {step}",
        )


@check("cidr_valid", Level.ERROR, "CIDRs parse and the VPC range is private and large enough")
def _cidrs(data: dict[str, Any]) -> Iterator[Finding]:
    targets: list[tuple[tuple[str, str, str], bool]] = [
        (("aux", "network", "cidr"), True),
        (("cluster", "login_nodes", "allowed_cidr"), False),
    ]
    for (section, group, key), is_vpc in targets:
        path: Path = (section, group, key)
        try:
            text = data[section][group][key]
        except InvalidInput:
            continue
        if text is None:
            continue  # allowed_cidr unset: the real `up` refuses it (orchestrate.real_blockers)
        try:
            net = ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            yield (path, f"'{text}' is not a valid CIDR ({exc})", "e.g. 10.20.0.0/16")
            continue
        if is_vpc and (net.version != 4 or not net.is_private or not 16 <= net.prefixlen <= 22):
            yield (
                path,
                f"{text} cannot hold the VPC's subnets",
                "a private IPv4 range from /16 to /22, e.g. 10.20.0.0/16",
            )


@check("email_valid", Level.ERROR, "the owner email is an email address")
def _email(data: dict[str, Any]) -> Iterator[Finding]:
    email = str(data["deployment"]["owner_email"])
    if not EMAIL.match(email):
        yield (
            ("deployment", "owner_email"),
            f"'{email}' is not an email address",
            "name@example.com",
        )


@check("existing_vpc_complete", Level.ERROR, "an existing VPC comes with its subnets")
def _existing_vpc(data: dict[str, Any]) -> Iterator[Finding]:
    net = data["aux"]["network"]
    base: Path = ("aux", "network")
    if net["vpc_id"]:
        if not net["public_subnet_ids"]:
            yield (
                (*base, "public_subnet_ids"),
                "an existing VPC needs a public subnet",
                "at least 1 subnet id (login load balancer)",
            )
        if len(net["private_subnet_ids"]) < 2:
            yield (
                (*base, "private_subnet_ids"),
                "an existing VPC needs private subnets in 2 AZs",
                "at least 2 subnet ids (databases and directory need two AZs)",
            )
    elif net["public_subnet_ids"] or net["private_subnet_ids"]:
        yield (
            (*base, "vpc_id"),
            "subnet ids are given but no vpc_id",
            "the vpc_id of those subnets, or no subnet ids",
        )
    overlap = set(net["public_subnet_ids"]) & set(net["private_subnet_ids"])
    if overlap:
        yield (
            (*base, "private_subnet_ids"),
            f"{sorted(overlap)} listed as public and private",
            "each subnet in one list",
        )


@check("ports_distinct", Level.ERROR, "Workbench's port is free of the cluster's own ports")
def _ports(data: dict[str, Any]) -> Iterator[Finding]:
    port = data["cluster"]["workbench"]["port"]
    if port in RESERVED_PORTS:
        yield (
            ("cluster", "workbench", "port"),
            f"port {port} is used by {RESERVED_PORTS[port]}",
            "another port, e.g. 8787",
        )


@check("databases_present", Level.ERROR, "features that need a database have one")
def _databases(data: dict[str, Any]) -> Iterator[Finding]:
    dbs = data["aux"]["databases"]
    with skipped_if_invalid():
        if data["cluster"]["slurm_accounting"] and not dbs["slurm_accounting"]["enabled"]:
            yield (
                ("cluster", "slurm_accounting"),
                "Slurm accounting needs its database",
                "aux.databases.slurm_accounting.enabled: true",
            )
    with skipped_if_invalid():
        if data["cluster"]["workbench"]["audit_database"] and not dbs["audit"]["enabled"]:
            yield (
                ("cluster", "workbench", "audit_database"),
                "the audit database is not created",
                "aux.databases.audit.enabled: true",
            )


@check("directory_size", Level.ERROR, "the directory size exists for its type")
def _directory(data: dict[str, Any]) -> Iterator[Finding]:
    d = data["aux"]["directory"]
    sizes = {"SimpleAD": ("Small", "Large"), "MicrosoftAD": ("Standard", "Enterprise")}[d["type"]]
    if d["size"] not in sizes:
        yield (
            ("aux", "directory", "size"),
            f"{d['type']} has no size '{d['size']}'",
            " or ".join(sizes),
        )


@check("directory_tls", Level.WARNING, "directory traffic is encrypted")
def _directory_tls(data: dict[str, Any]) -> Iterator[Finding]:
    if not data["aux"]["directory"]["ldaps"]:
        yield (
            ("aux", "directory", "ldaps"),
            "directory traffic (including the bind password) crosses the VPC in clear text",
            "ldaps: true",
        )


@check("user_names_fit", Level.ERROR, "generated user names fit the directory's limits")
def _user_names(data: dict[str, Any]) -> Iterator[Finding]:
    u = data["aux"]["users"]
    base: Path = ("aux", "users")
    with skipped_if_invalid():
        if len(u["prefix"]) + u["digits"] > 20:
            yield (
                (*base, "prefix"),
                f"'{u['prefix']}' + {u['digits']} digits is over 20 characters",
                "a name of at most 20 characters (sAMAccountName)",
            )
    last = u["start"] + u["count"] - 1
    if u["count"] and len(str(last)) > u["digits"]:
        yield (
            (*base, "count"),
            f"user number {last} does not fit in {u['digits']} digits",
            f"digits: {len(str(last))} or a smaller count",
        )


@check("certificate_region", Level.ERROR, "the TLS certificate is in the deployment's region")
def _certificate(data: dict[str, Any]) -> Iterator[Finding]:
    arn = data["cluster"]["workbench"]["tls_certificate_arn"]
    region = data["deployment"]["region"]
    if arn and arn.split(":")[3] != region:
        yield (
            ("cluster", "workbench", "tls_certificate_arn"),
            f"certificate is in {arn.split(':')[3]}, the load balancer in {region}",
            f"an ACM certificate in {region}",
        )


@check(
    "workbench_callback_certificate",
    Level.ERROR,
    "sessions can verify the certificate at the address they call back to",
)
def _callback_certificate(data: dict[str, Any]) -> Iterator[Finding]:
    wb = data["cluster"]["workbench"]
    base = ("cluster", "workbench")
    if wb["tls_certificate_arn"] and not wb["tls"]:
        yield (
            (*base, "tls"),
            "tls is false but tls_certificate_arn is set: the listener cannot be both",
            "tls: true (with your certificate) or no tls_certificate_arn",
        )
    elif wb["tls_certificate_arn"] and not wb["hostname"]:
        # Sessions call back to Workbench through the balancer (launcher-sessions-callback-
        # address, checked by default): by its AWS name the check fails, as the
        # certificate names your domain.
        yield (
            (*base, "hostname"),
            "your certificate is set but hostname is not: sessions would call back to the "
            "load balancer's AWS name, which your certificate does not cover, and fail "
            "its check",
            "hostname: the name your certificate covers, pointed at the login load balancer",
        )


@check("workbench_plain_http", Level.WARNING, "Workbench is served over TLS")
def _plain_http(data: dict[str, Any]) -> Iterator[Finding]:
    if not data["cluster"]["workbench"]["tls"]:
        yield (
            ("cluster", "workbench", "tls"),
            "tls is false: passwords and sessions cross the network in plain HTTP",
            "tls: true (the default; a certificate is generated if you bring none)",
        )


@check("workbench_license", Level.WARNING, "a Workbench licence is configured")
def _license(data: dict[str, Any]) -> Iterator[Finding]:
    wb = data["cluster"]["workbench"]
    if wb["license_kind"] != "server" and not wb["license_secret_arn"]:
        yield (
            ("cluster", "workbench", "license_secret_arn"),
            "no licence: Posit Workbench needs a licence key, file or licence server, and "
            "the login nodes will not have one (the sandbox and a plan do not need it)",
            f"the ARN of a secret holding the licence {wb['license_kind']}, or "
            "license_kind: server with license_server",
        )


@check("workbench_license_source", Level.ERROR, "the licence settings name one source")
def _license_source(data: dict[str, Any]) -> Iterator[Finding]:
    wb = data["cluster"]["workbench"]
    base = ("cluster", "workbench")
    if wb["license_kind"] == "server":
        if not wb["license_server"]:
            yield (
                (*base, "license_server"),
                "license_kind is server but no license_server is named",
                "license_server: your floating licence server (host, host:port, an https:// "
                "URL or a hosted server's UUID)",
            )
        if wb["license_secret_arn"]:
            # Posit: a licence file in /var/lib/rstudio-server bypasses every other method.
            yield (
                (*base, "license_secret_arn"),
                "a floating licence server and a licence secret are both set: Workbench "
                "would use one and ignore the other",
                "license_secret_arn: null (leases come from the server)",
            )
    elif wb["license_server"]:
        yield (
            (*base, "license_server"),
            f"license_server is set but license_kind is {wb['license_kind']}: the server "
            "would not be used",
            "license_kind: server, or license_server: null",
        )


@check("workbench_dns_record", Level.ERROR, "a Route 53 record has a name to write")
def _dns_record(data: dict[str, Any]) -> Iterator[Finding]:
    wb = data["cluster"]["workbench"]
    if wb["route53_zone_id"] and not wb["hostname"]:
        yield (
            ("cluster", "workbench", "route53_zone_id"),
            "route53_zone_id is set but hostname is not: there is no name to write",
            "hostname: the name in that zone users will type",
        )


# Posit marks load balancing for the Enhanced and Advanced tiers
# (docs.posit.co/ide/server-pro/load_balancing/), multi-server installations for Advanced
# (docs.posit.co/ide/server-pro/getting_started/installation/multi_server_installation.html).
ENHANCED_MAX_NODES = 2


@check("workbench_license_tier", Level.ERROR, "the licence tier covers the design")
def _license_tier(data: dict[str, Any]) -> Iterator[Finding]:
    tier = data["cluster"]["workbench"]["license_tier"]
    count = data["cluster"]["login_nodes"]["count"]
    path = ("cluster", "workbench", "license_tier")
    if tier == "standard":
        yield (
            path,
            "the Standard tier has neither the Job Launcher (sessions on Slurm) nor load "
            "balancing, and this deployment needs both",
            "an Enhanced or Advanced licence",
        )
    elif tier == "enhanced" and count > ENHANCED_MAX_NODES:
        yield (
            path,
            f"{count} login nodes load-balanced need the Advanced tier (Enhanced: at most "
            f"{ENHANCED_MAX_NODES})",
            f"an Advanced licence, or cluster.login_nodes.count: {ENHANCED_MAX_NODES}",
        )
