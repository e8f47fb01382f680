"""Who may reach and read what: the cluster security group, node policies, the key pair.

``NodePolicies`` gives head, login and compute nodes read access to exactly the
``cluster/`` prefix of the scripts bucket and exactly the secrets each needs: head and
login nodes render Workbench's configuration (database passwords, secure-cookie-key);
compute nodes read scripts only. ParallelCluster grants its own access to the directory
bind password and the Slurm accounting password, so those are not repeated here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi_aws as aws
import pulumi_tls as tls

import pulumi
from pwbcluster.contracts import (
    CLUSTER_SCRIPTS_PREFIX,
    HA_SCALING_SUMS_KEY,
    LAUNCHER_PORT,
    SLURMCTLD_PORTS,
)
from pwbcluster.stages.policies import node_policy_document

ROLES = ("head-node", "login-node", "compute-node")
# A login node finds its pool's load balancer (for Workbench's session callback address).
# These Describe calls support no resource-level permissions, hence "*"; they read only.
LOGIN_NODE_EXTRA = (
    {
        "Sid": "FindLoginLoadBalancer",
        "Effect": "Allow",
        "Action": [
            "elasticloadbalancing:DescribeLoadBalancers",
            "elasticloadbalancing:DescribeTags",
        ],
        "Resource": "*",
    },
)


def login_scaling_statements(
    region: str, cluster: str, subnet_ids: Sequence[str]
) -> list[dict[str, Any]]:
    """What ParallelCluster's resume/suspend programs call, for a backup controller.

    Mirrors the head node's own policy in ParallelCluster 3.16.1
    (``HeadNodeIamResources`` in ``pcluster/templates/cdk_builder_utils.py``, the Route53
    policy in ``templates/slurm_builder.py``): launch and fleet requests only into the
    cluster's subnets, termination only of instances tagged with this cluster, PassRole
    only on the cluster's own role path, its DynamoDB table, records of its hosted zone.
    The hosted zone and the AMI are made later (by ParallelCluster and the image stage), so
    those are named by pattern and condition, not by id.
    """
    ec2 = f"arn:aws:ec2:{region}:*"
    return [
        {
            "Sid": "ScalingRunInstancesCreateFleet",
            "Effect": "Allow",
            "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
            "Resource": [
                *(f"{ec2}:subnet/{s}" for s in subnet_ids),
                *(
                    f"{ec2}:{kind}/*"
                    for kind in (
                        "fleet",
                        "network-interface",
                        "instance",
                        "volume",
                        "key-pair",
                        "security-group",
                        "launch-template",
                        "placement-group",
                    )
                ),
                f"arn:aws:ec2:{region}::image/*",
            ],
        },
        {
            "Sid": "ScalingTagOnLaunch",
            "Effect": "Allow",
            "Action": "ec2:CreateTags",
            "Resource": [f"{ec2}:instance/*", f"{ec2}:volume/*", f"{ec2}:network-interface/*"],
            "Condition": {"StringEquals": {"ec2:CreateAction": ["RunInstances", "CreateFleet"]}},
        },
        {
            "Sid": "ScalingTerminateOwnInstances",
            "Effect": "Allow",
            "Action": "ec2:TerminateInstances",
            "Resource": "*",
            "Condition": {
                "StringEquals": {"ec2:ResourceTag/parallelcluster:cluster-name": cluster}
            },
        },
        {
            # Describe calls support no resource-level permissions; they only read.
            "Sid": "ScalingDescribe",
            "Effect": "Allow",
            "Action": [
                "ec2:DescribeInstances",
                "ec2:DescribeInstanceStatus",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplates",
                "ec2:DescribeLaunchTemplateVersions",
                "ec2:DescribeCapacityReservations",
            ],
            "Resource": "*",
        },
        {
            "Sid": "ScalingPassClusterRoles",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": f"arn:aws:iam::*:role/parallelcluster/{cluster}/*",
        },
        {
            "Sid": "ScalingClusterTable",
            "Effect": "Allow",
            "Action": [
                "dynamodb:UpdateItem",
                "dynamodb:PutItem",
                "dynamodb:GetItem",
                "dynamodb:BatchGetItem",
            ],
            "Resource": f"arn:aws:dynamodb:{region}:*:table/parallelcluster-{cluster}",
        },
        {
            "Sid": "ScalingClusterDnsRecords",
            "Effect": "Allow",
            "Action": "route53:ChangeResourceRecordSets",
            "Resource": "arn:aws:route53:::hostedzone/*",
            "Condition": {
                "ForAllValues:StringLike": {
                    "route53:ChangeResourceRecordSetsNormalizedRecordNames": [
                        f"*.{cluster.lower()}.pcluster"
                    ]
                }
            },
        },
    ]


@dataclass(frozen=True)
class ClusterAccessArgs:
    deployment: str
    vpc_id: str
    tags: Mapping[str, str] = field(default_factory=dict)
    # Workbench's port (cluster.workbench.port): login nodes reach each other on it.
    workbench_port: int = 8787
    # Sessions call back through the internet-facing login balancer: from the private
    # subnets that traffic leaves by the NAT gateways, whose addresses the balancer
    # (which carries this group too) must admit on its Workbench listener.
    nat_public_ips: tuple[str, ...] = ()
    callback_port: int = 8787


class ClusterAccess(pulumi.ComponentResource):
    """The security group every cluster node joins; databases admit its members."""

    security_group_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: ClusterAccessArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pwbcluster:aux:ClusterAccess", name, None, opts)
        callbacks: list[Any] = [
            {
                "protocol": "tcp",
                "from_port": args.callback_port,
                "to_port": args.callback_port,
                "cidr_blocks": [f"{ip}/32"],
                "description": "session callbacks through the login balancer (NAT)",
            }
            for ip in args.nat_public_ips
        ]
        sg = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.vpc_id,
            description="Cluster nodes (head, login, compute): client of the aux services",
            # What ParallelCluster's own groups do not open between two login nodes
            # (pcluster 3.16 templates/cluster_stack.py admits the head node and compute
            # nodes to a login node, not another login node): Workbench's load balancing
            # talks node to node, and with controller HA every login node runs a backup
            # slurmctld the others ping and send commands to.
            ingress=[
                {
                    "protocol": "tcp",
                    "from_port": args.workbench_port,
                    "to_port": args.workbench_port,
                    "self": True,
                    "description": "Workbench node to node",
                },
                {
                    "protocol": "tcp",
                    "from_port": LAUNCHER_PORT,
                    "to_port": LAUNCHER_PORT,
                    "self": True,
                    "description": "Job Launcher node to node",
                },
                {
                    "protocol": "tcp",
                    "from_port": SLURMCTLD_PORTS[0],
                    "to_port": SLURMCTLD_PORTS[1],
                    "self": True,
                    "description": "slurmctld (backup controllers on login nodes)",
                },
                *callbacks,
            ],
            egress=[
                {
                    "protocol": "-1",
                    "from_port": 0,
                    "to_port": 0,
                    "cidr_blocks": ["0.0.0.0/0"],
                    "description": "nodes reach AWS APIs and the aux services",
                }
            ],
            tags={**dict(args.tags), "Name": f"{args.deployment}-cluster"},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.security_group_id = sg.id
        self.register_outputs({"security_group_id": self.security_group_id})


@dataclass(frozen=True)
class NodePoliciesArgs:
    deployment: str
    bucket_arn: str
    # Secret ARNs by role: exactly what each role may read.
    secrets: Mapping[str, Sequence[Any]]
    tags: Mapping[str, str] = field(default_factory=dict)
    # More statements for the login-node role (a backup controller's scaling calls).
    login_extra: Sequence[dict[str, Any]] = ()
    # Controller HA: the head writes the digests of the scaling files it shares, the login
    # nodes read them (cluster/ha/controller-ha.sh --scaling-sums-uri).
    ha_scaling_sums: bool = False


def ha_scaling_sums_statements(bucket_arn: str) -> dict[str, list[dict[str, Any]]]:
    """By role: the head node alone may put the scaling files' digest list; login nodes
    may read it. One exact key: the head cannot write the node scripts under cluster/."""
    key = f"{bucket_arn}/{HA_SCALING_SUMS_KEY}"
    return {
        "head-node": [
            {
                "Sid": "PublishHaScalingSums",
                "Effect": "Allow",
                "Action": ["s3:PutObject"],
                "Resource": [key],
            }
        ],
        "login-node": [
            {
                "Sid": "ReadHaScalingSums",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [key],
            }
        ],
    }


class NodePolicies(pulumi.ComponentResource):
    arns: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: NodePoliciesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pwbcluster:aux:NodePolicies", name, None, opts)
        self.arns = {}
        sums = ha_scaling_sums_statements(args.bucket_arn) if args.ha_scaling_sums else {}
        for role in ROLES:
            extra = [*sums.get(role, ())]
            if role == "login-node":
                extra = [*LOGIN_NODE_EXTRA, *args.login_extra, *extra]
            policy = aws.iam.Policy(
                f"{name}-{role}",
                name=f"pwbcluster-{args.deployment}-{role}",
                description=f"{role}: read cluster scripts and exactly its own secrets",
                policy=node_policy_document(
                    args.bucket_arn,
                    CLUSTER_SCRIPTS_PREFIX,
                    list(args.secrets.get(role, ())),
                    extra,
                ),
                tags={**dict(args.tags), "Name": f"{args.deployment}-{role}"},
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.arns[role] = policy.arn
        self.register_outputs({role.replace("-", "_"): arn for role, arn in self.arns.items()})


@dataclass(frozen=True)
class SshKeyArgs:
    deployment: str
    tags: Mapping[str, str] = field(default_factory=dict)
    recovery_window_days: int = 0


class SshKey(pulumi.ComponentResource):
    """An EC2 key pair whose private key exists only as a secret (state and Secrets Manager)."""

    key_name: pulumi.Output[str]
    private_key_secret_arn: pulumi.Output[str]
    private_key: pulumi.Output[str]

    def __init__(
        self, name: str, args: SshKeyArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pwbcluster:aux:SshKey", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = {**dict(args.tags), "Name": f"{args.deployment}-ssh"}
        key = tls.PrivateKey(f"{name}-key", algorithm="RSA", rsa_bits=4096, opts=child)
        pair = aws.ec2.KeyPair(
            f"{name}-pair",
            key_name_prefix=f"{args.deployment}-",
            public_key=key.public_key_openssh,
            tags=tags,
            opts=child,
        )
        self.private_key = pulumi.Output.secret(key.private_key_openssh)
        secret = aws.secretsmanager.Secret(
            f"{name}-secret",
            name=f"pwbcluster/{args.deployment}/ssh-private-key",
            description="Private key of the cluster's EC2 key pair (OpenSSH format)",
            recovery_window_in_days=args.recovery_window_days,
            tags=tags,
            opts=child,
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-secret-version",
            secret_id=secret.id,
            secret_string=self.private_key,
            opts=pulumi.ResourceOptions(parent=secret),
        )
        self.key_name = pair.key_name
        self.private_key_secret_arn = secret.arn
        self.register_outputs(
            {"key_name": self.key_name, "private_key_secret_arn": self.private_key_secret_arn}
        )
