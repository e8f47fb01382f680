"""The IAM policy the person (or CI role) running `invoke up` needs, from what the stages call.

Three parts:
- the two Pulumi programs: every resource type they register for this config (found by
  running them under the plan's offline mocks) mapped to the actions the AWS provider
  needs to create, read, update, tag and delete it. A type with no entry here stops the
  generation: a new resource must not leave the policy silently short;
- the toolkit's own boto3 calls (bundle upload, outputs, status, audit, DNS, preflight);
  tests/foundation/test_deployer_policy.py records every call a sandbox run makes and
  fails on one this list does not allow;
- ParallelCluster's own CLI: its permissions are the ones AWS documents for pcluster users
  (docs.aws.amazon.com/parallelcluster/latest/ug/iam-roles-in-parallelcluster-v3.html,
  "Example user policies": base user, build-image, and IAM-resource policies). They are
  not repeated here: the output names them, to be attached beside this one.

Resources are "*": the names are derived from the deployment's, but several services'
ARNs are only known after creation. Narrowing by the ``Deployment`` tag
(aws:ResourceTag) is left to the account's owner and said so in the output.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable
from typing import Any

from pwbcluster.errors import ToolkitError

# Pulumi type token -> what the AWS provider calls for it (besides the service's reads).
PULUMI_TYPE_ACTIONS: dict[str, tuple[str, ...]] = {
    "aws:ec2/vpc:Vpc": ("ec2:CreateVpc", "ec2:DeleteVpc", "ec2:ModifyVpcAttribute"),
    "aws:ec2/subnet:Subnet": ("ec2:CreateSubnet", "ec2:DeleteSubnet", "ec2:ModifySubnetAttribute"),
    "aws:ec2/internetGateway:InternetGateway": (
        "ec2:CreateInternetGateway",
        "ec2:DeleteInternetGateway",
        "ec2:AttachInternetGateway",
        "ec2:DetachInternetGateway",
    ),
    "aws:ec2/eip:Eip": ("ec2:AllocateAddress", "ec2:ReleaseAddress", "ec2:DisassociateAddress"),
    "aws:ec2/natGateway:NatGateway": ("ec2:CreateNatGateway", "ec2:DeleteNatGateway"),
    "aws:ec2/routeTable:RouteTable": ("ec2:CreateRouteTable", "ec2:DeleteRouteTable"),
    "aws:ec2/route:Route": ("ec2:CreateRoute", "ec2:DeleteRoute", "ec2:ReplaceRoute"),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": (
        "ec2:AssociateRouteTable",
        "ec2:DisassociateRouteTable",
    ),
    "aws:ec2/vpcEndpoint:VpcEndpoint": (
        "ec2:CreateVpcEndpoint",
        "ec2:DeleteVpcEndpoints",
        "ec2:ModifyVpcEndpoint",
    ),
    "aws:ec2/securityGroup:SecurityGroup": (
        "ec2:CreateSecurityGroup",
        "ec2:DeleteSecurityGroup",
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:AuthorizeSecurityGroupEgress",
        "ec2:RevokeSecurityGroupIngress",
        "ec2:RevokeSecurityGroupEgress",
    ),
    "aws:ec2/securityGroupRule:SecurityGroupRule": (
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:AuthorizeSecurityGroupEgress",
        "ec2:RevokeSecurityGroupIngress",
        "ec2:RevokeSecurityGroupEgress",
    ),
    "aws:ec2/keyPair:KeyPair": ("ec2:ImportKeyPair", "ec2:DeleteKeyPair"),
    "aws:ec2/instance:Instance": (
        "ec2:RunInstances",
        "ec2:TerminateInstances",
        "ec2:ModifyInstanceAttribute",
        "ec2:StopInstances",
        "ec2:StartInstances",
        "iam:PassRole",
    ),
    "aws:s3/bucket:Bucket": ("s3:CreateBucket", "s3:DeleteBucket", "s3:PutBucketTagging"),
    "aws:s3/bucketVersioning:BucketVersioning": ("s3:PutBucketVersioning",),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": (
        "s3:PutBucketPublicAccessBlock",
        "s3:DeleteBucketPublicAccessBlock",
    ),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        "s3:PutEncryptionConfiguration",
    ),
    "aws:s3/bucketPolicy:BucketPolicy": ("s3:PutBucketPolicy", "s3:DeleteBucketPolicy"),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": (
        "s3:PutBucketOwnershipControls",
        "s3:DeleteBucketOwnershipControls",
    ),
    "aws:s3/bucketLogging:BucketLogging": ("s3:PutBucketLogging",),
    "aws:s3/bucketObjectv2:BucketObjectv2": ("s3:PutObject", "s3:DeleteObject"),
    "aws:iam/policy:Policy": (
        "iam:CreatePolicy",
        "iam:DeletePolicy",
        "iam:CreatePolicyVersion",
        "iam:DeletePolicyVersion",
        "iam:TagPolicy",
    ),
    "aws:iam/role:Role": (
        "iam:CreateRole",
        "iam:DeleteRole",
        "iam:UpdateAssumeRolePolicy",
        "iam:TagRole",
    ),
    "aws:iam/rolePolicy:RolePolicy": ("iam:PutRolePolicy", "iam:DeleteRolePolicy"),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": (
        "iam:AttachRolePolicy",
        "iam:DetachRolePolicy",
    ),
    "aws:iam/instanceProfile:InstanceProfile": (
        "iam:CreateInstanceProfile",
        "iam:DeleteInstanceProfile",
        "iam:AddRoleToInstanceProfile",
        "iam:RemoveRoleFromInstanceProfile",
        "iam:PassRole",
    ),
    "aws:secretsmanager/secret:Secret": (
        "secretsmanager:CreateSecret",
        "secretsmanager:DeleteSecret",
        "secretsmanager:UpdateSecret",
        "secretsmanager:TagResource",
    ),
    "aws:secretsmanager/secretVersion:SecretVersion": ("secretsmanager:PutSecretValue",),
    "aws:directoryservice/directory:Directory": (
        "ds:CreateDirectory",
        "ds:CreateMicrosoftAD",
        "ds:DeleteDirectory",
        "ds:AddTagsToResource",
        # Directory Service makes the directory's own group and network interfaces.
        "ec2:CreateSecurityGroup",
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:AuthorizeSecurityGroupEgress",
        "ec2:CreateNetworkInterface",
        "ec2:DeleteNetworkInterface",
        "ec2:CreateTags",
    ),
    "aws:lb/loadBalancer:LoadBalancer": (
        "elasticloadbalancing:CreateLoadBalancer",
        "elasticloadbalancing:DeleteLoadBalancer",
        "elasticloadbalancing:ModifyLoadBalancerAttributes",
        "elasticloadbalancing:SetSecurityGroups",
    ),
    "aws:lb/targetGroup:TargetGroup": (
        "elasticloadbalancing:CreateTargetGroup",
        "elasticloadbalancing:DeleteTargetGroup",
        "elasticloadbalancing:ModifyTargetGroup",
        "elasticloadbalancing:ModifyTargetGroupAttributes",
    ),
    "aws:lb/targetGroupAttachment:TargetGroupAttachment": (
        "elasticloadbalancing:RegisterTargets",
        "elasticloadbalancing:DeregisterTargets",
    ),
    "aws:lb/listener:Listener": (
        "elasticloadbalancing:CreateListener",
        "elasticloadbalancing:DeleteListener",
        "elasticloadbalancing:ModifyListener",
    ),
    "aws:acm/certificate:Certificate": (
        "acm:ImportCertificate",
        "acm:DeleteCertificate",
        "acm:AddTagsToCertificate",
    ),
    "aws:rds/subnetGroup:SubnetGroup": (
        "rds:CreateDBSubnetGroup",
        "rds:DeleteDBSubnetGroup",
        "rds:ModifyDBSubnetGroup",
    ),
    "aws:rds/parameterGroup:ParameterGroup": (
        "rds:CreateDBParameterGroup",
        "rds:DeleteDBParameterGroup",
        "rds:ModifyDBParameterGroup",
    ),
    "aws:rds/instance:Instance": (
        "rds:CreateDBInstance",
        "rds:DeleteDBInstance",
        "rds:ModifyDBInstance",
        "rds:CreateDBSnapshot",
    ),
    "aws:kms/key:Key": ("kms:CreateKey", "kms:ScheduleKeyDeletion", "kms:PutKeyPolicy"),
}

# Resource types that call no AWS API (computed by the Pulumi engine or providers locally).
LOCAL_PREFIXES = ("random:", "tls:", "pulumi:", "pwbcluster:")

# Each service a program touches is also read (refresh, waiters, drift): its reads.
READS: dict[str, tuple[str, ...]] = {
    "ec2": ("ec2:Describe*", "ec2:CreateTags", "ec2:DeleteTags"),
    "s3": ("s3:Get*", "s3:List*"),
    "iam": ("iam:Get*", "iam:List*"),
    "secretsmanager": ("secretsmanager:DescribeSecret", "secretsmanager:GetResourcePolicy"),
    "ds": ("ds:Describe*", "ds:ListTagsForResource"),
    "elasticloadbalancing": ("elasticloadbalancing:Describe*", "elasticloadbalancing:AddTags"),
    "acm": ("acm:DescribeCertificate", "acm:GetCertificate", "acm:ListTagsForCertificate"),
    "rds": ("rds:Describe*", "rds:ListTagsForResource", "rds:AddTagsToResource"),
    "kms": ("kms:DescribeKey", "kms:GetKeyPolicy", "kms:ListResourceTags"),
}

# What the toolkit itself calls with boto3, outside Pulumi and pcluster.
TOOLKIT_ACTIONS: tuple[str, ...] = (
    "sts:GetCallerIdentity",
    "ec2:DescribeRegions",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeInstances",
    "ec2:DescribeImages",
    "ec2:DeregisterImage",
    "ec2:DeleteSnapshot",
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
    "ec2:DescribeAddresses",
    "ec2:DescribeRouteTables",
    "ec2:DescribeVpcEndpoints",
    "ec2:DescribeNatGateways",
    "elasticloadbalancing:DescribeLoadBalancers",
    "servicequotas:GetServiceQuota",
    "servicequotas:GetAWSDefaultServiceQuota",
    "s3:PutObject",
    "s3:GetObject",
    "s3:DeleteObject",
    "s3:ListBucket",
    "s3:HeadBucket",
    "secretsmanager:GetSecretValue",
    "secretsmanager:ListSecrets",
    "route53:ChangeResourceRecordSets",
    "route53:GetHostedZone",
    "route53:ListResourceRecordSets",
    "route53:GetChange",
    "cloudformation:DescribeStacks",
    "cloudformation:ListStacks",
    "ssm:GetParameter",
)

PCLUSTER_POLICIES = (
    "ParallelCluster's own user policies (attach them beside this one): the base user "
    "policy, the build-image policy and the policy for IAM resources pcluster manages, as "
    "AWS documents them at docs.aws.amazon.com/parallelcluster/latest/ug/"
    "iam-roles-in-parallelcluster-v3.html (Example user policies)"
)


def actions_for(types: Iterable[str]) -> list[str]:
    """The IAM actions for these Pulumi resource types; an unknown AWS type is an error."""
    unknown = sorted(
        {t for t in types if t not in PULUMI_TYPE_ACTIONS and not t.startswith(LOCAL_PREFIXES)}
    )
    if unknown:
        raise ToolkitError(
            "no IAM actions known for resource type(s) "
            + ", ".join(unknown)
            + ": add them to PULUMI_TYPE_ACTIONS in pipeline/deployer_policy.py"
        )
    wanted: set[str] = set()
    for t in types:
        wanted.update(PULUMI_TYPE_ACTIONS.get(t, ()))
    for service in {a.split(":", 1)[0] for a in wanted}:
        wanted.update(READS.get(service, ()))
    return sorted(wanted)


def policy_document(types: Iterable[str]) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PwbclusterPulumiPrograms",
                "Effect": "Allow",
                "Action": actions_for(list(types)),
                "Resource": "*",
            },
            {
                "Sid": "PwbclusterToolkit",
                "Effect": "Allow",
                "Action": sorted(set(TOOLKIT_ACTIONS)),
                "Resource": "*",
            },
        ],
    }


def allows(document: dict[str, Any], action: str) -> bool:
    """Whether an Allow statement's actions cover ``action`` (IAM's '*' wildcard, no case)."""
    wanted = action.lower()
    for statement in document["Statement"]:
        if statement.get("Effect") != "Allow":
            continue
        for pattern in statement["Action"]:
            if fnmatch.fnmatchcase(wanted, pattern.lower()):
                return True
    return False


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2) + "\n"


def registered_types(config: Any) -> list[str]:
    """Every resource type the network and services programs register for ``config``,
    run as the plan runs them (offline mocks: nothing is created, no AWS call)."""
    from pwbcluster.pipeline.plan import declared_runs

    return sorted({r.type for r in declared_runs(config).registered()})
