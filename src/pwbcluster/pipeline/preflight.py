"""Before a real `up`: every missing prerequisite at once, and the deployer's IAM policy.

``invoke preflight`` asks the machine (the pulumi CLI, Node.js for ParallelCluster's CDK)
and the account (credentials, the region's opt-in status, the service quotas the config
needs at full scale against what the account already uses) and lists every finding in one
table: ``ok``, ``missing`` (with what to do) or ``unknown`` (with why it could not be
known: a quota the caller may not read, a stand-in that has no such quota). Nothing is
created. A stand-in never answers "ok" for what it cannot know.

Quota codes are Service Quotas' (service ``ec2``, ``elasticloadbalancing``, ``vpc``):
the running On-Demand vCPU quotas per instance-family group, EC2-VPC Elastic IPs,
Network Load Balancers per Region, VPCs per Region. They were read from public material
that uses them (the AWS EC2 "On-Demand Instance quotas" groups: Standard A, C, D, H, I,
M, R, T, Z; F; G and VT; Inf; P; X; DL; Trn; HPC), not from a live account.
"""

from __future__ import annotations

import re
import shutil
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from pwbcluster.config.model import Deployment
from pwbcluster.errors import MissingDependency

OK = "ok"
MISSING = "missing"
UNKNOWN = "unknown"

Client = Callable[[str], Any]


@dataclass(frozen=True)
class Finding:
    what: str
    status: str  # OK, MISSING or UNKNOWN
    detail: str
    fix: str = ""


# Running On-Demand vCPU quotas (service "ec2"), by the family letters they cover.
VCPU_QUOTAS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "L-1216C47A",
        "Standard (A, C, D, H, I, M, R, T, Z)",
        ("a", "c", "d", "h", "i", "m", "r", "t", "z"),
    ),
    ("L-DB2E81BA", "G and VT", ("g", "vt")),
    ("L-417A185B", "P", ("p",)),
    ("L-74FC7D96", "F", ("f",)),
    ("L-1945791B", "Inf", ("inf",)),
    ("L-7295265B", "X", ("x",)),
    ("L-6E869C2A", "DL", ("dl",)),
    ("L-2C3B7624", "Trn", ("trn",)),
    ("L-F7808C92", "HPC", ("hpc",)),
)
# Longest first: "inf2" is Inf (not I), "dl1" DL (not D), "trn1" Trn (not T).
_PREFIXES = sorted(
    ((p, code, name) for code, name, ps in VCPU_QUOTAS for p in ps), key=lambda x: -len(x[0])
)
EIP_QUOTA = ("ec2", "L-0263D0A3", "EC2-VPC Elastic IPs")
NLB_QUOTA = ("elasticloadbalancing", "L-69A177A2", "Network Load Balancers per Region")
VPC_QUOTA = ("vpc", "L-F678F1CE", "VPCs per Region")


def vcpu_group(instance_type: str) -> tuple[str, str] | None:
    """(quota code, group name) of an instance type's running On-Demand vCPU quota, or None
    for a family no such quota covers (High Memory "u-", Mac)."""
    letters = re.match(r"[a-z]+", instance_type.lower())
    if not letters or letters.group(0) == "mac":
        return None
    prefix = letters.group(0)
    for p, code, name in _PREFIXES:
        if prefix.startswith(p):
            return code, name
    return None


def vcpu_demand(model: Deployment) -> list[tuple[str, int, str]]:
    """(instance type, count at full scale, role) of every instance the deployment runs."""
    cluster, aux = model.cluster, model.aux
    demand = [
        (cluster.head_node.instance_type, 1, "head node"),
        (aux.jump_host.instance_type, 1, "jump host"),
        (model.image.build_instance_type, 1, "image build (while it runs)"),
    ]
    if cluster.login_nodes.count:
        demand.append((cluster.login_nodes.instance_type, cluster.login_nodes.count, "login nodes"))
    for queue in cluster.queues:
        demand.append((queue.instance_type, queue.max_count, f"queue {queue.name} at max_count"))
    return demand


def local_findings() -> list[Finding]:
    from pwbcluster.aws.pulumi_driver import INSTALL_HINT
    from pwbcluster.pcluster.venv import node_version

    found = []
    pulumi = shutil.which("pulumi")
    if pulumi:
        found.append(Finding("pulumi CLI", OK, pulumi))
    else:
        found.append(Finding("pulumi CLI", MISSING, "not on PATH", INSTALL_HINT))
    try:
        _, version = node_version()
        found.append(Finding("Node.js (ParallelCluster's CDK)", OK, version))
    except MissingDependency as exc:
        found.append(Finding("Node.js (ParallelCluster's CDK)", MISSING, "", str(exc)))
    return found


