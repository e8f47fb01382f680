"""The plan adapter: no AWS account and no server at all (``invoke plan``).

Implements ``pwbcluster.contracts.account.Account`` for the plan: the stages render and
check exactly what a real run would use, against planned upstream values (placeholders
containing ``planned``/``PLANNED``). Checks are recorded as jobs and run together by the
plan afterwards (ParallelCluster's own schema, validators and template synthesis, in one
worker process). Anything that would create something is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pwbcluster.contracts.account import ClusterDeploy, ImageBuild, Notes, StackRequest
from pwbcluster.errors import StageError
from pwbcluster.netpaths import Topology

PLANNED_PARENT_IMAGE = "ami-planned0000000000"
PLANNED_AMI = "ami-planned0000000001"
REASON = "a plan creates nothing and calls no AWS API"


class PlanAccount:
    simulated = True

    def __init__(
        self, region: str, topology: Callable[[str], Topology | None] | None = None
    ) -> None:
        self.region = region
        # The network program's declared topology (the pipeline builds it; None: unknown).
        self._topology = topology
        self.label = "plan (no AWS account, no server)"
        self.notes = Notes()
        self.image: ImageBuild | None = None
        self.cluster: ClusterDeploy | None = None

    def _refuse(self, what: str) -> StageError:
        return StageError(f"{what}: {REASON}")

    def client(self, service: str) -> Any:
        raise self._refuse(f"a {service} client")

    def cannot(self, capability: str) -> str | None:
        return REASON

    def stack_up(self, request: StackRequest) -> Mapping[str, Any]:
        raise self._refuse(f"creating the {request.part} stack")

    def stack_destroy(self, request: StackRequest) -> None:
        raise self._refuse(f"destroying the {request.part} stack")

    def official_parent_image(self, os_name: str, pcluster_version: str) -> str:
        return PLANNED_PARENT_IMAGE

    def check_image(self, build: ImageBuild) -> None:
        self.image = build

    def build_image(self, build: ImageBuild) -> str:
        return PLANNED_AMI

    def delete_image(self, image_id: str, ami_id: str, built_by_pcluster: bool) -> None:
        raise self._refuse("deleting an image")

    def delete_pending_image(self, image_id: str) -> None:
        raise self._refuse("deleting an image build")

    def forget_image_standins(self) -> None:
        return None

    def check_cluster(self, deploy: ClusterDeploy) -> Sequence[Path]:
        # The plan's pcluster step synthesises the templates (and proves their flows).
        self.cluster = deploy
        return ()

    def deploy_cluster(self, deploy: ClusterDeploy) -> str:
        return f"{deploy.name}-login-PLANNED.elb.{self.region}.amazonaws.com"

    def delete_cluster(self, name: str) -> None:
        raise self._refuse("deleting the cluster")

    def network_topology(self, vpc_id: str) -> Topology | None:
        return self._topology(vpc_id) if self._topology else None
