"""Stand-in AWS resources in moto for the ids a rendered config names (runs in the pcluster venv).

``invoke plan`` renders configs whose ids only exist after a real run (subnet-planned...,
sg-planned..., ami-planned..., PLANNED ARNs). pcluster's validators and template
builder look those ids up, so before validating, this module creates a matching
resource in moto for each such value (a VPC with DNS on, subnets in distinct zones,
an internet gateway route for the public ones so the login balancer is
internet-facing, security groups, an AMI, the key pair, IAM policies, secrets, S3
objects for the node scripts) and returns {value in config: moto's value}. The caller
substitutes, runs pcluster, and maps moto's values back in the files it writes.

Values that already exist in moto (the sandbox hands real moto ids) are left alone.
Standalone on purpose: imported by worker.py inside the pcluster venv, never by pwbcluster.
"""

from __future__ import annotations

import re
from typing import Any

import boto3

VPC_CIDR = "10.250.0.0/16"
# An Amazon Linux x86_64 AMI that moto ships (describing all of moto's AMIs costs ~2 s).
SEED_IMAGES = {"x86_64": "ami-760aaa0f"}
ARN_POLICY = re.compile(r"^arn:aws:iam::(\d{12}):policy/(?P<name>[\w+=,.@/-]+)$")
ARN_SECRET = re.compile(r"^arn:aws:secretsmanager:[\w-]+:\d{12}:secret:(?P<name>[\w/+=.@-]+)$")
S3_URL = re.compile(r"^s3://(?P<bucket>[a-z0-9.-]+)/(?P<key>.+)$")


def strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in strings(v)]
    return [node] if isinstance(node, str) else []


