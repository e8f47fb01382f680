"""The plan's step fingerprints: each step is redone exactly when its own inputs changed,
and a plan that kept results writes and says the same as one that redid everything."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from pwbcluster import netpaths
from pwbcluster.config import Config, load_config
from pwbcluster.pipeline import plan as plan_module
from pwbcluster.pipeline.plan import STEPS, PlanContext, make_plan, planned_topology
from pwbcluster.pipeline.plan_cache import CACHE_DIR, ENV_NO_CACHE, StepCache, digest

VOLATILE = ("pcluster worker steps:", "inputs unchanged since the last plan")


def deployment(root: Path, name: str, edits: dict[str, Any]) -> Config:
    """The example under another name, with ``edits`` ("section.key.key": value) applied."""
    data = YAML(typ="safe").load((root / "config" / "example.yaml").read_text())
    data["deployment"]["name"] = name
    for dotted, value in edits.items():
        *parents, last = dotted.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = copy.deepcopy(value)
    path = root / "config" / f"{name}.yaml"
    with path.open("w") as handle:
        YAML().dump(data, handle)
    return load_config(path, root=root)


def queues(root: Path, max_count: int, **first: Any) -> list[dict[str, Any]]:
    listed = YAML(typ="safe").load((root / "cluster" / "cluster.yaml").read_text())["queues"]
    listed[0].update(max_count=max_count, **first)
    return list(listed)


# -- the cache itself ------------------------------------------------------------------


def test_an_entry_is_kept_only_for_its_key_and_unchanged_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = StepCache(tmp_path)
    out = tmp_path / "out.json"
    out.write_text("one")
    cache.put("step", "k1", {"v": 1}, files=[out])
    assert cache.get("step", "k1") == {"v": 1}
    assert cache.get("step", "k2") is None
    out.write_text("two")  # an output changed since: redone
    assert cache.get("step", "k1") is None
    out.write_text("one")
    assert cache.get("step", "k1") == {"v": 1}
    assert cache.get("step", "k1", files=[str(tmp_path / "other")]) is None
    monkeypatch.setenv(ENV_NO_CACHE, "1")
    assert cache.get("step", "k1") is None
    monkeypatch.delenv(ENV_NO_CACHE)
    out.unlink()
    assert cache.get("step", "k1") is None
    (tmp_path / CACHE_DIR / "step.json").write_text("{not json")
    assert cache.get("step", "k1") is None


def test_the_digest_sees_every_part() -> None:
    base = digest("a", {"x": [1, 2]}, netpaths.Rule("tcp", 1, 2))
    assert base == digest("a", {"x": [1, 2]}, netpaths.Rule("tcp", 1, 2))
    assert base != digest("a", {"x": [1, 3]}, netpaths.Rule("tcp", 1, 2))
    assert base != digest("a", {"x": [1, 2]}, netpaths.Rule("tcp", 1, 3))
    assert base != digest("b", {"x": [1, 2]}, netpaths.Rule("tcp", 1, 2))


# -- the Pulumi programs under mocks (no pcluster) ----------------------------------------


def test_the_topology_is_redone_only_when_the_programs_arguments_change(
    project_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[str] = []
    declared = plan_module._declared_topology

    def counted(config: Config, *args: Any) -> Any:
        runs.append(config.name)
        return declared(config, *args)

    monkeypatch.setattr(plan_module, "_declared_topology", counted)
    name = "topocache"
    shutil.rmtree(project_root / "build" / name, ignore_errors=True)
    first = planned_topology(deployment(project_root, name, {}))
    assert first is not None and len(runs) == 1
    again = planned_topology(deployment(project_root, name, {}))
    assert again == first and len(runs) == 1
    assert netpaths.topology_from_json(netpaths.topology_to_json(first)) == first

    # Not read by either program: kept.
    kept: list[dict[str, Any]] = [
        {"cluster.queues": queues(project_root, 12)},
        {
            "cluster.workbench.license_kind": "server",
            "cluster.workbench.license_server": "lic.example.com:8989",
        },
        {"image.root_volume_gb": 120},
    ]
    for edit in kept:
        assert planned_topology(deployment(project_root, name, edit)) == first, edit
    assert len(runs) == 1

    # Read by the network program, by the services program, by both (tags): redone, and
    # the same as a run without the cache.
    redone = {
        "aux.network.cidr": "10.1.0.0/16",
        "cluster.workbench.port": 8788,
        "deployment.tags": {"Project": "other"},
    }
    for count, (key, value) in enumerate(redone.items(), start=2):
        config = deployment(project_root, name, {key: value})
        got = planned_topology(config)
        assert len(runs) == count, key
        monkeypatch.setenv(ENV_NO_CACHE, "1")
        assert planned_topology(config) == got, key
        monkeypatch.delenv(ENV_NO_CACHE)
        runs.pop()


# -- the whole plan, pcluster included ------------------------------------------------------


def outputs(ctx: PlanContext) -> tuple[dict[str, bytes], list[str], list[str]]:
    """Every file the plan wrote (but its cache), the files it lists, its notes."""
    build = ctx.build_dir
    written = {
        str(p.relative_to(build)): p.read_bytes()
        for p in sorted(build.rglob("*"))
        if p.is_file() and CACHE_DIR not in p.relative_to(build).parts
    }
    listed = [str(f.relative_to(ctx.config.root)) for f in ctx.files]
    notes = [n for n in ctx.notes if not n.startswith(VOLATILE)]
    return written, listed, notes


def differences(
    one: tuple[dict[str, bytes], list[str], list[str]],
    other: tuple[dict[str, bytes], list[str], list[str]],
) -> list[str]:
    """What differs between two plans' outputs, by file name (and the lists, the notes)."""
    files = sorted(set(one[0]) | set(other[0]))
    out = [f for f in files if one[0].get(f) != other[0].get(f)]
    out += ["(files listed)"] if one[1] != other[1] else []
    out += [f"note: {n}" for n in set(one[2]) ^ set(other[2])]
    return out + (["(notes order)"] if one[2] != other[2] and not out else [])


