"""The reachability proof: each role reaches each AWS API it calls, or the plan says which
hop is missing. Every kind of hop is broken once."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pwbcluster import netpaths
from pwbcluster.config import load_config
from pwbcluster.errors import StageError
from pwbcluster.netpaths import Placement, Subnet, Topology
from pwbcluster.pipeline.plan import make_plan, planned_topology, render_step
from pwbcluster.stages.cluster import reachability

ROOT = Path(__file__).resolve().parents[2]


def one(subnet: Subnet, public: bool | None = None, needs: tuple[str, ...] = ("sts",)) -> list:
    topo = Topology({subnet.id: subnet})
    return netpaths.prove(topo, [Placement("login (login)", subnet.id, public, frozenset(needs))])


def test_each_hop_proves_a_path() -> None:
    assert one(Subnet("s", "pub", True, "igw"))[0].via.startswith("internet gateway")
    assert one(Subnet("s", "priv", False, "nat"))[0].via.startswith("NAT gateway")
    assert one(Subnet("s", "iso", False, None, frozenset({"s3"})), needs=("s3",))[0].via
    topo = Topology({"s": Subnet("s", "iso", False, None)}, frozenset({"sts"}))
    (hop,) = netpaths.prove(topo, [Placement("head node", "s", None, frozenset({"sts"}))])
    assert hop.via == "interface endpoint"


def test_each_missing_hop_names_role_service_and_hop() -> None:
    (no_address,) = one(Subnet("s", "pub", False, "igw"), needs=("secretsmanager",))
    (line,) = netpaths.failures([no_address])
    assert line.startswith("login (login) -> secretsmanager: no path: pub routes to the internet")
    assert "no public address" in line
    (no_route,) = one(Subnet("s", "iso", True, None))
    assert "iso has no default route and no sts endpoint" in no_route.missing
    # A launch that sets no public address overrides the subnet's (compute queues).
    (forced,) = one(Subnet("s", "pub", True, "igw"), public=False)
    assert forced.via is None
    (gone,) = netpaths.prove(
        Topology({}), [Placement("compute (all)", "subnet-x", False, frozenset({"ec2"}))]
    )
    assert "subnet-x is not in the VPC" in gone.missing


def test_the_needs_come_from_the_scripts_themselves(tmp_path: Path) -> None:
    login = reachability.needs(ROOT / "cluster", "login node")
    assert login["secretsmanager"].startswith("cluster/lib/common.sh:")
    assert login["elasticloadbalancing"].startswith("cluster/lib/workbench.sh:")
    assert login["autoscaling"] == reachability.PCLUSTER
    copy = tmp_path / "cluster"
    shutil.copytree(ROOT / "cluster", copy)
    script = copy / "login-node.sh"
    script.write_text(script.read_text() + '\naws_cli sqs send-message --queue-url "${Q}"\n')
    assert "sqs" in reachability.needs(copy, "login node")
    assert "sqs" not in reachability.needs(copy, "compute node")


def test_the_example_plan_proves_every_path(project: Path) -> None:
    config = load_config(project / "config" / "example.yaml")
    ctx = make_plan(config, steps=[("render", render_step)])
    proof = [n for n in ctx.notes if n.startswith("  login (login)")]
    assert any("secretsmanager" in n and "internet gateway, public address" in n for n in proof)
    assert not [n for n in ctx.notes if "NO PATH" in n]


def test_login_nodes_without_a_public_address_fail_the_plan(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The network of the earlier main: public subnets that map no public IP."""
    config = load_config(project / "config" / "example.yaml")
    real = planned_topology(config)
    assert real is not None
    broken = Topology(
        {k: dataclasses.replace(s, public_ip=False) for k, s in real.subnets.items()},
        real.interface_endpoints,
        real.groups,
    )
    monkeypatch.setattr("pwbcluster.pipeline.plan.planned_topology", lambda cfg: broken)
    with pytest.raises(StageError) as failed:
        make_plan(config, steps=[("render", render_step)])
    # The image stage comes first, and its build instance sits in the same subnet.
    assert "image builder -> ssm: no path: example-public-1" in str(failed.value)
    monkeypatch.setattr("pwbcluster.stages.image.stage.builder_paths", lambda ctx, cfg: None)
    with pytest.raises(StageError) as failed:
        make_plan(config, steps=[("render", render_step)])
    message = str(failed.value)
    assert "login (login) -> secretsmanager: no path: example-public-1 routes to the" in message
    assert "head node" not in message  # the private subnets still have their NAT route


