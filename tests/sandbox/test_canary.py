"""The secret canary finds a secret wherever it leaks, and the moto server's lifecycle."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from pwbcluster.sandbox import server as sandbox
from pwbcluster.sandbox.canary import audit
from pwbcluster.sandbox.inventory import inventory

SECRET = "s3cr3t-Value-that-is-long"
JSON_PASSWORD = "pg-password-9f8e7d6c"


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("build")


@pytest.fixture(scope="module")
def server(build_dir: Path) -> Iterator[sandbox.SandboxServer]:
    build = build_dir
    srv = sandbox.start(build)
    try:
        yield srv
    finally:
        assert sandbox.stop(build)
        assert sandbox.running(build) is None


@pytest.fixture
def account(server: sandbox.SandboxServer, tmp_path: Path) -> Iterator[boto3.Session]:
    with sandbox.aws_environment(server, "eu-west-1"):
        session = boto3.Session(region_name="eu-west-1")
        tls = ssl.create_default_context(cafile=server.ca_bundle)
        reset = urllib.request.Request(f"{server.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(reset, timeout=5, context=tls).read()
        sm = session.client("secretsmanager")
        sm.create_secret(Name="plain", SecretString=SECRET)
        sm.create_secret(
            Name="db", SecretString=json.dumps({"username": "rstudio", "password": JSON_PASSWORD})
        )
        yield session


def test_clean_account_passes(account: boto3.Session, tmp_path: Path) -> None:
    (tmp_path / "cluster-config.yaml").write_text(
        "Region: eu-west-1\nArgs: [--env-uri, s3://b/x]\n"
    )
    s3 = account.client("s3")
    s3.create_bucket(
        Bucket="scripts", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    s3.put_object(Bucket="scripts", Key="node.env", Body=b"DB_SECRET_ARN=arn:aws:secretsmanager:x")
    report = audit(account, tmp_path)
    assert report.clean, report.findings
    assert report.secrets == 2 and report.places >= 2


@pytest.mark.parametrize("where", ["build", "s3", "s3-old-version", "user-data", "json-leaf"])
def test_a_leak_is_found_wherever_it_is(account: boto3.Session, tmp_path: Path, where: str) -> None:
    s3 = account.client("s3")
    s3.create_bucket(
        Bucket="scripts", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    s3.put_bucket_versioning(Bucket="scripts", VersioningConfiguration={"Status": "Enabled"})
    if where == "build":
        (tmp_path / "logs").mkdir()
        (tmp_path / "logs" / "up.log").write_text(f"connecting with {SECRET}\n")
    elif where == "s3":
        s3.put_object(Bucket="scripts", Key="a/node.env", Body=f"PW={SECRET}".encode())
    elif where == "s3-old-version":
        s3.put_object(Bucket="scripts", Key="a/node.env", Body=f"PW={SECRET}".encode())
        s3.put_object(Bucket="scripts", Key="a/node.env", Body=b"PW=fixed")
    elif where == "user-data":
        ec2 = account.client("ec2")
        image = ec2.describe_images()["Images"][0]["ImageId"]
        ec2.run_instances(
            ImageId=image, MinCount=1, MaxCount=1, UserData=f"#!/bin/bash\necho {SECRET}\n"
        )
    elif where == "json-leaf":
        (tmp_path / "database.conf").write_text(f"password={JSON_PASSWORD}\n")
    report = audit(account, tmp_path)
    assert not report.clean
    names = {f.secret_name for f in report.findings}
    assert names == ({"db"} if where == "json-leaf" else {"plain"}), report.findings
    text = json.dumps([f.__dict__ for f in report.findings])
    assert SECRET not in text and JSON_PASSWORD not in text, "findings must not echo the value"


def test_base64_forms_are_found(account: boto3.Session, tmp_path: Path) -> None:
    (tmp_path / "template.json").write_text(base64.b64encode(SECRET.encode()).decode())
    assert {f.secret_name for f in audit(account, tmp_path).findings} == {"plain"}


def test_inventory_ignores_the_default_vpc(account: boto3.Session) -> None:
    counts = inventory(account)
    assert "vpc" not in counts and "subnet" not in counts
    assert counts.get("secret") == 2
    account.client("ec2").create_vpc(CidrBlock="10.9.0.0/16")
    assert inventory(account)["vpc"] == 1


def test_server_is_reused_while_running(server: sandbox.SandboxServer, build_dir: Path) -> None:
    again = sandbox.start(build_dir)
    assert again == server
    record = json.loads((build_dir / "sandbox.json").read_text())
    assert record["endpoint"].startswith("https://127.0.0.1:") and record["pid"] == server.pid


def test_stop_refuses_a_pid_that_is_not_moto(tmp_path: Path) -> None:
    (tmp_path / "sandbox.json").write_text(
        json.dumps({"endpoint": "http://127.0.0.1:9", "pid": 1, "port": 9})
    )
    assert sandbox.stop(tmp_path) is False
    assert not (tmp_path / "sandbox.json").exists()


def test_what_remains_is_counted_in_plain_english() -> None:
    from pwbcluster.sandbox.inventory import listing

    assert listing({"iam policy": 4, "bucket": 2, "secret": 1}) == (
        "2 buckets, 4 iam policies, 1 secret"
    )
    assert listing({}) == ""
