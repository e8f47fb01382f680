"""The architecture diagram, drawn from the merged configuration and the rendered
ParallelCluster config with the ``diagrams`` library (Graphviz underneath).

Icons come from the ``diagrams`` package itself (files next to it, no network). The SVG
written here has those icons inlined as data URIs, so it renders anywhere (a README on
GitHub, a browser) and not only on the machine that drew it. Node ids are fixed, so the
same configuration draws the same picture.
"""

from __future__ import annotations

import base64
import importlib.util
import logging
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pwbcluster.config.model import Deployment, WorkbenchModel, coerce
from pwbcluster.estimate.resources import BASE_SECRETS
from pwbcluster.stages.cluster.render import (
    GENERATED_CERTIFICATE,
    WORKBENCH_SHARED_DIR,
    lb_listeners,
)

log = logging.getLogger(__name__)

HA_COLOR = "firebrick"
DATA_COLOR = "darkgreen"


def unavailable_reason() -> str | None:
    """Why the diagram cannot be drawn here, or None when it can."""
    if importlib.util.find_spec("diagrams") is None:
        return "the Python package `diagrams` is not installed (pip install diagrams)"
    if shutil.which("dot") is None:
        return "Graphviz `dot` is not on PATH (apt-get install graphviz; bin/setup does it)"
    return None


def lb_ports_label(workbench: WorkbenchModel, ssh: bool = True) -> str:
    """The login load balancer's listeners, e.g. ':22 ssh' and ':8787 Workbench'."""
    ports, cert = lb_listeners(workbench, GENERATED_CERTIFICATE)
    lines = [":22 ssh"] if ssh else []
    for pair in ports.split(","):
        front, _, back = pair.partition(":")
        proto = "HTTPS" if cert and front == "443" else "Workbench"
        lines.append(f":{front} {proto}" + (f" -> {back}" if back != front else ""))
    return "\n".join(lines)


def _queue_label(queue: dict[str, Any], gpu: bool) -> str:
    cr = queue["ComputeResources"][0]
    itype = cr["Instances"][0]["InstanceType"]
    kind = " (GPU)" if gpu else ""
    return f"queue {queue['Name']}{kind}\n{itype}\n{cr.get('MinCount', 0)}..{cr['MaxCount']} nodes"


def _storage_label(storage: dict[str, Any]) -> str:
    if storage["StorageType"] == "FsxLustre":
        fsx = storage.get("FsxLustreSettings") or {}
        return (
            f"{storage['MountDir']}\nFSx for Lustre {fsx.get('DeploymentType', '')}\n"
            f"{fsx.get('StorageCapacity', '?')} GB"
        )
    return f"{storage['MountDir']}\nEFS (elastic, grows with use)"


def _inline_icons(svg: Path) -> None:
    """Replace the icons' absolute file paths with data URIs."""
    text = svg.read_text()

    def embed(match: re.Match[str]) -> str:
        path = Path(match.group(2))
        if not path.is_file():
            return match.group(0)
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'{match.group(1)}="data:image/png;base64,{data}"'

    svg.write_text(re.sub(r'(xlink:href|href)="(/[^"]+\.png)"', embed, text))


