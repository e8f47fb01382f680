"""home_durable: a /home that a file-server failure or a deletion would lose is warned about."""

from __future__ import annotations

from pathlib import Path

import pytest

from pwbcluster.config import load_config
from pwbcluster.errors import ConfigError


def warnings_for(project: Path, home: str) -> list[str]:
    path = project / "config" / "example.yaml"
    path.write_text(path.read_text() + f"cluster:\n  storage:\n    home: {home}\n")
    return [str(w) for w in load_config(path).warnings if "[home_durable]" in str(w)]


def test_the_default_home_is_not_warned_about(project: Path) -> None:
    path = project / "config" / "example.yaml"
    assert not [w for w in load_config(path).warnings if "[home_durable]" in str(w)]


def test_scratch_home_says_what_is_lost(project: Path) -> None:
    found = warnings_for(
        project, "{type: FsxLustre, capacity_gb: 1200, deployment_type: SCRATCH_2}"
    )
    assert len(found) == 1, found
    assert "cluster.storage.home.deployment_type" in found[0]
    assert "no replica and no backup" in found[0]
    assert "every user's home directory" in found[0]


def test_efs_home_is_refused_before_pcluster_refuses_it(project: Path) -> None:
    path = project / "config" / "example.yaml"
    path.write_text(path.read_text() + "cluster:\n  storage:\n    home: {type: Efs}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "[home_efs_free]" in str(caught.value), caught.value
    assert "creates one new EFS" in str(caught.value)


def test_the_warning_can_be_switched_off(project: Path) -> None:
    path = project / "config" / "example.yaml"
    path.write_text(
        path.read_text().replace("disable_checks: []", "disable_checks: [home_durable]")
        + "cluster:\n  storage:\n    home: {type: FsxLustre, capacity_gb: 1200,"
        + " deployment_type: SCRATCH_2}\n"
    )
    assert not [w for w in load_config(path).warnings if "[home_durable]" in str(w)]
