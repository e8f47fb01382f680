"""Which AWS APIs each cluster role calls, and where it sits: the input of the proof.

The calls come from the node scripts themselves (``netpaths.script_calls``: an ``aws`` or
``aws_cli`` call added to a script is a new need, with no list to keep in step) and from
ParallelCluster's own bootstrap, read from the node policies it writes in 3.16.1
(``pcluster/templates/cdk_builder_utils.py``: ``HeadNodeIamResources``,
``LoginNodesIamResources``, ``ComputeNodeIamResources``). The placement comes from the
rendered cluster config: the subnet of each role, and whether its launch sets a public
address (compute queues: ``AssignPublicIp``, false unless set; head and login nodes: the
subnet's own setting, as their launch templates set none).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pwbcluster.netpaths import Placement, script_calls

SCRIPTS = {
    "head node": ("node-start.sh", "head-node.sh"),
    "login node": ("node-start.sh", "login-node.sh"),
    "compute node": ("node-start.sh", "compute-node.sh"),
}
PCLUSTER = "ParallelCluster's bootstrap (templates/cdk_builder_utils.py)"
PCLUSTER_NEEDS = {
    "head node": ("ec2", "s3", "cloudformation", "dynamodb"),
    "login node": ("ec2", "s3", "autoscaling", "cloudformation", "dynamodb"),
    "compute node": ("ec2", "s3", "cloudformation", "dynamodb"),
}


def needs(cluster_dir: Path, role: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for script in SCRIPTS[role]:
        for service, where in script_calls(cluster_dir, script).items():
            found.setdefault(service, where)
    for service in PCLUSTER_NEEDS[role]:
        found.setdefault(service, PCLUSTER)
    return found


def placements(config: Mapping[str, Any], cluster_dir: Path) -> list[Placement]:
    out = []

    def add(role: str, label: str, subnet: str, public: bool | None) -> None:
        why = needs(cluster_dir, role)
        out.append(Placement(label, subnet, public, frozenset(why), why))

    add("head node", "head node", config["HeadNode"]["Networking"]["SubnetId"], None)
    for pool in config.get("LoginNodes", {}).get("Pools", []):
        add("login node", f"login ({pool['Name']})", pool["Networking"]["SubnetIds"][0], None)
    for queue in config["Scheduling"]["SlurmQueues"]:
        net = queue["Networking"]
        add(
            "compute node",
            f"compute ({queue['Name']})",
            net["SubnetIds"][0],
            bool(net.get("AssignPublicIp", False)),
        )
    return out
