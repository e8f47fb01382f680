"""Fixtures shared by every test package."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pwbcluster.pcluster import warm

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config" / "example.yaml"


@pytest.fixture(scope="session", autouse=True)
def private_warm_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's warm pcluster workers in a directory of its own (invoke run in a
    subprocess inherits it), all stopped at the end: none outlives the tests."""
    directory = tmp_path_factory.mktemp("workers")
    directory.chmod(0o700)
    before = os.environ.get(warm.ENV_DIR)
    os.environ[warm.ENV_DIR] = str(directory)
    yield directory
    warm.stop_all(directory)
    if before is None:
        os.environ.pop(warm.ENV_DIR, None)
    else:
        os.environ[warm.ENV_DIR] = before


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
