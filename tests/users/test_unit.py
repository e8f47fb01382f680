"""pwb-users without a directory: batch checks, password stores, the SSM command, tasks.

SSM under moto runs nothing on an instance: these tests check the command that is sent
(the secret ARNs in it, never a password) and how a report is read back.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from invoke import MockContext
from moto import mock_aws

from pwbcluster.config import load_config
from pwbcluster.config.model import UsersModel, build
from pwbcluster.contracts import planned_services, to_dict
from pwbcluster.stages.users import cli
from pwbcluster.stages.users import remote as ssm
from pwbcluster.stages.users import run as stage
from pwbcluster.stages.users.spec import BatchError, UserBatch, generate_password
from pwbcluster.stages.users.store import (
    FileStore,
    SecretsManagerStore,
    StoreError,
    read_admin_password,
)

REGION = "eu-west-1"
EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example.yaml"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"count": 0}, "count is 0"),
        ({"prefix": "Bad Prefix!"}, "prefix 'Bad Prefix!' is not allowed"),
        ({"prefix": "a" * 18}, "longer than the 20 characters"),
        ({"count": 10, "start": 9995}, "do not fit in 4 digits"),
        ({"users_group": "x y"}, "not a valid group name"),
    ],
)
def test_bad_batches_are_refused(overrides: dict, message: str) -> None:
    with pytest.raises(BatchError, match="refused before touching the directory") as err:
        UserBatch(**{"count": 5, **overrides}).check()
    assert message in str(err.value)


def test_cli_refuses_before_reading_secrets_or_connecting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # No admin password anywhere and an address nobody may reach (pytest-socket): the
    # refusal must come first.
    monkeypatch.delenv("PWB_USERS_ADMIN_PASSWORD", raising=False)
    for bad in (["--count", "0"], ["--count", "3", "--prefix", "ab;rm"]):
        rc = cli.main(["create", "--domain", "d.example", "--server", "192.0.2.1", *bad, "--json"])
        out = capsys.readouterr().out
        assert rc == 2
        assert "refused before touching the directory" in json.loads(out)["error"]


def test_names_and_config() -> None:
    users = {
        "count": 3,
        "prefix": "posit",
        "digits": 4,
        "start": 9,
        "uid_start": 20000,
        "shell": "/bin/zsh",
        "home_base": "/home/",
        "groups": {"users": "u", "admins": "a"},
        "admins": ["posit0009"],
    }
    batch = UserBatch.from_config(users)
    assert UserBatch.from_config(build(UsersModel, users)) == batch
    assert batch.names() == ["posit0009", "posit0010", "posit0011"]
    assert [batch.uid(i) for i in range(3)] == [20000, 20001, 20002]
    assert batch.home("posit0010") == "/home/posit0010"
    assert UserBatch.from_config(users, count=7, prefix=None).count == 7


def test_passwords_are_random_and_complex() -> None:
    pws = {generate_password() for _ in range(200)}
    assert len(pws) == 200
    for pw in pws:
        assert len(pw) == 24 and any(c.isupper() for c in pw) and any(c.islower() for c in pw)


def test_file_store_roundtrip_and_refuses_foreign_content(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "sub" / "pw.json")
    assert store.load() == {}
    store.save({"u1": "p1"})
    assert store.load() == {"u1": "p1"}
    assert (store.path.stat().st_mode & 0o777) == 0o600
    store.path.write_text("not json")
    with pytest.raises(StoreError, match="refusing to overwrite"):
        store.load()


@mock_aws
def test_secrets_manager_store() -> None:
    sm = boto3.client("secretsmanager", region_name=REGION)
    arn = sm.create_secret(Name="dep/directory-user-passwords")["ARN"]  # no value yet
    store = SecretsManagerStore(arn, client=sm)
    assert store.load() == {}
    store.save({"posit0001": "x" * 24})
    assert store.load() == {"posit0001": "x" * 24}
    with pytest.raises(StoreError, match="more than one secret holds"):
        store.save({f"posit{i:05d}": "x" * 24 for i in range(3000)})
    admin = sm.create_secret(Name="dep/admin", SecretString="Adm1n-Pass")["ARN"]
    assert read_admin_password(admin, None) == "Adm1n-Pass"


def services(instance: str = "i-0123456789abcdef0"):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    return replace(
        planned_services(REGION, "example", "pwb.posit.co"), jump_host_instance_id=instance
    )


def test_ssm_command_carries_arns_not_secrets() -> None:
    svc = services()
    argv = ssm.tool_argv("create", svc, UserBatch(count=500, admins=("posit0001",)), REGION)
    params = ssm.command_parameters(argv, 1800)
    line = params["commands"][-1]
    assert line.startswith(
        "pwb-users create --domain pwb.posit.co --server 10.0.128.10 --server 10.0.144.10"
    )
    assert f"--admin-secret-arn {svc.admin_password_secret_arn}" in line
    assert f"--password-store secretsmanager:{svc.users_password_secret_arn}" in line
    assert "--count 500" in line and "--admin posit0001" in line and line.endswith("--json")
    assert "password " not in line.replace("--admin-password", "")
    assert params["executionTimeout"] == ["1800"]


@mock_aws
def test_run_remote_sends_the_command_and_reads_no_report() -> None:
    client = boto3.client("ssm", region_name=REGION)
    svc = services()
    # moto "runs" the command without output: the runner must say there is no report.
    with pytest.raises(ssm.RemoteError, match="without a report"):
        ssm.run_remote("create", svc, UserBatch(count=3), REGION, ssm=client, timeout=60, poll=0.01)
    sent = client.list_commands(InstanceId=svc.jump_host_instance_id)["Commands"]
    assert len(sent) == 1 and sent[0]["DocumentName"] == "AWS-RunShellScript"
    assert svc.admin_password_secret_arn in sent[0]["Parameters"]["commands"][-1]


def test_reports_from_the_jump_host() -> None:
    doc = {
        "action": "create",
        "requested": 5,
        "created": 3,
        "completed": 1,
        "existing": 1,
        "foreign": 0,
        "verified": 5,
        "verify_failed": 0,
        "failed": 0,
        "seconds": 2.5,
        "failures": [],
    }
    inv = {"Status": "Success", "StandardOutputContent": "noise\n" + json.dumps(doc) + "\n"}
    assert ssm.parse_report(inv) == doc
    out = stage.outputs_from_report(doc, "arn:secret")
    assert (out.requested, out.created, out.existing, out.verified, out.failed) == (5, 4, 1, 5, 0)
    failed = {
        "Status": "Failed",
        "StandardOutputContent": '{"error": "the directory refused the password"}',
    }
    with pytest.raises(ssm.RemoteError, match="refused the password"):
        ssm.parse_report(failed)


def test_stage_entry_skips_an_empty_batch() -> None:
    users = {**load_config(EXAMPLE).data["aux"]["users"], "count": 0}
    out = stage.run_users(services(), users, REGION, ssm_client=object())
    assert out.skipped_reason == "aux.users.count is 0" and out.requested == 0


def test_invoke_dry_run_prints_the_command(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pwbcluster.pipeline.state import StageRecord, State
    from pwbcluster.tasks import users as tasks

    state = State.load(project / "build" / "example" / "state.json", "real")
    state.record(
        "services", StageRecord(status="done", fingerprint="x", outputs=to_dict(services()))
    )
    tasks.create(
        MockContext(), config=str(project / "config" / "example.yaml"), count=7, dry_run=True
    )
    out = capsys.readouterr().out
    assert "i-0123456789abcdef0" in out and "--count 7" in out
    assert "secretsmanager:" in out
    assert "--verify-existing" not in out, "a re-run logs nobody in unless asked"
    tasks.create(
        MockContext(),
        config=str(project / "config" / "example.yaml"),
        verify_existing=True,
        dry_run=True,
    )
    assert "--verify-existing" in capsys.readouterr().out


def test_the_report_counts_logins_and_carries_no_lock() -> None:
    from pwbcluster.stages.users.workers import Report

    report = Report("create", requested=2)
    report.count_login()
    report.count_login()
    doc = report.as_dict()
    assert doc["logins"] == 2 and not any(k.startswith("_") for k in doc)
    json.dumps(doc)
