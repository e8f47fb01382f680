"""The Automation API driver explains itself: no CLI, no credentials, state, passphrase."""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

import pytest
from invoke import Context, Exit
from rich.console import Console

from pwbcluster import contracts
from pwbcluster.aws import pulumi_driver as driver
from pwbcluster.config import Config
from pwbcluster.errors import MissingDependency, StageError
from pwbcluster.pipeline import aux_tasks as manage
from pwbcluster.pipeline.state import StageRecord, State
from pwbcluster.tasks import auxiliary as aux_tasks

from .conftest import EXAMPLE


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A user with no AWS credentials anywhere and a private home."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    for var in list(os.environ):
        if var.startswith("AWS_") or var.startswith("PULUMI_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "none"))
    return home


def _path_with(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pulumi: bool) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if pulumi:
        fake = bin_dir / "pulumi"
        fake.write_text("#!/bin/sh\necho v3.200.0\n")
        fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))


def test_missing_cli_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_aws: Path
) -> None:
    _path_with(monkeypatch, tmp_path, pulumi=False)
    with pytest.raises(MissingDependency, match="pulumi` CLI is not installed") as err:
        driver.require_cli()
    assert "get.pulumi.com" in str(err.value) and "--sandbox" in str(err.value)


def test_preview_task_exits_cleanly_without_cli(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_aws: Path
) -> None:
    _path_with(monkeypatch, tmp_path, pulumi=False)
    with pytest.raises(Exit) as exit_info:
        aux_tasks.preview(Context(), config=str(EXAMPLE))
    assert exit_info.value.code == 1
    assert "pulumi` CLI is not installed" in str(exit_info.value.message)


def test_preview_task_exits_cleanly_without_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_aws: Path
) -> None:
    _path_with(monkeypatch, tmp_path, pulumi=True)
    with pytest.raises(Exit) as exit_info:
        aux_tasks.preview(Context(), config=str(EXAMPLE), part=["network"])
    message = str(exit_info.value.message)
    assert "no AWS credentials" in message and "aws sso login" in message


def test_default_backend_is_under_home_not_build(no_aws: Path, base_config: Config) -> None:
    url = driver.backend_url(base_config.data["deployment"].get("pulumi_backend"))
    assert url == f"file://{no_aws / '.pwbcluster' / 'pulumi'}"
    assert (no_aws / ".pwbcluster" / "pulumi").is_dir()
    assert str(base_config.root / "build") not in url


def test_user_backend_is_used_as_given(no_aws: Path, base_config: Config) -> None:
    data = {**base_config.data, "deployment": {**base_config.data["deployment"]}}
    data["deployment"]["pulumi_backend"] = "s3://team-state/pulumi"
    config = Config(data, base_config.origins, base_config.root, base_config.deployment_file)
    assert (
        driver.backend_url(config.data["deployment"]["pulumi_backend"]) == "s3://team-state/pulumi"
    )
    assert "PULUMI_CONFIG_PASSPHRASE_FILE" in driver.passphrase_env("s3://team-state/pulumi")
    assert driver.passphrase_env("https://api.pulumi.com") == {}


def test_passphrase_is_generated_once_private_and_never_a_default(no_aws: Path) -> None:
    env = driver.passphrase_env("file:///x")
    path = Path(env["PULUMI_CONFIG_PASSPHRASE_FILE"])
    assert path == no_aws / ".config" / "pwbcluster" / "pulumi-passphrase"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_text()
    assert len(first.strip()) >= 40
    assert driver.passphrase_env("file:///x") == env and path.read_text() == first
    path.chmod(0o644)
    with pytest.raises(Exception, match="readable by others"):
        driver.passphrase_env("file:///x")


def test_user_passphrase_wins(no_aws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "chosen-by-the-user")
    assert driver.passphrase_env("file:///x") == {}
    assert not (no_aws / ".config" / "pwbcluster" / "pulumi-passphrase").exists()


def test_down_asks_first_and_stops_on_no(
    monkeypatch: pytest.MonkeyPatch, base_config: Config, tmp_path: Path
) -> None:
    config = dataclasses.replace(base_config, root=tmp_path)
    state = State.load(config.build_dir / "state.json", "real")
    recorded = {
        "network": contracts.planned_network(config.region, config.name),
        "services": contracts.planned_services(config.region, config.name, "pwb.posit.co"),
    }
    for name, outputs in recorded.items():
        state.record(name, StageRecord("done", "fp", contracts.to_dict(outputs)))
    destroyed: list[str] = []
    monkeypatch.setattr(
        driver, "destroy", lambda request, backend, region, **_: destroyed.append(request.part)
    )
    questions: list[str] = []

    def refuse(question: str) -> bool:
        questions.append(question)
        return False

    with pytest.raises(StageError, match="not confirmed"):
        manage.down(config, "real", Console(), refuse)
    assert destroyed == [] and "example" in questions[0]
    manage.down(config, "real", Console(), lambda q: True)
    assert destroyed == ["services", "network"]
    assert not (config.build_dir / "state.json").exists()


def test_unknown_part_is_refused() -> None:
    with pytest.raises(StageError, match="unknown part"):
        manage.check_parts(["dns"])
