"""The sandbox adapter: a local moto server stands in for the AWS account.

Implements ``pwbcluster.contracts.account.Account`` for ``invoke up --sandbox``:

- Pulumi stacks: the stage's own program, run with mocks that create each resource in
  moto (``pulumi_moto``); a ledger of what was created (ids only) lets a re-run replace the
  previous run's resources and ``destroy`` remove them;
- images: pcluster's own schema and validators on the build-image config (offline, against
  moto), then a stand-in AMI, labelled simulated (nothing is built);
- the cluster: pcluster's schema, validators and template synthesis offline against moto;
  what would be created is recorded in ``build/<deployment>/cluster-plan.json``;
- what a moto server cannot be (a directory answering LDAP, a jump host that boots) is
  reported by ``cannot()`` with the reason, so the stages say "skipped" instead of pretending.

It is a rehearsal of wiring and configuration, not evidence that AWS accepts it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pwbcluster import netpaths
from pwbcluster.contracts.account import (
    DIRECTORY,
    JUMP_HOST_BOOT,
    ClusterDeploy,
    ImageBuild,
    Notes,
    StackRequest,
)
from pwbcluster.errors import StageError
from pwbcluster.files import write_text
from pwbcluster.netpaths import Topology
from pwbcluster.pcluster import amis, offline
from pwbcluster.progress import ticking
from pwbcluster.sandbox import image_standins
from pwbcluster.sandbox.server import SandboxServer, fake_session

log = logging.getLogger(__name__)

PLAN_FILE = "cluster-plan.json"
CANNOT = {
    DIRECTORY: (
        "the sandbox's directory is a moto record with no LDAP server behind it "
        "(the user tool is proven against a real Samba AD DC in tests/users)"
    ),
    JUMP_HOST_BOOT: "moto runs no instance: the jump host's first-boot script never runs",
}


class SandboxAccount:
    simulated = True

    def __init__(self, server: SandboxServer, region: str, build_dir: Path) -> None:
        self.server = server
        self.region = region
        self.build_dir = build_dir
        self.label = f"sandbox at {server.endpoint}"
        self.notes = Notes()
        self._templates: list[str] = []
        self._validator_warnings: list[str] = []

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def client(self, service: str) -> Any:
        client: Any = fake_session(self.region).client(
            service, endpoint_url=self.endpoint, verify=self.server.ca_bundle or None
        )
        return client

    def cannot(self, capability: str) -> str | None:
        reason = CANNOT.get(capability)
        if reason:
            self.notes.add(f"simulated: {capability}: {reason}")
        return reason

    # Pulumi stacks, created in moto
    def _ledger_path(self, part: str) -> Path:
        return self.build_dir / f"sandbox-{part}-resources.json"

    def stack_up(self, request: StackRequest) -> Mapping[str, Any]:
        from pwbcluster.sandbox.mockrun import run_with_mocks
        from pwbcluster.sandbox.pulumi_moto import MotoMocks

        self._remove_previous(request.part)
        mocks = MotoMocks(self.endpoint, self.region)
        try:
            with ticking(f"{request.part}: the Pulumi program creates its resources in moto"):
                run = run_with_mocks(request.program, mocks, request.project, request.stack)
        finally:
            write_text(
                self._ledger_path(request.part),
                json.dumps(mocks.ledger.to_json(), indent=2, sort_keys=True) + "\n",
            )
        if mocks.ledger.simulated:
            listed = ", ".join(sorted(mocks.ledger.simulated))
            log.info("sandbox %s: simulated (moto cannot create them): %s", request.part, listed)
            self.notes.add(f"simulated in the {request.part} stack (moto lacks them): {listed}")
        return run.outputs

    def _remove_previous(self, part: str) -> None:
        """A re-run replaces what the previous sandbox run of this part created."""
        from pwbcluster.sandbox.pulumi_moto import Ledger, destroy_ledger

        path = self._ledger_path(part)
        if not path.exists():
            return
        log.info("sandbox %s: removing the previous run's resources first", part)
        ledger = Ledger.from_json(json.loads(path.read_text(encoding="utf-8")))
        failures = destroy_ledger(ledger, self.endpoint, self.region, replacing=True)
        if failures:
            # Creating over what is left would fail later, on a name already taken, with a
            # message that hides the cause: stop here and name it. The ledger stays for
            # `invoke down --sandbox`.
            raise StageError(
                f"sandbox {part}: the previous run's resources could not all be removed "
                f"before the re-run ({len(failures)}):\n" + "\n".join(failures)
            )
        path.unlink()

    def stack_destroy(self, request: StackRequest) -> None:
        from pwbcluster.sandbox.pulumi_moto import Ledger, destroy_ledger

        path = self._ledger_path(request.part)
        if not path.exists():
            log.info("sandbox %s: nothing recorded, nothing to remove", request.part)
            return
        ledger = Ledger.from_json(json.loads(path.read_text(encoding="utf-8")))
        failures = destroy_ledger(ledger, self.endpoint, self.region)
        if failures:
            raise StageError(
                f"sandbox {request.part}: {len(failures)} resource(s) could not be removed:\n"
                + "\n".join(failures)
            )
        path.unlink()

    # Images: validated by pcluster, then a labelled stand-in
    def official_parent_image(self, os_name: str, pcluster_version: str) -> str:
        self.notes.add(
            "simulated: the official ParallelCluster parent AMI is a labelled stand-in in moto"
        )
        return image_standins.sandbox_parent(self.client("ec2"), os_name, pcluster_version)

    def check_image(self, build: ImageBuild) -> None:
        with ticking("image: ParallelCluster validates the build-image config"):
            result = self._validate_image(build)
        offline.raise_for([result])
        for line in offline.suppression_lines(sandbox=True):
            self.notes.add(line)

    def _validate_image(self, build: ImageBuild) -> Any:
        return offline.validate_image(
            dict(build.config),
            build.image_id,
            self.region,
            endpoint_url=self.endpoint,
            standins=False,
            suppress=(*offline.SUPPRESSED_VALIDATORS, *offline.SANDBOX_SUPPRESSED_VALIDATORS),
        )

    def build_image(self, build: ImageBuild) -> str:
        self.notes.add("simulated: the custom AMI is a registered stand-in (nothing is built)")
        return image_standins.register_standin(
            self.client("ec2"),
            build.image_id,
            # build-image describes its AMIs so; pcluster's validators read the description.
            f"AWS ParallelCluster AMI for {build.os} (sandbox stand-in for a build-image "
            "result, simulated: no software installed)",
            dict(build.tags),
            size_gb=build.root_volume_gb,
        )

    def delete_image(self, image_id: str, ami_id: str, built_by_pcluster: bool) -> None:
        amis.deregister(self.client("ec2"), ami_id)

    def delete_pending_image(self, image_id: str) -> None:
        return None  # the sandbox never starts a pcluster build

    def forget_image_standins(self) -> None:
        image_standins.remove_parent_standins(self.client("ec2"))

    # The cluster: validated and synthesised by pcluster offline, not deployed
    def check_cluster(self, deploy: ClusterDeploy) -> Sequence[Path]:
        with ticking("cluster: ParallelCluster validates and synthesises the templates"):
            result = offline.synthesise_cluster(
                dict(deploy.config),
                deploy.name,
                self.region,
                self.build_dir / "cluster-cloudformation",
                endpoint_url=self.endpoint,
                public_subnets=deploy.public_subnet_ids,
                suppress=(*offline.SUPPRESSED_VALIDATORS, *offline.SANDBOX_SUPPRESSED_VALIDATORS),
            )

        def describe(res: offline.JobResult, failure: offline.Failure) -> str:
            where = offline.format_rendered_path(failure.path or ())
            key = deploy.locate("cluster", failure.path or ()) if deploy.locate else None
            origin = f"{key}: " if key else ""
            return f"{origin}{failure.message} [pcluster {failure.validator}] (rendered: {where})"

        offline.raise_for([result], describe)
        for line in offline.suppression_lines(sandbox=True):
            self.notes.add(line)
        self._templates = [str(p) for p in result.files]
        self._validator_warnings = [f"{w.validator}: {w.message}" for w in result.warnings]
        files = [Path(p) for p in result.files]
        if result.placeholders and files:
            # Ids pcluster could not find here stood in by others: say which is which.
            names = json.dumps(dict(sorted(result.placeholders.items())), indent=1)
            write_text(files[0].parent / offline.PLACEHOLDERS_FILE, names + "\n")
        return files

    def deploy_cluster(self, deploy: ClusterDeploy) -> str:
        host = f"{deploy.name}-login.sandbox.invalid"
        self.notes.add(
            "simulated: the cluster is validated and synthesised by ParallelCluster offline, "
            f"not deployed (see build/.../{PLAN_FILE})"
        )
        record = {
            "cluster_name": deploy.name,
            "region": self.region,
            "mode": "sandbox: rehearsal of wiring and configuration, not evidence AWS accepts it",
            "config": str(deploy.config_path),
            "would_run": [
                "pcluster",
                "create-cluster",
                "-n",
                deploy.name,
                "-c",
                deploy.config_path.name,
            ],
            "would_create": list(deploy.summary),
            "templates": self._templates,
            "validator_warnings": self._validator_warnings,
            "uploaded": list(deploy.uploaded),
            "login_address": host,
            "warnings": list(deploy.warnings),
        }
        write_text(self.build_dir / PLAN_FILE, json.dumps(record, indent=2) + "\n")
        return host

    def delete_cluster(self, name: str) -> None:
        """Remove the scratch bucket pcluster's offline synthesis made, and the record."""
        from pwbcluster.sandbox.pulumi_moto import empty_and_delete_bucket

        s3 = self.client("s3")
        for bucket in s3.list_buckets().get("Buckets", []):
            bucket_name = bucket["Name"]
            if bucket_name.startswith("parallelcluster-") and bucket_name.endswith(
                f"-offline-{self.region}"
            ):
                empty_and_delete_bucket(s3, bucket_name)
                log.info("sandbox: removed pcluster's synthesis bucket %s", bucket_name)
        (self.build_dir / PLAN_FILE).unlink(missing_ok=True)

    def network_topology(self, vpc_id: str) -> Topology | None:
        return netpaths.from_ec2(self.client("ec2"), vpc_id)
