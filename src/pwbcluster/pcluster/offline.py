"""Validate rendered configs and synthesise CloudFormation with pcluster's own code, offline.

The work happens in ``worker.py`` inside the pcluster venv (subprocess, JSON in and
out), under moto: in-process ``mock_aws`` by default, or a moto server given by
``endpoint_url`` (the sandbox, with ids it created). Several jobs share one process so
moto and CDK start once; that process is the warm worker (``warm``), started on first
use and kept for the next plan, or a fresh one where the warm worker is off or fails.

    results = run_jobs([cluster_job(cfg, "example", out_dir=...), image_job(img, "pwb-1")],
                       region="eu-west-1")

``validate_cluster``/``synthesise_cluster``/``validate_image``/``synthesise_image``
are one-job shorthands. Validators are suppressed by name only, from
``SUPPRESSED_VALIDATORS`` (each with its reason), never ALL.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pwbcluster.contracts import STAND_IN_ACCOUNT
from pwbcluster.errors import PclusterError
from pwbcluster.pcluster import warm
from pwbcluster.pcluster.patch import find_patches, targets
from pwbcluster.pcluster.venv import ensure_venv, pcluster_python, site_packages

log = logging.getLogger(__name__)

# The worker runs inside the pcluster venv, not in ours: its folder is not a Python package
# (the hyphen keeps it from ever being imported here).
WORKER_DIR = Path(__file__).with_name("in-venv")
WORKER = WORKER_DIR / "worker.py"
WORKER_TIMEOUT_SECONDS = 600
# Beside synthesised templates: the stand-in id written in them -> the id it stands for.
PLACEHOLDERS_FILE = "placeholders.json"
DEFAULT_ACCOUNT = STAND_IN_ACCOUNT
# A planned cluster template is stamped with this instant where pcluster stamps the time
# it synthesises (the log group's suffix, the head node's wait condition ids): a re-plan of
# the same config is then the same bytes, and its lint can be reused. Same width as a real
# stamp, so name lengths are checked as AWS would see them; `pcluster create-cluster`
# stamps the time it runs.
PLAN_CLOCK = "2000-01-01T00:00:00+00:00"
PLAN_CLOCK_NOTE = (
    "pcluster: the planned cluster templates carry 2000-01-01 00:00 UTC where pcluster stamps "
    "the time (log group suffix 200001010000, wait condition ids); create-cluster stamps "
    "the time it runs"
)

# The only validators switched off offline, each because moto cannot serve what it
# asks (the real `pcluster create-cluster` runs them all against AWS).
SUPPRESSED_VALIDATORS: dict[str, str] = {
    "HeadNodeLaunchTemplateValidator": (
        "dry-runs RunInstances with the head node's launch template; moto rejects its "
        "block device mappings ('The request must contain the parameter ebs')"
    ),
    "ComputeResourceLaunchTemplateValidator": (
        "dry-runs RunInstances per compute resource; same moto gap as the head node's"
    ),
    "LoginNodesLaunchTemplateValidator": (
        "dry-runs RunInstances per login pool; same moto gap as the head node's"
    ),
    "KeyPairValidator": "moto's DescribeKeyPairs answer has no KeyType, which pcluster reads",
}

# Switched off only in the sandbox: none. Its stand-in AMIs are imaged from moto's Linux
# AMIs, so they carry an architecture and build-image's description, and pcluster's
# instance-type/AMI validators run there as they do on AWS.
SANDBOX_SUPPRESSED_VALIDATORS: dict[str, str] = {}


@dataclass(frozen=True)
class Failure:
    """One finding of pcluster's schema or validators; ``path`` is in the rendered config."""

    level: str
    validator: str
    message: str
    path: tuple[str | int, ...] | None

    @property
    def is_error(self) -> bool:
        return self.level == "ERROR"


