"""The real-account adapter: the user's AWS credentials, the Pulumi CLI, the patched pcluster.

Implements ``pwbcluster.contracts.account.Account``. Nothing here is simulated: each
call changes the AWS account of the credentials in use, and the checks before a build or a
deployment are ParallelCluster's own, run by its CLI against the real account.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from pwbcluster import netpaths
from pwbcluster.aws import pcluster_cluster, pulumi_driver
from pwbcluster.aws.pcluster_images import PclusterImages, ami_of, wait_for_build
from pwbcluster.contracts.account import ClusterDeploy, ImageBuild, Notes, StackRequest
from pwbcluster.errors import StageError
from pwbcluster.netpaths import Topology
from pwbcluster.pcluster import amis
from pwbcluster.pcluster.official import find_official_parent


class AwsAccount:
    simulated = False

    def __init__(
        self,
        region: str,
        pulumi_backend: str | None = None,
        console: Console | None = None,
        pulumi_secrets_provider: str | None = None,
    ) -> None:
        self.region = region
        self.label = f"AWS account ({region})"
        self.notes = Notes()
        self._pulumi_backend = pulumi_backend
        self._secrets_provider = pulumi_secrets_provider
        self._console = console or Console(stderr=True)
        self._images: PclusterImages | None = None

    def client(self, service: str) -> Any:
        import boto3

        session = boto3.session.Session(region_name=self.region)
        client: Any = session.client(service)  # type: ignore[call-overload]
        return client

    def cannot(self, capability: str) -> str | None:
        return None

    # Pulumi stacks
    def _backend(self) -> str:
        return pulumi_driver.backend_url(self._pulumi_backend)

    def stack_up(self, request: StackRequest) -> Mapping[str, Any]:
        return pulumi_driver.up(
            request, self._backend(), self.region, secrets_provider=self._secrets_provider
        )

    def stack_destroy(self, request: StackRequest) -> None:
        pulumi_driver.destroy(
            request, self._backend(), self.region, secrets_provider=self._secrets_provider
        )

    def stack_preview(self, request: StackRequest) -> str:
        return pulumi_driver.preview(
            request, self._backend(), self.region, secrets_provider=self._secrets_provider
        )

    def stack_outputs(self, request: StackRequest) -> Mapping[str, Any]:
        return pulumi_driver.outputs(
            request, self._backend(), self.region, secrets_provider=self._secrets_provider
        )

    # Images
    @property
    def images(self) -> PclusterImages:
        if self._images is None:
            self._images = PclusterImages(self.region)
        return self._images

    def official_parent_image(self, os_name: str, pcluster_version: str) -> str:
        return str(find_official_parent(self.client("ec2"), os_name, pcluster_version)["ImageId"])

    def check_image(self, build: ImageBuild) -> None:
        # pcluster build-image validates the configuration itself, against this account.
        return None

    def build_image(self, build: ImageBuild) -> str:
        described = self.images.describe(build.image_id)
        state = described.get("imageBuildStatus")
        if state == "BUILD_COMPLETE":  # built earlier, found by id rather than by tag
            return ami_of(described)
        if state == "BUILD_IN_PROGRESS":
            self._console.print(f"image: build {build.image_id} already running: following it")
        elif state:
            raise StageError(
                f"pcluster already has an image {build.image_id} in state {state}; remove it "
                f"with `invoke image.delete --image {build.image_id}` and re-run"
            )
        else:
            self.images.build(build.image_id, build.config_path)
            self._console.print(f"image: build {build.image_id} started from {build.parent_image}")
        return wait_for_build(self.images, build.image_id, self._console)

    def delete_image(self, image_id: str, ami_id: str, built_by_pcluster: bool) -> None:
        # Through pcluster when it knows the image (its stack goes too), else from EC2.
        if built_by_pcluster and image_id and self.images.describe(image_id):
            self.images.delete(image_id, force=True)
        else:
            amis.deregister(self.client("ec2"), ami_id)

    def delete_pending_image(self, image_id: str) -> None:
        if self.images.describe(image_id):
            self.images.delete(image_id, force=True)

    def forget_image_standins(self) -> None:
        return None

    # The cluster
    def check_cluster(self, deploy: ClusterDeploy) -> Sequence[Path]:
        # pcluster create-cluster validates the configuration itself, against this account,
        # and synthesises its templates there: none exist here before it runs.
        return ()

    def deploy_cluster(self, deploy: ClusterDeploy) -> str:
        return pcluster_cluster.create_or_update(
            deploy.name, self.region, deploy.config_path, console=self._console
        )

    def delete_cluster(self, name: str) -> None:
        pcluster_cluster.delete(name, self.region, console=self._console)

    def network_topology(self, vpc_id: str) -> Topology | None:
        return netpaths.from_ec2(self.client("ec2"), vpc_id)
