"""Fixtures shared by every test package."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config" / "example.yaml"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A private copy of the stage files and schemas, safe to break."""
    for rel in (
        "pulumi/auxiliary.yaml",
        "image/image.yaml",
        "cluster/cluster.yaml",
        "config/example.yaml",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    shutil.copytree(ROOT / "config" / "schema", tmp_path / "config" / "schema")
    # The image files its manifest lists: the scripts and the hashed pip lock.
    for script in [*(ROOT / "image").glob("*.sh"), *(ROOT / "image").glob("*.txt")]:
        shutil.copy(script, tmp_path / "image" / script.name)
    # The node files the cluster stage ships (a plan renders the upload set too).
    for rel in (ROOT / "cluster" / "manifest.txt").read_text().splitlines():
        rel = rel.split("#", 1)[0].strip()
        if rel:
            (tmp_path / "cluster" / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / "cluster" / rel, tmp_path / "cluster" / rel)
    shutil.copy(ROOT / "cluster" / "manifest.txt", tmp_path / "cluster" / "manifest.txt")
    return tmp_path
