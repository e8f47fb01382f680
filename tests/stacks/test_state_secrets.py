"""Pulumi state secrets: a KMS key as an option, and a passphrase never beside the state."""

from __future__ import annotations

import os
import stat
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pwbcluster.aws import pulumi_driver as driver
from pwbcluster.config import ConfigError, load_config
from pwbcluster.contracts.account import StackRequest
from pwbcluster.errors import ToolkitError

KMS = "awskms://alias/pwbcluster-state?region=eu-west-1"


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    for var in list(os.environ):
        if var.startswith("PULUMI_"):
            monkeypatch.delenv(var)
    return home


def test_generated_passphrase_lives_in_the_config_dir_apart_from_the_state(home: Path) -> None:
    backend = driver.backend_url(None)
    env = driver.passphrase_env(backend)
    path = Path(env["PULUMI_CONFIG_PASSPHRASE_FILE"])
    state = Path(backend.removeprefix("file://"))
    assert path == home / ".config" / "pwbcluster" / "pulumi-passphrase"
    assert not path.is_relative_to(state) and path.parent != state.parent
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert not any(p.name == "pulumi-passphrase" for p in state.rglob("*"))


@pytest.mark.parametrize("where", ["inside", "sibling"])
def test_a_passphrase_file_beside_the_state_is_refused(
    home: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    backend = driver.backend_url(None)
    state = Path(backend.removeprefix("file://"))
    named = state / "passphrase" if where == "inside" else state.parent / "passphrase"
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE_FILE", str(named))
    with pytest.raises(ToolkitError, match="lies beside the state"):
        driver.passphrase_env(backend)


def test_a_config_dir_inside_the_state_is_refused_before_writing(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = driver.backend_url(None)
    state = Path(backend.removeprefix("file://"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(state / "cfg"))
    with pytest.raises(ToolkitError, match="awskms://"):
        driver.passphrase_env(backend)
    assert not (state / "cfg").exists(), "nothing may be written beside the state"


def test_a_kms_provider_needs_no_passphrase(home: Path) -> None:
    assert driver.passphrase_env("s3://team-state/pulumi", KMS) == {}
    assert not driver.passphrase_path().exists()
    assert "PULUMI_CONFIG_PASSPHRASE_FILE" in driver.passphrase_env("s3://team-state/p")


def test_the_stack_is_created_with_the_kms_provider(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pulumi import automation as auto

    seen: dict[str, Any] = {}

    class FakeStack:
        class workspace:
            @staticmethod
            def install_plugin(name: str, version: str) -> None:
                pass

        def set_config(self, key: str, value: Any) -> None:
            seen[key] = value.value

    def create_or_select_stack(**kwargs: Any) -> FakeStack:
        seen["opts"] = kwargs["opts"]
        return FakeStack()

    monkeypatch.setattr(driver, "require_cli", lambda: None)
    monkeypatch.setattr(driver, "require_credentials", lambda region: None)
    monkeypatch.setattr(auto, "create_or_select_stack", create_or_select_stack)
    request = StackRequest("network", "pwbcluster-aux", "dev-network", dict)
    driver._stack(request, "s3://team-state/pulumi", "eu-west-1", secrets_provider=KMS)
    opts = seen["opts"]
    assert opts.secrets_provider == KMS
    assert "PULUMI_CONFIG_PASSPHRASE_FILE" not in opts.env_vars
    assert opts.env_vars["PULUMI_BACKEND_URL"] == "s3://team-state/pulumi"
    driver._stack(request, "file:///tmp/x", "eu-west-1")
    assert seen["opts"].secrets_provider is None
    assert "PULUMI_CONFIG_PASSPHRASE_FILE" in seen["opts"].env_vars


def _deployment(project: Path, extra: str) -> Path:
    path = project / "config" / "state.yaml"
    head = "deployment:\n  name: dev\n  region: eu-west-1\n  owner_email: team@example.com\n"
    path.write_text(head + textwrap.indent(extra, "  "), encoding="utf-8")
    return path


def test_config_accepts_an_s3_backend_with_kms(project: Path) -> None:
    cfg = load_config(
        _deployment(
            project, f"pulumi_backend: s3://team-state/pulumi\npulumi_secrets_provider: '{KMS}'\n"
        )
    )
    assert cfg.model.deployment.pulumi_secrets_provider == KMS
    assert not [w for w in cfg.warnings if w.check == "pulumi_state_kms"]


def test_config_warns_on_a_shared_state_with_a_passphrase(project: Path) -> None:
    cfg = load_config(_deployment(project, "pulumi_backend: s3://team-state/pulumi\n"))
    assert [w for w in cfg.warnings if w.check == "pulumi_state_kms"], cfg.warnings


@pytest.mark.parametrize(
    "value", ["awskms://alias/x", "awskms://", "gcpkms://x", "passphrase; rm -rf /"]
)
def test_config_refuses_a_malformed_provider(project: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="pulumi_secrets_provider"):
        load_config(_deployment(project, f"pulumi_secrets_provider: '{value}'\n"))
