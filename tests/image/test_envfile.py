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
    assert "QUARTO_SHA256" not in env


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
    image["quarto"]["sha256"] = "0A" * 32
    env = image_env(image)
    assert env["QUARTO_SHA256"] == "0a" * 32
    assert env["APPTAINER_SHA256"] == "cd" * 32
    assert env["CUDA_KEYRING_SHA256"] == "ef" * 32


def test_missing_key_fingerprint_is_reported_only_with_gpu(config: Config) -> None:
    image: dict[str, Any] = copy.deepcopy(config.data["image"])
    image["workbench"]["sha256"] = {image["os"]: WORKBENCH_SHA}
    image["gpu"]["repo_key_fingerprint"] = None
    image["gpu"]["enabled"] = True
    assert any("repo_key_fingerprint" in w for w in unverified_downloads(image))
    image["gpu"]["enabled"] = False
    image["r"]["sha256"] = {v: "AB" * 32 for v in image["r"]["versions"]}
    image["python"]["sha256"] = {v: "CD" * 32 for v in image["python"]["versions"]}
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


def test_posit_builds_unpinned_are_named_and_pins_reach_the_env(config: Config) -> None:
    """Posit publishes no checksums for its R and Python builds: each unpinned version is
    named in the build's warnings; a pinned one reaches the env file as VERSION=SHA256."""
    image: dict[str, Any] = copy.deepcopy(config.data["image"])
    image["r"] = {
        "versions": ["4.5.3", "4.4.3"],
        "default": "4.5.3",
        "sha256": {"4.5.3": "AB" * 32},
    }
    warnings = unverified_downloads(image)
    assert (
        "R 4.4.3 (ubuntu2204, Posit's builds): set image.r.sha256 to pin them "
        "(Posit publishes no checksums)"
    ) in warnings
    assert any(w.startswith("Python 3.12.11, 3.11.13 (ubuntu2204") for w in warnings)
    env = image_env(image)
    assert env["R_SHA256"] == f"4.5.3={'ab' * 32}"
    assert "PYTHON_SHA256" not in env


def test_a_pin_for_a_version_not_installed_is_refused(config: Config) -> None:
    image: dict[str, Any] = copy.deepcopy(config.data["image"])
    image["python"]["sha256"] = {"3.12.10": "AB" * 32}
    with pytest.raises(ValueError, match=r"image\.python\.sha256 pins 3\.12\.10, not in"):
        image_env(image)


def test_schema_refuses_a_malformed_pin(project: Path) -> None:
    """The schema takes only version keys and 64-hex values (the scripts re-check both)."""
    path = project / "image" / "image.yaml"
    original = path.read_text()
    _set_in_image_yaml(
        project, "  default: 4.5.3\n", f"  default: 4.5.3\n  sha256: {{'4.5.3': {'ab' * 32}}}\n"
    )
    assert load_config(project / "config" / "example.yaml").model.image.r.pin("4.5.3") == "ab" * 32
    for bad in ({"4.5": "ab" * 32}, {"4.5.3": "ab" * 31}, {"4.5.3": "zz" * 32}):
        path.write_text(original)
        _set_in_image_yaml(project, "  default: 4.5.3\n", f"  default: 4.5.3\n  sha256: {bad}\n")
        with pytest.raises(ToolkitError, match="sha256"):
            load_config(project / "config" / "example.yaml")
