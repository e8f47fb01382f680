"""``resource_names_fit``: every name derived from the deployment name is one AWS accepts.

The deployment name feeds physical names in several services, each with its own rules.
The schema's pattern (``^[a-z][a-z0-9-]{0,23}$``) lets through names such as ``a-`` and
``a--b`` that RDS then refuses (its identifiers and parameter group names allow no two
consecutive hyphens and no trailing one) after the network was built. This check derives
each name the way the stage code does (``DERIVED`` names the file) and tests it
against its service's rules before anything is built, in ``config.validate`` and ``plan``.

Sources of the rules: RDS "Naming constraints" (DB instance identifier: 1-63 letters,
digits, hyphens, a letter first, no trailing hyphen, no two consecutive hyphens; the same
for DB parameter groups and snapshot identifiers, up to 255), the AWS provider's
``identifier_prefix``/``bucket_prefix``/``name_prefix`` (the 26-character unique suffix
it appends: prefixes up to 37, 37 and 38), Elastic Load Balancing (load balancer and
target group names: 32 alphanumerics or hyphens, no hyphen first or last, a load balancer
not beginning with ``internal-``), S3 bucket naming rules, IAM quotas (policy names 128),
Pulumi stack names, and ParallelCluster 3.16.1 ``ClusterNameValidator``
(``PCLUSTER_NAME_REGEX``: a letter first, alphanumerics and hyphens, at most 60, or 40
with Slurm accounting).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pwbcluster.config.checks import Finding, check
from pwbcluster.config.problems import Level

UNIQUE_SUFFIX = 26  # the AWS provider's resource.UniqueId() after a *_prefix
PULUMI_AUTONAME_SUFFIX = 8  # "-" and 7 random characters after a logical name
IDENTIFIER_LABELS = {"workbench": "workbench", "audit": "audit", "slurm-accounting": "slurmdb"}
NODE_ROLES = ("head-node", "login-node", "compute-node")
PCLUSTER_NAME_MAX_LENGTH = 60
PCLUSTER_NAME_MAX_LENGTH_SLURM_ACCOUNTING = 40


@dataclass(frozen=True)
class Derived:
    service: str
    name: str
    source: str  # the stage file that builds it (the test finds the template there)
    rule: Callable[[str], list[str]]


def _rds(limit: int, prefix: bool = False) -> Callable[[str], list[str]]:
    """RDS identifiers and parameter group names (a prefix may end with its hyphen)."""

    def rule(name: str) -> list[str]:
        why = []
        if not re.fullmatch(r"[a-z][a-z0-9-]*", name):
            why.append("must start with a letter and hold only lower-case letters, digits, '-'")
        if "--" in name:
            why.append("must not contain two consecutive hyphens")
        if name.endswith("-") and not prefix:
            why.append("must not end with a hyphen")
        if len(name) > limit:
            why.append(f"is {len(name)} characters, more than {limit}")
        return why

    return rule


def _elb(load_balancer: bool) -> Callable[[str], list[str]]:
    def rule(name: str) -> list[str]:
        why = []
        if not re.fullmatch(r"[A-Za-z0-9-]{1,32}", name):
            why.append("must be 1-32 letters, digits or hyphens")
        if name.startswith("-") or name.endswith("-"):
            why.append("must not begin or end with a hyphen")
        if load_balancer and name.startswith("internal-"):
            why.append("must not begin with 'internal-'")
        return why

    return rule


def _bucket_prefix(name: str) -> list[str]:
    why = []
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]*", name):
        why.append("must start with a letter or digit and hold only a-z, 0-9, '.', '-'")
    if ".." in name or ".-" in name or "-." in name:
        why.append("must not hold '..', '.-' or '-.'")
    for reserved in ("xn--", "sthree-", "amzn-s3-demo-"):
        if name.startswith(reserved):
            why.append(f"must not begin with '{reserved}'")
    if len(name) > 63 - UNIQUE_SUFFIX:
        why.append(f"is {len(name)} characters, more than {63 - UNIQUE_SUFFIX} for a prefix")
    return why


def _iam(limit: int) -> Callable[[str], list[str]]:
    def rule(name: str) -> list[str]:
        why = []
        if not re.fullmatch(r"[A-Za-z0-9+=,.@_-]+", name):
            why.append("must hold only letters, digits and +=,.@_-")
        if len(name) > limit:
            why.append(f"is {len(name)} characters, more than {limit}")
        return why

    return rule


def _pulumi_stack(name: str) -> list[str]:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", name):
        return ["must be 1-100 letters, digits, '-', '_' or '.'"]
    return []


def _cluster(limit: int) -> Callable[[str], list[str]]:
    def rule(name: str) -> list[str]:
        if not re.fullmatch(rf"[a-zA-Z][a-zA-Z0-9-]{{0,{limit - 1}}}", name):
            return [
                "must start with a letter, hold only letters, digits and hyphens, "
                f"and be at most {limit} characters"
            ]
        return []

    return rule


def derived_names(data: dict[str, Any]) -> list[Derived]:
    """Each physical name the stages build from the deployment name, with its rule."""
    d = str(data["deployment"]["name"])
    aux = data.get("aux") or {}
    dbs = aux.get("databases") or {}
    purposes = ["workbench"]
    if (dbs.get("audit") or {}).get("enabled"):
        purposes.append("audit")
    slurm_accounting = bool((dbs.get("slurm_accounting") or {}).get("enabled"))
    if slurm_accounting:
        purposes.append("slurm-accounting")
    cluster_limit = (
        PCLUSTER_NAME_MAX_LENGTH_SLURM_ACCOUNTING if slurm_accounting else PCLUSTER_NAME_MAX_LENGTH
    )
    out = [
        Derived(
            "ParallelCluster cluster name",
            d,
            "src/pwbcluster/stages/cluster/stage.py",
            _cluster(cluster_limit),
        ),
        *(
            Derived(
                "Pulumi stack",
                f"{d}-{part}",
                "src/pwbcluster/contracts/__init__.py",
                _pulumi_stack,
            )
            for part in ("network", "services")
        ),
        Derived(
            "S3 bucket (prefix)",
            f"{d}-scripts-",
            "src/pwbcluster/stages/network/component.py",
            _bucket_prefix,
        ),
        Derived(
            "IAM policy",
            f"pwbcluster-{d}-image-build-read",
            "src/pwbcluster/stages/network/component.py",
            _iam(128),
        ),
        *(
            Derived(
                "IAM policy",
                f"pwbcluster-{d}-{role}",
                "src/pwbcluster/stages/services/access.py",
                _iam(128),
            )
            for role in NODE_ROLES
        ),
        Derived(
            "IAM role (prefix)",
            f"{d}-jump-"[:32],
            "src/pwbcluster/stages/services/jumphost.py",
            _iam(64 - UNIQUE_SUFFIX),
        ),
    ]
    if (aux.get("directory") or {}).get("ldaps", True):
        out += [
            Derived(
                "Network Load Balancer",
                f"{d}-ldaps"[:32],
                "src/pwbcluster/stages/services/directory.py",
                _elb(load_balancer=True),
            ),
            Derived(
                "target group",
                f"{d}-ldap"[:32],
                "src/pwbcluster/stages/services/directory.py",
                _elb(load_balancer=False),
            ),
        ]
    for purpose in purposes:
        out += [
            Derived(
                "RDS DB instance identifier (prefix)",
                f"{d}-{IDENTIFIER_LABELS[purpose]}-",
                "src/pwbcluster/stages/services/databases.py",
                _rds(63 - UNIQUE_SUFFIX, prefix=True),
            ),
            Derived(
                "RDS DB parameter group",
                f"{d}-{purpose}-params",
                "src/pwbcluster/stages/services/databases.py",
                _rds(255 - PULUMI_AUTONAME_SUFFIX),
            ),
            Derived(
                "RDS final snapshot identifier",
                f"{d}-{purpose}-db-final",
                "src/pwbcluster/stages/services/args.py",
                _rds(255),
            ),
        ]
    return out


@check("resource_names_fit", Level.ERROR, "names derived from the deployment name fit AWS")
def _resource_names(data: dict[str, Any]) -> Iterator[Finding]:
    seen: set[tuple[str, str]] = set()
    for item in derived_names(data):
        for why in item.rule(item.name):
            if (item.service, why) in seen:
                continue  # one line per rule and service, not one per database
            seen.add((item.service, why))
            yield (
                ("deployment", "name"),
                f"the {item.service} '{item.name}' (built in {item.source}) {why}",
                "a name of lower-case letters and digits joined by single hyphens, "
                "a letter first, e.g. 'prod' or 'team-a'",
            )
