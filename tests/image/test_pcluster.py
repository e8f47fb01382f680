"""The rendered build-image config against ParallelCluster's own schema and validators."""

from __future__ import annotations

import copy
import time

import boto3
import pytest
from moto.server import ThreadedMotoServer

from pwbcluster.config import Config
from pwbcluster.contracts import NetworkOutputs, planned_network
from pwbcluster.contracts.stage import StageContext, Upstream
from pwbcluster.pcluster import amis, offline
from pwbcluster.sandbox.account import SandboxAccount
from pwbcluster.sandbox.server import SandboxServer
from pwbcluster.stages.image import service, stage

from .conftest import route_default_vpc

pytestmark = pytest.mark.pcluster


def test_rendered_config_passes_pcluster_and_a_broken_one_does_not(config: Config) -> None:
    network = planned_network(config.region, config.name)
    prepared = service.prepare(config, network, "ami-planned0000000000")
    component = prepared.config["Build"]["Components"][0]
    assert component == {"Type": "script", "Value": prepared.bundle.entry_url}
    broken = copy.deepcopy(prepared.config)
    broken["Build"]["Components"][0]["Type"] = "recipe"
    # One worker process for both configs: pcluster and moto start once.
    good, bad = offline.run_jobs(
        [offline.image_job(prepared.config, prepared.image_id), offline.image_job(broken, "pwb-x")],
        config.region,
    )
    assert good.errors == [], [f"{f.validator}: {f.message}" for f in good.errors]
    assert any(f.validator == "schema" for f in bad.errors)


def test_sandbox_run_validates_uploads_registers_and_destroys(
    config: Config, aws_env: None
) -> None:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        session = boto3.Session(region_name=config.region)
        ec2 = session.client("ec2", endpoint_url=endpoint)
        s3 = session.client("s3", endpoint_url=endpoint)
        iam = session.client("iam", endpoint_url=endpoint)
        vpc = route_default_vpc(ec2)
        subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]]
        group = ec2.create_security_group(GroupName="build", Description="b", VpcId=vpc)
        s3.create_bucket(
            Bucket="scripts", CreateBucketConfiguration={"LocationConstraint": config.region}
        )
        policy = iam.create_policy(
            PolicyName="image-build",
            PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
            '"Action":"s3:GetObject","Resource":"arn:aws:s3:::scripts/image/*"}]}',
        )["Policy"]["Arn"]
        network = NetworkOutputs(
            vpc,
            "172.31.0.0/16",
            tuple(subnets[:1]),
            tuple(subnets[1:2]),
            ("a",),
            "scripts",
            "arn:aws:s3:::scripts",
            policy,
            True,
            group["GroupId"],
        )
        account = SandboxAccount(SandboxServer(endpoint, 0, port), config.region, config.build_dir)
        ctx = StageContext(config, Upstream(network=network), account)

        # moto's servers in one process share state: count against what was there before.
        def own_images() -> set[str]:
            return {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}

        before = own_images()
        started = time.perf_counter()
        out = stage.run(ctx)
        assert out.simulated and out.bucket_name == "scripts"
        tags = amis.tags_of(ec2.describe_images(ImageIds=[out.ami_id])["Images"][0])
        assert tags[amis.FINGERPRINT_TAG] == out.fingerprint
        assert tags[amis.SIMULATED_TAG] == "true"
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="scripts")["Contents"]]
        assert all(k.startswith(out.scripts_prefix) for k in keys) and len(keys) >= 10
        first = time.perf_counter() - started
        assert stage.run(ctx) == out  # found by fingerprint: nothing registered twice
        assert len(own_images() - before) == 2  # image + parent
        stage.destroy(ctx, out)
        assert own_images() == before
        assert "Contents" not in s3.list_objects_v2(Bucket="scripts")
        print(f"sandbox image stage: {first:.1f} s first run")
    finally:
        server.stop()