@dataclass
class Job:
    """One config for the worker: ``kind`` is "cluster" or "image"."""

    kind: str
    config: dict[str, Any]
    name: str
    out_dir: Path | None = None
    validate: bool = True
    standins: bool = True
    public_subnets: Sequence[str] = ()
    suppress: Sequence[str] = tuple(SUPPRESSED_VALIDATORS)
    instance_types: dict[str, Any] = field(default_factory=dict)
    # What pcluster's clock reads while it synthesises (see PLAN_CLOCK); None: the real one.
    clock: str | None = None

    def request(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "config": self.config,
            "name": self.name,
            "out_dir": str(self.out_dir) if self.out_dir else None,
            "synthesise": self.out_dir is not None,
            "validate": self.validate,
            "standins": self.standins,
            "public_subnets": list(self.public_subnets),
            "suppress": list(self.suppress),
            "instance_types": self.instance_types,
            "clock": self.clock,
        }


@dataclass
class JobResult:
    job: Job
    failures: list[Failure]
    files: list[Path]
    timings: dict[str, float]
    mapping: dict[str, str]
    placeholders: dict[str, str] = field(default_factory=dict)

    @property
    def errors(self) -> list[Failure]:
        return [f for f in self.failures if f.is_error]

    @property
    def warnings(self) -> list[Failure]:
        return [f for f in self.failures if f.level == "WARNING"]


def cluster_job(config: dict[str, Any], name: str, **kwargs: Any) -> Job:
    return Job("cluster", config, name, **kwargs)


def image_job(config: dict[str, Any], name: str, **kwargs: Any) -> Job:
    return Job("image", config, name, **kwargs)


def account_of(configs: Iterable[dict[str, Any]]) -> str:
    """The account id in the configs' ARNs (placeholders use one), for moto's account."""
    for config in configs:
        match = re.search(r"arn:aws[\w-]*:[\w-]+:[\w-]*:(\d{12}):", json.dumps(config))
        if match:
            return match.group(1)
    return DEFAULT_ACCOUNT


def run_jobs(
    jobs: Sequence[Job],
    region: str,
    endpoint_url: str | None = None,
    account_id: str | None = None,
    python_path: Sequence[Path] = (),
) -> list[JobResult]:
    """Run the jobs in one worker process; PclusterError if pcluster itself breaks.

    Validation findings are returned, not raised: callers decide (see ``raise_for``).
    ``python_path`` goes in front of the venv's packages (tests use it to run an
    unpatched copy of pcluster beside the patched venv).
    """
    synthesis = any(job.out_dir for job in jobs)
    ensure_venv(require_node=synthesis)
    request = {
        "region": region,
        "account_id": account_id or account_of(job.config for job in jobs),
        "endpoint_url": endpoint_url,
        "jobs": [job.request() for job in jobs],
    }
    with tempfile.TemporaryDirectory(prefix="pwbcluster-pcluster-") as tmp:
        request_file, response_file = Path(tmp, "request.json"), Path(tmp, "response.json")
        request_file.write_text(json.dumps(request))
        env = worker_env()
        if python_path:
            env["PYTHONPATH"] = os.pathsep.join(str(p) for p in python_path)
        # A warm worker serves the patched venv only: a run with other code in front of
        # it (python_path) gets a process of its own.
        if python_path or not (warm.enabled(env) and _run_warm(Path(tmp), env)):
            _run_fresh(Path(tmp), env)
        response = json.loads(response_file.read_text())
    results = []
    for job, raw in zip(jobs, response["results"], strict=True):
        if raw.get("error"):
            log.debug("worker traceback:\n%s", raw.get("traceback", ""))
            raise PclusterError(
                f"ParallelCluster could not process the {job.kind} config '{job.name}': "
                f"{raw['error']}"
            )
        failures = [
            Failure(
                f["level"],
                f["validator"],
                f["message"],
                tuple(f["path"]) if f.get("path") is not None else None,
            )
            for f in raw["failures"]
        ]
        results.append(
            JobResult(
                job=job,
                failures=failures,
                files=[Path(p) for p in raw.get("files", [])],
                timings=raw.get("timings", {}),
                mapping=raw.get("mapping", {}),
                placeholders=raw.get("placeholders", {}),
            )
        )
    return results


def worker_env() -> dict[str, str]:
    # pcluster builds some lists from sets (managed policy ARNs...): a fixed hash seed
    # keeps the synthesised templates the same from one run to the next.
    return {**os.environ, "PYTHONHASHSEED": "0"}


def _warm_key(env: dict[str, str]) -> str:
    site_dir = site_packages()
    patched = [t for p in find_patches() for t in targets(site_dir, p)]
    return warm.worker_key(pcluster_python(), sorted(WORKER_DIR.glob("*.py")), patched, env)


