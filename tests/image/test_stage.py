"""The image stage under moto: fingerprint short-circuit, the real flow with a fake pcluster."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from typing import Any

import pytest
from rich.console import Console

from pwbcluster.aws import account as aws_account
from pwbcluster.aws import pcluster_images as pi
from pwbcluster.config import Config
from pwbcluster.contracts.stage import StageContext, Upstream
from pwbcluster.errors import StageError
from pwbcluster.pcluster import amis
from pwbcluster.sandbox.image_standins import register_standin
from pwbcluster.stages.image import service, stage


class FakePcluster:
    """Answers like ``pcluster`` would for one build: in progress twice, then complete."""

    def __init__(self, ec2: Any, fail: bool = False) -> None:
        self.ec2, self.fail = ec2, fail
        self.calls: list[list[str]] = []
        self.polls = 0
        self.ami: str | None = None

    def __call__(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        args = list(argv[1:])
        self.calls.append(args)
        command, body, code = args[0], {}, 0
        if command == "describe-image":
            if self.ami is None and not any(c[0] == "build-image" for c in self.calls):
                body, code = (
                    {"message": "No image or stack associated with ParallelCluster image id"},
                    1,
                )
            else:
                self.polls += 1
                body = self._status(args[args.index("--image-id") + 1])
        elif command == "build-image":
            body = {"image": {"imageBuildStatus": "BUILD_IN_PROGRESS"}}
        elif command == "list-image-log-streams":
            body = {"logStreams": [{"logStreamName": "3.16.1/1"}]}
        elif command == "get-image-log-events":
            token = args[args.index("--next-token") + 1] if "--next-token" in args else None
            body = {
                "events": [] if token else [{"message": "installing R 4.6.1"}],
                "nextToken": "t1",
            }
        return subprocess.CompletedProcess(argv, code, json.dumps(body), "")

    def _status(self, image_id: str) -> dict[str, Any]:
        if self.polls < 3:
            return {"imageId": image_id, "imageBuildStatus": "BUILD_IN_PROGRESS"}
        if self.fail:
            return {"imageBuildStatus": "BUILD_FAILED", "imageBuildFailureReason": "R 9.9.9: 404"}
        if self.ami is None:
            self.ami = register_standin(self.ec2, image_id, "built", {})
        return {"imageBuildStatus": "BUILD_COMPLETE", "ec2AmiInfo": {"amiId": self.ami}}

    def commands(self) -> list[str]:
        return [c[0] for c in self.calls]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, moto: dict[str, Any]) -> FakePcluster:
    fake = FakePcluster(moto["ec2"])
    real_init = pi.PclusterImages.__init__

    def init(self: pi.PclusterImages, region: str, cli: Any = None, runner: Any = None) -> None:
        real_init(self, region, cli=["pcluster"], runner=fake)

    monkeypatch.setattr(pi.PclusterImages, "__init__", init)
    real_wait = pi.wait_for_build
    monkeypatch.setattr(
        aws_account, "wait_for_build", lambda c, i, con: real_wait(c, i, con, sleep=lambda s: None)
    )
    parent = register_standin(moto["ec2"], "aws-parallelcluster-3.16.1-ubuntu-2204", "p", {})
    monkeypatch.setattr(
        aws_account.AwsAccount, "official_parent_image", lambda self, os_name, version: parent
    )
    return fake


def _ctx(config: Config, network: Any) -> StageContext:
    return StageContext(config, Upstream(network=network), aws_account.AwsAccount(config.region))


def test_matching_fingerprint_tag_short_circuits_the_build(
    config: Config, moto: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    fingerprint = service.fingerprint_for(config)
    mine = {amis.FINGERPRINT_TAG: fingerprint, amis.DEPLOYMENT_TAG: config.name}
    ami = register_standin(moto["ec2"], "pwb-old", "built", mine)
    register_standin(moto["ec2"], "pwb-other", "built", {**mine, amis.FINGERPRINT_TAG: "0" * 64})
    # Another deployment's image with the same inputs is not reused (its down deletes it).
    theirs = register_standin(
        moto["ec2"], "pwb-theirs", "built", {**mine, amis.DEPLOYMENT_TAG: "prod"}
    )
    assert amis.find_by_fingerprint(moto["ec2"], fingerprint, "prod")["ImageId"] == theirs
    assert amis.find_by_fingerprint(moto["ec2"], fingerprint, config.name)["ImageId"] == ami

    def no_pcluster(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("pcluster must not be called when the image exists")

    monkeypatch.setattr(pi.PclusterImages, "__init__", no_pcluster)
    out = stage.run(_ctx(config, moto["network"]))
    assert out.ami_id == ami and out.fingerprint == fingerprint
    assert "Contents" not in moto["s3"].list_objects_v2(Bucket="scripts")  # nothing uploaded


def test_builds_uploads_streams_the_log_and_returns_the_ami(
    config: Config, moto: dict[str, Any], fake: FakePcluster, capsys: pytest.CaptureFixture[str]
) -> None:
    out = stage.run(_ctx(config, moto["network"]))
    assert out.ami_id == fake.ami and not out.simulated
    assert out.image_name == service.image_id(config.data["image"], out.fingerprint)
    assert fake.commands()[:2] == ["describe-image", "build-image"]
    build = next(c for c in fake.calls if c[0] == "build-image")
    assert build[build.index("--image-id") + 1] == out.image_name
    assert build[build.index("--region") + 1] == config.region
    keys = [o["Key"] for o in moto["s3"].list_objects_v2(Bucket="scripts")["Contents"]]
    assert f"{out.scripts_prefix}entry.sh" in keys and f"{out.scripts_prefix}image.env" in keys
    assert "installing R 4.6.1" in capsys.readouterr().err
    # The AMI pcluster made is found by its fingerprint next time: no second build.
    moto["ec2"].create_tags(
        Resources=[out.ami_id],
        Tags=[
            {"Key": amis.FINGERPRINT_TAG, "Value": out.fingerprint},
            {"Key": amis.DEPLOYMENT_TAG, "Value": config.name},
        ],
    )
    calls = len(fake.calls)
    assert stage.run(_ctx(config, moto["network"])).ami_id == out.ami_id
    assert len(fake.calls) == calls


def test_a_failed_build_says_why_and_what_to_do(
    config: Config, moto: dict[str, Any], fake: FakePcluster
) -> None:
    fake.fail = True
    with pytest.raises(StageError, match=r"BUILD_FAILED: R 9\.9\.9: 404.*image\.delete"):
        stage.run(_ctx(config, moto["network"]))


def test_destroy_removes_the_image_and_its_objects(
    config: Config, moto: dict[str, Any], fake: FakePcluster
) -> None:
    out = stage.run(_ctx(config, moto["network"]))
    fake.ami = None  # pcluster no longer knows it: destroy falls back to EC2
    fake.calls.clear()
    stage.destroy(_ctx(config, moto["network"]), out)
    assert not moto["ec2"].describe_images(ImageIds=[out.ami_id])["Images"] or all(
        i["State"] != "available"
        for i in moto["ec2"].describe_images(ImageIds=[out.ami_id])["Images"]
    )
    assert "Contents" not in moto["s3"].list_objects_v2(Bucket="scripts", Prefix=out.scripts_prefix)


def test_wait_for_build_prints_each_log_event_once(moto: dict[str, Any]) -> None:
    fake = FakePcluster(moto["ec2"])
    fake.calls.append(["build-image"])
    client = pi.PclusterImages("eu-west-1", cli=["pcluster"], runner=fake)
    console = Console(record=True, width=200)
    ami = pi.wait_for_build(client, "pwb-1", console, sleep=lambda s: None)
    assert ami == fake.ami
    assert console.export_text().count("installing R 4.6.1") == 1


def test_an_image_pcluster_already_built_is_picked_up_without_a_new_build(
    config: Config, moto: dict[str, Any], fake: FakePcluster
) -> None:
    fake.ami = register_standin(moto["ec2"], "pwb-built-untagged", "built", {})
    fake.polls = 3
    out = stage.run(_ctx(config, moto["network"]))
    assert out.ami_id == fake.ami
    assert "build-image" not in fake.commands()
