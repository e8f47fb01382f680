"""What the Workbench configuration is made from: the merged config and stage outputs.

``WorkbenchSettings`` is plain data (no secrets: database passwords, the
secure-cookie-key and the licence stay in Secrets Manager and are written on the login
nodes at boot). ``settings_from`` builds it from the model (its ``cluster`` and
``image`` sections) and the services stage's outputs; the queue profiles are sized from the queues' instance types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pwbcluster.config.model import Deployment, QueueModel, coerce
from pwbcluster.contracts import LAUNCHER_PORT, DatabaseEndpoint, ServicesOutputs
from pwbcluster.stages.cluster.render import WORKBENCH_SHARED_DIR
from pwbcluster.stages.cluster.workbench.sizing import instance_size

ETC_DIR = "/etc/rstudio"
# Where the image installs R and Python (Posit's layout: /opt/R/<version>, /opt/python/<version>).
R_ROOT = "/opt/R"
PYTHON_ROOT = "/opt/python"
SLURM_PREFIX = "/opt/slurm"
# The Amazon RDS CA bundle the image installs (image/install-rds-ca.sh BUNDLE_PATH).
RDS_CA_PATH = "/etc/pwbcluster/rds-ca-bundle.pem"
# Memory kept back from each compute node for the OS, slurmd and the session's own overhead.
RESERVED_MEM_MB = 1024


@dataclass(frozen=True)
class ResourceProfile:
    key: str
    label: str
    cpus: int
    mem_mb: int


@dataclass(frozen=True)
class QueueProfile:
    name: str
    cluster: str
    instance_type: str
    vcpus: int
    mem_mb: int
    gpus: int
    gpu_type: str | None
    resources: tuple[ResourceProfile, ...]


@dataclass(frozen=True)
class WorkbenchSettings:
    port: int
    admin_group: str
    user_group: str
    queues: tuple[QueueProfile, ...]
    r_versions: tuple[str, ...]
    r_default: str
    python_default: str
    db: DatabaseEndpoint
    audit_db: DatabaseEndpoint | None
    container_sessions: bool
    container_images: tuple[str, ...]
    workbench_version: str
    # Users reach Workbench over TLS (the balancer's 443 listener): cookies only over it.
    tls: bool = False
    # Floating licensing (cluster.workbench.license_kind: server): rserver.conf asks for a
    # lease from the licence server the login node names at boot.
    license_remote: bool = False
    shared_dir: str = WORKBENCH_SHARED_DIR
    etc_dir: str = ETC_DIR
    launcher_port: int = LAUNCHER_PORT
    r_root: str = R_ROOT
    python_root: str = PYTHON_ROOT
    slurm_prefix: str = SLURM_PREFIX
    rds_ca_path: str = RDS_CA_PATH
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def shared_storage_path(self) -> str:
        return f"{self.shared_dir}/shared-storage"

    @property
    def shared_etc_dir(self) -> str:
        """Where the head node puts the rendered files for the login nodes to install."""
        return f"{self.shared_dir}/etc/rstudio"

    @property
    def containers_dir(self) -> str:
        return f"{self.shared_dir}/containers"

    @property
    def container_image_files(self) -> tuple[str, ...]:
        return tuple(container_image_file(os_name) for os_name in self.container_images)

    @property
    def container_binds(self) -> tuple[str, ...]:
        return (
            self.slurm_prefix,
            "/var/run/munge",
            "/run/munge",
            "/etc/munge",
            "/var/spool/slurmd",
            "/sys",
        )


def container_image_file(os_name: str) -> str:
    return f"r-session-complete-{os_name}.sif"


def resource_profiles(vcpus: int, mem_mb: int) -> tuple[ResourceProfile, ...]:
    """Session sizes that fit one node: 1 CPU, then doubling up to the whole node."""
    per_cpu = max(mem_mb // max(vcpus, 1), 256)
    sizes: list[int] = []
    cpus = 1
    while cpus < vcpus:
        sizes.append(cpus)
        cpus *= 2
    sizes.append(vcpus)
    out = []
    for cpus in sizes:
        mem = mem_mb if cpus == vcpus else cpus * per_cpu
        label = f"{cpus} CPU, {mem / 1024:.1f} GB"
        out.append(ResourceProfile(key=f"cpu{cpus}", label=label, cpus=cpus, mem_mb=mem))
    return tuple(out)


def queue_profile(queue: QueueModel) -> QueueProfile:
    size = instance_size(queue.instance_type)
    usable = max(size.memory_mib - RESERVED_MEM_MB, 512)
    return QueueProfile(
        name=queue.name,
        cluster=f"Slurm-{queue.name}",
        instance_type=queue.instance_type,
        vcpus=size.vcpus,
        mem_mb=usable,
        gpus=size.gpus,
        gpu_type=size.gpu_name,
        resources=resource_profiles(size.vcpus, usable),
    )


def settings_from(
    model: Deployment | Mapping[str, Any], services: ServicesOutputs
) -> WorkbenchSettings:
    model = coerce(Deployment, model)
    cluster, image = model.cluster, model.image
    wb = cluster.workbench
    return WorkbenchSettings(
        port=wb.port,
        admin_group=wb.admin_group,
        user_group=wb.user_group,
        queues=tuple(queue_profile(q) for q in cluster.queues),
        r_versions=image.r.versions,
        r_default=image.r.default,
        python_default=image.python.default,
        db=services.workbench_db,
        audit_db=services.audit_db if wb.audit_database else None,
        container_sessions=wb.container_sessions,
        container_images=wb.container_images,
        workbench_version=image.workbench.version,
        tls=wb.serves_tls,
        license_remote=wb.license_kind == "server",
    )