def key_names(node: Any) -> list[str]:
    """Every Ssh.KeyName / KeyName value in the config (cluster and image)."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "KeyName" and isinstance(value, str):
                found.append(value)
            else:
                found.extend(key_names(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(key_names(item))
    return found


class StandIns:
    """Create in moto what the config refers to; remember config value -> moto value."""

    def __init__(
        self,
        region: str,
        public_subnets: list[str],
        image_tags: dict[str, str] | None = None,
        architecture: str = "x86_64",
    ):
        self.region = region
        self.image_tags = image_tags or {}
        self.public_subnets = set(public_subnets)
        self.architecture = architecture
        self.ec2: Any = boto3.client("ec2", region_name=region)
        self.mapping: dict[str, str] = {}
        self._vpc_id: str | None = None
        self._zones = [
            z["ZoneName"] for z in self.ec2.describe_availability_zones()["AvailabilityZones"]
        ]

    @property
    def created_vpc(self) -> str | None:
        return self._vpc_id

    def vpc_id(self) -> str:
        if self._vpc_id is None:
            vpc = self.ec2.create_vpc(CidrBlock=VPC_CIDR)["Vpc"]["VpcId"]
            for attribute in ("EnableDnsSupport", "EnableDnsHostnames"):
                self.ec2.modify_vpc_attribute(VpcId=vpc, **{attribute: {"Value": True}})
            self._vpc_id = vpc
        return self._vpc_id

    def _exists(self, call: str, **kwargs: Any) -> bool:
        try:
            getattr(self.ec2, call)(**kwargs)
        except Exception:
            return False
        return True

    def subnet(self, value: str, index: int) -> None:
        if self._exists("describe_subnets", SubnetIds=[value]):
            return
        vpc = self.vpc_id()
        subnet = self.ec2.create_subnet(
            VpcId=vpc,
            CidrBlock=f"10.250.{index * 16}.0/20",
            AvailabilityZone=self._zones[index % len(self._zones)],
        )["Subnet"]["SubnetId"]
        if value in self.public_subnets:
            igw = self.ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
            self.ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
            table = self.ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
            self.ec2.create_route(
                RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw
            )
            self.ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
            self.ec2.modify_subnet_attribute(SubnetId=subnet, MapPublicIpOnLaunch={"Value": True})
        self.mapping[value] = subnet

    def security_group(self, value: str) -> None:
        if self._exists("describe_security_groups", GroupIds=[value]):
            return
        group = self.ec2.create_security_group(
            GroupName=f"standin-{value}", Description=f"stand-in for {value}", VpcId=self.vpc_id()
        )["GroupId"]
        self.mapping[value] = group

    def image(self, value: str, os_name: str) -> None:
        if self._exists("describe_images", ImageIds=[value]):
            return
        # Start one of moto's own Linux AMIs and image it, as a build would (register_image
        # in moto leaves out the architecture, which pcluster checks).
        seed = (
            SEED_IMAGES.get(self.architecture)
            or self.ec2.describe_images(
                Owners=["amazon"],
                Filters=[{"Name": "architecture", "Values": [self.architecture]}],
            )["Images"][0]["ImageId"]
        )
        instance = self.ec2.run_instances(ImageId=seed, MinCount=1, MaxCount=1)["Instances"][0]
        image = self.ec2.create_image(InstanceId=instance["InstanceId"], Name=f"standin-{value}")
        self.ec2.create_tags(
            Resources=[image["ImageId"]],
            Tags=[
                {"Key": k, "Value": v}
                for k, v in {**self.image_tags, "parallelcluster:os": os_name}.items()
            ],
        )
        self.ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
        self.mapping[value] = image["ImageId"]

    def key_pair(self, name: str) -> None:
        if not self._exists("describe_key_pairs", KeyNames=[name]):
            self.ec2.create_key_pair(KeyName=name)

    def policy(self, value: str) -> None:
        match = ARN_POLICY.match(value)
        if not match:
            return
        iam = boto3.client("iam", region_name=self.region)
        try:
            iam.get_policy(PolicyArn=value)
            return
        except Exception:
            pass
        name = match["name"].rsplit("/", 1)[-1]
        document = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}'
        try:
            arn = iam.create_policy(PolicyName=name, PolicyDocument=document)["Policy"]["Arn"]
        except iam.exceptions.EntityAlreadyExistsException:
            # a shared moto holds one by that name already (in its own account): use it
            pages = iam.get_paginator("list_policies").paginate(Scope="Local")
            arn = next(
                p["Arn"] for page in pages for p in page["Policies"] if p["PolicyName"] == name
            )
        if arn != value:
            self.mapping[value] = arn

    def secret(self, value: str) -> None:
        match = ARN_SECRET.match(value)
        if not match:
            return
        client = boto3.client("secretsmanager", region_name=self.region)
        try:
            client.describe_secret(SecretId=value)
            return
        except Exception:
            pass
        try:
            arn = client.create_secret(Name=match["name"], SecretString="stand-in")["ARN"]
        except client.exceptions.ResourceExistsException:
            arn = client.describe_secret(SecretId=match["name"])["ARN"]
        self.mapping[value] = arn

    def s3_object(self, value: str) -> None:
        match = S3_URL.match(value)
        if not match:
            return
        s3: Any = boto3.client("s3", region_name=self.region)
        try:
            s3.head_bucket(Bucket=match["bucket"])
        except Exception:
            # As in AWS, us-east-1 takes no LocationConstraint.
            location = (
                {}
                if self.region == "us-east-1"
                else {"CreateBucketConfiguration": {"LocationConstraint": self.region}}
            )
            s3.create_bucket(Bucket=match["bucket"], **location)
        s3.put_object(Bucket=match["bucket"], Key=match["key"], Body=b"#!/bin/bash\n")

    def create_for(self, config: dict[str, Any]) -> dict[str, str]:
        values = sorted(set(strings(config)))
        subnets = [v for v in values if v.startswith("subnet-")]
        for index, value in enumerate(subnets):
            self.subnet(value, index)
        for value in values:
            if value.startswith("sg-"):
                self.security_group(value)
            elif value.startswith("ami-"):
                self.image(value, str((config.get("Image") or {}).get("Os", "alinux2023")))
            elif value.startswith("arn:aws:iam::"):
                self.policy(value)
            elif value.startswith("arn:aws:secretsmanager:"):
                self.secret(value)
            elif value.startswith("s3://"):
                self.s3_object(value)
        for name in sorted(set(key_names(config))):
            self.key_pair(name)
        return dict(self.mapping)


def substitute(node: Any, mapping: dict[str, str]) -> Any:
    """A copy of ``node`` with every string equal to a mapping key replaced."""
    if isinstance(node, dict):
        return {k: substitute(v, mapping) for k, v in node.items()}
    if isinstance(node, list):
        return [substitute(v, mapping) for v in node]
    if isinstance(node, str):
        return mapping.get(node, node)
    return node


def substitute_text(text: str, mapping: dict[str, str]) -> str:
    """Replace every occurrence of each mapping key in ``text`` (longest keys first)."""
    for old in sorted(mapping, key=len, reverse=True):
        text = text.replace(old, mapping[old])
    return text