def _error_code(exc: Exception) -> str:
    return exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""


def _quota(client: Client, service: str, code: str) -> tuple[float | None, str]:
    """The account's applied quota value (or AWS's default), or None and why not."""
    sq = client("service-quotas")
    for method in ("get_service_quota", "get_aws_default_service_quota"):
        try:
            value = float(
                getattr(sq, method)(ServiceCode=service, QuotaCode=code)["Quota"]["Value"]
            )
            return value, "" if method == "get_service_quota" else " (AWS default)"
        except ClientError as exc:
            if _error_code(exc) in ("NoSuchResourceException", "NoSuchResource"):
                continue  # no applied value: try the default
            return None, f"{service}/{code}: {_error_code(exc) or exc}"
        except BotoCoreError as exc:
            return None, f"{service}/{code}: {exc}"
        except NotImplementedError:  # a stand-in (moto) without this call: cannot know
            return None, f"{service}/{code}: the endpoint does not implement {method}"
    return None, f"{service}/{code}: the endpoint has no such quota"


def _running_vcpus(ec2: Any) -> dict[str, int]:
    """vCPUs of the account's running and pending instances, by quota code."""
    counts: dict[str, int] = defaultdict(int)
    types: dict[str, int] = defaultdict(int)
    paginator = ec2.get_paginator("describe_instances")
    states = [{"Name": "instance-state-name", "Values": ["pending", "running"]}]
    for page in paginator.paginate(Filters=states):
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                types[instance["InstanceType"]] += 1
    vcpus = _vcpus(ec2, types)
    for itype, n in types.items():
        group = vcpu_group(itype)
        if group and itype in vcpus:
            counts[group[0]] += n * vcpus[itype]
    return counts


def _vcpus(ec2: Any, types: Iterable[str]) -> dict[str, int]:
    """Default vCPUs per instance type; a type the region does not offer is left out (EC2
    refuses the whole call for one unknown type, so then each is asked alone)."""
    wanted = sorted(set(types))
    found: dict[str, int] = {}

    def ask(batch: list[str]) -> None:
        for item in ec2.describe_instance_types(InstanceTypes=batch)["InstanceTypes"]:
            found[item["InstanceType"]] = int(item["VCpuInfo"]["DefaultVCpus"])

    for start in range(0, len(wanted), 100):
        batch = wanted[start : start + 100]
        try:
            ask(batch)
        except ClientError as exc:
            if _error_code(exc) != "InvalidInstanceType":
                raise
            for one in batch:
                try:
                    ask([one])
                except ClientError as inner:
                    if _error_code(inner) != "InvalidInstanceType":
                        raise
    return found


def _headroom(what: str, need: int, quota: float | None, why: str, used: int) -> Finding:
    if quota is None:
        return Finding(what, UNKNOWN, f"needs {need}; quota not readable: {why}")
    free = int(quota) - used
    detail = f"needs {need}, quota {int(quota)}{why}, in use {used}, free {free}"
    if need <= free:
        return Finding(what, OK, detail)
    return Finding(
        what,
        MISSING,
        detail,
        f"ask for an increase in Service Quotas (at least {used + need}) or lower the config",
    )


def _unchecked() -> list[Finding]:
    """What the account part would have checked: listed, so nothing looks fine by omission."""
    why = "not checked: needs working credentials"
    return [
        Finding(what, UNKNOWN, why)
        for what in (
            "region",
            "instance types offered",
            "vCPU quotas",
            "VPC, Elastic IP and NLB quotas",
        )
    ]


