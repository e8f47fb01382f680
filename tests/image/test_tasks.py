"""``invoke image.*`` wiring: dry run without AWS, clean errors, help on every flag."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from invoke import Context, Exit

from pwbcluster.config import load_config
from pwbcluster.stages.image.service import fingerprint_for
from pwbcluster.tasks import image as tasks


def test_dry_run_prints_fingerprint_uploads_and_config_without_aws(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_aws(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("--dry-run must not reach AWS")

    monkeypatch.setattr(boto3, "Session", no_aws)
    monkeypatch.setattr(boto3, "client", no_aws)
    monkeypatch.setenv("COLUMNS", "200")
    deployment = project / "config" / "example.yaml"
    tasks.build(Context(), config=str(deployment), dry_run=True)
    out = capsys.readouterr().out
    fingerprint = fingerprint_for(load_config(deployment))
    assert f"Fingerprint {fingerprint}" in out
    prefix = f"image/{fingerprint[:16]}/"
    for key in ("entry.sh", "image.env", "image/install-image.sh", "image/install-r.sh"):
        assert prefix + key in out
    assert "Components:" in out and f"{prefix}entry.sh" in out
    assert "pcluster build-image --image-id" in out
    assert (project / "build" / "example" / "image-config.yaml").is_file()


def test_status_without_a_recorded_image_says_how_to_build(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tasks.status(Context(), config=str(project / "config" / "example.yaml"))
    assert "invoke image.build" in capsys.readouterr().out


def test_sandbox_list_without_a_server_is_a_clean_error(project: Path) -> None:
    with pytest.raises(Exit, match="no sandbox is running"):
        tasks.list_(Context(), config=str(project / "config" / "example.yaml"), sandbox=True)


def test_every_flag_has_help() -> None:
    for task in tasks.ns.tasks.values():
        missing = [a.name for a in task.get_arguments() if not a.help]
        assert not missing, f"{task.name}: no help for {missing}"


def test_dry_run_uses_the_recorded_network_of_its_mode_only(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = project / "build" / "example" / "state.json"
    state.parent.mkdir(parents=True)
    network = {
        "vpc_id": "vpc-0aaaaaaaaaaaaaaaa",
        "vpc_cidr": "10.0.0.0/16",
        "public_subnet_ids": ["subnet-0aaaaaaaaaaaaaaaa"],
        "private_subnet_ids": ["subnet-0bbbbbbbbbbbbbbbb"],
        "availability_zones": ["eu-west-1a"],
        "bucket_name": "recorded-bucket",
        "bucket_arn": "arn:aws:s3:::recorded-bucket",
        "image_build_policy_arn": "arn:aws:iam::123456789012:policy/p",
    }
    record = {"status": "done", "fingerprint": "x", "outputs": network}
    state.write_text(json.dumps({"version": 1, "mode": "sandbox", "stages": {"network": record}}))
    deployment = str(project / "config" / "example.yaml")
    tasks.build(Context(), config=deployment, dry_run=True, sandbox=True)
    assert "s3://recorded-bucket/" in capsys.readouterr().out
    tasks.build(Context(), config=deployment, dry_run=True)  # real: placeholders
    assert "example-scripts-planned" in capsys.readouterr().out
