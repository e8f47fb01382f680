"""The bill of materials: every billable thing the deployment creates, with its quantity
while idle (static parts and queues at their minimum) and at the queues' maximum.

The cluster side is read from the rendered ParallelCluster config (so
``pcluster_overrides`` count), the auxiliary side from the merged configuration. Sizes the
configuration does not fix (EFS grows with use) are assumed and the assumption is stated
on the line that uses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pwbcluster.config.model import (
    AuditDbModel,
    AuxModel,
    Deployment,
    SlurmAccountingDbModel,
    WorkbenchDbModel,
    coerce,
)
from pwbcluster.estimate import catalogue as cat

# EFS is billed for what is stored; these are the sizes assumed for a new deployment.
ASSUMED_EFS_GB = {"workbench": 5, "parallelcluster": 5, "home": 100}
# Root volume of the jump host, as the aux stage creates it (pwbcluster.stages.services.jumphost).
JUMP_HOST_ROOT_GB = 20
# Secrets the services stage creates whatever the options: directory bind and admin
# passwords, Workbench database password, secure-cookie-key, user passwords, ssh key.
BASE_SECRETS = 6
FSX_DEFAULT_THROUGHPUT = 125

NOT_INCLUDED = (
    "data transfer out of AWS and between availability zones",
    "NAT gateway data processing (per GB)",
    "load balancer capacity units (LCU, per use)",
    "EFS elastic throughput (per GB read and written)",
    "S3 storage and requests for node scripts (a few MB)",
    "CloudWatch logs, metrics and dashboards created by ParallelCluster",
    "DynamoDB tables of ParallelCluster (on-demand, per request)",
    "RDS backups beyond the free allowance of the allocated size",
    "FSx for Lustre automatic backups of /home (per GB-month stored, incremental after "
    "the first full copy of the data)",
    "the image build (about an hour of one build instance, once per image)",
    "taxes, support plans, savings plans and reserved-instance discounts",
)


@dataclass(frozen=True)
class Item:
    group: str
    resource: str
    detail: str
    query: cat.PriceQuery
    idle: Decimal
    busy: Decimal
    assumption: str | None = None


def _d(value: Any) -> Decimal:
    return Decimal(str(value))


def _static(
    group: str,
    resource: str,
    detail: str,
    query: cat.PriceQuery,
    qty: Any,
    assumption: str | None = None,
) -> Item:
    return Item(group, resource, detail, query, _d(qty), _d(qty), assumption)


def _root_gb(node: dict[str, Any], image_root_gb: int) -> int:
    size = ((node.get("LocalStorage") or {}).get("RootVolume") or {}).get("Size")
    return int(size or image_root_gb)


def cluster_items(cluster_config: dict[str, Any], image_root_gb: int) -> list[Item]:
    """Head node, login pools and their load balancers, queues, shared storage."""
    items: list[Item] = []
    head = cluster_config["HeadNode"]
    items.append(
        _static(
            "cluster", "head node", head["InstanceType"], cat.ec2_instance(head["InstanceType"]), 1
        )
    )
    items.append(
        _static(
            "cluster",
            "head node root disk",
            f"{_root_gb(head, image_root_gb)} GB gp3",
            cat.ebs_gp3(),
            _root_gb(head, image_root_gb),
        )
    )
    for pool in (cluster_config.get("LoginNodes") or {}).get("Pools", []):
        n, itype = int(pool["Count"]), pool["InstanceType"]
        gb = _root_gb(pool, image_root_gb)
        name = "login" if pool["Name"] == "login" else f"login {pool['Name']}"
        items.append(
            _static("cluster", f"{name} nodes", f"{n} x {itype}", cat.ec2_instance(itype), n)
        )
        items.append(
            _static(
                "cluster",
                f"{name} node disks",
                f"{n} x {gb} GB gp3",
                cat.ebs_gp3(),
                n * gb,
                "root volume = the custom AMI's size (image.root_volume_gb)",
            )
        )
        items.append(
            _static(
                "cluster",
                f"{name} NLB",
                "internet-facing",
                cat.network_load_balancer(),
                1,
            )
        )
        items.append(
            _static(
                "cluster",
                f"{name} public IPv4",
                f"{n + 1} addresses",
                cat.public_ipv4(),
                n + 1,
                "one address per login node and one for the internet-facing NLB (one subnet)",
            )
        )
    for queue in cluster_config["Scheduling"]["SlurmQueues"]:
        for cr in queue["ComputeResources"]:
            itype = cr["Instances"][0]["InstanceType"]
            lo, hi = int(cr.get("MinCount", 0)), int(cr["MaxCount"])
            gb = _root_gb(queue.get("ComputeSettings") or {}, image_root_gb)
            name = f"queue {queue['Name']}"
            items.append(
                Item(
                    "cluster",
                    name,
                    f"{lo}..{hi} x {itype}",
                    cat.ec2_instance(itype),
                    _d(lo),
                    _d(hi),
                )
            )
            items.append(
                Item(
                    "cluster",
                    f"{name} disks",
                    f"{lo}..{hi} x {gb} GB gp3",
                    cat.ebs_gp3(),
                    _d(lo * gb),
                    _d(hi * gb),
                    "root volume = the custom AMI's size (image.root_volume_gb)",
                )
            )
    items.append(
        _static(
            "cluster",
            "pcluster internal EFS",
            f"{ASSUMED_EFS_GB['parallelcluster']} GB assumed",
            cat.efs_standard(),
            ASSUMED_EFS_GB["parallelcluster"],
            "EFS size grows with use: /opt/slurm, StateSaveLocation, shared login data",
        )
    )
    for storage in cluster_config.get("SharedStorage", []):
        mount = storage["MountDir"]
        if storage["StorageType"] == "FsxLustre":
            fsx = storage.get("FsxLustreSettings") or {}
            capacity = int(fsx.get("StorageCapacity", 1200))
            dtype = str(fsx.get("DeploymentType", "SCRATCH_2"))
            throughput = fsx.get("PerUnitStorageThroughput")
            if dtype.startswith("PERSISTENT") and not throughput:
                throughput = FSX_DEFAULT_THROUGHPUT
            query = cat.fsx_lustre(dtype, int(throughput) if throughput else None)
            items.append(
                _static("cluster", f"{mount} FSx Lustre", f"{capacity} GB {dtype}", query, capacity)
            )
        elif storage["StorageType"] == "Efs":
            key = "home" if mount == "/home" else "workbench"
            gb = ASSUMED_EFS_GB[key]
            label = "/home EFS" if key == "home" else "Workbench shared EFS"
            items.append(
                _static(
                    "cluster",
                    label,
                    f"{gb} GB assumed",
                    cat.efs_standard(),
                    gb,
                    "EFS is billed for what is stored; size assumed",
                )
            )
    return items


def _database(
    purpose: str,
    engine: str,
    spec: WorkbenchDbModel | AuditDbModel | SlurmAccountingDbModel,
    multi_az: bool,
) -> list[Item]:
    klass, gb = spec.instance_class, spec.allocated_storage_gb
    return [
        _static(
            "services",
            f"{purpose} DB",
            klass + (" Multi-AZ" if multi_az else ""),
            cat.rds_instance(engine, klass, multi_az),
            1,
        ),
        _static(
            "services",
            f"{purpose} DB storage",
            f"{gb} GB gp3",
            cat.rds_storage_gp3(multi_az),
            gb,
        ),
    ]


def aux_items(aux: AuxModel) -> list[Item]:
    """Network, directory and its TLS front, databases, jump host, secrets."""
    items: list[Item] = []
    net = aux.network
    if not net.vpc_id and net.nat_gateway:
        items.append(_static("network", "NAT gateway", "one for all AZs", cat.nat_gateway(), 1))
        items.append(_static("network", "NAT public IPv4", "1 address", cat.public_ipv4(), 1))
    d = aux.directory
    items.append(
        _static(
            "services",
            "directory",
            f"{d.type} {d.size} x2 DC",
            cat.directory(d.type, d.size),
            2,
        )
    )
    if d.ldaps:
        items.append(
            _static(
                "services",
                "directory TLS front",
                "internal NLB",
                cat.network_load_balancer(),
                1,
            )
        )
    dbs = aux.databases
    multi_az = dbs.workbench.multi_az
    items += _database("Workbench", "postgres", dbs.workbench, multi_az)
    secrets = BASE_SECRETS
    if dbs.audit.enabled:
        items += _database("audit", "postgres", dbs.audit, multi_az)
        secrets += 1
    slurm = dbs.slurm_accounting
    if slurm.enabled:
        items += _database("Slurm acct", slurm.engine, slurm, multi_az)
        secrets += 1
    jump = aux.jump_host.instance_type
    items.append(_static("services", "jump host", jump, cat.ec2_instance(jump), 1))
    items.append(
        _static(
            "services",
            "jump host root disk",
            f"{JUMP_HOST_ROOT_GB} GB gp3",
            cat.ebs_gp3(),
            JUMP_HOST_ROOT_GB,
        )
    )
    items.append(
        _static("services", "Secrets Manager", f"{secrets} secrets", cat.secret(), secrets)
    )
    return items


def bill_of_materials(
    model: Deployment | Mapping[str, Any], cluster_config: dict[str, Any]
) -> list[Item]:
    model = coerce(Deployment, model)
    return aux_items(model.aux) + cluster_items(cluster_config, model.image.root_volume_gb)