def prewarm() -> None:
    """Start the warm worker now, if it is on and not running, so that its imports overlap
    whatever the caller does before its first request (the plan's render step)."""
    env = worker_env()
    if not warm.enabled(env):
        return
    try:
        warm.start([str(pcluster_python()), str(WORKER)], env, _warm_key(env))
    except warm.Unavailable as exc:
        log.debug("pcluster: no warm worker ahead of need: %s", exc)


def _run_warm(tmp: Path, env: dict[str, str]) -> bool:
    """The request in ``tmp`` answered by the warm worker; False when it could not be."""
    key = _warm_key(env)
    try:
        warm.run(
            [str(pcluster_python()), str(WORKER)],
            tmp / "request.json",
            tmp / "response.json",
            tmp,
            env,
            key,
            WORKER_TIMEOUT_SECONDS,
        )
    except warm.Unavailable as exc:
        log.warning("pcluster: the warm worker could not answer (%s); starting a fresh one", exc)
        return False
    return True


def _run_fresh(tmp: Path, env: dict[str, str]) -> None:
    argv = [str(pcluster_python()), str(WORKER), "request.json", "response.json"]
    try:
        run = subprocess.run(
            argv, capture_output=True, text=True, timeout=WORKER_TIMEOUT_SECONDS, cwd=tmp, env=env
        )
    except subprocess.TimeoutExpired as exc:
        raise PclusterError(
            f"pcluster offline run did not finish in {WORKER_TIMEOUT_SECONDS} s"
        ) from exc
    if run.returncode != 0 or not (tmp / "response.json").is_file():
        raise PclusterError(
            f"the pcluster worker failed (exit {run.returncode}):\n{run.stderr[-3000:]}"
        )


def validate_cluster(config: dict[str, Any], name: str, region: str, **kwargs: Any) -> JobResult:
    """Schema and validators of pcluster on a cluster config (no synthesis)."""
    endpoint = kwargs.pop("endpoint_url", None)
    return run_jobs([cluster_job(config, name, **kwargs)], region, endpoint)[0]


def synthesise_cluster(
    config: dict[str, Any], name: str, region: str, out_dir: Path, **kwargs: Any
) -> JobResult:
    """Validate, then write the cluster template and its nested stacks into ``out_dir``."""
    endpoint = kwargs.pop("endpoint_url", None)
    return run_jobs([cluster_job(config, name, out_dir=out_dir, **kwargs)], region, endpoint)[0]


def validate_image(config: dict[str, Any], name: str, region: str, **kwargs: Any) -> JobResult:
    """Schema and validators of pcluster on a build-image config (no synthesis)."""
    endpoint = kwargs.pop("endpoint_url", None)
    return run_jobs([image_job(config, name, **kwargs)], region, endpoint)[0]


def synthesise_image(
    config: dict[str, Any], name: str, region: str, out_dir: Path, **kwargs: Any
) -> JobResult:
    """Validate, then write the build-image template into ``out_dir``."""
    endpoint = kwargs.pop("endpoint_url", None)
    return run_jobs([image_job(config, name, out_dir=out_dir, **kwargs)], region, endpoint)[0]


def format_rendered_path(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def raise_for(results: Sequence[JobResult], describe: Any = None) -> None:
    """PclusterError listing every error; ``describe(result, failure)`` words each line."""
    lines = []
    for result in results:
        for failure in result.errors:
            if describe is not None:
                lines.append(describe(result, failure))
            else:
                where = format_rendered_path(failure.path or ())
                lines.append(f"{result.job.kind} {where}: {failure.message} [{failure.validator}]")
    if lines:
        raise PclusterError(
            f"ParallelCluster rejected the rendered configuration ({len(lines)} error(s)):\n"
            + "\n".join(lines)
        )


def suppression_lines(sandbox: bool = False) -> list[str]:
    """Each ParallelCluster validator switched off here, with its reason (for the output)."""
    table = {**SUPPRESSED_VALIDATORS, **(SANDBOX_SUPPRESSED_VALIDATORS if sandbox else {})}
    return [f"suppressed: pcluster {name}: {why}" for name, why in sorted(table.items())]
