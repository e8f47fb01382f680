"""The hostname's Route 53 record: written as an alias of the login balancer, checked
against the zone first, and removed on down only when it is still this deployment's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pwbcluster.errors import StageError
from pwbcluster.stages.cluster import dns

REGION = "eu-west-1"


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        elbv2 = boto3.client("elbv2", region_name=REGION)
        lb = elbv2.create_load_balancer(Name="example-login", Subnets=[subnet], Type="network")
        route53 = boto3.client("route53", region_name=REGION)
        zone = route53.create_hosted_zone(Name="example.com", CallerReference="t")["HostedZone"]
        yield {
            "route53": route53,
            "elbv2": elbv2,
            "zone": zone["Id"],
            "lb": lb["LoadBalancers"][0],
        }


def records(aws: dict[str, Any]) -> list[dict[str, Any]]:
    page = aws["route53"].list_resource_record_sets(HostedZoneId=aws["zone"])
    return [r for r in page["ResourceRecordSets"] if r["Type"] == "A"]


def test_the_hostname_becomes_an_alias_of_the_balancer_once(aws: dict[str, Any]) -> None:
    lb = aws["lb"]
    for _ in range(2):  # a re-run UPSERTs the same record
        dns.point_at_balancer(
            aws["route53"], aws["elbv2"], aws["zone"], "workbench.example.com", lb["DNSName"]
        )
    [record] = records(aws)
    assert record["Name"] == "workbench.example.com."
    target = record["AliasTarget"]
    assert target["HostedZoneId"] == lb["CanonicalHostedZoneId"]
    assert target["DNSName"].rstrip(".") == lb["DNSName"].lower()


def test_a_hostname_outside_the_zone_is_refused_before_anything_is_written(
    aws: dict[str, Any],
) -> None:
    with pytest.raises(StageError, match=r"not inside the hosted zone .*example\.com"):
        dns.point_at_balancer(
            aws["route53"], aws["elbv2"], aws["zone"], "workbench.example.org", "x"
        )
    with pytest.raises(StageError, match="no hosted zone"):
        dns.zone_for(aws["route53"], "Z0000000000000NOSUCH", "workbench.example.com")
    assert records(aws) == []


def test_an_unknown_balancer_writes_nothing(aws: dict[str, Any]) -> None:
    with pytest.raises(StageError, match="no load balancer named"):
        dns.point_at_balancer(
            aws["route53"], aws["elbv2"], aws["zone"], "workbench.example.com", "nope.elb"
        )
    assert records(aws) == []


def test_down_removes_only_this_deployments_record(aws: dict[str, Any]) -> None:
    lb = aws["lb"]["DNSName"]
    host = "workbench.example.com"
    dns.point_at_balancer(aws["route53"], aws["elbv2"], aws["zone"], host, lb)
    # Pointed elsewhere since (another deployment took the name): left alone.
    assert not dns.remove_record(aws["route53"], aws["zone"], host, "other.elb.amazonaws.com")
    assert len(records(aws)) == 1
    assert dns.remove_record(aws["route53"], aws["zone"], host, lb)
    assert records(aws) == []
    assert not dns.remove_record(aws["route53"], aws["zone"], host, lb)  # gone: nothing to do
