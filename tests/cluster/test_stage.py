"""The cluster stage in sandbox mode against a moto server, and the real-mode driver
of pcluster with a scripted CLI."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from rich.console import Console

from pwbcluster.aws import pcluster_cluster as cluster_pcluster
from pwbcluster.config import load_config
from pwbcluster.config.model import Deployment, build
from pwbcluster.contracts.stage import StageContext, Upstream
from pwbcluster.errors import PclusterError
from pwbcluster.pcluster import offline
from pwbcluster.pipeline.plan import planned_topology
from pwbcluster.sandbox.account import SandboxAccount
from pwbcluster.sandbox.server import SandboxServer
from pwbcluster.stages.cluster import stage

from .fixtures import BUCKET, REGION, example_data, upstream

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def moto_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "sandbox")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto's backends are per process: start from an empty account.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
    boto3.client("s3", endpoint_url=endpoint).create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    try:
        yield endpoint
    finally:
        server.stop()


def context(
    data: dict[str, Any], tmp_path: Path, endpoint: str, mode: str = "sandbox"
) -> StageContext:
    network, services, image = upstream()
    config = SimpleNamespace(
        name="example",
        region=REGION,
        data=data,
        model=build(Deployment, data),
        tags=lambda: {"Project": "t"},
        build_dir=tmp_path / "build",
        root=ROOT,
        describe=lambda path: ".".join(map(str, path)),
    )
    account = SandboxAccount(SandboxServer(endpoint, 0, 0), REGION, tmp_path / "build")
    # This moto holds no VPC for the planned ids: the network and services programs'
    # own design stands in, as the plan reads it (subnets, routes, security groups).
    topology = planned_topology(load_config(ROOT / "config" / "example.yaml"))
    account.network_topology = lambda vpc_id: topology  # type: ignore[method-assign]
    return StageContext(config, Upstream(network=network, services=services, image=image), account)


def keys(endpoint: str) -> list[str]:
    listing = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket=BUCKET)
    return [o["Key"] for o in listing.get("Contents", [])]


def test_sandbox_run_uploads_records_and_destroys(
    data: dict[str, Any], tmp_path: Path, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def synthesise(config: dict[str, Any], name: str, region: str, out_dir: Path, **kw: Any) -> Any:
        seen.update(config=config, name=name, endpoint=kw.get("endpoint_url"))
        return offline.JobResult(offline.cluster_job(config, name), [], [], {}, {})

    monkeypatch.setattr(offline, "synthesise_cluster", synthesise)
    ctx = context(data, tmp_path, moto_endpoint)
    out = stage.run(ctx)
    assert out.simulated and out.cluster_name == "example"
    assert out.workbench_url == "https://example-login.sandbox.invalid"
    assert seen["endpoint"] == moto_endpoint and seen["config"]["LoginNodes"]
    uploaded = keys(moto_endpoint)
    for key in (
        "cluster/node.env",
        "cluster/login-node.sh",
        "cluster/lib/common.sh",
        "cluster/ldap-ca.pem",
        "cluster/workbench/etc/rstudio/rserver.conf",
    ):
        assert key in uploaded
    assert not any(k.endswith("cluster.yaml") for k in uploaded)
    plan = json.loads((tmp_path / "build" / "cluster-plan.json").read_text())
    assert any(line.startswith("login pool 'login': 2 x") for line in plan["would_create"])
    assert (tmp_path / "build" / "workbench" / "etc" / "rstudio" / "launcher.conf").is_file()
    # destroy finds the bucket in the network outputs its context carries
    assert ctx.upstream.network is not None and ctx.upstream.network.bucket_name == BUCKET
    stage.destroy(ctx, out)
    assert keys(moto_endpoint) == []
    assert not (tmp_path / "build" / "cluster-plan.json").exists()


def test_a_run_removes_what_an_earlier_run_left_under_the_prefix(
    data: dict[str, Any], tmp_path: Path, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pwbcluster.pcluster import offline

    monkeypatch.setattr(
        offline,
        "synthesise_cluster",
        lambda config, name, *a, **kw: offline.JobResult(
            offline.cluster_job(config, name), [], [], {}, {}
        ),
    )
    s3 = boto3.client("s3", endpoint_url=moto_endpoint)
    # A leftover (a file an older release uploaded) would make every node refuse the bundle.
    s3.put_object(Bucket=BUCKET, Key="cluster/lib/old.sh", Body=b"echo old\n")
    s3.put_object(Bucket=BUCKET, Key="elsewhere/keep.txt", Body=b"not ours\n")
    stage.run(context(data, tmp_path, moto_endpoint))
    uploaded = keys(moto_endpoint)
    assert "cluster/lib/old.sh" not in uploaded and "elsewhere/keep.txt" in uploaded
    body = s3.get_object(Bucket=BUCKET, Key="cluster/SHA256SUMS")["Body"].read()
    assert {
        f"cluster/{rel}" for rel in (line.split("  ", 1)[1] for line in body.decode().splitlines())
    } | {"cluster/SHA256SUMS"} == {k for k in uploaded if k.startswith("cluster/")}
    # destroy takes what the head node wrote too, and leaves what is not the cluster's.
    s3.put_object(Bucket=BUCKET, Key="ha/scaling.sha256sums", Body=b"")
    stage.destroy(context(data, tmp_path, moto_endpoint), None)
    assert keys(moto_endpoint) == ["elsewhere/keep.txt"]


def test_sandbox_run_fails_on_a_pcluster_error(
    data: dict[str, Any], tmp_path: Path, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def synthesise(config: dict[str, Any], name: str, *a: Any, **kw: Any) -> Any:
        failure = offline.Failure(
            "ERROR", "SomeValidator", "bad value", ("HeadNode", "InstanceType")
        )
        return offline.JobResult(offline.cluster_job(config, name), [failure], [], {}, {})

    monkeypatch.setattr(offline, "synthesise_cluster", synthesise)
    with pytest.raises(PclusterError, match="bad value"):
        stage.run(context(data, tmp_path, moto_endpoint))
    assert keys(moto_endpoint) == []  # nothing uploaded for a config pcluster refuses


@pytest.mark.pcluster
@pytest.mark.slow
def test_sandbox_run_with_pclusters_own_synthesis(
    data: dict[str, Any], tmp_path: Path, moto_endpoint: str
) -> None:
    out = stage.run(context(data, tmp_path, moto_endpoint))
    assert out.simulated
    plan = json.loads((tmp_path / "build" / "cluster-plan.json").read_text())
    assert plan["templates"], "pcluster synthesised no template"


class ScriptedPcluster:
    """Answers pcluster CLI calls from a script of (verb, exit code, JSON) steps."""

    def __init__(self, steps: list[tuple[str, int, Any]]) -> None:
        self.steps = steps
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv)
        verb = argv[1]
        for i, (want, code, body) in enumerate(self.steps):
            if want == verb:
                if verb not in ("get-cluster-stack-events",):
                    del self.steps[i]
                return subprocess.CompletedProcess(argv, code, json.dumps(body), "")
        raise AssertionError(f"unexpected pcluster call {argv}")


def test_real_driver_creates_waits_streams_events_and_returns_the_lb(tmp_path: Path) -> None:
    events = {
        "events": [
            {
                "eventId": "2",
                "logicalResourceId": "LoginNodes",
                "resourceStatus": "CREATE_COMPLETE",
            },
            {
                "eventId": "1",
                "logicalResourceId": "HeadNode",
                "resourceStatus": "CREATE_IN_PROGRESS",
            },
        ]
    }
    cli = ScriptedPcluster(
        [
            (
                "describe-cluster",
                1,
                {
                    "message": "Cluster 'example' does not exist or belongs to an incompatible ParallelCluster major version."
                },
            ),
            ("create-cluster", 0, {"cluster": {"clusterStatus": "CREATE_IN_PROGRESS"}}),
            ("describe-cluster", 0, {"clusterStatus": "CREATE_IN_PROGRESS"}),
            (
                "describe-cluster",
                0,
                {
                    "clusterStatus": "CREATE_COMPLETE",
                    "loginNodes": [{"poolName": "login", "address": "lb-123.elb.amazonaws.com"}],
                },
            ),
            ("get-cluster-stack-events", 0, events),
        ]
    )
    console = Console(record=True, width=200)
    host = cluster_pcluster.create_or_update(
        "example", REGION, tmp_path / "c.yaml", cli, console, 0
    )
    assert host == "lb-123.elb.amazonaws.com"
    assert [c[1] for c in cli.calls].count("create-cluster") == 1
    text = console.export_text()
    assert text.count("HeadNode CREATE_IN_PROGRESS") == 1  # each event printed once
    assert "LoginNodes CREATE_COMPLETE" in text
    # The example serves Workbench over TLS on 443 (a generated certificate), or on 8787
    # in plain HTTP where the deployment opted out.
    cluster = example_data()["cluster"]
    generated = "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-1111-4000-8000-0001"
    assert stage.workbench_url(cluster, host, generated) == "https://lb-123.elb.amazonaws.com"
    cluster["workbench"]["tls"] = False
    assert stage.workbench_url(cluster, host) == "http://lb-123.elb.amazonaws.com:8787"


def test_real_driver_updates_an_existing_cluster_and_reports_failure(tmp_path: Path) -> None:
    cli = ScriptedPcluster(
        [
            ("describe-cluster", 0, {"clusterStatus": "CREATE_COMPLETE"}),
            ("update-cluster", 0, {}),
            ("describe-cluster", 0, {"clusterStatus": "UPDATE_FAILED"}),
            ("get-cluster-stack-events", 0, {"events": []}),
        ]
    )
    with pytest.raises(PclusterError, match="UPDATE_FAILED"):
        cluster_pcluster.create_or_update(
            "example", REGION, tmp_path / "c.yaml", cli, Console(quiet=True), 0
        )
    assert [c[1] for c in cli.calls][:2] == ["describe-cluster", "update-cluster"]


@pytest.mark.pcluster
@pytest.mark.slow
def test_sandbox_runs_pclusters_ami_validators_on_its_stand_in_image(
    data: dict[str, Any], tmp_path: Path, moto_endpoint: str
) -> None:
    """The stand-in AMI carries an architecture and build-image's description, so
    pcluster's instance-type/AMI validator runs in the sandbox and refuses what AWS would."""
    from pwbcluster.config.model import Deployment, build
    from pwbcluster.sandbox.image_standins import register_standin

    ec2 = boto3.client("ec2", endpoint_url=moto_endpoint, region_name=REGION)
    ami = register_standin(
        ec2, "pwb-standin-test", "AWS ParallelCluster AMI for ubuntu2204 (stand-in)", {}
    )
    image = ec2.describe_images(ImageIds=[ami])["Images"][0]
    assert image["Architecture"] == "x86_64"
    for queue in data["cluster"]["queues"]:
        if queue.get("gpu"):
            queue["instance_type"] = "p3.2xlarge"
    ctx = context(data, tmp_path, moto_endpoint)
    assert ctx.upstream.image is not None
    image_out = dataclasses.replace(ctx.upstream.image, ami_id=ami)
    ctx = dataclasses.replace(ctx, upstream=dataclasses.replace(ctx.upstream, image=image_out))
    assert ctx.config.model == build(Deployment, data)
    with pytest.raises(PclusterError, match="OpenRM") as refused:
        stage.run(ctx)
    assert "p3.2xlarge" in str(refused.value)
    # Refused before the upload: no Workbench file reached the bucket.
    assert not [k for k in keys(moto_endpoint) if "/workbench/" in k]