def draw(
    model: Deployment | Mapping[str, Any],
    cluster_config: dict[str, Any],
    out_base: Path,
    unchanged: Callable[[str], bool] | None = None,
) -> tuple[Path, Path]:
    """Draw ``out_base``.png and .svg. ``unchanged(source)``, given the Graphviz source,
    may answer True to keep the files drawn from that same source last time: Graphviz is
    then not run (the pictures are a function of the source, Graphviz and the icons)."""
    """Write ``out_base``.png and ``out_base``.svg; return their paths."""
    from diagrams import Cluster, Diagram, Edge, setdiagram
    from diagrams.aws.compute import EC2, EC2AutoScaling
    from diagrams.aws.database import RDSMariadbInstance, RDSMysqlInstance, RDSPostgresqlInstance
    from diagrams.aws.network import ElbNetworkLoadBalancer, NATGateway
    from diagrams.aws.security import DirectoryService, SecretsManager
    from diagrams.aws.storage import ElasticFileSystemEFS, FsxForLustre, SimpleStorageServiceS3
    from diagrams.onprem.client import Users

    model = coerce(Deployment, model)
    dep, aux, cluster = model.deployment, model.aux, model.cluster
    net, directory, dbs = aux.network, aux.directory, aux.databases
    gpu_queues = {q.name for q in cluster.queues if q.gpu}
    existing = bool(net.vpc_id)
    zones = len(net.private_subnet_ids) if existing else net.availability_zones
    vpc_label = f"VPC {net.vpc_id} (existing)" if existing else f"VPC {net.cidr} (new)"
    login = cluster_config["LoginNodes"]["Pools"][0]
    head = cluster_config["HeadNode"]
    ha = cluster.ha.controllers
    allowed = (login.get("Ssh") or {}).get("AllowedIps") or cluster.login_nodes.allowed_cidr
    out_base.parent.mkdir(parents=True, exist_ok=True)
    graph = {
        "fontsize": "20",
        "pad": "0.4",
        "nodesep": "0.5",
        "ranksep": "1.1",
        "labelloc": "t",
        # Edge labels sit next to their edge with true splines; "curved" scatters them.
        "splines": "spline",
    }
    title = f"pwbcluster '{dep.name}' in {dep.region}"

    class _Diagram(Diagram):
        kept = False

        def __exit__(self, kind: Any, value: Any, tb: Any) -> None:
            if kind is None and unchanged is not None and unchanged(self.dot.source):
                self.kept = True
                setdiagram(None)
                return
            super().__exit__(kind, value, tb)

    with _Diagram(
        title,
        filename=str(out_base),
        outformat=["png", "svg"],
        show=False,
        direction="LR",
        curvestyle="curved",  # replaced by graph["splines"]; diagrams accepts only these two
        graph_attr=graph,
    ) as diagram:
        users = Users(f"users\nallowed {allowed}", nodeid="users")
        bucket = SimpleStorageServiceS3("scripts bucket\nS3, encrypted", nodeid="bucket")
        n_secrets = BASE_SECRETS + dbs.audit.enabled + dbs.slurm_accounting.enabled
        secrets = SecretsManager(f"Secrets Manager\n{n_secrets} secrets", nodeid="secrets")
        with Cluster(vpc_label):
            with Cluster(f"public subnets ({zones} AZ)"):
                nlb = ElbNetworkLoadBalancer(
                    f"login NLB\n{lb_ports_label(cluster.workbench, cluster.login_nodes.ssh_on_balancer)}",
                    nodeid="login_nlb",
                )
                pool = EC2AutoScaling(
                    f"login nodes x{login['Count']}\n{login['InstanceType']}\nWorkbench"
                    + (" + backup slurmctld" if ha else ""),
                    nodeid="login_pool",
                )
                nat = (
                    NATGateway("NAT gateway", nodeid="nat")
                    if not existing and net.nat_gateway
                    else None
                )
            with Cluster(f"private subnets ({zones} AZ)"):
                head_node = EC2(
                    f"head node\n{head['InstanceType']}\nslurmctld primary", nodeid="head"
                )
                with Cluster("Slurm queues"):
                    queues = [
                        EC2AutoScaling(
                            _queue_label(q, q["Name"] in gpu_queues), nodeid=f"queue_{i}"
                        )
                        for i, q in enumerate(cluster_config["Scheduling"]["SlurmQueues"])
                    ]
                with Cluster("shared storage"):
                    internal = ElasticFileSystemEFS(
                        "ParallelCluster EFS\n/opt/slurm" + (", StateSaveLocation" if ha else ""),
                        nodeid="efs_internal",
                    )
                    stores = []
                    for i, s in enumerate(cluster_config.get("SharedStorage", [])):
                        icon = (
                            FsxForLustre
                            if s["StorageType"] == "FsxLustre"
                            else ElasticFileSystemEFS
                        )
                        stores.append(
                            (s["MountDir"], icon(_storage_label(s), nodeid=f"storage_{i}"))
                        )
                with Cluster("directory"):
                    ds = DirectoryService(
                        f"{directory.type} {directory.size}\n{directory.domain}",
                        nodeid="directory",
                    )
                    front = (
                        ElbNetworkLoadBalancer(
                            "LDAPS front (NLB)\n:636 TLS -> 389", nodeid="ldaps_front"
                        )
                        if directory.ldaps
                        else None
                    )
                with Cluster("databases"):
                    wb = dbs.workbench
                    az = "Multi-AZ" if wb.multi_az else "Single-AZ"
                    databases = [
                        RDSPostgresqlInstance(
                            f"Workbench DB\nPostgreSQL {wb.engine_version}\n{wb.instance_class}, "
                            f"{wb.allocated_storage_gb} GB, {az}",
                            nodeid="db_workbench",
                        )
                    ]
                    if dbs.audit.enabled:
                        a = dbs.audit
                        databases.append(
                            RDSPostgresqlInstance(
                                f"audit DB\nPostgreSQL\n{a.instance_class}, {a.allocated_storage_gb} GB",
                                nodeid="db_audit",
                            )
                        )
                    slurm_db = None
                    if dbs.slurm_accounting.enabled:
                        sa = dbs.slurm_accounting
                        icon = RDSMariadbInstance if sa.engine == "mariadb" else RDSMysqlInstance
                        slurm_db = icon(
                            f"Slurm accounting DB\n{sa.engine}\n{sa.instance_class}, "
                            f"{sa.allocated_storage_gb} GB",
                            nodeid="db_slurm",
                        )
                jump = EC2(f"jump host (SSM)\n{aux.jump_host.instance_type}", nodeid="jump")

        users >> Edge(label="ssh, Workbench") >> nlb >> pool
        for queue in queues:
            head_node >> Edge(label="schedules") >> queue
        if ha:
            ha_edge = {"color": HA_COLOR, "style": "bold", "fontcolor": HA_COLOR}
            (
                pool
                >> Edge(
                    label="backup SlurmctldHost\n(takes over if the head node fails)", **ha_edge
                )
                >> head_node
            )
            head_node >> Edge(label="StateSaveLocation", **ha_edge) >> internal
            pool >> Edge(label="StateSaveLocation", **ha_edge) >> internal
        else:
            head_node >> Edge(label="/opt/slurm") >> internal
        for mount, store in stores:
            attrs = {"color": DATA_COLOR, "fontcolor": DATA_COLOR}
            pool >> Edge(label=mount, **attrs) >> store
            if mount != WORKBENCH_SHARED_DIR:
                for queue in queues:
                    queue >> Edge(color=DATA_COLOR) >> store
        for db in databases:
            pool >> Edge(label="Workbench") >> db
        if slurm_db is not None:
            head_node >> Edge(label="slurmdbd") >> slurm_db
        ldap_target = front if front is not None else ds
        if front is not None:
            front >> Edge(label="LDAP 389") >> ds
        for node in (pool, head_node):
            node >> Edge(label="ldaps://" if front is not None else "ldap://") >> ldap_target
        pool >> Edge(style="dotted") >> bucket
        head_node >> Edge(style="dotted", label="node scripts") >> bucket
        pool >> Edge(style="dotted", label="secret ARNs") >> secrets
        jump >> Edge(style="dotted", label="admin") >> ds
        if nat is not None:
            head_node >> Edge(style="dashed") >> nat

    png, svg = out_base.with_suffix(".png"), out_base.with_suffix(".svg")
    if not diagram.kept:
        _inline_icons(svg)
    return png, svg