def test_an_existing_vpc_is_said_to_be_unproven(project: Path) -> None:
    deployment = project / "config" / "existing.yaml"
    deployment.write_text(
        """
deployment:
  name: existing
  region: eu-west-1
  owner_email: team@example.com
aux:
  network:
    vpc_id: vpc-0123456789abcdef0
    public_subnet_ids: [subnet-0123456789abcdef2, subnet-0123456789abcdef3]
    private_subnet_ids: [subnet-0123456789abcdef0, subnet-0123456789abcdef1]
"""
    )
    config = load_config(deployment)
    assert planned_topology(config) is None


# --- Flows: security groups of the programs and of pcluster's templates ---


def member(label: str, subnet: str, *groups: str, public: bool = False) -> netpaths.Member:
    return netpaths.Member(label, subnet, groups, public)


def flow_topology(*groups: netpaths.Group, nat_ip: str = "") -> Topology:
    return Topology(
        {
            "a": Subnet("a", "private-a", False, "nat", cidr="10.0.1.0/24", nat_public_ip=nat_ip),
            "b": Subnet("b", "public-b", True, "igw", cidr="10.0.2.0/24"),
        },
        groups={g.id: g for g in groups},
    )


OUT = netpaths.Rule("-1", 0, 65535, ("0.0.0.0/0",))


def test_a_flow_needs_egress_and_ingress_and_every_port() -> None:
    src = netpaths.Group("sg-src", "src", egress=(OUT,))
    by_group = netpaths.Group(
        "sg-dst", "dst", ingress=(netpaths.Rule("tcp", 6820, 6829, groups=("sg-src",)),)
    )
    members = {"x": member("x", "a", "sg-src"), "y": member("y", "b", "sg-dst")}
    wanted = [netpaths.Flow("x", "y", "tcp", 6820, 6829, "slurmctld")]
    (ok,) = netpaths.prove_flows(flow_topology(src, by_group), members, wanted)
    assert ok.via == "admitted by dst"
    # Two rules that together cover the range are as good as one.
    split = netpaths.Group(
        "sg-dst",
        "dst",
        ingress=(
            netpaths.Rule("tcp", 6820, 6824, groups=("sg-src",)),
            netpaths.Rule("tcp", 6825, 6829, cidrs=("10.0.0.0/16",)),
        ),
    )
    assert netpaths.prove_flows(flow_topology(src, split), members, wanted)[0].via
    # A hole in the range, a CIDR that does not hold the source's subnet, no egress.
    holed = netpaths.Group(
        "sg-dst", "dst", ingress=(netpaths.Rule("tcp", 6820, 6828, groups=("sg-src",)),)
    )
    (hole,) = netpaths.prove_flows(flow_topology(src, holed), members, wanted)
    assert "no rule of dst lets tcp/6820-6829 in from x" in hole.missing
    elsewhere = netpaths.Group(
        "sg-dst", "dst", ingress=(netpaths.Rule("-1", 0, 65535, ("10.0.2.0/24",)),)
    )
    assert netpaths.prove_flows(flow_topology(src, elsewhere), members, wanted)[0].via is None
    mute = netpaths.Group("sg-src", "src")  # the AWS provider's group with no egress given
    (shut,) = netpaths.prove_flows(flow_topology(mute, by_group), members, wanted)
    assert "no rule of src lets tcp/6820-6829 out to y" in shut.missing
    (gone,) = netpaths.prove_flows(flow_topology(src), members, wanted)
    assert "security group sg-dst of y is not in the VPC" in gone.missing


def test_a_public_address_admits_only_what_it_can_know() -> None:
    """Traffic to an internet-facing balancer arrives from the NAT gateway's address."""
    src = netpaths.Group("sg-src", "src", egress=(OUT,))
    narrow = netpaths.Rule("tcp", 8787, 8787, ("203.0.113.0/24",))
    members = {"c": member("c", "a", "sg-src"), "lb": member("lb", "b", "sg-lb", public=True)}
    wanted = [netpaths.Flow("c", "lb", "tcp", 8787, 8787, "callbacks")]

    def proof(*rules: netpaths.Rule, nat_ip: str = "") -> netpaths.Hop:
        lb = netpaths.Group("sg-lb", "lb", ingress=rules)
        return netpaths.prove_flows(flow_topology(src, lb, nat_ip=nat_ip), members, wanted)[0]

    assert "address not known here" in proof(narrow).missing
    assert "NAT gateway's address 198.51.100.7/32" in proof(narrow, nat_ip="198.51.100.7").missing
    nat = netpaths.Rule("tcp", 8787, 8787, ("198.51.100.7/32",))
    assert proof(narrow, nat, nat_ip="198.51.100.7").via == "admitted by lb (through the internet)"
    assert proof(netpaths.Rule("tcp", 8787, 8787, ("0.0.0.0/0",))).via
    # A group rule does not cross a public address: the balancer sees the NAT, not the group.
    assert proof(netpaths.Rule("-1", 0, 65535, groups=("sg-src",))).via is None


