"""Session fixtures: the pcluster venv (created on a fresh machine), rendered variants and
their synthesised templates, built once per session in one worker process (CDK synthesis
costs 4-13 s per template)."""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pwbcluster.config import Config, load_config
from pwbcluster.pcluster import offline, patch
from pwbcluster.pcluster.venv import PCLUSTER_PACKAGE, ensure_venv
from pwbcluster.pipeline.plan import PlanContext, make_plan, planned_context, render_step
from pwbcluster.pipeline.plan_pcluster import pcluster_step
from pwbcluster.stages.cluster.render import (
    LB_CERTIFICATE_TAG,
    LB_HEALTH_PATH_TAG,
    LB_PORTS_TAG,
    LB_SSH_TAG,
    render_cluster_config,
)

ROOT = Path(__file__).resolve().parents[2]
CERTIFICATE = "arn:aws:acm:eu-west-1:000000000000:certificate/11111111-2222-3333-4444-555555555555"
STAGE_FILES = ("pulumi/auxiliary.yaml", "image/image.yaml", "cluster/cluster.yaml")


@pytest.fixture(scope="session")
def pcluster_site() -> Path:
    """The patched pcluster venv's site-packages (created here on a fresh machine)."""
    ensure_venv()
    return patch.ensure_patched()


@pytest.fixture(scope="session")
def project_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the stage files, so test deployments write their own build/."""
    root = tmp_path_factory.mktemp("project")
    for rel in (*STAGE_FILES, "config/example.yaml"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, root / rel)
    shutil.copytree(ROOT / "config" / "schema", root / "config" / "schema")
    ignore = shutil.ignore_patterns("__pycache__")
    for folder in ("image", "cluster"):  # the files the stages ship (their manifests too)
        shutil.copytree(ROOT / folder, root / folder, dirs_exist_ok=True, ignore=ignore)
    return root


@pytest.fixture(scope="session")
def example(project_root: Path) -> Config:
    return load_config(project_root / "config" / "example.yaml", root=project_root)


def render(config: Config, **workbench: Any) -> dict[str, Any]:
    data = copy.deepcopy(config.data)
    data["cluster"]["workbench"].update(workbench)
    ctx = planned_context(config)
    rendered = render_cluster_config(
        data,
        ctx.network,
        ctx.services,
        ctx.image,
        ctx.scripts_prefix,
        config.tags(),
    )
    return rendered.config


def with_tags(config: dict[str, Any], tags: dict[str, str]) -> dict[str, Any]:
    out = copy.deepcopy(config)
    out["Tags"] = [*out["Tags"], *({"Key": k, "Value": v} for k, v in tags.items())]
    return out


def without_tags(config: dict[str, Any], *keys: str) -> dict[str, Any]:
    out = copy.deepcopy(config)
    out["Tags"] = [t for t in out["Tags"] if t["Key"] not in keys]
    return out


@dataclass
class Synthesised:
    """Templates of one variant: the root template and its nested stacks by name."""

    root: dict[str, Any]
    nested: dict[str, dict[str, Any]]
    files: list[Path]

    @property
    def login(self) -> dict[str, Any]:
        return self.nested["LoginNodes"]

    def resources(self, template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def load(files: list[Path], name: str) -> Synthesised:
    root: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for file in files:
        body = json.loads(file.read_text())
        if file.name == f"{name}.json":
            root = body
        else:
            nested[file.stem.removeprefix(f"{name}-")] = body
    return Synthesised(root, nested, files)


@pytest.fixture(scope="session")
def planned(pcluster_site: Path, example: Config) -> PlanContext:
    """`invoke plan`'s render and pcluster steps on the example, as a user runs them."""
    return make_plan(example, steps=[("render", render_step), ("pcluster", pcluster_step)])


@pytest.fixture(scope="session")
def synthesised(
    planned: PlanContext, example: Config, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Synthesised]:
    """The example as planned (443 -> 8787 over TLS, generated certificate), with the
    deployment's own certificate, in plain HTTP (8787, opted out), without the ports tag."""
    out = tmp_path_factory.mktemp("cfn")
    public = list(planned.network.public_subnet_ids)
    configs = {
        "tls": render(example, tls_certificate_arn=CERTIFICATE, hostname="wb.example.com"),
        "plain": render(example, tls=False),
        "nossh": with_tags(render(example), {LB_SSH_TAG: "off"}),
        "noports": without_tags(
            render(example), LB_PORTS_TAG, LB_CERTIFICATE_TAG, LB_HEALTH_PATH_TAG
        ),
    }
    jobs = [
        offline.cluster_job(cfg, "pwbtest", out_dir=out / variant, public_subnets=public)
        for variant, cfg in configs.items()
    ]
    results = offline.run_jobs(jobs, example.region)
    offline.raise_for(results)
    found = {v: load(r.files, "pwbtest") for v, r in zip(configs, results, strict=True)}
    templates = sorted((planned.build_dir / "cloudformation").glob(f"{example.name}*.json"))
    found["example"] = load(templates, example.name)
    return found


@pytest.fixture(scope="session")
def unpatched_pcluster(pcluster_site: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the pcluster package with the patches reverted (patch.revert on a copy)."""
    overlay = tmp_path_factory.mktemp("unpatched")
    shutil.copytree(pcluster_site / "pcluster", overlay / "pcluster")
    for dist in pcluster_site.glob(f"{PCLUSTER_PACKAGE.replace('-', '_')}-*.dist-info"):
        shutil.copytree(dist, overlay / dist.name)
    patch.revert(site_dir=overlay)
    return overlay


@pytest.fixture(scope="session")
def synthesised_unpatched(
    unpatched_pcluster: Path, example: Config, tmp_path_factory: pytest.TempPathFactory
) -> Synthesised:
    out = tmp_path_factory.mktemp("cfn-unpatched")
    public = list(planned_context(example).network.public_subnet_ids)
    config = without_tags(render(example), LB_PORTS_TAG, LB_CERTIFICATE_TAG, LB_HEALTH_PATH_TAG)
    job = offline.cluster_job(config, "pwbtest", out_dir=out, public_subnets=public)
    (result,) = offline.run_jobs([job], example.region, python_path=[unpatched_pcluster])
    offline.raise_for([result])
    return load(result.files, "pwbtest")


def site_copy(pcluster_site: Path, dest: Path) -> Path:
    """The files the patches touch plus the dist-info, copied from the venv (patched)."""
    for patch_file in patch.find_patches():
        for line in patch_file.path.read_text().splitlines():
            if line.startswith("+++ b/"):
                rel = line.removeprefix("+++ b/").strip()
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(pcluster_site / rel, dest / rel)
    for dist in pcluster_site.glob(f"{PCLUSTER_PACKAGE.replace('-', '_')}-*.dist-info"):
        shutil.copytree(dist, dest / dist.name)
    return dest


@pytest.fixture
def patched_copy(pcluster_site: Path, tmp_path: Path) -> Path:
    return site_copy(pcluster_site, tmp_path / "site")
