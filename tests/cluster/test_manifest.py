"""The nodes receive exactly what cluster/manifest.txt lists, and nothing else counts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pwbcluster.files_manifest import ManifestError, manifest_files
from pwbcluster.stages.cluster.bundle import node_scripts

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cluster_dir(tmp_path: Path) -> Path:
    target = tmp_path / "cluster"
    shutil.copytree(ROOT / "cluster", target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def test_listed_files_ship_and_a_stray_one_does_not(cluster_dir: Path) -> None:
    before = node_scripts(cluster_dir)
    assert "login-node.sh" in before and "ha/reconcile.py" in before
    assert "cluster.yaml" not in before and "manifest.txt" not in before
    (cluster_dir / "NOTES.md").write_text("team notes\n")
    (cluster_dir / "lib" / "common.sh.orig").write_text("old\n")
    assert node_scripts(cluster_dir) == before


def test_a_missing_listed_file_fails_clearly(cluster_dir: Path) -> None:
    (cluster_dir / "compute-node.sh").unlink()
    with pytest.raises(ManifestError, match=r"compute-node\.sh: no such file"):
        manifest_files(cluster_dir)


def test_every_node_script_the_config_names_is_listed() -> None:
    from pwbcluster.stages.cluster.render import NODE_SCRIPTS

    listed = {p.relative_to(ROOT).as_posix() for p in manifest_files(ROOT / "cluster")}
    for key in NODE_SCRIPTS.values():
        assert key in listed, f"{key} is named in the cluster config but not shipped"
