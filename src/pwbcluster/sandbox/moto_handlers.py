"""How the sandbox creates each resource type in moto, and how it undoes it.

One handler per Pulumi type token: it calls moto through boto3 with the resource's
inputs, records the call that undoes it in the run's ledger, and returns the real id and
the attributes moto computed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote


class MotoMocks(Protocol):
    """What a handler uses of the mocks (``pulumi_moto.MotoMocks``)."""

    region: str

    def c(self, name: str) -> Any: ...

    def undo(self, urn_name: str, service: str, method: str, **kwargs: Any) -> None: ...

    def simulate(self, what: str) -> None: ...


Handler = Callable[[MotoMocks, str, dict[str, Any]], tuple[str, dict[str, Any]]]


def _tag_list(inputs: dict[str, Any]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": str(v)} for k, v in (inputs.get("tags") or {}).items()]


def _sg_permissions(rules: list[dict[str, Any]], own: str = "") -> list[dict[str, Any]]:
    perms = []
    for rule in rules or []:
        perm: dict[str, Any] = {
            "IpProtocol": str(rule.get("protocol", "-1")),
            "FromPort": int(rule.get("fromPort", 0)),
            "ToPort": int(rule.get("toPort", 0)),
        }
        if rule.get("cidrBlocks"):
            perm["IpRanges"] = [{"CidrIp": c} for c in rule["cidrBlocks"]]
        groups = list(rule.get("securityGroups") or [])
        if rule.get("self") and own:
            groups.append(own)
        if groups:
            perm["UserIdGroupPairs"] = [{"GroupId": g} for g in groups]
        perms.append(perm)
    return perms


def _ec2_tag(m: MotoMocks, rid: str, inputs: dict[str, Any]) -> None:
    tags = _tag_list(inputs)
    if tags:
        m.c("ec2").create_tags(Resources=[rid], Tags=tags)


def _vpc(m: MotoMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    ec2 = m.c("ec2")
    vpc = ec2.create_vpc(CidrBlock=i["cidrBlock"])["Vpc"]
    # DNS attributes take one call each in EC2's API; ParallelCluster checks both.
    for attribute, key in (
        ("EnableDnsSupport", "enableDnsSupport"),
        ("EnableDnsHostnames", "enableDnsHostnames"),
    ):
        if i.get(key):
            ec2.modify_vpc_attribute(VpcId=vpc["VpcId"], **{attribute: {"Value": True}})
    _ec2_tag(m, vpc["VpcId"], i)
    m.undo(name, "ec2", "delete_vpc", VpcId=vpc["VpcId"])
    return vpc["VpcId"], {"cidrBlock": vpc["CidrBlock"]}


def _subnet(m: MotoMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    sub = m.c("ec2").create_subnet(
        VpcId=i["vpcId"], CidrBlock=i["cidrBlock"], AvailabilityZone=i["availabilityZone"]
    )["Subnet"]
    if i.get("mapPublicIpOnLaunch"):
        m.c("ec2").modify_subnet_attribute(
            SubnetId=sub["SubnetId"], MapPublicIpOnLaunch={"Value": True}
        )
    _ec2_tag(m, sub["SubnetId"], i)
    m.undo(name, "ec2", "delete_subnet", SubnetId=sub["SubnetId"])
    return sub["SubnetId"], {"availabilityZone": sub["AvailabilityZone"]}


def _igw(m: MotoMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    igw = m.c("ec2").create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    m.c("ec2").attach_internet_gateway(InternetGatewayId=igw, VpcId=i["vpcId"])
    _ec2_tag(m, igw, i)
    m.undo(name, "ec2", "delete_internet_gateway", InternetGatewayId=igw)
    m.undo(name, "ec2", "detach_internet_gateway", InternetGatewayId=igw, VpcId=i["vpcId"])
    return igw, {}


def _eip(m: MotoMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    eip = m.c("ec2").allocate_address(Domain="vpc")
    m.undo(name, "ec2", "release_address", AllocationId=eip["AllocationId"])
    return eip["AllocationId"], {"publicIp": eip["PublicIp"]}


def _nat(m: MotoMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    nat = m.c("ec2").create_nat_gateway(SubnetId=i["subnetId"], AllocationId=i["allocationId"])
    nat_id = nat["NatGateway"]["NatGatewayId"]
    m.undo(name, "ec2", "delete_nat_gateway", NatGatewayId=nat_id)
    return nat_id, {}


def _route_table(m: MotoMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    rtb = m.c("ec2").create_route_table(VpcId=i["vpcId"])["RouteTable"]["RouteTableId"]
    _ec2_tag(m, rtb, i)
    m.undo(name, "ec2", "delete_route_table", RouteTableId=rtb)
    return rtb, {}


def _route(m: MotoMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    target = {"GatewayId": i["gatewayId"]} if i.get("gatewayId") else {}
    if i.get("natGatewayId"):
        target = {"NatGatewayId": i["natGatewayId"]}
    m.c("ec2").create_route(
        RouteTableId=i["routeTableId"], DestinationCidrBlock=i["destinationCidrBlock"], **target
    )
    return f"r-{i['routeTableId']}-{i['destinationCidrBlock']}", {}


def _rt_assoc(m: MotoMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    assoc = m.c("ec2").associate_route_table(
        RouteTableId=i["routeTableId"], SubnetId=i["subnetId"]
    )["AssociationId"]
    m.undo(name, "ec2", "disassociate_route_table", AssociationId=assoc)
    return assoc, {}


def _endpoint(m: MotoMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    ep = m.c("ec2").create_vpc_endpoint(
        VpcId=i["vpcId"],
        ServiceName=i["serviceName"],
        VpcEndpointType=i.get("vpcEndpointType", "Gateway"),
        RouteTableIds=list(i.get("routeTableIds") or []),
    )["VpcEndpoint"]["VpcEndpointId"]
    m.undo(name, "ec2", "delete_vpc_endpoints", VpcEndpointIds=[ep])
    return ep, {}


def _sg(m: MotoMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    ec2 = m.c("ec2")
    sg = ec2.create_security_group(
        GroupName=i.get("name") or name,
        Description=i.get("description") or name,
        VpcId=i["vpcId"],
    )["GroupId"]
    _ec2_tag(m, sg, i)
    if i.get("ingress"):
        ec2.authorize_security_group_ingress(
            GroupId=sg, IpPermissions=_sg_permissions(i["ingress"], sg)
        )
    # The AWS provider removes EC2's default allow-all egress from every group it creates
    # and adds only the rules given: a group declared without egress has none.
    default = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    ec2.revoke_security_group_egress(GroupId=sg, IpPermissions=default)
    if i.get("egress"):
        ec2.authorize_security_group_egress(
            GroupId=sg, IpPermissions=_sg_permissions(i["egress"], sg)
        )
    m.undo(name, "ec2", "delete_security_group", GroupId=sg)
    return sg, {"name": i.get("name") or name}


def _key_pair(m: MotoMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    key_name = i["keyName"]
    m.c("ec2").import_key_pair(KeyName=key_name, PublicKeyMaterial=i["publicKey"].encode())
    m.undo(name, "ec2", "delete_key_pair", KeyName=key_name)
    return key_name, {"keyName": key_name}


def _instance(m: MotoMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    extra: dict[str, Any] = {}
    if i.get("iamInstanceProfile"):
        extra["IamInstanceProfile"] = {"Name": i["iamInstanceProfile"]}
    if i.get("keyName"):
        extra["KeyName"] = i["keyName"]
    inst = m.c("ec2").run_instances(
        ImageId=i["ami"],
        InstanceType=i["instanceType"],
        MinCount=1,
        MaxCount=1,
        SubnetId=i["subnetId"],
        SecurityGroupIds=list(i.get("vpcSecurityGroupIds") or []),
        UserData=i.get("userData") or "",
        TagSpecifications=[{"ResourceType": "instance", "Tags": _tag_list(i)}],
        **extra,
    )["Instances"][0]
    m.undo(name, "ec2", "terminate_instances", InstanceIds=[inst["InstanceId"]])
    return inst["InstanceId"], {"privateIp": inst.get("PrivateIpAddress", "")}


def _bucket(m: MotoMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    bucket = i["bucket"]
    kwargs: dict[str, Any] = {}
    if m.region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": m.region}
    m.c("s3").create_bucket(Bucket=bucket, **kwargs)
    if _tag_list(i):
        m.c("s3").put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": _tag_list(i)})
    m.undo(name, "s3", "_empty_and_delete_bucket", Bucket=bucket)
    return bucket, {"bucket": bucket, "arn": f"arn:aws:s3:::{bucket}"}


def _bucket_object(m: MotoMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """An object from a file (the jump host's pwb-users wheel): uploaded as it is."""
    source = i.get("source")
    path = getattr(source, "path", None)
    body = Path(path).read_bytes() if path else str(i.get("content") or "").encode()
    put = m.c("s3").put_object(
        Bucket=i["bucket"],
        Key=i["key"],
        Body=body,
        ContentType=i.get("contentType") or "binary/octet-stream",
        Tagging="&".join(f"{t['Key']}={quote(t['Value'])}" for t in _tag_list(i)),
    )
    m.undo(name, "s3", "delete_object", Bucket=i["bucket"], Key=i["key"])
    return i["key"], {
        "etag": str(put.get("ETag", "")).strip('"'),
        "versionId": put.get("VersionId", ""),
    }


def _bucket_setting(method: str, build: Callable[[dict[str, Any]], dict[str, Any]]) -> Handler:
    def handler(m: MotoMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        getattr(m.c("s3"), method)(Bucket=i["bucket"], **build(i))
        return i["bucket"], {}

    return handler


def _bucket_policy(m: MotoMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Recorded, not applied: moto 5.2 evaluates a bucket policy's Deny statements without
    their Condition (no request context reaches it), so the TLS-only policy would deny
    every request, HTTPS included. The document itself is asserted by the mock tests."""
    m.simulate(f"BucketPolicy {name} (moto ignores Condition blocks)")
    return i["bucket"], {}


def _iam_policy(m: MotoMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    arn = m.c("iam").create_policy(
        PolicyName=i["name"], PolicyDocument=i["policy"], Tags=_tag_list(i)
    )["Policy"]["Arn"]
    m.undo(name, "iam", "delete_policy", PolicyArn=arn)
    return arn, {"arn": arn}


def _iam_role(m: MotoMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    role_name = i["name"]
    arn = m.c("iam").create_role(
        RoleName=role_name, AssumeRolePolicyDocument=i["assumeRolePolicy"], Tags=_tag_list(i)
    )["Role"]["Arn"]
    m.undo(name, "iam", "delete_role", RoleName=role_name)
    return role_name, {"name": role_name, "arn": arn}


def _role_policy(m: MotoMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    m.c("iam").put_role_policy(RoleName=i["role"], PolicyName=name, PolicyDocument=i["policy"])
    m.undo(name, "iam", "delete_role_policy", RoleName=i["role"], PolicyName=name)
    return f"{i['role']}:{name}", {"name": name}


def _role_attachment(m: MotoMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    try:
        m.c("iam").attach_role_policy(RoleName=i["role"], PolicyArn=i["policyArn"])
    except m.c("iam").exceptions.NoSuchEntityException:
        # moto does not load AWS managed policies unless asked to: note it, go on.
        m.simulate(f"RolePolicyAttachment {name} ({i['policyArn']})")
        return f"{i['role']}/{i['policyArn']}", {}
    m.undo(name, "iam", "detach_role_policy", RoleName=i["role"], PolicyArn=i["policyArn"])
    return f"{i['role']}/{i['policyArn']}", {}


def _profile(m: MotoMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    iam = m.c("iam")
    profile = i["name"]
    arn = iam.create_instance_profile(InstanceProfileName=profile)["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=i["role"])
    m.undo(name, "iam", "delete_instance_profile", InstanceProfileName=profile)
    m.undo(
        name,
        "iam",
        "remove_role_from_instance_profile",
        InstanceProfileName=profile,
        RoleName=i["role"],
    )
    return profile, {"name": profile, "arn": arn}


def _secret(m: MotoMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    arn = m.c("secretsmanager").create_secret(
        Name=i["name"], Description=i.get("description", ""), Tags=_tag_list(i)
    )["ARN"]
    # Deleted as the program asks AWS to: scheduled for deletion (still there, recoverable,
    # its name taken) when it has a recovery window, at once only with 0 days.
    window = int(i.get("recoveryWindowInDays") or 0)
    if window:
        m.undo(name, "secretsmanager", "delete_secret", SecretId=arn, RecoveryWindowInDays=window)
    else:
        m.undo(
            name, "secretsmanager", "delete_secret", SecretId=arn, ForceDeleteWithoutRecovery=True
        )
    return arn, {"arn": arn, "name": i["name"]}


def _secret_version(m: MotoMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    version = m.c("secretsmanager").put_secret_value(
        SecretId=i["secretId"], SecretString=i["secretString"]
    )["VersionId"]
    return f"{i['secretId']}|{version}", {"versionId": version}


def _directory(m: MotoMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    ds = m.c("ds")
    vpc = {"VpcId": i["vpcSettings"]["vpcId"], "SubnetIds": i["vpcSettings"]["subnetIds"]}
    tags = _tag_list(i)
    if i.get("type") == "MicrosoftAD":
        did = ds.create_microsoft_ad(
            Name=i["name"],
            ShortName=i.get("shortName"),
            Password=i["password"],
            VpcSettings=vpc,
            Edition=i.get("edition", "Standard"),
            Tags=tags,
        )["DirectoryId"]
    else:
        did = ds.create_directory(
            Name=i["name"],
            ShortName=i.get("shortName"),
            Password=i["password"],
            Size=i.get("size", "Small"),
            VpcSettings=vpc,
            Tags=tags,
        )["DirectoryId"]
    desc = ds.describe_directories(DirectoryIds=[did])["DirectoryDescriptions"][0]
    m.undo(name, "ds", "delete_directory", DirectoryId=did)
    return did, {
        "dnsIpAddresses": sorted(desc.get("DnsIpAddrs", [])),
        "securityGroupId": desc.get("VpcSettings", {}).get("SecurityGroupId", ""),
        "accessUrl": desc.get("AccessUrl", ""),
    }


def _elb_name(wanted: str) -> str:
    """An ELB/target-group name as AWS accepts it: [A-Za-z0-9-], at most 32, no '--' and no
    hyphen at either end (auto-names cut at 32 characters can break each rule)."""
    cleaned = re.sub(r"[^A-Za-z0-9-]", "-", wanted)
    cleaned = re.sub(r"-{2,}", "-", cleaned).strip("-")
    return cleaned[:32].rstrip("-")


def _nlb(m: MotoMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    lb = m.c("elbv2").create_load_balancer(
        Name=_elb_name(i.get("name") or name),
        Subnets=list(i["subnets"]),
        SecurityGroups=list(i.get("securityGroups") or []),
        Scheme="internal" if i.get("internal") else "internet-facing",
        Type=i.get("loadBalancerType", "network"),
        Tags=_tag_list(i),
    )["LoadBalancers"][0]
    m.undo(name, "elbv2", "delete_load_balancer", LoadBalancerArn=lb["LoadBalancerArn"])
    return lb["LoadBalancerArn"], {"arn": lb["LoadBalancerArn"], "dnsName": lb["DNSName"]}


def _target_group(m: MotoMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    tg = m.c("elbv2").create_target_group(
        Name=_elb_name(i.get("name") or name),
        Protocol=i["protocol"],
        Port=int(i["port"]),
        VpcId=i["vpcId"],
        TargetType=i.get("targetType", "ip"),
        Tags=_tag_list(i),
    )["TargetGroups"][0]
    m.undo(name, "elbv2", "delete_target_group", TargetGroupArn=tg["TargetGroupArn"])
    return tg["TargetGroupArn"], {"arn": tg["TargetGroupArn"]}


def _tg_attach(m: MotoMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    target = {"Id": i["targetId"], "Port": int(i["port"])}
    m.c("elbv2").register_targets(TargetGroupArn=i["targetGroupArn"], Targets=[target])
    m.undo(
        name, "elbv2", "deregister_targets", TargetGroupArn=i["targetGroupArn"], Targets=[target]
    )
    return f"{i['targetGroupArn']}-{i['targetId']}", {}


def _listener(m: MotoMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    action = i["defaultActions"][0]
    tls: dict[str, Any] = {}
    if i.get("certificateArn"):
        tls = {
            "SslPolicy": i.get("sslPolicy"),
            "Certificates": [{"CertificateArn": i["certificateArn"]}],
        }
        tls = {k: v for k, v in tls.items() if v is not None}
    listener = m.c("elbv2").create_listener(
        LoadBalancerArn=i["loadBalancerArn"],
        Protocol=i["protocol"],
        Port=int(i["port"]),
        **tls,
        DefaultActions=[{"Type": action["type"], "TargetGroupArn": action["targetGroupArn"]}],
    )["Listeners"][0]
    # Undone on its own, before its target group: as on AWS, moto refuses to delete a target
    # group a listener still forwards to, and the group and the balancer are created in
    # either order (neither depends on the other), so the balancer's deletion cannot be
    # counted on to go first.
    m.undo(name, "elbv2", "delete_listener", ListenerArn=listener["ListenerArn"])
    return listener["ListenerArn"], {"arn": listener["ListenerArn"]}


def _certificate(m: MotoMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    arn = m.c("acm").import_certificate(
        Certificate=i["certificateBody"].encode(),
        PrivateKey=i["privateKey"].encode(),
        CertificateChain=i["certificateChain"].encode(),
        Tags=_tag_list(i),
    )["CertificateArn"]
    m.undo(name, "acm", "delete_certificate", CertificateArn=arn)
    return arn, {"arn": arn}


def _db_subnets(m: MotoMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    m.c("rds").create_db_subnet_group(
        DBSubnetGroupName=name,
        DBSubnetGroupDescription=i.get("description", name),
        SubnetIds=list(i["subnetIds"]),
        Tags=_tag_list(i),
    )
    m.undo(name, "rds", "delete_db_subnet_group", DBSubnetGroupName=name)
    return name, {"name": name}


def _db_params(m: MotoMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    rds = m.c("rds")
    rds.create_db_parameter_group(
        DBParameterGroupName=name,
        DBParameterGroupFamily=i["family"],
        Description=i.get("description", name),
        Tags=_tag_list(i),
    )
    params = [
        {
            "ParameterName": p["name"],
            "ParameterValue": str(p["value"]),
            "ApplyMethod": p.get("applyMethod", "pending-reboot"),
        }
        for p in i.get("parameters") or []
    ]
    if params:
        rds.modify_db_parameter_group(DBParameterGroupName=name, Parameters=params)
    m.undo(name, "rds", "delete_db_parameter_group", DBParameterGroupName=name)
    return name, {"name": name}


def _db(m: MotoMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    ident = i["identifier"]
    kwargs = {
        "DBInstanceIdentifier": ident,
        "Engine": i["engine"],
        "EngineVersion": i.get("engineVersion"),
        "DBInstanceClass": i["instanceClass"],
        "AllocatedStorage": int(i["allocatedStorage"]),
        "StorageType": i.get("storageType"),
        "StorageEncrypted": bool(i.get("storageEncrypted")),
        "MasterUsername": i["username"],
        "MasterUserPassword": i["password"],
        "Port": int(i["port"]),
        "DBSubnetGroupName": i["dbSubnetGroupName"],
        "DBParameterGroupName": i.get("parameterGroupName"),
        "VpcSecurityGroupIds": list(i.get("vpcSecurityGroupIds") or []),
        "PubliclyAccessible": bool(i.get("publiclyAccessible")),
        "MultiAZ": bool(i.get("multiAz")),
        "DeletionProtection": False,
        "BackupRetentionPeriod": int(i.get("backupRetentionPeriod") or 0),
        "Tags": _tag_list(i),
    }
    if i.get("dbName"):
        kwargs["DBName"] = i["dbName"]
    db = m.c("rds").create_db_instance(**{k: v for k, v in kwargs.items() if v is not None})
    inst = db["DBInstance"]
    address = inst.get("Endpoint", {}).get("Address") or f"{ident}.moto.rds.amazonaws.com"
    # Deleted as the program asks AWS to: with its final snapshot unless it skips one.
    if i.get("skipFinalSnapshot", False) or not i.get("finalSnapshotIdentifier"):
        m.undo(
            name, "rds", "delete_db_instance", DBInstanceIdentifier=ident, SkipFinalSnapshot=True
        )
    else:
        m.undo(
            name,
            "rds",
            "delete_db_instance",
            DBInstanceIdentifier=ident,
            SkipFinalSnapshot=False,
            FinalDBSnapshotIdentifier=i["finalSnapshotIdentifier"],
        )
    return ident, {"address": address, "identifier": ident, "arn": inst.get("DBInstanceArn", "")}


HANDLERS: dict[str, Handler] = {
    "aws:ec2/vpc:Vpc": _vpc,
    "aws:ec2/subnet:Subnet": _subnet,
    "aws:ec2/internetGateway:InternetGateway": _igw,
    "aws:ec2/eip:Eip": _eip,
    "aws:ec2/natGateway:NatGateway": _nat,
    "aws:ec2/routeTable:RouteTable": _route_table,
    "aws:ec2/route:Route": _route,
    "aws:ec2/routeTableAssociation:RouteTableAssociation": _rt_assoc,
    "aws:ec2/vpcEndpoint:VpcEndpoint": _endpoint,
    "aws:ec2/securityGroup:SecurityGroup": _sg,
    "aws:ec2/keyPair:KeyPair": _key_pair,
    "aws:ec2/instance:Instance": _instance,
    "aws:s3/bucket:Bucket": _bucket,
    "aws:s3/bucketVersioning:BucketVersioning": _bucket_setting(
        "put_bucket_versioning", lambda i: {"VersioningConfiguration": {"Status": "Enabled"}}
    ),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": _bucket_setting(
        "put_public_access_block",
        lambda i: {
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": bool(i.get("blockPublicAcls")),
                "IgnorePublicAcls": bool(i.get("ignorePublicAcls")),
                "BlockPublicPolicy": bool(i.get("blockPublicPolicy")),
                "RestrictPublicBuckets": bool(i.get("restrictPublicBuckets")),
            }
        },
    ),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        _bucket_setting(
            "put_bucket_encryption",
            lambda i: {
                "ServerSideEncryptionConfiguration": {
                    "Rules": [
                        {
                            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"},
                            "BucketKeyEnabled": True,
                        }
                    ]
                }
            },
        )
    ),
    "aws:s3/bucketPolicy:BucketPolicy": _bucket_policy,
    "aws:s3/bucketObjectv2:BucketObjectv2": _bucket_object,
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": _bucket_setting(
        "put_bucket_ownership_controls",
        lambda i: {"OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}},
    ),
    "aws:iam/policy:Policy": _iam_policy,
    "aws:iam/role:Role": _iam_role,
    "aws:iam/rolePolicy:RolePolicy": _role_policy,
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": _role_attachment,
    "aws:iam/instanceProfile:InstanceProfile": _profile,
    "aws:secretsmanager/secret:Secret": _secret,
    "aws:secretsmanager/secretVersion:SecretVersion": _secret_version,
    "aws:directoryservice/directory:Directory": _directory,
    "aws:lb/loadBalancer:LoadBalancer": _nlb,
    "aws:lb/targetGroup:TargetGroup": _target_group,
    "aws:lb/targetGroupAttachment:TargetGroupAttachment": _tg_attach,
    "aws:lb/listener:Listener": _listener,
    "aws:acm/certificate:Certificate": _certificate,
    "aws:rds/subnetGroup:SubnetGroup": _db_subnets,
    "aws:rds/parameterGroup:ParameterGroup": _db_params,
    "aws:rds/instance:Instance": _db,
}