@pytest.fixture(scope="module")
def synthesised(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The example's plan up to pcluster's synthesis, once: templates, topology, context."""
    from pwbcluster.pipeline.plan_pcluster import pcluster_step

    root = tmp_path_factory.mktemp("flows")
    for rel in ("pulumi", "image", "cluster", "config"):
        shutil.copytree(ROOT / rel, root / rel)
    config = load_config(root / "config" / "example.yaml")
    ctx = make_plan(config, steps=[("render", render_step), ("pcluster", pcluster_step)])
    out = ctx.build_dir / "cloudformation"
    return {
        "ctx": ctx,
        "notes": ctx.notes,
        "topology": ctx.extra["topology"],
        "templates": {p.name: json.loads(p.read_text()) for p in out.glob("example*.json")},
        "rename": json.loads((out / "placeholders.json").read_text()),
    }


def prove_example(
    synthesised: dict,
    tmp_path: Path,
    topology: Topology | None = None,
    templates: dict | None = None,
) -> list[str]:
    ctx = synthesised["ctx"]
    for name, body in (templates or synthesised["templates"]).items():
        (tmp_path / name).write_text(json.dumps(body))
    hops = reachability.prove_cluster(
        topology or synthesised["topology"],
        sorted(tmp_path.glob("*.json")),
        synthesised["rename"],
        ctx.cluster.config,
        ctx.config.model,
        ctx.services,
        ctx.network,
    )
    return netpaths.failures(hops)


@pytest.mark.pcluster
@pytest.mark.slow
def test_the_example_plan_proves_every_flow(synthesised: dict) -> None:
    table = synthesised["notes"][
        synthesised["notes"].index("Flows (role, service -> target protocol/ports, proof):") :
    ]
    text = "\n".join(table)
    for wanted in (
        "sssd (LDAPS) -> directory (LDAPS front) tcp/636",
        "Workbench's database -> Workbench database tcp/5432",
        "Workbench node to node (load balancing) -> login (login) tcp/8787",
        "Job Launcher node to node (load balancing) -> login (login) tcp/5559",
        "backup controllers, commands to the active one -> login (login) tcp/6820-6829",
        "slurmd to a backup controller -> login (login) tcp/6820-6829",
        "a backup controller to slurmd -> compute (all) tcp/6818",
        "session callbacks to Workbench -> login balancer (login) tcp/443",
        "NFS mount -> EFS workbench tcp/2049",
        "Lustre mount -> FSx home tcp/988",
    ):
        assert wanted in text, wanted
    assert "NO PATH" not in text


def _without(topology: Topology, name: str, keep: Callable[[netpaths.Rule], bool]) -> Topology:
    groups = dict(topology.groups)
    (gid,) = [g for g, group in groups.items() if group.name == name]
    group = groups[gid]
    groups[gid] = dataclasses.replace(group, ingress=tuple(r for r in group.ingress if keep(r)))
    return Topology(topology.subnets, topology.interface_endpoints, groups)


@pytest.mark.pcluster
@pytest.mark.slow
def test_each_broken_flow_fails_naming_role_service_and_hop(
    synthesised: dict, tmp_path: Path
) -> None:
    topo = synthesised["topology"]

    def broken(**kw: Any) -> str:
        where = tmp_path / str(len(list(tmp_path.iterdir())))
        where.mkdir()
        return "\n".join(prove_example(synthesised, where, **kw))

    assert broken() == ""

    # The state of the earlier main: the cluster group admitted nothing between login nodes.
    no_peers = _without(topo, "example-cluster", lambda r: not r.groups)
    text = broken(topology=no_peers)
    assert (
        "login (login) -> backup controllers, commands to the active one -> login (login) tcp/6820-6829: no path: no rule of loginLoginNodesSecurityGroup, example-cluster lets tcp/6820-6829 in from login (login)"
        in text
    )
    assert "Job Launcher node to node (load balancing) -> login (login) tcp/5559" in text
    # The directory's front and the database admit nothing.
    text = broken(topology=_without(topo, "example-ldaps", lambda r: False))
    assert (
        "head node -> sssd (LDAPS) -> directory (LDAPS front) tcp/636: no path: no rule of example-ldaps"
        in text
    )
    text = broken(topology=_without(topo, "example-workbench-db", lambda r: False))
    assert "login (login) -> Workbench's database -> Workbench database tcp/5432: no path" in text
    # The NAT's address not admitted: callbacks through the balancer fail once the
    # balancer's own rule is narrower than 0.0.0.0/0.
    no_nat = _without(topo, "example-cluster", lambda r: not r.cidrs)
    templates = json.loads(json.dumps(synthesised["templates"]))
    login_stack = templates["example-LoginNodes.json"]["Resources"]
    for resource in login_stack.values():
        for rule in resource.get("Properties", {}).get("SecurityGroupIngress", []):
            rule["CidrIp"] = "203.0.113.0/24"
    text = broken(topology=no_nat, templates=templates)
    assert (
        "compute (all) -> session callbacks to Workbench -> login balancer (login) tcp/443: no path"
        in text
    )
    assert "NAT gateway's address" in text
    # pcluster's own rules: a backup controller unreachable from compute nodes, a file
    # system that admits no login node.
    templates = json.loads(json.dumps(synthesised["templates"]))
    cluster = templates["example.json"]["Resources"]
    del cluster["loginLoginSecurityGroupComputeIngress0"]
    for key in [k for k in cluster if k.startswith("FSX") and k.endswith("LoginIngress0")]:
        del cluster[key]
    text = broken(templates=templates)
    assert "login (login) -> Lustre mount -> FSx home tcp/988: no path" in text
    # The cluster group's own slurmctld rule still admits compute nodes to the backups...
    assert "slurmd to a backup controller" not in text
    # ... and without it too, the hop is gone.
    text = broken(topology=no_peers, templates=templates)
    assert (
        "compute (all) -> slurmd to a backup controller -> login (login) tcp/6820-6829: no path"
        in text
    )
    assert "head node -> Lustre mount" not in text


def _broken_plan(
    project: Path, monkeypatch: pytest.MonkeyPatch, change: Callable[[Topology], Topology]
) -> str:
    config = load_config(project / "config" / "example.yaml")
    real = planned_topology(config)
    assert real is not None
    monkeypatch.setattr("pwbcluster.pipeline.plan.planned_topology", lambda cfg: change(real))
    with pytest.raises(StageError) as failed:
        make_plan(config, steps=[("render", render_step)])
    return str(failed.value)


def test_the_image_builder_and_jump_host_are_proven_too(project: Path) -> None:
    config = load_config(project / "config" / "example.yaml")
    notes = "\n".join(make_plan(config, steps=[("render", render_step)]).notes)
    assert "image builder      ssm                    internet gateway, public address" in notes
    assert "image builder      internet" in notes
    assert "jump host          ssmmessages            NAT gateway (example-private-1)" in notes
    assert "login (login)      internet" in notes  # licence activation


def test_a_builder_without_an_address_or_egress_fails_the_plan(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_public(topo: Topology) -> Topology:
        subnets = {k: dataclasses.replace(s, public_ip=False) for k, s in topo.subnets.items()}
        return Topology(subnets, topo.interface_endpoints, topo.groups)

    message = _broken_plan(project, monkeypatch, no_public)
    assert "the image build instance cannot reach what it calls" in message
    assert (
        "image builder -> ssm: no path: example-public-1 routes to the internet gateway" in message
    )

    def no_egress(topo: Topology) -> Topology:
        groups = dict(topo.groups)
        build = groups["sg-planned0000000002"]
        groups[build.id] = dataclasses.replace(build, egress=())
        return Topology(topo.subnets, topo.interface_endpoints, groups)

    message = _broken_plan(project, monkeypatch, no_egress)
    assert (
        "image builder -> imagebuilder: no path: no egress rule of example-image-build" in message
    )


def test_a_jump_host_without_nat_fails_the_plan(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_nat(topo: Topology) -> Topology:
        subnets = {
            k: dataclasses.replace(s, default_route=None) if s.default_route == "nat" else s
            for k, s in topo.subnets.items()
        }
        return Topology(subnets, topo.interface_endpoints, topo.groups)

    message = _broken_plan(project, monkeypatch, no_nat)
    assert "the jump host cannot reach what it calls" in message
    assert (
        "jump host -> ssm: no path: example-private-1 has no default route and no ssm endpoint"
        in message
    )
    assert "jump host -> s3" not in message  # the S3 gateway endpoint still serves it
