"""Image stage destroy under moto, above all with no outputs (the stage failed part-way)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pwbcluster import contracts
from pwbcluster.aws import pcluster_images as pi
from pwbcluster.aws.account import AwsAccount
from pwbcluster.config import Config
from pwbcluster.contracts.stage import StageContext, Upstream
from pwbcluster.pcluster import amis
from pwbcluster.pcluster.venv import PCLUSTER_VERSION
from pwbcluster.pipeline.state import StageRecord, State
from pwbcluster.sandbox.account import SandboxAccount
from pwbcluster.sandbox.image_standins import register_standin, sandbox_parent
from pwbcluster.sandbox.server import SandboxServer
from pwbcluster.stages.image import bundle, service, stage

REGION = "eu-west-1"


class FakePcluster:
    """``pcluster`` describe-image / delete-image over a set of known image ids; like
    pcluster, delete-image also removes the AMI of that name."""

    def __init__(self, ec2: Any) -> None:
        self.ec2 = ec2
        self.known: dict[str, str] = {}  # image id -> imageBuildStatus
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        args = list(argv[1:])
        self.calls.append(args)
        image_id = args[args.index("--image-id") + 1]
        if image_id not in self.known:
            body = {
                "message": f"No image or stack associated with ParallelCluster image id {image_id}."
            }
            return subprocess.CompletedProcess(argv, 1, json.dumps(body), "")
        if args[0] == "delete-image":
            del self.known[image_id]
            named = [{"Name": "name", "Values": [image_id]}]
            for image in self.ec2.describe_images(Owners=["self"], Filters=named)["Images"]:
                self.ec2.deregister_image(ImageId=image["ImageId"])
            return subprocess.CompletedProcess(argv, 0, json.dumps({"image": {}}), "")
        body = {"imageId": image_id, "imageBuildStatus": self.known[image_id]}
        return subprocess.CompletedProcess(argv, 0, json.dumps(body), "")

    def deleted(self) -> list[str]:
        return [c[c.index("--image-id") + 1] for c in self.calls if c[0] == "delete-image"]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, moto: dict[str, Any]) -> FakePcluster:
    fake = FakePcluster(moto["ec2"])
    real_init = pi.PclusterImages.__init__

    def init(self: pi.PclusterImages, region: str, cli: Any = None, runner: Any = None) -> None:
        real_init(self, region, cli=["pcluster"], runner=fake)

    monkeypatch.setattr(pi.PclusterImages, "__init__", init)
    return fake


def _record_network(config: Config, network: contracts.NetworkOutputs, mode: str) -> None:
    state = State.load(config.build_dir / "state.json", mode)
    state.record("network", StageRecord("done", "f" * 64, outputs=contracts.to_dict(network)))
    state.record("image", StageRecord("failed", "e" * 64, error="build failed"))


def _upload(config: Config, network: contracts.NetworkOutputs, s3: Any) -> bundle.Bundle:
    made = service.prepare(config, network, "ami-0123456789abcdef0").bundle
    bundle.upload_bundle(s3, made)
    return made


def _keys(s3: Any, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def _alive(ec2: Any, ami: str) -> bool:
    try:
        found = ec2.describe_images(ImageIds=[ami])["Images"]
    except ec2.exceptions.ClientError:
        return False
    return any(i["State"] != "deregistered" for i in found)


def test_no_outputs_removes_the_pending_build_tagged_images_and_uploads(
    config: Config, moto: dict[str, Any], fake: FakePcluster
) -> None:
    ec2, s3, network = moto["ec2"], moto["s3"], moto["network"]
    _record_network(config, network, "real")
    _upload(config, network, s3)
    s3.put_object(Bucket="scripts", Key="image/deadbeefdeadbeef/entry.sh", Body=b"older")
    s3.put_object(Bucket="scripts", Key="cluster/head-node.sh", Body=b"not the image's")
    s3.put_object(Bucket="scripts", Key="image/README", Body=b"not content-addressed")
    pending = service.image_id(config.data["image"], service.fingerprint_for(config))
    fake.known[pending] = "BUILD_FAILED"
    mine = {amis.DEPLOYMENT_TAG: config.name, amis.FINGERPRINT_TAG: "1" * 64}
    old_ami = register_standin(ec2, "pwb-111111111111", "an earlier build", mine)
    # pcluster still knows this one: it goes through pcluster (its stack goes too).
    fake.known["pwb-222222222222"] = "BUILD_COMPLETE"
    by_pcluster = register_standin(
        ec2, "pwb-222222222222", "built", {**mine, stage.PCLUSTER_IMAGE_TAG: "pwb-222222222222"}
    )
    ec2.create_tags(Resources=[by_pcluster], Tags=[{"Key": amis.SIMULATED_TAG, "Value": "false"}])
    theirs = register_standin(ec2, "pwb-theirs", "built", {**mine, amis.DEPLOYMENT_TAG: "prod"})
    untagged = register_standin(
        ec2, "unrelated", "no fingerprint", {amis.DEPLOYMENT_TAG: config.name}
    )

    real = StageContext(config, Upstream(network=network), AwsAccount(config.region))
    stage.destroy(real, None)

    assert sorted(fake.deleted()) == sorted([pending, "pwb-222222222222"])
    assert not _alive(ec2, old_ami)
    assert _alive(ec2, theirs) and _alive(ec2, untagged)
    assert _keys(s3, "scripts") == ["cluster/head-node.sh", "image/README"]

    calls = len(fake.calls)
    stage.destroy(real, None)  # again: nothing left to do
    assert len(fake.deleted()) == 2
    assert len(fake.calls) == calls + 1  # one describe of the pending id, which is gone
    assert _alive(ec2, theirs)


def test_no_state_finds_the_bucket_by_its_deployment_tag(
    config: Config, moto: dict[str, Any], fake: FakePcluster
) -> None:
    s3, network = moto["s3"], moto["network"]
    location = {"LocationConstraint": REGION}
    for bucket, deployment in (("mine-scripts", config.name), ("their-scripts", "prod")):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration=location)
        s3.put_bucket_tagging(
            Bucket=bucket, Tagging={"TagSet": [{"Key": amis.DEPLOYMENT_TAG, "Value": deployment}]}
        )
    for bucket in ("mine-scripts", "their-scripts", "scripts"):
        _upload(config, _net(network, bucket), s3)
    assert not (config.build_dir / "state.json").exists()

    stage.destroy(StageContext(config, Upstream(), AwsAccount(config.region)), None)

    assert _keys(s3, "mine-scripts") == []
    assert _keys(s3, "their-scripts") and _keys(s3, "scripts")  # not this deployment's


def _net(network: contracts.NetworkOutputs, bucket: str) -> contracts.NetworkOutputs:
    data = contracts.to_dict(network)
    data.update(bucket_name=bucket, bucket_arn=f"arn:aws:s3:::{bucket}")
    return contracts.from_dict(contracts.NetworkOutputs, data)


def test_sandbox_no_outputs_removes_standins_without_pcluster(
    config: Config, moto: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ec2, s3, network = moto["ec2"], moto["s3"], moto["network"]

    def no_pcluster(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the sandbox never runs pcluster")

    monkeypatch.setattr(pi.PclusterImages, "__init__", no_pcluster)
    _record_network(config, network, "sandbox")
    parent = sandbox_parent(ec2, config.data["image"]["os"], PCLUSTER_VERSION)
    made = _upload(config, network, s3)
    fingerprint = service.fingerprint_for(config)
    tags = {amis.DEPLOYMENT_TAG: config.name, amis.FINGERPRINT_TAG: fingerprint}
    standin = register_standin(ec2, service.image_id(config.data["image"], fingerprint), "s", tags)

    account = SandboxAccount(SandboxServer("https://127.0.0.1:9", 0, 9), config.region, tmp_path)
    clients = {"ec2": ec2, "s3": s3}
    monkeypatch.setattr(account, "client", lambda service: clients[service])
    ctx = StageContext(config, Upstream(network=network), account)
    stage.destroy(ctx, None)
    stage.destroy(ctx, None)

    assert not _alive(ec2, standin) and not _alive(ec2, parent)
    assert not [k for k in _keys(s3, "scripts") if k.startswith(made.prefix)]


def test_with_outputs_twice_and_after_the_bucket_is_gone(
    config: Config, moto: dict[str, Any], fake: FakePcluster
) -> None:
    ec2, s3, network = moto["ec2"], moto["s3"], moto["network"]
    made = _upload(config, network, s3)
    fingerprint = service.fingerprint_for(config)
    name = service.image_id(config.data["image"], fingerprint)
    tags = {amis.DEPLOYMENT_TAG: config.name, amis.FINGERPRINT_TAG: fingerprint}
    ami = register_standin(ec2, name, "built", tags)
    ec2.create_tags(Resources=[ami], Tags=[{"Key": amis.SIMULATED_TAG, "Value": "false"}])
    outputs = contracts.ImageOutputs(
        ami_id=ami,
        image_name=name,
        fingerprint=fingerprint,
        os=config.data["image"]["os"],
        scripts_prefix=made.prefix,
        simulated=False,
        bucket_name="scripts",
    )
    ctx = StageContext(config, Upstream(), AwsAccount(config.region))
    stage.destroy(ctx, outputs)
    assert not _alive(ec2, ami) and _keys(s3, "scripts") == []
    s3.delete_bucket(Bucket="scripts")
    stage.destroy(ctx, outputs)  # AMI and bucket already gone: no error
    assert fake.deleted() == []
