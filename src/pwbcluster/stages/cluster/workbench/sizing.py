"""vCPUs, memory and GPUs of EC2 instance types, offline.

The numbers come from moto's bundled DescribeInstanceTypes data (a toolkit dependency),
plus the published EC2 specifications of the few types moto lacks (``STANDINS``). No AWS
call is made: `invoke plan` must size Workbench's session profiles with no account.
"""

from __future__ import annotations

import contextlib
import gzip
import importlib.util
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pwbcluster.errors import ToolkitError

# (vCPUs, memory MiB, GPUs, GPU name) from the published EC2 specifications.
STANDINS: dict[str, tuple[int, int, int, str | None]] = {
    "p3.2xlarge": (8, 62464, 1, "V100"),
    "p3.8xlarge": (32, 249856, 4, "V100"),
    "p3.16xlarge": (64, 499712, 8, "V100"),
}


@dataclass(frozen=True)
class InstanceSize:
    instance_type: str
    vcpus: int
    memory_mib: int
    gpus: int
    gpu_name: str | None


@cache
def _catalogue() -> dict[str, Any]:
    data: dict[str, Any] = {}
    # The file, found beside moto without importing moto.ec2 (seconds of start-up for a
    # plan that only reads this table).
    spec = importlib.util.find_spec("moto")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover - a dependency
        return data
    moto_dir = next(iter(spec.submodule_search_locations))
    blob = Path(moto_dir, "ec2", "resources", "instance_types.json.gz")
    with contextlib.suppress(FileNotFoundError):  # pragma: no cover - moto is a dependency
        data.update(json.loads(gzip.decompress(blob.read_bytes())))
    return data


def instance_size(instance_type: str) -> InstanceSize:
    info = _catalogue().get(instance_type)
    if info is None and instance_type in STANDINS:
        vcpus, mem, gpus, name = STANDINS[instance_type]
        return InstanceSize(instance_type, vcpus, mem, gpus, name)
    if info is None:
        raise ToolkitError(
            f"unknown instance type '{instance_type}': no size known offline; "
            "check the spelling in cluster.queues[].instance_type"
        )
    gpus = info.get("GpuInfo", {}).get("Gpus", [])
    return InstanceSize(
        instance_type=instance_type,
        vcpus=int(info["VCpuInfo"]["DefaultVCpus"]),
        memory_mib=int(info["MemoryInfo"]["SizeInMiB"]),
        gpus=sum(int(g.get("Count", 0)) for g in gpus),
        gpu_name=(gpus[0].get("Name") if gpus else None),
    )
