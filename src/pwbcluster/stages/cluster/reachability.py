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

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pwbcluster.config.model import Deployment
from pwbcluster.contracts import (
    LAUNCHER_PORT,
    SLURMCTLD_PORTS,
    SLURMD_PORT,
    NetworkOutputs,
    ServicesOutputs,
    workbench_listener_port,
)
from pwbcluster.netpaths import (
    Flow,
    Group,
    Hop,
    Member,
    Placement,
    Rule,
    Topology,
    prove_flows,
    script_calls,
)
from pwbcluster.pcluster.offline import PLACEHOLDERS_FILE

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


# A login node activates the Workbench licence with Posit's licence server on the
# internet (cluster/lib/workbench.sh activate_license: rstudio-server license-manager).
LICENCE = "cluster/lib/workbench.sh activate_license (Posit's licence server)"


def needs(cluster_dir: Path, role: str) -> dict[str, str]:
    found: dict[str, str] = {"internet": LICENCE} if role == "login node" else {}
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


# --- Flows inside the VPC: node to node, node to service, checked on security groups ---

SLURMCTLD = SLURMCTLD_PORTS
SLURMD = (SLURMD_PORT, SLURMD_PORT)
# A Workbench session (rsession, Jupyter, VS Code, Positron) listens on a port the
# Launcher picks on the compute node; the login nodes' Workbench proxies to it.
SESSION_PORTS = (1024, 65535)
NFS, LUSTRE = 2049, 988
DEFAULT_EGRESS = (Rule("-1", 0, 65535, ("0.0.0.0/0",)),)


def _templates(paths: Iterable[Path]) -> list[dict[str, Any]]:
    out = []
    for path in paths:
        if path.suffix != ".json" or path.name in ("build-image.json", PLACEHOLDERS_FILE):
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "Resources" in data:
            out.append(data)
    return out


