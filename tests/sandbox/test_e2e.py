"""The whole sandbox rehearsal, as a user runs it: up, canary, down; faults, then resume.

Runs the real stages against a local moto server (HTTPS on 127.0.0.1) through the
`invoke` command line. Slow (a minute or two per full run on 2 cores): one clean run is
the reference; one chain of runs injects a fault at each stage boundary and resumes; the
resources in the sandbox must then be exactly those of the clean run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from pwbcluster.pipeline.runner import FAULT_ENV
from pwbcluster.sandbox import server as sandbox
from pwbcluster.sandbox.canary import audit
from pwbcluster.sandbox.inventory import inventory

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
pytestmark = [pytest.mark.slow, pytest.mark.pcluster]


def invoke(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "200", "AWS_EC2_METADATA_DISABLED": "true"}
    full_env.pop(FAULT_ENV, None)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "invoke", "--search-root", str(ROOT), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=1200,
        check=False,
    )


def deployment_file(tmp_path: Path, name: str, region: str = REGION) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"deployment:\n  name: {name}\n  region: {region}\n  owner_email: e2e@example.com\n"
        "  tags: {Purpose: e2e-test}\n"
    )
    return path


def counts(build: Path) -> dict[str, int]:
    """Resources in the sandbox. Old versions of S3 objects are history, not resources:
    an upload repeated with the same key (e.g. a retried PUT) adds one; `down` must still
    remove them, and test_down_leaves_nothing checks that it does."""
    server = sandbox.running(build)
    assert server is not None, "the sandbox server should still be running after up"
    with sandbox.aws_environment(server, REGION):
        found = inventory(boto3.Session(region_name=REGION))
    found.pop("object version", None)
    return found


@pytest.fixture
def deployment(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Path, Path]]:
    name = f"e2e-{request.node.name[5:14].replace('_', '-').strip('-')}-{os.getpid() % 1000}"
    config = deployment_file(tmp_path, name)
    build = ROOT / "build" / name
    shutil.rmtree(build, ignore_errors=True)
    try:
        yield config, build
    finally:
        invoke("down", "--sandbox", "--config", str(config))
        sandbox.stop(build)
        shutil.rmtree(build, ignore_errors=True)


def up(
    config: Path, fault: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    extra = {**(env or {}), **({FAULT_ENV: fault} if fault else {})}
    return invoke("up", "--sandbox", "--config", str(config), env=extra or None)


RECORDER = Path(__file__).resolve().parent / "record_calls"


def recording(calls: Path) -> dict[str, str]:
    """The environment that makes an `invoke` subprocess list its AWS calls in ``calls``."""
    path = os.pathsep.join(p for p in (str(RECORDER), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "PWBCLUSTER_TEST_CALLS": str(calls)}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """One clean run: its output, the resources it made, the canary's report, then down."""
    tmp = tmp_path_factory.mktemp("reference")
    config = deployment_file(tmp, f"e2e-ref-{os.getpid() % 1000}")
    build = ROOT / "build" / config.stem
    shutil.rmtree(build, ignore_errors=True)
    calls = tmp / "aws-calls.txt"
    try:
        result = up(config, env=recording(calls))
        assert result.returncode == 0, result.stdout + result.stderr
        made = counts(build)
        server = sandbox.running(build)
        assert server is not None
        with sandbox.aws_environment(server, REGION):
            report = audit(boto3.Session(region_name=REGION), build)
        down = invoke("down", "--sandbox", "--config", str(config), env=recording(calls))
        yield {
            "up": result,
            "counts": made,
            "audit": report,
            "down": down,
            "build": build,
            "config": config,
            "calls": calls,
        }
    finally:
        sandbox.stop(build)
        shutil.rmtree(build, ignore_errors=True)


def test_up_runs_every_stage_and_prints_the_summary(reference: dict[str, object]) -> None:
    result = reference["up"]
    assert isinstance(result, subprocess.CompletedProcess)
    out = result.stdout
    for stage in ("network", "services", "image", "cluster", "users"):
        assert f"{stage}: done" in out or f"{stage}: skipped" in out, out
    assert "Sandbox rehearsal" in out and "Workbench URL (simulated):" in out
    assert "Critical path" in out and "In the sandbox now:" in out
    made = reference["counts"]
    assert isinstance(made, dict)
    for kind in ("vpc", "subnet", "bucket", "secret", "database", "directory", "image"):
        assert made.get(kind, 0) >= 1, f"no {kind} in the sandbox: {made}"
    # The reachability proof, against the sandbox's EC2 and pcluster's synthesis.
    assert "Reachability (role, AWS API, hop):" in out and "Flows (role, service" in out
    assert "jump host" in out and "image builder" in out and "session callbacks" in out
    assert "NO PATH" not in out


