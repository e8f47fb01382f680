"""Assertions on the CloudFormation that the patched pcluster synthesises, offline."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from pwbcluster.pipeline.plan_context import PlanContext

from .conftest import CERTIFICATE, Synthesised

pytestmark = pytest.mark.pcluster

LISTENER = "AWS::ElasticLoadBalancingV2::Listener"
TARGET_GROUP = "AWS::ElasticLoadBalancingV2::TargetGroup"
ASG = "AWS::AutoScaling::AutoScalingGroup"
SG = "AWS::EC2::SecurityGroup"


def listeners(s: Synthesised) -> dict[int, dict[str, Any]]:
    return {
        r["Properties"]["Port"]: r["Properties"] for r in s.resources(s.login, LISTENER).values()
    }


def target_groups(s: Synthesised) -> dict[str, dict[str, Any]]:
    return {k: r["Properties"] for k, r in s.resources(s.login, TARGET_GROUP).items()}


def forwarded_port(s: Synthesised, listener: dict[str, Any]) -> int:
    (action,) = listener["DefaultActions"]
    assert action["Type"] == "forward"
    return int(target_groups(s)[action["TargetGroupArn"]["Ref"]]["Port"])


def ingress_ports(group: dict[str, Any]) -> dict[int, str]:
    rules = group["Properties"]["SecurityGroupIngress"]
    assert all(r["IpProtocol"] == "tcp" and r["FromPort"] == r["ToPort"] for r in rules), rules
    return {r["FromPort"]: r.get("CidrIp") or r.get("SourcePrefixListId") for r in rules}


def test_example_serves_workbench_only_over_tls(
    synthesised: dict[str, Synthesised], planned: PlanContext
) -> None:
    """HTTPS by default: no certificate given, the services stage's generated one."""
    s = synthesised["example"]
    found = listeners(s)
    assert set(found) == {22, 443}  # no plain Workbench listener
    assert {port: lst["Protocol"] for port, lst in found.items()} == {22: "TCP", 443: "TLS"}
    generated = planned.services.workbench_certificate_arn
    assert generated and found[443]["Certificates"] == [{"CertificateArn": generated}]
    assert found[443]["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert {port: forwarded_port(s, lst) for port, lst in found.items()} == {22: 22, 443: 8787}


def test_plain_http_only_where_opted_out(synthesised: dict[str, Synthesised]) -> None:
    s = synthesised["plain"]
    found = listeners(s)
    assert {port: lst["Protocol"] for port, lst in found.items()} == {22: "TCP", 8787: "TCP"}
    assert {port: forwarded_port(s, lst) for port, lst in found.items()} == {22: 22, 8787: 8787}


def test_tls_listens_on_22_and_443_forwarding_to_8787(synthesised: dict[str, Synthesised]) -> None:
    s = synthesised["tls"]
    found = listeners(s)
    assert set(found) == {22, 443}
    assert found[22]["Protocol"] == "TCP" and "Certificates" not in found[22]
    assert found[443]["Protocol"] == "TLS"
    assert found[443]["Certificates"] == [{"CertificateArn": CERTIFICATE}]
    # TLS 1.2 at least: the balancer's default policy (ELBSecurityPolicy-2016-08) allows 1.0.
    assert found[443]["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert forwarded_port(s, found[443]) == 8787
    assert forwarded_port(s, found[22]) == 22


@pytest.mark.parametrize("variant", ["example", "tls", "plain"])
def test_health_checks_probe_the_target_port(
    synthesised: dict[str, Synthesised], variant: str
) -> None:
    groups = target_groups(synthesised[variant])
    assert sorted(g["Port"] for g in groups.values()) == [22, 8787]
    for name, group in groups.items():
        assert group["Protocol"] == "TCP", name
        assert group["HealthCheckPort"] == str(group["Port"]), name
        if group["Port"] == 22:
            assert group["HealthCheckProtocol"] == "TCP", name
            assert "HealthCheckPath" not in group, name
        else:  # Workbench: an HTTP GET on its health endpoint, not a TCP connect
            assert group["HealthCheckProtocol"] == "HTTP", name
            assert group["HealthCheckPath"] == "/health-check", name


@pytest.mark.parametrize("variant", ["example", "tls", "noports"])
def test_auto_scaling_group_registers_with_every_target_group(
    synthesised: dict[str, Synthesised], variant: str
) -> None:
    s = synthesised[variant]
    (asg,) = s.resources(s.login, ASG).values()
    registered = {ref["Ref"] for ref in asg["Properties"]["TargetGroupARNs"]}
    assert registered == set(target_groups(s))


@pytest.mark.parametrize(
    ("variant", "balancer", "nodes"),
    [
        ("example", {22, 443}, {22, 8787}),
        ("tls", {22, 443}, {22, 8787}),
        ("plain", {22, 8787}, {22, 8787}),
        ("noports", {22}, {22}),
    ],
)
def test_ingress_on_balancer_and_login_nodes(
    synthesised: dict[str, Synthesised], variant: str, balancer: set[int], nodes: set[int]
) -> None:
    s = synthesised[variant]
    lb_groups = [g for k, g in s.resources(s.login, SG).items() if "LoadBalancer" in k]
    assert len(lb_groups) == 1
    lb_rules = ingress_ports(lb_groups[0])
    assert set(lb_rules) == balancer
    node_group = s.resources(s.root, SG)["loginLoginNodesSecurityGroup"]
    node_rules = ingress_ports(node_group)
    assert set(node_rules) == nodes
    # every extra port is open from the pool's allowed CIDR, as port 22 is
    assert set(lb_rules.values()) == set(node_rules.values()) == {lb_rules[22]}


@pytest.mark.parametrize("variant", ["example", "tls", "noports"])
def test_head_node_stays_on_22_only(synthesised: dict[str, Synthesised], variant: str) -> None:
    s = synthesised[variant]
    head = s.resources(s.root, SG)["HeadNodeSecurityGroup"]
    assert set(ingress_ports(head)) == {22}


def test_balancer_is_internet_facing(synthesised: dict[str, Synthesised]) -> None:
    s = synthesised["example"]
    (nlb,) = s.resources(s.login, "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    assert nlb["Properties"]["Scheme"] == "internet-facing"


ASSET_PARAMETER = re.compile(
    r"AssetParameters([0-9a-f]{64})(ArtifactHash|S3Bucket|S3VersionKey)[0-9A-F]{8}"
)


def without_run_values(root: dict[str, Any]) -> dict[str, Any]:
    """A template with CDK's asset hashes named by the nested stack they hold.

    The hashes cover the nested templates as synthesised with moto's ids, which are new on
    every run; the head node's wait condition and the log group are named after the clock.
    Everything else must be equal.
    """
    text = json.dumps(root, sort_keys=True)
    for logical_id, resource in root["Resources"].items():
        if resource["Type"] == "AWS::CloudFormation::Stack":
            for digest in set(ASSET_PARAMETER.findall(json.dumps(resource))):
                text = text.replace(digest[0], f"<{logical_id}>")
    text = re.sub(
        r"(AssetParameters<[^>]+>(?:ArtifactHash|S3Bucket|S3VersionKey))[0-9A-F]{8}", r"\1", text
    )
    # pcluster names the head node's wait condition and the log group after the clock
    text = re.sub(r"(HeadNodeWaitCondition(?:Handle)?)\d{14}", r"\1<time>", text)
    text = re.sub(r"(/aws/parallelcluster/[\w-]+-)\d{12}", r"\1<time>", text)
    return dict(json.loads(text))


def test_no_extra_ports_synthesises_exactly_the_unpatched_templates(
    synthesised: dict[str, Synthesised], synthesised_unpatched: Synthesised
) -> None:
    patched = synthesised["noports"]
    assert set(listeners(patched)) == {22}
    assert set(patched.nested) == set(synthesised_unpatched.nested)
    unpatched_root = without_run_values(synthesised_unpatched.root)
    assert without_run_values(patched.root) == unpatched_root
    assert "<" in json.dumps(unpatched_root["Parameters"])  # the hashes were found and named
    for name, template in patched.nested.items():
        expected = without_run_values(synthesised_unpatched.nested[name])
        assert without_run_values(template) == expected, name


def test_ssh_can_be_taken_off_the_balancer(synthesised: dict[str, Synthesised]) -> None:
    s = synthesised["nossh"]
    assert set(listeners(s)) == {443}
    lb_groups = [g for k, g in s.resources(s.login, SG).items() if "LoadBalancer" in k]
    assert set(ingress_ports(lb_groups[0])) == {443}
    # The login nodes keep their own rules (ssh from inside, the balancer's target port).
    node_group = s.resources(s.root, SG)["loginLoginNodesSecurityGroup"]
    assert set(ingress_ports(node_group)) == {22, 8787}
