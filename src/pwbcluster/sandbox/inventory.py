"""What exists in an account (the sandbox's moto, or a real one): counted per kind.

Used for the summary after ``invoke up --sandbox`` and to prove ``invoke down`` leaves
nothing: defaults every account has (the default VPC and its parts) are not counted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

# What `down` keeps on purpose, reported but not a failure: the databases' final snapshots
# (aux.databases.workbench.final_snapshot) and secrets in their recovery window
# (aux.secrets.recovery_window_days: still there, restorable, their names taken).
FINAL_SNAPSHOTS = "final database snapshot"
SCHEDULED_SECRETS = "recoverable deleted secret"
KEPT_BY_DESIGN = (FINAL_SNAPSHOTS, SCHEDULED_SECRETS)


def split_kept(counts: Mapping[str, int]) -> tuple[dict[str, int], dict[str, int]]:
    """(left behind, kept by design) of an inventory."""
    left = {k: n for k, n in counts.items() if k not in KEPT_BY_DESIGN}
    kept = {k: n for k, n in counts.items() if k in KEPT_BY_DESIGN}
    return left, kept


def _count(fn: Callable[[], int]) -> int:
    try:
        return fn()
    except Exception:  # a service moto (or the account) does not serve counts as nothing
        return 0


def inventory(session: Any, tag_filter: dict[str, str] | None = None) -> dict[str, int]:
    ec2 = session.client("ec2")
    default_vpcs = {
        v["VpcId"]
        for v in ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    }

    def vpcs() -> int:
        return sum(1 for v in ec2.describe_vpcs()["Vpcs"] if v["VpcId"] not in default_vpcs)

    def subnets() -> int:
        return sum(1 for s in ec2.describe_subnets()["Subnets"] if s["VpcId"] not in default_vpcs)

    def security_groups() -> int:
        return sum(
            1
            for g in ec2.describe_security_groups()["SecurityGroups"]
            if g["GroupName"] != "default"
        )

    def igws() -> int:
        return sum(
            1
            for g in ec2.describe_internet_gateways()["InternetGateways"]
            if not any(a.get("VpcId") in default_vpcs for a in g.get("Attachments", []))
        )

    def nat_gateways() -> int:
        return sum(
            1
            for n in ec2.describe_nat_gateways()["NatGateways"]
            if n.get("State") not in ("deleted", "deleting")
        )

    def instances() -> int:
        return sum(
            1
            for r in ec2.describe_instances()["Reservations"]
            for i in r["Instances"]
            if i["State"]["Name"] not in ("terminated", "shutting-down")
        )

    def images() -> int:
        return len(ec2.describe_images(Owners=["self"])["Images"])

    def key_pairs() -> int:
        return len(ec2.describe_key_pairs()["KeyPairs"])

    def eips() -> int:
        return len(ec2.describe_addresses()["Addresses"])

    s3 = session.client("s3")

    def buckets() -> int:
        return len(s3.list_buckets().get("Buckets", []))

    def objects() -> int:
        total = 0
        for bucket in s3.list_buckets().get("Buckets", []):
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"]):
                total += len(page.get("Contents", []))
        return total

    def old_versions() -> int:
        # History in a versioned bucket: not resources of their own, but billable until
        # deleted, so `down` must leave none.
        total = 0
        for bucket in s3.list_buckets().get("Buckets", []):
            for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket["Name"]):
                total += sum(1 for v in page.get("Versions", []) if not v.get("IsLatest"))
                total += len(page.get("DeleteMarkers", []))
        return total

    def secrets() -> int:
        sm = session.client("secretsmanager")
        return sum(len(p["SecretList"]) for p in sm.get_paginator("list_secrets").paginate())

    def secrets_scheduled_for_deletion() -> int:
        # Still in the account: restorable until the window ends, their names taken.
        sm = session.client("secretsmanager")
        pages = sm.get_paginator("list_secrets").paginate(IncludePlannedDeletion=True)
        return sum(1 for p in pages for s in p["SecretList"] if s.get("DeletedDate"))

    def db_snapshots() -> int:
        rds = session.client("rds")
        return len(rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"])

    def db_instances() -> int:
        return len(session.client("rds").describe_db_instances()["DBInstances"])

    def directories() -> int:
        return len(session.client("ds").describe_directories()["DirectoryDescriptions"])

    def load_balancers() -> int:
        return len(session.client("elbv2").describe_load_balancers()["LoadBalancers"])

    def target_groups() -> int:
        return len(session.client("elbv2").describe_target_groups()["TargetGroups"])

    def iam_policies() -> int:
        return len(session.client("iam").list_policies(Scope="Local")["Policies"])

    def iam_roles() -> int:
        return sum(
            1
            for r in session.client("iam").list_roles()["Roles"]
            if not r["Path"].startswith("/aws-service-role/")
        )

    def certificates() -> int:
        return len(session.client("acm").list_certificates()["CertificateSummaryList"])

    def file_systems() -> int:
        return len(session.client("efs").describe_file_systems()["FileSystems"])

    def stacks() -> int:
        cfn = session.client("cloudformation")
        return sum(
            1 for s in cfn.list_stacks()["StackSummaries"] if s["StackStatus"] != "DELETE_COMPLETE"
        )

    counters: dict[str, Callable[[], int]] = {
        "vpc": vpcs,
        "subnet": subnets,
        "security group": security_groups,
        "internet gateway": igws,
        "nat gateway": nat_gateways,
        "elastic ip": eips,
        "instance": instances,
        "image": images,
        "key pair": key_pairs,
        "bucket": buckets,
        "object": objects,
        "secret": secrets,
        SCHEDULED_SECRETS: secrets_scheduled_for_deletion,
        "database": db_instances,
        FINAL_SNAPSHOTS: db_snapshots,
        "directory": directories,
        "load balancer": load_balancers,
        "target group": target_groups,
        "iam policy": iam_policies,
        "iam role": iam_roles,
        "certificate": certificates,
        "file system": file_systems,
        "cloudformation stack": stacks,
    }
    return {kind: n for kind, fn in counters.items() if (n := _count(fn))}


def counted(n: int, kind: str) -> str:
    """'1 bucket', '2 buckets', '4 iam policies', '3 key pairs'."""
    if n == 1:
        return f"{n} {kind}"
    head, _, last = kind.rpartition(" ")
    if last.endswith("y") and last[-2:-1] not in "aeiou":
        last = last[:-1] + "ies"
    elif last.endswith(("s", "x", "ch", "sh")):
        last += "es"
    else:
        last += "s"
    return f"{n} {head + ' ' if head else ''}{last}"


def listing(remaining: dict[str, int]) -> str:
    """The kinds left, counted and in a stable order; '' when nothing is left."""
    return ", ".join(counted(n, kind) for kind, n in sorted(remaining.items()))
