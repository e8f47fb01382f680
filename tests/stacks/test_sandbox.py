"""The sandbox adapter: the real programs create their resources in a local moto server.

The network and services stages run from a worker thread (as the stage runner runs
them), their contracts' ids are looked up in moto, and destroy leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from pwbcluster.config import Config
from pwbcluster.contracts import NetworkOutputs, ServicesOutputs
from pwbcluster.contracts.stage import StageContext, Upstream
from pwbcluster.sandbox.account import SandboxAccount
from pwbcluster.sandbox.inventory import inventory, split_kept
from pwbcluster.sandbox.server import SandboxServer
from pwbcluster.stages.network import stage as network
from pwbcluster.stages.services import stage as services


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto's backends are per process: start from an empty account, so what other tests
    # left behind is not counted as this one's.
    reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(reset, timeout=10).close()
    yield endpoint
    server.stop()


def _session(region: str) -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
    )


def _client(endpoint: str, region: str, service: str) -> Any:
    return _session(region).client(service, endpoint_url=endpoint)  # type: ignore[call-overload]


def test_stages_create_what_their_contracts_name_in_moto(
    base_config: Config, moto_endpoint: str, tmp_path: Path
) -> None:
    config = dataclasses.replace(base_config, root=tmp_path)  # ledgers go to tmp_path/build
    region = config.region
    account = SandboxAccount(SandboxServer(moto_endpoint, 0, 0), region, config.build_dir)

    def ctx(upstream: dict[str, Any]) -> StageContext:
        return StageContext(config, Upstream(**upstream), account)

    with ThreadPoolExecutor(max_workers=1) as pool:  # the runner calls stages from threads
        net = pool.submit(network.run, ctx({})).result()
        svc = pool.submit(services.run, ctx({"network": net})).result()
    assert isinstance(net, NetworkOutputs) and isinstance(svc, ServicesOutputs)
    assert net.simulated and svc.simulated

    def c(service: str) -> Any:
        return _client(moto_endpoint, region, service)

    ec2 = c("ec2")
    (vpc,) = ec2.describe_vpcs(VpcIds=[net.vpc_id])["Vpcs"]
    assert vpc["CidrBlock"] == net.vpc_cidr
    subnets = ec2.describe_subnets(SubnetIds=[*net.public_subnet_ids, *net.private_subnet_ids])
    assert {s["AvailabilityZone"] for s in subnets["Subnets"]} == set(net.availability_zones)
    # moto holds what the program set, no more: only the public subnets map public IPs.
    mapped = {s["SubnetId"]: s["MapPublicIpOnLaunch"] for s in subnets["Subnets"]}
    assert {k for k, v in mapped.items() if v} == set(net.public_subnet_ids), mapped
    c("s3").head_bucket(Bucket=net.bucket_name)
    block = c("s3").get_public_access_block(Bucket=net.bucket_name)
    assert all(block["PublicAccessBlockConfiguration"].values())
    assert c("s3").get_bucket_versioning(Bucket=net.bucket_name)["Status"] == "Enabled"
    iam = c("iam")
    for arn in (
        net.image_build_policy_arn,
        svc.head_node_policy_arn,
        svc.login_node_policy_arn,
        svc.compute_node_policy_arn,
    ):
        iam.get_policy(PolicyArn=arn)
    (directory,) = c("ds").describe_directories(DirectoryIds=[svc.directory_id])[
        "DirectoryDescriptions"
    ]
    assert sorted(directory["DnsIpAddrs"]) == list(svc.directory_dns_addresses)
    (db,) = c("rds").describe_db_instances()["DBInstances"]
    assert db["Endpoint"]["Address"] == svc.workbench_db.host
    assert db["StorageEncrypted"] and not db["PubliclyAccessible"]
    sm = c("secretsmanager")
    for arn in (
        svc.bind_password_secret_arn,
        svc.admin_password_secret_arn,
        svc.workbench_db.password_secret_arn,
        svc.cookie_key_secret_arn,
        svc.ssh_private_key_secret_arn,
        svc.users_password_secret_arn,
    ):
        assert sm.describe_secret(SecretId=arn)["ARN"] == arn
    bind = sm.get_secret_value(SecretId=svc.bind_password_secret_arn)["SecretString"]
    assert len(bind) >= 32
    # The jump host's pwb-users wheel, under the prefix its role may read.
    (wheel,) = (tmp_path / "build").rglob("jump/*.whl")
    listed = c("s3").list_objects_v2(Bucket=net.bucket_name, Prefix="jump/")["Contents"]
    assert [o["Key"] for o in listed] == [f"jump/{wheel.name}"], listed
    body = c("s3").get_object(Bucket=net.bucket_name, Key=f"jump/{wheel.name}")["Body"].read()
    assert body == wheel.read_bytes()
    reservations = ec2.describe_instances(InstanceIds=[svc.jump_host_instance_id])
    assert reservations["Reservations"], "jump host not in moto"
    ec2.describe_key_pairs(KeyNames=[svc.key_pair_name])
    (cluster_sg,) = ec2.describe_security_groups(GroupIds=[svc.cluster_security_group_id])[
        "SecurityGroups"
    ]
    # The members admit each other on Workbench's, the Launcher's and slurmctld's ports,
    # and the NAT gateway's address on the balancer's Workbench listener (callbacks).
    own = {
        (p["FromPort"], p["ToPort"])
        for p in cluster_sg["IpPermissions"]
        if [g["GroupId"] for g in p.get("UserIdGroupPairs", [])] == [cluster_sg["GroupId"]]
    }
    assert own == {(8787, 8787), (5559, 5559), (6820, 6829)}, cluster_sg["IpPermissions"]
    nat_ip = ec2.describe_addresses()["Addresses"][0]["PublicIp"]
    assert net.nat_public_ips == (nat_ip,)
    assert any(
        r["CidrIp"] == f"{nat_ip}/32" for p in cluster_sg["IpPermissions"] for r in p["IpRanges"]
    )
    # As the AWS provider does, a group declared without egress has none (not EC2's
    # default allow-all): the database's.
    (db_sg,) = ec2.describe_security_groups(GroupIds=[svc.workbench_db.security_group_id])[
        "SecurityGroups"
    ]
    assert db_sg["IpPermissionsEgress"] == []
    (nlb,) = c("elbv2").describe_load_balancers()["LoadBalancers"]
    assert svc.ldap_uri == f"ldaps://{nlb['DNSName']}" and nlb["Scheme"] == "internal"
    (listener,) = c("elbv2").describe_listeners(LoadBalancerArn=nlb["LoadBalancerArn"])["Listeners"]
    assert (listener["Port"], listener["Protocol"]) == (636, "TLS")
    cert_arn = listener["Certificates"][0]["CertificateArn"]
    chain = c("acm").get_certificate(CertificateArn=cert_arn)["CertificateChain"]
    assert svc.ldap_ca_cert_pem.strip() in chain

    # A re-run (inputs changed, say) replaces the previous run's resources: no duplicates.
    with ThreadPoolExecutor(max_workers=1) as pool:
        again = pool.submit(services.run, ctx({"network": net})).result()
    assert again.directory_id != svc.directory_id
    assert len(c("ds").describe_directories()["DirectoryDescriptions"]) == 1
    assert len(c("rds").describe_db_instances()["DBInstances"]) == 1
    svc = again

    # Tear down in reverse order: nothing of the deployment is left in moto.
    services.destroy(ctx({}), svc)
    network.destroy(ctx({}), net)
    session = _session(region)
    session_with_endpoint = _EndpointSession(session, moto_endpoint)
    left, kept = split_kept(inventory(session_with_endpoint))
    assert left == {}, f"left behind after destroy: {left}"
    # What a `down` keeps on AWS, kept here too: the database's final snapshot under its
    # deterministic name, and every secret in its recovery window (recoverable, not gone).
    snapshots = c("rds").describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
    assert [s["DBSnapshotIdentifier"] for s in snapshots] == ["example-workbench-db-final"]
    window = config.model.aux.secrets.recovery_window_days
    assert window >= 7
    scheduled = c("secretsmanager").describe_secret(
        SecretId=svc.workbench_db.master_password_secret_arn
    )
    assert "DeletedDate" in scheduled, scheduled
    assert kept == {"final database snapshot": 1, "recoverable deleted secret": 7}, kept


class _EndpointSession:
    """A boto3 session whose clients all talk to the moto server."""

    def __init__(self, session: boto3.session.Session, endpoint: str) -> None:
        self._session = session
        self._endpoint = endpoint

    def client(self, service: str, **kwargs: Any) -> Any:
        return self._session.client(service, endpoint_url=self._endpoint, **kwargs)  # type: ignore[call-overload]


def test_renew_certs_reissues_the_generated_certificates_after_a_dry_run(
    base_config: Config, moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import contextlib
    import time

    from rich.console import Console

    from pwbcluster.contracts import to_dict
    from pwbcluster.pipeline import aux_tasks, orchestrate
    from pwbcluster.pipeline.state import StageRecord, State
    from pwbcluster.stages.services.expiry import recorded_certificates

    # The previous test's down left its secrets in their recovery window, names taken.
    reset = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(reset, timeout=10).close()
    config = dataclasses.replace(base_config, root=tmp_path)
    account = SandboxAccount(SandboxServer(moto_endpoint, 0, 0), config.region, config.build_dir)

    @contextlib.contextmanager
    def sandbox_account(*args: Any, **kwargs: Any) -> Iterator[SandboxAccount]:
        yield account

    monkeypatch.setattr(orchestrate, "account", sandbox_account)
    ctx = StageContext(config, Upstream(), account)
    with ThreadPoolExecutor(max_workers=1) as pool:
        net = pool.submit(network.run, ctx).result()
        svc = pool.submit(
            services.run, StageContext(config, Upstream(network=net), account)
        ).result()
    state = State.load(orchestrate.state_path(config), "sandbox")
    for name, outputs in (("network", net), ("services", svc)):
        state.record(name, StageRecord("done", "f" * 8, to_dict(outputs), None, 1.0, 2.0))
    before = {c.purpose: c.not_after for c in recorded_certificates(svc)}
    assert set(before) == {"LDAPS front", "Workbench"}

    console = Console(record=True, width=200)
    assert aux_tasks.renew_certs(config, "sandbox", console, lambda q: False, dry_run=True) == []
    text = console.export_text()
    assert "would re-issue the LDAPS front certificate" in text and "nothing changed" in text
    assert orchestrate.recorded(config, "sandbox", "services") == svc

    time.sleep(1.1)  # notAfter has a resolution of one second
    lines = aux_tasks.renew_certs(config, "sandbox", console, lambda q: False)
    assert len(lines) == 2, lines
    renewed = orchestrate.recorded(config, "sandbox", "services")
    after = {c.purpose: c.not_after for c in recorded_certificates(renewed)}
    assert all(after[p] > before[p] for p in before), (before, after)

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(services.destroy, StageContext(config, Upstream(), account), renewed).result()
        pool.submit(network.destroy, ctx, net).result()


@pytest.mark.parametrize("order", ["balancer first", "target group first"])
def test_a_balancer_is_undone_whichever_of_it_and_its_target_group_came_first(
    moto_endpoint: str, order: str
) -> None:
    """The balancer and its target group do not depend on each other, so a run creates them
    in either order; their undo must succeed in both (CI once got the order where the target
    group, still forwarded to by the listener, was deleted first: moto refuses that, as AWS
    does, and the re-run then failed on the group's taken name)."""
    from pwbcluster.sandbox.moto_handlers import HANDLERS
    from pwbcluster.sandbox.pulumi_moto import MotoMocks, destroy_ledger

    region = "eu-west-1"
    ec2 = _client(moto_endpoint, region, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24", AvailabilityZone="eu-west-1a")[
        "Subnet"
    ]["SubnetId"]
    mocks = MotoMocks(moto_endpoint, region)
    tags = {"Deployment": "order"}
    n = order.split()[0]  # the moto server is the module's: names apart per case
    lb_inputs = {"name": f"ldap-front-{n}", "subnets": [subnet], "internal": True, "tags": tags}
    tg_inputs = {"name": f"ldap-dc-{n}", "protocol": "TCP", "port": 636, "vpcId": vpc, "tags": tags}
    steps = [
        ("aws:lb/loadBalancer:LoadBalancer", lb_inputs),
        ("aws:lb/targetGroup:TargetGroup", tg_inputs),
    ]
    if order == "target group first":
        steps.reverse()
    ids = {typ: HANDLERS[typ](mocks, typ.rsplit(":", 1)[1], inputs)[0] for typ, inputs in steps}
    tg_arn = ids["aws:lb/targetGroup:TargetGroup"]
    HANDLERS["aws:lb/targetGroupAttachment:TargetGroupAttachment"](
        mocks, "dc1", {"targetGroupArn": tg_arn, "targetId": "10.9.1.10", "port": 636}
    )
    HANDLERS["aws:lb/listener:Listener"](
        mocks,
        "ldaps",
        {
            "loadBalancerArn": ids["aws:lb/loadBalancer:LoadBalancer"],
            "protocol": "TCP",
            "port": 636,
            "certificateArn": None,
            "defaultActions": [{"type": "forward", "targetGroupArn": tg_arn}],
        },
    )

    assert destroy_ledger(mocks.ledger, moto_endpoint, region, replacing=True) == []
    elbv2 = _client(moto_endpoint, region, "elbv2")
    names = [lb["LoadBalancerName"] for lb in elbv2.describe_load_balancers()["LoadBalancers"]]
    names += [tg["TargetGroupName"] for tg in elbv2.describe_target_groups()["TargetGroups"]]
    assert not [x for x in names if x.endswith(f"-{n}")], names
    # A second undo of the same run finds everything gone: that is success, not a failure.
    assert destroy_ledger(mocks.ledger, moto_endpoint, region) == []
