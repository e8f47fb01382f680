"""The bundle the nodes run as root is checked before it runs: SHA256SUMS covers every
uploaded object, the check is the same in every entry script (the bats tests in
tests/bats/cluster_nodes.bats tamper with it), and the custom actions' Args do not change
with the bundle (ParallelCluster cannot update them on the head and login nodes)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest

from pwbcluster.errors import ToolkitError
from pwbcluster.stages.cluster import stage
from pwbcluster.stages.cluster.bundle import SUMS_NAME, BundleObject, sums_text

from .test_cluster_config import actions
from .test_stage import context

ROOT = Path(__file__).resolve().parents[2]
ENTRY_SCRIPTS = ("node-start.sh", "head-node.sh", "login-node.sh", "compute-node.sh")


def sums_of(body: bytes) -> dict[str, str]:
    lines = body.decode().splitlines()
    pairs = [re.fullmatch(r"([0-9a-f]{64})  (\S+)", line) for line in lines]
    assert all(pairs), lines
    return {m.group(2): m.group(1) for m in pairs if m}


def test_a_changed_bundle_leaves_the_custom_actions_as_they_were(
    data: dict[str, Any], tmp_path: Path
) -> None:
    """A Workbench setting changes the bundle (and its SHA256SUMS), not the Args: the
    cluster stays updatable (pcluster 3.16.1: head and login CustomActions UNSUPPORTED)."""
    first = stage.prepare(context(data, tmp_path / "a", "http://127.0.0.1:1"))
    data["cluster"]["workbench"]["admin_group"] = "other-admins"
    second = stage.prepare(context(data, tmp_path / "b", "http://127.0.0.1:1"))
    sums = [
        next(o.body for o in p.objects if o.key == f"cluster/{SUMS_NAME}") for p in (first, second)
    ]
    assert sums[0] != sums[1]
    assert actions(first.rendered.config) == actions(second.rendered.config)
    assert len(actions(first.rendered.config)) >= 3


def test_sums_cover_every_uploaded_object_with_its_digest(
    data: dict[str, Any], tmp_path: Path
) -> None:
    prepared = stage.prepare(context(data, tmp_path, "http://127.0.0.1:1"))
    (sums,) = [o for o in prepared.objects if o.key.endswith(f"/{SUMS_NAME}")]
    listed = sums_of(sums.body)
    others = {o.key.removeprefix("cluster/"): o.body for o in prepared.objects if o is not sums}
    assert set(listed) == set(others)
    assert {"node.env", "lib/common.sh", "node-start.sh", "ha/controller-ha.sh"} <= set(listed)
    for rel, body in others.items():
        assert listed[rel] == hashlib.sha256(body).hexdigest(), rel


def test_sums_refuse_a_name_the_node_check_could_not_compare() -> None:
    for key in ("cluster/a\nb", "cluster/a\\b", "other/x"):
        with pytest.raises(ToolkitError):
            sums_text("cluster", [BundleObject(key, b"")])


def _function(text: str, name: str) -> str:
    match = re.search(rf"^(#[^\n]*\n)*{name}\(\) \{{\n.*?^\}}\n", text, re.MULTILINE | re.DOTALL)
    assert match, name
    return match.group(0)


def test_every_entry_script_checks_the_bundle_the_same_way_before_sourcing_it() -> None:
    texts = {name: (ROOT / "cluster" / name).read_text() for name in ENTRY_SCRIPTS}
    copies = {name: _function(text, "fetch_bundle") for name, text in texts.items()}
    assert len(set(copies.values())) == 1, "fetch_bundle differs between the entry scripts"
    for name, text in texts.items():
        bootstrap = _function(text, "bootstrap")
        body = [
            line.strip()
            for line in bootstrap.split("bootstrap() {\n", 1)[1].splitlines()
            if not line.lstrip().startswith("#")
        ]
        # The check comes first: nothing of the copy is sourced or read before it.
        assert body[0] == "fetch_bundle", (name, body)
        before = text.split("bootstrap() {", 1)[0]
        assert not re.search(r"^\s*(source|\.) ", before, re.MULTILINE), name
