"""Checksums and pins from the config reach the env file the build scripts read."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from pwbcluster.config import Config, load_config
from pwbcluster.errors import ToolkitError
from pwbcluster.stages.image.envfile import image_env, unverified_downloads
from pwbcluster.stages.image.service import fingerprint_for

WORKBENCH_SHA = "AB" * 32
NVIDIA_KEY = "EB693B3035CD5710E231E123A4B469963BF863CC"


def _set_in_image_yaml(project: Path, old: str, new: str) -> None:
    path = project / "image" / "image.yaml"
    text = path.read_text()
    assert old in text, f"image.yaml no longer has {old!r}"
    path.write_text(text.replace(old, new, 1))


def test_shipped_config_pins_nvidia_key_and_jupyter(config: Config) -> None:
    env = image_env(config.data["image"])
    assert env["CUDA_REPO_KEY_FINGERPRINT"] == NVIDIA_KEY
    assert env["JUPYTERLAB_VERSION"].startswith("4.")
    assert env["PWB_JUPYTERLAB_VERSION"] == str(
        config.data["image"]["jupyter"]["extension_version"]
    )
    # Unset optional pins are left out, so the scripts see them as unset.
    assert "APPTAINER_SHA256" not in env and "CUDA_KEYRING_SHA256" not in env


def test_workbench_checksum_for_the_image_os_reaches_the_env_file(project: Path) -> None:
    before = fingerprint_for(load_config(project / "config" / "example.yaml"))
    _set_in_image_yaml(project, "ubuntu2204: null", f"ubuntu2204: {WORKBENCH_SHA}")
    config = load_config(project / "config" / "example.yaml")
    image = config.data["image"]
    assert image["os"] == "ubuntu2204"
    env = image_env(image)
    assert env["WORKBENCH_SHA256"] == WORKBENCH_SHA.lower()
    assert [w for w in unverified_downloads(image) if "Workbench" in w] == []
    assert fingerprint_for(config) != before  # a new pin is a new image input


def test_checksum_of_another_os_is_not_used(config: Config) -> None:
    image: dict[str, Any] = copy.deepcopy(config.data["image"])
    image["workbench"]["sha256"] = {"ubuntu2404": WORKBENCH_SHA}
    assert "WORKBENCH_SHA256" not in image_env(image)
    [warning] = [w for w in unverified_downloads(image) if "Workbench" in w]
    assert "image.workbench.sha256.ubuntu2204" in warning


def test_optional_pins_pass_through(config: Config) -> None:
    image: dict[str, Any] = copy.deepcopy(config.data["image"])
    image["apptainer"]["sha256"] = "CD" * 32
    image["gpu"]["keyring_sha256"] = "ef" * 32
    env = image_env(image)
    assert env["APPTAINER_SHA256"] == "cd" * 32
    assert env["CUDA_KEYRING_SHA256"] == "ef" * 32


def test_missing_key_fingerprint_is_reported_only_with_gpu(config: Config) -> None:
    image: dict[str, Any] = copy.deepcopy(config.data["image"])
    image["workbench"]["sha256"] = {image["os"]: WORKBENCH_SHA}
    image["gpu"]["repo_key_fingerprint"] = None
    image["gpu"]["enabled"] = True
    assert any("repo_key_fingerprint" in w for w in unverified_downloads(image))
    image["gpu"]["enabled"] = False
    assert unverified_downloads(image) == [
        "RDS CA bundle: set image.rds_ca.sha256 to pin it (AWS publishes no checksum)"
    ]
    image["rds_ca"]["sha256"] = "EF" * 32
    assert unverified_downloads(image) == []
    assert image_env(image)["RDS_CA_SHA256"] == "ef" * 32


def test_a_malformed_checksum_is_a_config_error(project: Path) -> None:
    _set_in_image_yaml(project, "ubuntu2204: null", "ubuntu2204: not-a-checksum")
    with pytest.raises(ToolkitError, match=r"image\.workbench\.sha256\.ubuntu2204"):
        load_config(project / "config" / "example.yaml")