def fresh(config: Config, monkeypatch: pytest.MonkeyPatch) -> PlanContext:
    shutil.rmtree(config.build_dir, ignore_errors=True)
    monkeypatch.setenv(ENV_NO_CACHE, "1")
    try:
        return make_plan(config, STEPS)
    finally:
        monkeypatch.delenv(ENV_NO_CACHE)


def test_each_edit_redoes_its_own_steps_and_plans_as_a_fresh_plan_would(
    pcluster_site: Path, project_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PWBCLUSTER_PRICES_OFFLINE", "1")
    monkeypatch.setenv("PWBCLUSTER_PRICE_CACHE", str(project_root / "no-prices"))
    name = "replan"
    every = {"topology", "pcluster cluster", "pcluster image", "cfn-lint cluster",
             "cfn-lint image", "diagram"}  # fmt: skip
    edits: dict[str, Any] = {}
    base = fresh(deployment(project_root, name, edits), monkeypatch)
    unchanged = make_plan(deployment(project_root, name, edits), STEPS)
    assert set(unchanged.extra["reused"]) == every
    assert differences(outputs(unchanged), outputs(base)) == []

    steps = [
        # Workbench files only: nothing of CloudFormation, the programs or the diagram.
        (
            {
                "cluster.workbench.license_kind": "server",
                "cluster.workbench.license_server": "lic.example.com:8989",
            },
            every,
        ),
        # A queue's size: the cluster's synthesis and the diagram's label. pcluster puts the
        # size in the cluster config it uploads, not in a template: every template is the
        # same bytes (pcluster's clock is pinned in a plan), so no lint is redone.
        (
            {"cluster.queues": queues(project_root, 13)},
            {"topology", "pcluster image", "cfn-lint image", "cfn-lint cluster"},
        ),
        # A queue's instance type: the compute fleet's template and the root that names it
        # by its hash, linted again; the login nodes' template is the same, its lint kept.
        (
            {"cluster.queues": queues(project_root, 13, instance_type="t3.2xlarge")},
            {"topology", "pcluster image", "cfn-lint image", f"cfn-lint {name}-LoginNodes.json"},
        ),
        # The image: its build-image template and lint only.
        (
            {"image.root_volume_gb": 120},
            {"topology", "pcluster cluster", "cfn-lint cluster", "diagram"},
        ),
    ]
    for edit, kept in steps:
        edits.update(edit)
        config = deployment(project_root, name, edits)
        again = make_plan(config, STEPS)
        assert set(again.extra.get("reused", [])) == kept, edit
        if kept != every:
            assert any(n.startswith("pcluster worker steps:") for n in again.notes)
        incremental = outputs(again)
        reference = fresh(config, monkeypatch)
        assert not reference.extra.get("reused")
        assert differences(incremental, outputs(reference)) == [], edit
