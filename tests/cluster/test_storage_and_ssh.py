"""What the rendered cluster config lets in and keeps: ssh sources, encryption, /home."""

from __future__ import annotations

from typing import Any

import pytest

from pwbcluster.config.model import model_of
from pwbcluster.stages.cluster.render import render_cluster_config, strings

from .fixtures import PREFIX, REGION, upstream


def render(data: dict[str, Any]) -> dict[str, Any]:
    network, services, image = upstream()
    return render_cluster_config(model_of(data), network, services, image, PREFIX, {}).config


def test_ssh_comes_from_the_vpc_or_allowed_cidr_never_the_world(data: dict[str, Any]) -> None:
    network, _, _ = upstream()
    assert data["cluster"]["login_nodes"]["allowed_cidr"] is None
    config = render(data)
    assert config["HeadNode"]["Ssh"]["AllowedIps"] == network.vpc_cidr
    assert config["LoginNodes"]["Pools"][0]["Ssh"]["AllowedIps"] == network.vpc_cidr
    assert "0.0.0.0/0" not in strings(config)
    data["cluster"]["login_nodes"]["allowed_cidr"] = "203.0.113.0/24"
    config = render(data)
    assert config["LoginNodes"]["Pools"][0]["Ssh"]["AllowedIps"] == "203.0.113.0/24"
    # The head node stays reachable from inside the VPC only, whatever the login nodes admit.
    assert config["HeadNode"]["Ssh"]["AllowedIps"] == network.vpc_cidr


def test_every_efs_is_encrypted_at_rest_and_in_transit(data: dict[str, Any]) -> None:
    data["cluster"]["storage"]["home"] = {"type": "Efs"}
    config = render(data)
    assert config["HeadNode"]["SharedStorageEfsSettings"] == {"Encrypted": True}
    efs = [s for s in config["SharedStorage"] if s["StorageType"] == "Efs"]
    assert [s["MountDir"] for s in efs] == ["/home", "/opt/rstudio-shared"]
    for storage in efs:
        assert storage["EfsSettings"]["Encrypted"] is True, storage
        assert storage["EfsSettings"]["EncryptionInTransit"] is True, storage


def test_home_is_persistent_with_backups_by_default(data: dict[str, Any]) -> None:
    assert data["cluster"]["storage"]["home"]["deployment_type"] == "PERSISTENT_2"
    home = render(data)["SharedStorage"][0]
    assert home["MountDir"] == "/home"
    assert home["FsxLustreSettings"] == {
        "StorageCapacity": 1200,
        "DeploymentType": "PERSISTENT_2",
        "PerUnitStorageThroughput": 125,
        "AutomaticBackupRetentionDays": 7,
        "DailyAutomaticBackupStartTime": "03:00",
        "CopyTagsToBackups": True,
    }


def test_scratch_home_stays_possible_without_backup_keys(data: dict[str, Any]) -> None:
    """pcluster refuses backup keys on SCRATCH types (FsxBackupOptionsValidator)."""
    data["cluster"]["storage"]["home"]["deployment_type"] = "SCRATCH_2"
    settings = render(data)["SharedStorage"][0]["FsxLustreSettings"]
    assert settings == {"StorageCapacity": 1200, "DeploymentType": "SCRATCH_2"}


@pytest.mark.pcluster
@pytest.mark.parametrize(
    "home",
    [
        {"type": "FsxLustre", "capacity_gb": 2400, "deployment_type": "PERSISTENT_1"},
        {"type": "FsxLustre", "capacity_gb": 1200, "deployment_type": "SCRATCH_2"},
    ],
    ids=["persistent1", "scratch2"],
)
def test_each_fsx_home_choice_passes_pclusters_validators(
    data: dict[str, Any], home: dict[str, Any]
) -> None:
    from pwbcluster.pcluster import offline

    data["cluster"]["storage"]["home"] = home
    network, services, image = upstream()
    rendered = render_cluster_config(model_of(data), network, services, image, PREFIX, {})
    result = offline.validate_cluster(rendered.config, "example", REGION)
    assert not result.errors, [f"{e.validator}: {e.message} at {e.path}" for e in result.errors]


@pytest.mark.pcluster
def test_pcluster_refuses_an_efs_home_as_the_home_efs_free_check_says(
    data: dict[str, Any],
) -> None:
    from pwbcluster.pcluster import offline

    data["cluster"]["storage"]["home"] = {"type": "Efs"}
    network, services, image = upstream()
    rendered = render_cluster_config(model_of(data), network, services, image, PREFIX, {})
    result = offline.validate_cluster(rendered.config, "example", REGION)
    assert [e.validator for e in result.errors] == ["NumberOfStorageValidator"], result.errors