def account_findings(model: Deployment, client: Client) -> list[Finding]:
    """Credentials, the region and the quotas, against the account ``client`` reaches."""
    region = model.deployment.region
    try:
        who = client("sts").get_caller_identity()
    except NoCredentialsError:
        from pwbcluster.aws.pulumi_driver import CREDENTIALS_HINT

        return [Finding("AWS credentials", MISSING, "none found", CREDENTIALS_HINT), *_unchecked()]
    except (ClientError, BotoCoreError) as exc:
        return [
            Finding("AWS credentials", MISSING, f"refused: {exc}", "renew or fix them"),
            *_unchecked(),
        ]
    found = [Finding("AWS credentials", OK, who.get("Arn", ""))]
    ec2 = client("ec2")
    try:
        regions = ec2.describe_regions(AllRegions=True)["Regions"]
        status = {r["RegionName"]: r.get("OptInStatus", "") for r in regions}
        state = status.get(region)
        if state in ("opt-in-not-required", "opted-in"):
            found.append(Finding(f"region {region}", OK, state))
        elif state is None:
            found.append(Finding(f"region {region}", MISSING, "not offered to this account"))
        elif state == "":
            found.append(Finding(f"region {region}", UNKNOWN, "no opt-in status in the answer"))
        else:
            found.append(
                Finding(
                    f"region {region}",
                    MISSING,
                    state,
                    "enable it: AWS console > Account > AWS Regions, or "
                    f"`aws account enable-region --region-name {region}`",
                )
            )
    except (ClientError, BotoCoreError) as exc:
        found.append(Finding(f"region {region}", UNKNOWN, f"ec2:DescribeRegions: {exc}"))

    demand = vcpu_demand(model)
    asked = True
    try:
        vcpus = _vcpus(ec2, [t for t, _, _ in demand])
        used = _running_vcpus(ec2)
    except (ClientError, BotoCoreError) as exc:
        found.append(Finding("vCPU quotas", UNKNOWN, f"ec2:DescribeInstanceTypes: {exc}"))
        vcpus, used, asked = {}, {}, False
    need: dict[tuple[str, str], int] = defaultdict(int)
    roles: dict[tuple[str, str], list[str]] = defaultdict(list)
    for itype, count, role in demand:
        group = vcpu_group(itype)
        if itype not in vcpus:
            if asked:
                found.append(
                    Finding(
                        f"instance type {itype}",
                        MISSING,
                        f"not offered in {region} ({role})",
                        "choose a type the region offers (`aws ec2 describe-instance-type-offerings`)",
                    )
                )
            continue
        if group is None:
            found.append(Finding(f"vCPUs for {itype}", UNKNOWN, "no known On-Demand vCPU quota"))
            continue
        need[group] += count * vcpus[itype]
        roles[group].append(f"{role}: {count} x {itype}")
    for (code, name), vcpu_need in sorted(need.items()):
        quota, why = _quota(client, "ec2", code)
        finding = _headroom(f"vCPUs, On-Demand {name}", vcpu_need, quota, why, used.get(code, 0))
        found.append(
            Finding(
                finding.what,
                finding.status,
                f"{finding.detail} ({'; '.join(roles[(code, name)])})",
                finding.fix,
            )
        )

    network = model.aux.network
    if network.vpc_id is None:
        found.append(
            _regional(client, "VPCs", 1, VPC_QUOTA, lambda: len(ec2.describe_vpcs()["Vpcs"]))
        )
        if network.nat_gateway:
            found.append(
                _regional(
                    client,
                    "Elastic IPs (NAT gateway)",
                    1,
                    EIP_QUOTA,
                    lambda: len(ec2.describe_addresses()["Addresses"]),
                )
            )

    def network_balancers() -> int:
        balancers = client("elbv2").describe_load_balancers()["LoadBalancers"]
        return sum(1 for b in balancers if b.get("Type") == "network")

    # The directory's LDAPS front and the login nodes' balancer.
    nlbs = 1 + (1 if model.cluster.login_nodes.count else 0)
    found.append(_regional(client, "Network Load Balancers", nlbs, NLB_QUOTA, network_balancers))
    return found


def _regional(
    client: Client, what: str, need: int, quota: tuple[str, str, str], in_use: Callable[[], int]
) -> Finding:
    """A per-region quota against what the account already uses; what cannot be counted is
    unknown (counting it as 0 would pass what AWS may refuse)."""
    value, why = _quota(client, quota[0], quota[1])
    try:
        used = in_use()
    except (ClientError, BotoCoreError) as exc:
        return Finding(what, UNKNOWN, f"needs {need}; what is in use is not readable: {exc}")
    return _headroom(what, need, value, why, used)


def table(findings: list[Finding], where: str) -> Any:
    from rich.table import Table

    out = Table(title=f"preflight against {where}: {_summary(findings)}", title_justify="left")
    for column in ("check", "status", "detail", "what to do"):
        out.add_column(column, overflow="fold")
    colours = {OK: "green", MISSING: "red", UNKNOWN: "yellow"}
    for f in findings:
        out.add_row(f.what, f"[{colours[f.status]}]{f.status}[/]", f.detail, f.fix)
    return out


def _summary(findings: list[Finding]) -> str:
    counts = {s: sum(1 for f in findings if f.status == s) for s in (OK, MISSING, UNKNOWN)}
    return ", ".join(f"{n} {s}" for s, n in counts.items())
