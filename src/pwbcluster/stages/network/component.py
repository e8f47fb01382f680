"""Network components: the VPC (created or looked up) and the scripts bucket.

``Network`` creates a VPC with a public and a private subnet in each of N availability
zones, an internet gateway, one NAT gateway and an S3 gateway endpoint, or looks up an
existing VPC and its subnets by id. ``ScriptsBucket`` is the encrypted, versioned,
private, TLS-only bucket for node scripts, with the policy that lets build-image
instances read its ``image/`` prefix and nothing else.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

import pulumi_aws as aws

import pulumi
from pwbcluster.contracts import IMAGE_SCRIPTS_PREFIX
from pwbcluster.stages.network.args import NetworkArgs
from pwbcluster.stages.policies import node_policy_document, tls_only_bucket_policy


def _tags(base: Any, name: str) -> dict[str, str]:
    return {**dict(base), "Name": name}


def plan_subnets(cidr: str, count: int) -> tuple[list[str], list[str]]:
    """Public and private subnet CIDRs: 16 equal blocks, public first, private from half."""
    net = ipaddress.ip_network(cidr)
    if net.prefixlen > 24:
        raise ValueError(f"aux.network.cidr {cidr} is too small (at most /24)")
    blocks = list(net.subnets(new_prefix=net.prefixlen + 4))
    return [str(b) for b in blocks[:count]], [str(b) for b in blocks[8 : 8 + count]]


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    vpc_cidr: pulumi.Output[str]
    public_subnet_ids: pulumi.Output[list[str]]
    private_subnet_ids: pulumi.Output[list[str]]
    availability_zones: pulumi.Output[list[str]]
    image_build_security_group_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pwbcluster:aux:Network", name, None, opts)
        if args.vpc_id:
            self._use_existing(args)
        else:
            self._create(name, args)
        # pcluster build-image needs Build.SecurityGroupIds with Build.SubnetId: egress only.
        build_sg = aws.ec2.SecurityGroup(
            f"{name}-image-build-sg",
            vpc_id=self.vpc_id,
            description="build-image instances: no inbound, outbound for packages and S3",
            egress=[
                {
                    "protocol": "-1",
                    "from_port": 0,
                    "to_port": 0,
                    "cidr_blocks": ["0.0.0.0/0"],
                    "description": "package archives, S3, SSM",
                }
            ],
            tags=_tags(args.tags, f"{args.deployment}-image-build"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.image_build_security_group_id = build_sg.id
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "vpc_cidr": self.vpc_cidr,
                "public_subnet_ids": self.public_subnet_ids,
                "private_subnet_ids": self.private_subnet_ids,
                "availability_zones": self.availability_zones,
                "image_build_security_group_id": self.image_build_security_group_id,
            }
        )

    def _use_existing(self, args: NetworkArgs) -> None:
        if len(args.private_subnet_ids) < 2:
            raise ValueError(
                "aux.network.private_subnet_ids: an existing VPC needs at least two private "
                "subnets in different availability zones (the directory and RDS need both)"
            )
        invoke = pulumi.InvokeOptions(parent=self)
        vpc = aws.ec2.get_vpc(id=args.vpc_id, opts=invoke)
        private = [aws.ec2.get_subnet(id=s, opts=invoke) for s in args.private_subnet_ids]
        zones = sorted({s.availability_zone for s in private})
        if len(zones) < 2:
            raise ValueError(
                f"aux.network.private_subnet_ids: {', '.join(args.private_subnet_ids)} are all "
                f"in {zones[0]}; name subnets in two availability zones"
            )
        self.vpc_id = pulumi.Output.from_input(vpc.id)
        self.vpc_cidr = pulumi.Output.from_input(vpc.cidr_block)
        self.public_subnet_ids = pulumi.Output.from_input(list(args.public_subnet_ids))
        self.private_subnet_ids = pulumi.Output.from_input(list(args.private_subnet_ids))
        self.availability_zones = pulumi.Output.from_input(zones)
        self.nat_gateway_ids: pulumi.Output[list[str]] = pulumi.Output.from_input([])
        self.nat_public_ips: pulumi.Output[list[str]] = pulumi.Output.from_input([])

    def _create(self, name: str, args: NetworkArgs) -> None:
        child = pulumi.ResourceOptions(parent=self)
        zones = aws.get_availability_zones(
            state="available", opts=pulumi.InvokeOptions(parent=self)
        ).names[: args.availability_zones]
        if len(zones) < 2:
            raise ValueError(f"region {args.region} offers fewer than two availability zones")
        public_cidrs, private_cidrs = plan_subnets(args.cidr, len(zones))
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags=_tags(args.tags, f"{args.deployment}-vpc"),
            opts=child,
        )
        vpc_child = pulumi.ResourceOptions(parent=vpc)
        igw = aws.ec2.InternetGateway(
            f"{name}-igw",
            vpc_id=vpc.id,
            tags=_tags(args.tags, f"{args.deployment}-igw"),
            opts=vpc_child,
        )
        public, private = [], []
        for i, zone in enumerate(zones):
            public.append(
                aws.ec2.Subnet(
                    f"{name}-public-{i + 1}",
                    vpc_id=vpc.id,
                    cidr_block=public_cidrs[i],
                    availability_zone=zone,
                    # The login pool lives here and ParallelCluster's login launch template
                    # sets no public address: the subnet's setting is what gives its nodes
                    # a way out to the AWS APIs (Auto Scaling, Secrets Manager, ELB).
                    map_public_ip_on_launch=True,
                    tags=_tags(args.tags, f"{args.deployment}-public-{zone}"),
                    opts=vpc_child,
                )
            )
            private.append(
                aws.ec2.Subnet(
                    f"{name}-private-{i + 1}",
                    vpc_id=vpc.id,
                    cidr_block=private_cidrs[i],
                    availability_zone=zone,
                    map_public_ip_on_launch=False,
                    tags=_tags(args.tags, f"{args.deployment}-private-{zone}"),
                    opts=vpc_child,
                )
            )
        public_rt = aws.ec2.RouteTable(
            f"{name}-public-rt",
            vpc_id=vpc.id,
            tags=_tags(args.tags, f"{args.deployment}-public"),
            opts=vpc_child,
        )
        aws.ec2.Route(
            f"{name}-public-default",
            route_table_id=public_rt.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=igw.id,
            opts=pulumi.ResourceOptions(parent=public_rt),
        )
        private_rt = aws.ec2.RouteTable(
            f"{name}-private-rt",
            vpc_id=vpc.id,
            tags=_tags(args.tags, f"{args.deployment}-private"),
            opts=vpc_child,
        )
        nat_ids: list[pulumi.Output[str]] = []
        nat_ips: list[pulumi.Output[str]] = []
        if args.nat_gateway:
            eip = aws.ec2.Eip(
                f"{name}-nat-eip",
                domain="vpc",
                tags=_tags(args.tags, f"{args.deployment}-nat"),
                opts=pulumi.ResourceOptions(parent=vpc, depends_on=[igw]),
            )
            nat = aws.ec2.NatGateway(
                f"{name}-nat",
                allocation_id=eip.id,
                subnet_id=public[0].id,
                tags=_tags(args.tags, f"{args.deployment}-nat"),
                opts=pulumi.ResourceOptions(parent=vpc, depends_on=[igw]),
            )
            nat_ids.append(nat.id)
            nat_ips.append(eip.public_ip)
            aws.ec2.Route(
                f"{name}-private-default",
                route_table_id=private_rt.id,
                destination_cidr_block="0.0.0.0/0",
                nat_gateway_id=nat.id,
                opts=pulumi.ResourceOptions(parent=private_rt),
            )
        for i, subnet in enumerate(public):
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{i + 1}-rt",
                subnet_id=subnet.id,
                route_table_id=public_rt.id,
                opts=pulumi.ResourceOptions(parent=subnet),
            )
        for i, subnet in enumerate(private):
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{i + 1}-rt",
                subnet_id=subnet.id,
                route_table_id=private_rt.id,
                opts=pulumi.ResourceOptions(parent=subnet),
            )
        # Nodes fetch scripts from S3 without crossing the NAT gateway (and its charges).
        aws.ec2.VpcEndpoint(
            f"{name}-s3-endpoint",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[private_rt.id, public_rt.id],
            tags=_tags(args.tags, f"{args.deployment}-s3"),
            opts=vpc_child,
        )
        self.vpc_id = vpc.id
        self.vpc_cidr = vpc.cidr_block
        self.nat_gateway_ids = pulumi.Output.all(*nat_ids)
        self.nat_public_ips = pulumi.Output.all(*nat_ips)
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public])
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private])
        self.availability_zones = pulumi.Output.from_input(list(zones))


@dataclass(frozen=True)
class ScriptsBucketArgs:
    deployment: str
    tags: dict[str, str] = field(default_factory=dict)


class ScriptsBucket(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    image_build_policy_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: ScriptsBucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pwbcluster:aux:ScriptsBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket_prefix=f"{args.deployment}-scripts-",
            # Holds only scripts the toolkit uploads again: `invoke down` must empty it.
            force_destroy=True,
            tags=_tags(args.tags, f"{args.deployment}-scripts"),
            opts=child,
        )
        in_bucket = pulumi.ResourceOptions(parent=bucket)
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=in_bucket,
        )
        block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=in_bucket,
        )
        aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=in_bucket,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms"},
                    "bucket_key_enabled": True,
                }
            ],
            opts=in_bucket,
        )
        aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=bucket.id,
            policy=tls_only_bucket_policy(bucket.arn),
            opts=pulumi.ResourceOptions(parent=bucket, depends_on=[block]),
        )
        image_policy = aws.iam.Policy(
            f"{name}-image-build-read",
            name=f"pwbcluster-{args.deployment}-image-build-read",
            description="Build-image instances read the image/ prefix of the scripts bucket",
            policy=node_policy_document(bucket.arn, IMAGE_SCRIPTS_PREFIX),
            tags=_tags(args.tags, f"{args.deployment}-image-build-read"),
            opts=child,
        )
        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn
        self.image_build_policy_arn = image_policy.arn
        self.register_outputs(
            {
                "bucket_name": self.bucket_name,
                "bucket_arn": self.bucket_arn,
                "image_build_policy_arn": self.image_build_policy_arn,
            }
        )
