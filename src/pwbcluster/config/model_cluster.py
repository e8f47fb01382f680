"""The ``cluster:`` section of the model (config/schema/cluster.schema.json)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class HeadNodeModel:
    instance_type: str
    root_volume_gb: int


@dataclass(frozen=True)
class LoginNodesModel:
    """``cluster.login_nodes``: Workbench and the backup controllers behind the NLB."""

    count: int
    instance_type: str
    allowed_cidr: str | None
    ssh_on_balancer: bool


@dataclass(frozen=True)
class QueueModel:
    """One ``cluster.queues[]`` entry: a Slurm partition with one compute resource."""

    name: str
    instance_type: str
    min_count: int
    max_count: int
    gpu: bool = False


@dataclass(frozen=True)
class HomeStorageModel:
    """``cluster.storage.home``; capacity and deployment type only matter for FSx."""

    type: str
    capacity_gb: int | None = None
    deployment_type: str | None = None


@dataclass(frozen=True)
class WorkbenchSharedStorageModel:
    type: str


@dataclass(frozen=True)
class StorageModel:
    home: HomeStorageModel
    workbench_shared: WorkbenchSharedStorageModel


@dataclass(frozen=True)
class WorkbenchModel:
    """``cluster.workbench``: Posit Workbench on the login nodes."""

    port: int
    admin_group: str
    user_group: str
    audit_database: bool
    container_sessions: bool
    container_images: tuple[str, ...]
    container_image_digests: Mapping[str, str]
    tls: bool
    hostname: str | None
    tls_certificate_arn: str | None
    route53_zone_id: str | None
    license_kind: str
    license_secret_arn: str | None
    license_server: str | None
    license_tier: str | None

    @property
    def serves_tls(self) -> bool:
        """Users reach Workbench over TLS (the balancer's 443 listener)."""
        return self.tls or bool(self.tls_certificate_arn)


@dataclass(frozen=True)
class HaModel:
    """``cluster.ha``: Slurm controller high availability."""

    controllers: bool
    slurmctld_timeout: int


@dataclass(frozen=True)
class ClusterModel:
    """``cluster:``: the ParallelCluster cluster Workbench runs on."""

    parallelcluster_version: str
    head_node: HeadNodeModel
    login_nodes: LoginNodesModel
    queues: tuple[QueueModel, ...]
    storage: StorageModel
    workbench: WorkbenchModel
    ha: HaModel
    slurm_accounting: bool
    # Raw ParallelCluster keys: free-form, so read-only but untyped.
    pcluster_overrides: Mapping[str, Any]
