"""Fixtures for the image stage tests: a project copy, moto, a fake network."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pwbcluster.config import Config, load_config
from pwbcluster.contracts import NetworkOutputs

REGION = "eu-west-1"


@pytest.fixture
def config(project: Path) -> Config:
    return load_config(project / "config" / "example.yaml")


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)


def route_default_vpc(ec2: Any) -> str:
    """Give moto's default VPC what AWS's default VPCs have: an internet gateway and the
    main route table's default route to it (the build instance needs a way out)."""
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc["VpcId"])
    tables = ec2.describe_route_tables(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc["VpcId"]]},
            {"Name": "association.main", "Values": ["true"]},
        ]
    )["RouteTables"]
    routes = tables[0].get("Routes", [])
    if not any(r.get("DestinationCidrBlock") == "0.0.0.0/0" for r in routes):
        ec2.create_route(
            RouteTableId=tables[0]["RouteTableId"],
            DestinationCidrBlock="0.0.0.0/0",
            GatewayId=igw,
        )
    return str(vpc["VpcId"])


@pytest.fixture
def moto(aws_env: None) -> Iterator[dict[str, Any]]:
    """In-process moto with a bucket and the network outputs the image stage needs."""
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        ec2, s3 = session.client("ec2"), session.client("s3")
        s3.create_bucket(Bucket="scripts", CreateBucketConfiguration={"LocationConstraint": REGION})
        vpc = route_default_vpc(ec2)
        subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]]
        network = NetworkOutputs(
            vpc_id=vpc,
            vpc_cidr="172.31.0.0/16",
            public_subnet_ids=tuple(subnets[:1]),
            private_subnet_ids=tuple(subnets[1:2]),
            availability_zones=(f"{REGION}a",),
            bucket_name="scripts",
            bucket_arn="arn:aws:s3:::scripts",
            image_build_policy_arn="arn:aws:iam::123456789012:policy/image-build",
        )
        yield {"ec2": ec2, "s3": s3, "network": network}


@pytest.fixture
def s3_only(aws_env: None) -> Iterator[dict[str, Any]]:
    """In-process moto S3 only (no EC2 set-up) and network outputs with fixed ids."""
    with mock_aws():
        s3 = boto3.Session(region_name=REGION).client("s3")
        s3.create_bucket(Bucket="scripts", CreateBucketConfiguration={"LocationConstraint": REGION})
        network = NetworkOutputs(
            vpc_id="vpc-0123456789abcdef0",
            vpc_cidr="10.0.0.0/16",
            public_subnet_ids=("subnet-0123456789abcdef0",),
            private_subnet_ids=("subnet-0123456789abcdef1",),
            availability_zones=(f"{REGION}a",),
            bucket_name="scripts",
            bucket_arn="arn:aws:s3:::scripts",
            image_build_policy_arn="arn:aws:iam::123456789012:policy/image-build",
        )
        yield {"s3": s3, "network": network}
