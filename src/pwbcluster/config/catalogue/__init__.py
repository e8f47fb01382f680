"""Offline catalogues the semantic checks look names and versions up in.

- ``instance_types.json``: every EC2 instance type botocore's bundled EC2 service model
  lists (shape ``InstanceType``, an enum; the file names the botocore version), and the
  RDS DB instance classes the Pulumi AWS provider's ``aws.rds.InstanceType`` enum lists.
  ``invoke config.catalogue --instance-types`` rewrites it from the installed packages
  (no network); a test fails when it no longer matches the installed botocore. As
  checked in: botocore 1.44.8 (EC2 API 2016-11-15, 1437 types; ParallelCluster 3.16.1's
  own venv bundles the same botocore) and pulumi_aws 7.51.1 (78 RDS classes).
  ParallelCluster 3.16.1 keeps no list of its own: it asks EC2
  (DescribeInstanceTypes) when it validates, so types it refuses for other reasons
  (architecture, region, EFA) are its own validators' business, not this catalogue's.
- ``versions.json``: the R, Python, Quarto and Workbench builds the image can install,
  with the date they were retrieved, the vendor's URL for each kind, and which entries
  were confirmed where. ``invoke config.catalogue --versions`` refreshes it from the
  vendors (it needs the internet; without it, it says so in one line).
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
INSTANCE_TYPES_FILE = HERE / "instance_types.json"
VERSIONS_FILE = HERE / "versions.json"
VERSION_KINDS = ("r", "python", "quarto", "workbench")


@dataclass(frozen=True)
class InstanceTypes:
    ec2: frozenset[str]
    rds: frozenset[str]
    source: str
    rds_source: str


@cache
def instance_types(path: Path = INSTANCE_TYPES_FILE) -> InstanceTypes:
    data = json.loads(path.read_text(encoding="utf-8"))
    return InstanceTypes(
        ec2=frozenset(data["ec2"]),
        rds=frozenset(data["rds"]),
        source=str(data["ec2_source"]),
        rds_source=str(data["rds_source"]),
    )


def _family_and_size(name: str) -> tuple[str, str]:
    family, _, size = name.partition(".")
    return family, size


def suggest(name: str, known: frozenset[str] | set[str], n: int = 3) -> list[str]:
    """The closest known names, those of the same family (the part before '.') first.

    ``t3.mega`` -> ``t3.medium``, ``t3.large``...: a size typo keeps its family; a family
    typo (``t3a.xlarg``, ``c5n.xlarge`` as ``cn5.xlarge``) falls back to the whole list.
    """
    family, size = _family_and_size(name)
    same = sorted(k for k in known if _family_and_size(k)[0] == family)
    if same:
        sizes = [_family_and_size(k)[1] for k in same]
        close = difflib.get_close_matches(size, sizes, n=n, cutoff=0.3)
        if close:
            return [f"{family}.{s}" for s in close]
    return difflib.get_close_matches(name, sorted(known), n=n, cutoff=0.6)


def family_sizes(name: str, known: frozenset[str]) -> list[str]:
    """Every size of ``name``'s family, smallest name first (for the fix text)."""
    family = _family_and_size(name)[0]
    return sorted(
        (_family_and_size(k)[1] for k in known if _family_and_size(k)[0] == family),
        key=_size_order,
    )


def _size_order(size: str) -> tuple[int, int, str]:
    named = ["nano", "micro", "small", "medium", "large", "xlarge"]
    if size in named:
        return (0, named.index(size), size)
    match = re.fullmatch(r"(\d+)xlarge", size)
    if match:
        return (1, int(match.group(1)), size)
    return (2, 0, size)  # metal, metal-24xl, ...


@dataclass(frozen=True)
class VersionKind:
    name: str
    label: str
    source: str
    versions: tuple[str, ...]


@dataclass(frozen=True)
class Versions:
    retrieved: str
    kinds: dict[str, VersionKind]


@cache
def versions(path: Path = VERSIONS_FILE) -> Versions:
    data = json.loads(path.read_text(encoding="utf-8"))
    return versions_from(data)


def versions_from(data: dict[str, Any]) -> Versions:
    kinds = {
        name: VersionKind(
            name=name,
            label=str(spec["label"]),
            source=str(spec["source"]),
            versions=tuple(spec["versions"]),
        )
        for name, spec in data["kinds"].items()
    }
    return Versions(retrieved=str(data["retrieved"]), kinds=kinds)


def version_key(version: str) -> tuple[int, ...]:
    """Numeric sort key: 4.10.0 after 4.9.3; Workbench's 2026.09.0+174.pro3 as 2026,9,0,174,3."""
    return tuple(int(part) for part in re.findall(r"\d+", version))


def suggest_version(version: str, known: tuple[str, ...], n: int = 3) -> list[str]:
    """Known versions closest to ``version``: the same series first, then the newest."""
    parts = version_key(version)
    ordered = sorted(known, key=version_key, reverse=True)
    for depth in (2, 1):
        same = [v for v in ordered if version_key(v)[:depth] == parts[:depth]]
        if same:
            return same[:n]
    close = difflib.get_close_matches(version, ordered, n=n, cutoff=0.6)
    return close or ordered[:n]


__all__ = [
    "INSTANCE_TYPES_FILE",
    "VERSIONS_FILE",
    "VERSION_KINDS",
    "InstanceTypes",
    "VersionKind",
    "Versions",
    "family_sizes",
    "instance_types",
    "suggest",
    "suggest_version",
    "version_key",
    "versions",
    "versions_from",
]