class _Cfn:
    """ParallelCluster's synthesised stacks (the cluster and its nested stacks) read as
    one: a nested stack's ``referenceto...`` parameters resolve to the parent's value."""

    def __init__(self, templates: list[dict[str, Any]], rename: Mapping[str, str]) -> None:
        self.rename = rename
        self.resources: list[tuple[str, dict[str, Any]]] = []
        self.params: dict[str, Any] = {}
        for template in templates:
            for logical, resource in template["Resources"].items():
                self.resources.append((logical, resource))
                if resource.get("Type") == "AWS::CloudFormation::Stack":
                    self.params.update(resource.get("Properties", {}).get("Parameters") or {})

    def of(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        return [(k, r.get("Properties", {})) for k, r in self.resources if r.get("Type") == kind]

    def id(self, value: Any) -> str:
        if isinstance(value, str):
            return self.rename.get(value, value)
        if isinstance(value, dict) and "Ref" in value:
            ref = value["Ref"]
            return self.id(self.params[ref]) if ref in self.params else f"cfn:{ref}"
        return f"cfn:{json.dumps(value, sort_keys=True)}"

    def ids(self, values: Any) -> tuple[str, ...]:
        return tuple(self.id(v) for v in values or [])

    def rule(self, props: Mapping[str, Any], peer_key: str) -> Rule:
        protocol = str(props.get("IpProtocol", "-1"))
        every = protocol in ("-1", "all")
        cidr = props.get("CidrIp")
        peer = props.get(peer_key)
        return Rule(
            protocol,
            0 if every else int(props.get("FromPort", 0)),
            65535 if every else int(props.get("ToPort", 65535)),
            (str(cidr),) if cidr else (),
            (self.id(peer),) if peer else (),
        )


def template_groups(cfn: _Cfn) -> dict[str, Group]:
    """The groups pcluster's stacks create, with every rule that names them (inline, or a
    separate ingress/egress resource). A group with no inline egress keeps the all-egress
    rule EC2 gives every new group (CloudFormation removes it only for inline egress)."""
    rules: dict[str, dict[str, list[Rule]]] = {}
    names: dict[str, str] = {}
    for logical, props in cfn.of("AWS::EC2::SecurityGroup"):
        gid = f"cfn:{logical}"
        names[gid] = logical
        ingress = [
            cfn.rule(r, "SourceSecurityGroupId") for r in props.get("SecurityGroupIngress") or []
        ]
        egress = [
            cfn.rule(r, "DestinationSecurityGroupId")
            for r in props.get("SecurityGroupEgress") or []
        ]
        rules[gid] = {"in": ingress, "out": egress or list(DEFAULT_EGRESS)}
    for kind, way, peer in (
        ("AWS::EC2::SecurityGroupIngress", "in", "SourceSecurityGroupId"),
        ("AWS::EC2::SecurityGroupEgress", "out", "DestinationSecurityGroupId"),
    ):
        for _, props in cfn.of(kind):
            gid = cfn.id(props.get("GroupId"))
            rules.setdefault(gid, {"in": [], "out": []})[way].append(cfn.rule(props, peer))
    return {
        gid: Group(gid, names.get(gid, gid), tuple(r["in"]), tuple(r["out"]))
        for gid, r in rules.items()
    }


def _tag(props: Mapping[str, Any], key: str) -> str:
    for spec in props.get("LaunchTemplateData", {}).get("TagSpecifications") or []:
        for tag in spec.get("Tags") or []:
            if tag.get("Key") == key:
                return str(tag.get("Value"))
    return ""


def template_members(cfn: _Cfn, config: Mapping[str, Any]) -> dict[str, Member]:
    """Each node role, login load balancer and shared file system, with its subnet and
    groups as pcluster's templates give them."""
    members: dict[str, Member] = {}
    for _, props in cfn.of("AWS::EC2::NetworkInterface"):
        if "head node" in str(props.get("Description", "")):
            members["head node"] = Member(
                "head node", cfn.id(props.get("SubnetId")), cfn.ids(props.get("GroupSet"))
            )
    subnets = {
        q["Name"]: q["Networking"]["SubnetIds"][0] for q in config["Scheduling"]["SlurmQueues"]
    }
    for _, props in cfn.of("AWS::EC2::LaunchTemplate"):
        nic = (props.get("LaunchTemplateData", {}).get("NetworkInterfaces") or [{}])[0]
        groups = cfn.ids(nic.get("Groups"))
        pool, queue = (
            _tag(props, "parallelcluster:login-nodes-pool-name"),
            _tag(props, "parallelcluster:queue-name"),
        )
        if pool:
            label = f"login ({pool})"
            members[label] = Member(label, cfn.id(nic.get("SubnetId")), groups)
        elif queue in subnets:
            label = f"compute ({queue})"
            # One queue, one set of groups: every compute resource's template has them.
            members[label] = Member(label, cfn.id(subnets[queue]), groups)
    for _, props in cfn.of("AWS::ElasticLoadBalancingV2::LoadBalancer"):
        pool = next(
            (
                t["Value"]
                for t in props.get("Tags") or []
                if t.get("Key") == "parallelcluster:login-nodes-pool"
            ),
            "",
        )
        label = f"login balancer ({pool})"
        members[label] = Member(
            label,
            cfn.id((props.get("Subnets") or [""])[0]),
            cfn.ids(props.get("SecurityGroups")),
            public=props.get("Scheme") == "internet-facing",
        )
    efs_names = {
        logical: next(
            (t["Value"] for t in p.get("FileSystemTags") or [] if t["Key"] == "Name"), logical
        )
        for logical, p in cfn.of("AWS::EFS::FileSystem")
    }
    for _, props in cfn.of("AWS::EFS::MountTarget"):
        fs = str((props.get("FileSystemId") or {}).get("Ref", ""))
        label = f"EFS {efs_names.get(fs, fs)}"
        members.setdefault(
            label,
            Member(label, cfn.id(props.get("SubnetId")), cfn.ids(props.get("SecurityGroups"))),
        )
    for _, props in cfn.of("AWS::FSx::FileSystem"):
        name = next((t["Value"] for t in props.get("Tags") or [] if t["Key"] == "Name"), "fsx")
        label = f"FSx {name}"
        members[label] = Member(
            label,
            cfn.id((props.get("SubnetIds") or [""])[0]),
            cfn.ids(props.get("SecurityGroupIds")),
        )
    return members


def service_members(services: ServicesOutputs, network: NetworkOutputs) -> dict[str, Member]:
    """The services stage's endpoints the nodes call, with the groups it recorded (a state
    recorded before the groups were has none: its flows then fail, naming the endpoint;
    re-running the services stage records them)."""
    subnet = network.private_subnet_ids[0]
    found = {
        "directory (LDAPS front)": services.directory_security_group_id
        if services.ldap_tls
        else "",
        "Workbench database": services.workbench_db.security_group_id,
        "audit database": services.audit_db.security_group_id if services.audit_db else "",
        "Slurm accounting database": services.slurm_accounting_db.security_group_id
        if services.slurm_accounting_db
        else "",
    }
    return {label: Member(label, subnet, (sg,)) for label, sg in found.items() if sg}


def flows(
    model: Deployment, services: ServicesOutputs, members: Mapping[str, Member]
) -> list[Flow]:
    """Every flow the deployment needs inside the VPC, each with what it is for."""
    cluster = model.cluster
    head = "head node"
    logins = [m for m in members if m.startswith("login (")]
    computes = [m for m in members if m.startswith("compute (")]
    balancers = [m for m in members if m.startswith("login balancer (")]
    nodes = [head, *logins, *computes]
    port = cluster.workbench.port
    ha = cluster.ha.controllers
    out: list[Flow] = []

    def add(src: str, dst: str, ports: tuple[int, int], why: str) -> None:
        out.append(Flow(src, dst, "tcp", ports[0], ports[1], why))

    if services.ldap_tls:
        for n in nodes:
            add(n, "directory (LDAPS front)", (636, 636), "sssd (LDAPS)")
    # The head node creates Workbench's database roles at first boot (lib/database.sh).
    add(head, "Workbench database", (services.workbench_db.port,) * 2, "Workbench's role")
    if services.audit_db:
        add(head, "audit database", (services.audit_db.port,) * 2, "Workbench's audit role")
    for login in logins:
        add(login, "Workbench database", (services.workbench_db.port,) * 2, "Workbench's database")
        if services.audit_db:
            add(
                login, "audit database", (services.audit_db.port,) * 2, "Workbench's audit database"
            )
        add(login, head, SLURMCTLD, "Slurm commands (the Launcher's sbatch, squeue)")
        for peer in logins:
            add(login, peer, (port, port), "Workbench node to node (load balancing)")
            add(login, peer, (LAUNCHER_PORT,) * 2, "Job Launcher node to node (load balancing)")
            if ha:
                add(login, peer, SLURMCTLD, "backup controllers, commands to the active one")
        if ha:
            add(head, login, SLURMCTLD, "the primary controller to the backups")
        for compute in computes:
            add(login, compute, SESSION_PORTS, "Workbench to its sessions")
    if services.slurm_accounting_db:
        db = services.slurm_accounting_db
        add(head, "Slurm accounting database", (db.port, db.port), "slurmdbd's database")
    for compute in computes:
        add(compute, head, SLURMCTLD, "slurmd to the controller")
        add(head, compute, SLURMD, "the controller to slurmd")
        if ha:
            for login in logins:
                add(compute, login, SLURMCTLD, "slurmd to a backup controller")
                add(login, compute, SLURMD, "a backup controller to slurmd")
        # Sessions call back to Workbench through the login balancer (the address
        # cluster/lib/workbench.sh callback_url finds), else to a login node directly.
        listener = workbench_listener_port(port, cluster.workbench.serves_tls)
        for balancer in balancers:
            add(compute, balancer, (listener, listener), "session callbacks to Workbench")
        if not balancers:
            for login in logins:
                add(compute, login, (port, port), "session callbacks to Workbench")
    for balancer in balancers:
        for login in logins:
            add(balancer, login, (port, port), "the balancer forwards to Workbench")
    for store in (m for m in members if m.startswith(("EFS ", "FSx "))):
        ports = (NFS, NFS) if store.startswith("EFS ") else (LUSTRE, LUSTRE)
        for n in nodes:
            add(n, store, ports, "NFS mount" if store.startswith("EFS ") else "Lustre mount")
    return out


def prove_cluster(
    topology: Topology,
    templates: Iterable[Path],
    rename: Mapping[str, str],
    config: Mapping[str, Any],
    model: Deployment,
    services: ServicesOutputs,
    network: NetworkOutputs,
) -> list[Hop]:
    """The flows proof of a cluster: pcluster's synthesised groups and members, the
    services' endpoints, against the VPC's own groups and subnets."""
    cfn = _Cfn(_templates(templates), rename)
    members = {**template_members(cfn, config), **service_members(services, network)}
    return prove_flows(
        topology.with_groups(template_groups(cfn)), members, flows(model, services, members)
    )
