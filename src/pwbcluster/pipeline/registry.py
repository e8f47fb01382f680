"""The deployment's stages and what each needs: network -> (services || image) -> cluster -> users.

Each stage's ``run`` lives in its own module (``pwbcluster.stages.<name>``) and picks the
adapter for the mode (real AWS or the sandbox); the code above the adapter is shared.
"""

from __future__ import annotations

import importlib
from typing import Any

from pwbcluster.pipeline.runner import StageContext, StageSpec

# (name, needs, typical minutes on AWS, what it creates)
STAGES: tuple[tuple[str, tuple[str, ...], float, str], ...] = (
    ("network", (), 4.0, "VPC, subnets, NAT gateway, scripts bucket, image-build policy"),
    (
        "services",
        ("network",),
        25.0,
        "directory + TLS front, PostgreSQL, secrets, node IAM policies, key pair, jump host",
    ),
    ("image", ("network",), 60.0, "custom AMI via pcluster build-image (skipped if unchanged)"),
    (
        "cluster",
        ("network", "services", "image"),
        30.0,
        "ParallelCluster: head node, login pool + load balancer, queues, shared storage",
    ),
    ("users", ("services", "cluster"), 2.0, "directory users, verified"),
)


def _module(name: str) -> Any:
    return importlib.import_module(f"pwbcluster.stages.{name}.stage")


def _runner_for(name: str, attr: str) -> Any:
    def call(*args: Any) -> Any:
        return getattr(_module(name), attr)(*args)

    return call


def stage_specs() -> list[StageSpec]:
    specs = []
    for name, needs, minutes, what in STAGES:
        specs.append(
            StageSpec(
                name=name,
                needs=needs,
                run=_runner_for(name, "run"),
                inputs=_runner_for(name, "inputs"),
                destroy=_runner_for(name, "destroy"),
                minutes=minutes,
                description=what,
            )
        )
    return specs


def section_inputs(ctx: StageContext, *sections: str) -> dict[str, Any]:
    """The parts of the merged config a stage depends on, plus the deployment identity."""
    data = ctx.config.data
    out: dict[str, Any] = {"deployment": {k: data["deployment"][k] for k in ("name", "region")}}
    out["tags"] = ctx.config.tags()
    for dotted in sections:
        node: Any = data
        for part in dotted.split("."):
            node = node[part]
        out[dotted] = node
    return out