def test_up_and_down_in_us_east_1(tmp_path: Path) -> None:
    """us-east-1: the one region where S3 refuses a LocationConstraint."""
    config = deployment_file(tmp_path, f"e2e-use1-{os.getpid() % 1000}", "us-east-1")
    build = ROOT / "build" / config.stem
    shutil.rmtree(build, ignore_errors=True)
    try:
        result = up(config)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Flows (role, service" in result.stdout and "NO PATH" not in result.stdout
        down = invoke("down", "--sandbox", "--config", str(config))
        assert down.returncode == 0, down.stdout + down.stderr
        assert "remaining: nothing" in down.stdout
    finally:
        invoke("down", "--sandbox", "--config", str(config))
        sandbox.stop(build)
        shutil.rmtree(build, ignore_errors=True)


# IAM actions whose names differ from the S3 operation that needs them.
S3_ACTION_OF = {
    "s3:HeadBucket": "s3:ListBucket",
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:ListObjects": "s3:ListBucket",
    "s3:HeadObject": "s3:GetObject",
    "s3:ListObjectVersions": "s3:ListBucketVersions",
    "s3:DeleteObjects": "s3:DeleteObject",
    "s3:PutBucketEncryption": "s3:PutEncryptionConfiguration",
    "s3:PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "s3:GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
}


def test_the_deployer_policy_allows_every_call_a_run_makes(reference: dict[str, object]) -> None:
    """Every AWS call `up` and `down` made from the toolkit's own process (its stages and the
    sandbox's stand-in for Pulumi's provider) is allowed by the policy `invoke preflight`
    writes for the same config; ParallelCluster's own process is covered by its policies."""
    from pwbcluster.config import load_config
    from pwbcluster.pipeline import deployer_policy

    calls = reference["calls"]
    assert isinstance(calls, Path) and calls.exists(), "the recorder wrote nothing"
    made = set()
    for line in calls.read_text(encoding="utf-8").splitlines():
        call, where, python = line.split(" ", 2)
        if ".venvs/pcluster-" in python:
            continue  # ParallelCluster's CLI: its documented user policies
        if where == "sandbox-only":
            continue  # the sandbox's inventory and stand-in AMIs: no real run calls them
        made.add(S3_ACTION_OF.get(call, call))
    assert len(made) > 20, sorted(made)  # the recorder saw the run, not a handful of calls
    config = reference["config"]
    assert isinstance(config, Path)
    cfg = load_config(config)
    document = deployer_policy.policy_document(deployer_policy.registered_types(cfg))
    denied = sorted(a for a in made if not deployer_policy.allows(document, a))
    assert not denied, f"the deployer policy does not allow: {denied}"


def test_no_secret_leaks_anywhere(reference: dict[str, object]) -> None:
    report = reference["audit"]
    assert report.secrets >= 4, "the services stage should have stored its secrets"  # type: ignore[attr-defined]
    assert report.places >= 20  # type: ignore[attr-defined]
    assert report.clean, report.findings  # type: ignore[attr-defined]


def test_down_leaves_nothing(reference: dict[str, object]) -> None:
    down = reference["down"]
    assert isinstance(down, subprocess.CompletedProcess)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "remaining: nothing" in down.stdout
    build = reference["build"]
    assert isinstance(build, Path)
    assert not (build / "sandbox.json").exists() and not (build / "state.json").exists()


def test_a_fault_at_each_stage_boundary_then_resume_makes_the_same_resources(
    deployment: tuple[Path, Path], reference: dict[str, object]
) -> None:
    config, build = deployment
    # services runs beside image: its fault is taken in a second chain, below.
    for stage in ("network", "image", "cluster", "users"):
        result = up(config, fault=stage)
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"injected fault in stage '{stage}'" in result.stdout + result.stderr
        assert "Traceback" not in result.stderr
    result = up(config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert counts(build) == reference["counts"]


def test_a_fault_in_services_then_resume(
    deployment: tuple[Path, Path], reference: dict[str, object]
) -> None:
    config, build = deployment
    result = up(config, fault="services")
    assert result.returncode == 1 and "injected fault in stage 'services'" in result.stdout
    result = up(config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "network: skipped" in result.stdout
    assert counts(build) == reference["counts"]


def test_a_bad_config_starts_nothing(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("deployment:\n  name: e2e-bad\n  region: eu-west-1\n  owner_email: x\n")
    result = up(config)
    assert result.returncode == 1 and "owner_email" in result.stderr
    assert not (ROOT / "build" / "e2e-bad").exists()
