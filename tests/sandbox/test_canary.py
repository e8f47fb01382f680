"""The secret canary finds a secret wherever it leaks, and the moto server's lifecycle."""

from __future__ import annotations

import base64
import gzip
import json
import os
import shutil
import ssl
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest

from pwbcluster.sandbox import server as sandbox
from pwbcluster.sandbox.canary import AuditReport, audit
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


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


ENCODED_FORMS: dict[str, Callable[[bytes], bytes]] = {
    # Inside longer text, so the secret starts at each byte offset of a base64 group.
    **{
        f"base64-offset-{k}": (lambda d, k=k: base64.b64encode(b"x" * k + b"pw=" + d + b";"))
        for k in range(3)
    },
    **{
        f"base64url-offset-{k}": (
            lambda d, k=k: base64.urlsafe_b64encode(b"\xfb\xff" * k + b"=" + d + b"\xff")
        )
        for k in range(3)
    },
    "url-encoded": lambda d: b"uri=" + urllib.parse.quote(d.decode(), safe="").encode(),
    "url-encoded-plus": lambda d: b"q=" + urllib.parse.quote_plus(d.decode(), safe="").encode(),
    "hex-lower": lambda d: b"key " + d.hex().encode(),
    "hex-upper": lambda d: b"KEY " + d.hex().upper().encode(),
    "gzip-member": lambda d: b"header\n" + _gzip(b"log line " + d) + b"trailer",
    "gzip-in-gzip": lambda d: _gzip(b"outer" + _gzip(b"inner " + d)),
}


@pytest.mark.parametrize("form", sorted(ENCODED_FORMS))
def test_every_encoded_form_is_found(account: boto3.Session, tmp_path: Path, form: str) -> None:
    value = "pw with spaces/+&=" + SECRET if form.startswith("url") else SECRET
    account.client("secretsmanager").create_secret(Name="odd", SecretString=value)
    blob = ENCODED_FORMS[form](value.encode())
    assert value.encode() not in blob, "the form must hide the plain value"
    (tmp_path / "blob.bin").write_bytes(blob)
    names = {f.secret_name for f in audit(account, tmp_path).findings}
    assert "odd" in names, form


def test_clean_forms_do_not_match(account: boto3.Session, tmp_path: Path) -> None:
    """Encoding another value gives no finding: the forms are not matching everything."""
    other = b"entirely-different-value-123"
    for k, form in enumerate(sorted(ENCODED_FORMS)):
        (tmp_path / f"{k}.bin").write_bytes(ENCODED_FORMS[form](other))
    report = audit(account, tmp_path)
    assert report.clean, report.findings


def test_an_empty_account_is_not_a_pass(account: boto3.Session, tmp_path: Path) -> None:
    sm = account.client("secretsmanager")
    for name in ("plain", "db"):
        sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    (tmp_path / "cluster-config.yaml").write_text("Region: eu-west-1\n")
    report = audit(account, tmp_path)
    assert report.secrets == 0 and not report.findings
    assert not report.clean and report.vacuous and "no secret value" in report.vacuous


def test_nowhere_searched_is_not_a_pass() -> None:
    report = AuditReport(secrets=2, needles=10, places=0, findings=[])
    assert not report.clean and report.vacuous and "no place to search" in report.vacuous
    assert AuditReport(secrets=2, needles=10, places=3, findings=[]).clean


def test_the_task_fails_on_an_empty_sandbox(
    account: boto3.Session, build_dir: Path, project: Path
) -> None:
    """`invoke audit.secrets` against a sandbox with no secret exits 1, saying why."""
    from invoke import Context, Exit

    from pwbcluster.config import load_config
    from pwbcluster.tasks import audit as audit_tasks

    sm = account.client("secretsmanager")
    for name in ("plain", "db"):
        sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    config = project / "config" / "example.yaml"
    target = load_config(config).build_dir
    target.mkdir(parents=True)
    shutil.copy(build_dir / "sandbox.json", target / "sandbox.json")
    with pytest.raises(Exit) as refused:
        audit_tasks.secrets(Context(), config=str(config))
    assert refused.value.code == 1
    assert "proved nothing" in str(refused.value.message)
    assert "no secret value found in Secrets Manager" in str(refused.value.message)


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


def test_the_task_refuses_when_there_is_nothing_to_reach(
    project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No sandbox and no credentials: a clear refusal, not a traceback and not a pass."""
    from invoke import Context, Exit

    from pwbcluster.tasks import audit as audit_tasks

    for var in [v for v in os.environ if v.startswith("AWS_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(Exit) as refused:
        audit_tasks.secrets(Context(), config=str(project / "config" / "example.yaml"))
    assert refused.value.code == 1
    assert "nothing to search" in str(refused.value.message)
