"""The reachability proof: each role reaches each AWS API it calls, or the plan says which
hop is missing. Every kind of hop is broken once."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

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
    )
    monkeypatch.setattr("pwbcluster.pipeline.plan.planned_topology", lambda cfg: broken)
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
